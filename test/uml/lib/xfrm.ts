// Static ESP SAs + policies for a vti pair (what an IKE daemon would install): AES-GCM, mark = the vti key.
import {existsSync} from 'node:fs'
import {ipn, must} from './sh.js'


const KEY = '0x' + '0123456789abcdef'.repeat(2) + '01234567' // 128-bit AES key + 32-bit salt

/** In namespace ns (address self, peer address peer): SAs both ways and in/out policies, all marked `mark`. */
export function installEsp(ns: string, self: string, peer: string, mark: number): void {
  for (const m of ['esp4', 'xfrm_user', 'gcm']) {
    if (!existsSync(`/sys/module/${m}`)) throw new Error(`module ${m} not loaded (test/uml/suite.sh loads the ESP modules)`)
  }
  const m = String(mark)
  // SPIs are direction-specific and identical on both sides: 0x100 + last octet of the sender
  const spi = (src: string) => '0x' + (0x100 + Number(src.split('.')[3])).toString(16)
  for (const [src, dst] of [[self, peer], [peer, self]] as const) {
    ipn(ns, 'xfrm', 'state', 'add', 'src', src, 'dst', dst, 'proto', 'esp', 'spi', spi(src), 'reqid', '1', 'mode', 'tunnel',
      'aead', 'rfc4106(gcm(aes))', KEY, '128', 'mark', m)
  }
  ipn(ns, 'xfrm', 'policy', 'add', 'dir', 'out', 'mark', m, 'tmpl', 'src', self, 'dst', peer, 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel')
  ipn(ns, 'xfrm', 'policy', 'add', 'dir', 'in', 'mark', m, 'tmpl', 'src', peer, 'dst', self, 'proto', 'esp', 'reqid', '1', 'mode', 'tunnel')
}

/** vti devices need disable_policy, or the kernel drops decrypted packets arriving on them. */
export function disablePolicy(ns: string, dev: string): void {
  must('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', `net.ipv4.conf.${dev}.disable_policy=1`])
}
