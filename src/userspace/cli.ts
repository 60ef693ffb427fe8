// Developer entry point for the encapsulator without the planner (bench, UML interop tests):
//   node dist/userspace/cli.js start NAME '<TunnelParams JSON>' [NETNS] | stop NAME [NETNS] | observe [NETNS]
import type {TunnelParams} from '../model/types.js'
import {observeEncaps, startEncap, stopEncap} from './control.js'

const [cmd, ...args] = process.argv.slice(2)
const defaults = {local: 'any', remote: 'any', ttl: 0, tos: 1, pmtudisc: true, fwmark: 0, up: true}
try {
  if (cmd === 'start' && args[0] && args[1]) {
    const params = {...defaults, ...JSON.parse(args[1])} as TunnelParams
    const r = await startEncap(args[0], params, {netns: args[2]})
    console.log(JSON.stringify(r))
  } else if (cmd === 'stop' && args[0]) {
    await stopEncap(args[0], {netns: args[1]})
  } else if (cmd === 'observe') {
    console.log(JSON.stringify(Object.fromEntries(await observeEncaps({netns: args[0]})), null, 2))
  } else {
    console.error("usage: cli.js start NAME '<params json>' [NETNS] | stop NAME [NETNS] | observe [NETNS]")
    process.exit(64)
  }
} catch (e: any) {
  console.error(`cli: ${e.message}${e.stderr ? '\n' + e.stderr : ''}`)
  process.exit(1)
}
