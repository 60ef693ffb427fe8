// Kernel isatap between two namespaces (each lists the other as a potential router): examples/isatap.yaml.
import {A_ADDR, B_ADDR} from './lib/ns.js'
import {modeSuite} from './lib/scenario.js'

modeSuite({
  mode: 'isatap',
  pingB: ['2001:db8:4::5efe:c633:6402'],
  shown: {
    mode: 'isatap', local: A_ADDR, remote: 'any', ttl: 64, routers: [{address: B_ADDR, default: true}],
    addresses: ['2001:db8:4::5efe:c633:6401/64'],
  },
  inPlace: {patch: {ttl: 32}, expect: {ttl: 32}},
  // the isatap flag cannot change in place: isatap → plain sit is a replace
  replace: {patch: {mode: 'sit', routers: undefined}, expect: {mode: 'sit', local: A_ADDR, remote: 'any'}},
}).run()
