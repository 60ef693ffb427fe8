// The kernel twin (native/pmtu.c, native/icmperr.c) against the kernel's rules: the C test program
// test/unit/userspace/c/twin_test.c, each of its cases a test here (test/lib/ctest.ts).
import {cTestSuite} from '../../lib/ctest.js'

cTestSuite({title: 'kernel twin (C)', program: 'test/unit/userspace/c/twin_test.c', native: ['icmperr.c', 'pmtu.c', 'dispatch.c', 'codec.c'], minCases: 80})
