// The engine's rtnetlink requests for the devices it creates (native/nlbatch.c: the CIDR parser, the mark/MTU,
// addrgenmode, address and up requests, their numbering): the C test program test/unit/userspace/c/nlbatch_test.c,
// each case a test here.
import {cTestSuite} from '../../lib/ctest.js'

cTestSuite({title: 'netlink batch (C)', program: 'test/unit/userspace/c/nlbatch_test.c', native: ['nlbatch.c'], flags: ['-std=gnu11'], minCases: 8})
