// Kernel ipip between two namespaces: examples/ipip.yaml end to end (see lib/scenario.ts).
import {A_ADDR, B_ADDR} from './lib/ns.js'
import {modeSuite} from './lib/scenario.js'

modeSuite({
  mode: 'ipip',
  pingB: ['10.10.1.2'],
  shown: {mode: 'ipip', local: A_ADDR, remote: B_ADDR, ttl: 64, addresses: ['10.10.1.1/30']},
  inPlace: {patch: {ttl: 32}, expect: {ttl: 32}},
  replace: {patch: {remote: 'any'}, expect: {remote: 'any', local: A_ADDR}},
}).run()
