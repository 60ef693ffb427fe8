// The engine's routing-derived state, pure parts (native/mcast.c: multicast gre group memberships): the C test program test/unit/userspace/c/route_test.c, each case a test here.
import {cTestSuite} from '../../lib/ctest.js'

cTestSuite({title: 'mcast (C)', program: 'test/unit/userspace/c/route_test.c', native: ['mcast.c', 'codec.c'], minCases: 5})
