// The receive dispatch (native/dispatch.c) against the kernel's lookup rules: the C test program
// test/unit/userspace/c/dispatch_test.c, each of its cases a test here (test/lib/ctest.ts).
import {cTestSuite} from '../../lib/ctest.js'

cTestSuite({
  title: 'dispatch (C)',
  program: 'test/unit/userspace/c/dispatch_test.c',
  native: ['dispatch.c', 'codec.c'],
  minCases: 50,
  caseName: (rest) => rest.replace(/: selected .*$/, ''),
})
