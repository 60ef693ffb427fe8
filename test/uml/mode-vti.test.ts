// Kernel vti between two namespaces with static ESP SAs (mark = key): examples/vti.yaml end to end (its ipsec:
// block makes tunctl install the SAs; the replace drops it, so remote can become any).
import {A_ADDR, B_ADDR} from './lib/ns.js'
import {modeSuite} from './lib/scenario.js'

modeSuite({
  mode: 'vti',
  pingB: ['10.10.5.2'],
  shown: {mode: 'vti', local: A_ADDR, remote: B_ADDR, ikey: 7, okey: 7, addresses: ['10.10.5.1/30']},
  inPlace: {patch: {mtu: 1300}, expect: {mtu: 1300}},
  replace: {patch: {remote: 'any', ipsec: undefined}, expect: {remote: 'any', ikey: 7}},
}).run()
