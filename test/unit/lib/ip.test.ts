// src/lib/ip.ts: the line an ip -batch stopped at, as both batch runners (links from a file, xfrm from stdin) read it.
import {test} from '#test/uvu'
import * as assert from 'uvu/assert'
import {failedBatchLine} from '../../../src/lib/ip.js'

test('failedBatchLine: "Command failed FILE:LINE" (a file or - for stdin); none → undefined', () => {
  assert.is(failedBatchLine('RTNETLINK answers: File exists\nCommand failed /run/tunctl/host/batch.12.1:7\n'), 7)
  assert.is(failedBatchLine('Error: argument "x" is wrong\nCommand failed -:2'), 2)
  assert.is(failedBatchLine('RTNETLINK answers: Operation not permitted\n'), undefined)
})

test.run()
