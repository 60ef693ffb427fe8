// Kernel sit (IPv6 in IPv4) between two namespaces: examples/sit.yaml end to end.
import {A_ADDR, B_ADDR} from './lib/ns.js'
import {modeSuite} from './lib/scenario.js'

modeSuite({
  mode: 'sit',
  pingB: ['2001:db8:3::2'],
  shown: {mode: 'sit', local: A_ADDR, remote: B_ADDR, ttl: 64, addresses: ['2001:db8:3::1/64']},
  inPlace: {patch: {ttl: 32}, expect: {ttl: 32}},
  replace: {patch: {remote: 'any'}, expect: {remote: 'any'}},
}).run()
