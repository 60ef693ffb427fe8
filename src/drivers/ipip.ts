// ipip: IPv4 (or MPLS) over IPv4, kernel module ipip, kind 'ipip', fallback device tunl0.
import {makeIptunDriver} from './iptun.js'

export const ipip = makeIptunDriver({
  mode: 'ipip',
  kind: 'ipip',
  protos: ['ipip', 'mplsip', 'any'],
  defaultProto: 'ipip',
  isatap: false,
})
