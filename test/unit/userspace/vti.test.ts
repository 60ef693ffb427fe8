// The userspace vti data path (native/vti.c over native/esp.c) against the kernel: builds the C test program
// test/unit/userspace/c/vti_test.c (ASan/UBSan when available) and reports each of its cases as a test here.
// Interop: every ESP packet the kernel's vti sent (test/fixtures/esp/kernel-esp.txt, outer IPv4 header included)
// is received, and sent again byte for byte; tampering, replay, MTU/ICMP, ECN and sequence-number cases.
// A missing compiler or libcrypto, a program that does not build or crashes fails the suite.
import {join} from 'node:path'
import * as assert from 'uvu/assert'
import {cTestSuite, repo} from '../../lib/ctest.js'

cTestSuite({
  title: 'vti (C): userspace vti against the kernel vti + esp4',
  program: 'test/unit/userspace/c/vti_test.c',
  native: ['vti.c', 'esp.c', 'codec.c'],
  flags: ['-std=gnu11', '-pthread', '-Wno-unused-parameter'],
  libs: ['-lcrypto'],
  args: [join(repo, 'test', 'fixtures', 'esp', 'kernel-esp.txt')],
  detectLeaks: true,
  minCases: 100,
  alsoCheck: (lines) => assert.ok(lines.filter((l) => / kernel aes-.* byte for byte/.test(l)).length >= 80, 'kernel packets missing'),
  caseName: (rest) => rest.replace(/\t.*$/, ''),
})
