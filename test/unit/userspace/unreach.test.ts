// The engine's answer to a packet no tunnel takes (native/unreach.c: ICMP port unreachable as Linux 6.1's
// gre_rcv / tunnel4_rcv send it, and icmp_send's rate limits) against the kernel's rules: the C test program
// test/unit/userspace/c/unreach_test.c, each of its cases a test here (test/lib/ctest.ts).
import {cTestSuite} from '../../lib/ctest.js'

cTestSuite({title: 'unreachable for no tunnel (C)', program: 'test/unit/userspace/c/unreach_test.c', native: ['unreach.c', 'codec.c'], minCases: 40})
