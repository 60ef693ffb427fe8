// Kernel gre (key, checksums, IPv4 + IPv6 inside) between two namespaces: examples/gre.yaml end to end.
import {A_ADDR, B_ADDR} from './lib/ns.js'
import {modeSuite} from './lib/scenario.js'

modeSuite({
  mode: 'gre',
  pingB: ['10.10.2.2', '2001:db8:2::2'],
  shown: {
    mode: 'gre', local: A_ADDR, remote: B_ADDR, ttl: 64, ikey: 42, okey: 42, icsum: true, ocsum: true, mtu: 1400,
    addresses: ['10.10.2.1/30', '2001:db8:2::1/64'],
  },
  inPlace: {patch: {key: 43, ttl: 32}, expect: {ikey: 43, okey: 43, ttl: 32}},
  replace: {patch: {remote: 'any'}, expect: {remote: 'any', ikey: 42}},
}).run()
