// The engine's routing-derived state, pure parts (native/mcast.c: multicast gre group memberships; native/isatap.c:
// the isatap next hop from the route): the C test program test/unit/userspace/c/route_test.c, each case a test here.
import {cTestSuite} from '../../lib/ctest.js'

cTestSuite({title: 'mcast and isatap next hop (C)', program: 'test/unit/userspace/c/route_test.c', native: ['mcast.c', 'isatap.c', 'codec.c'], minCases: 12})
