// Writes native/inner.h from innerFamilies() (src/net/inner-header.ts). Run: node --import tsx scripts/gen-inner-header.mts
import {writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {innerHeader} from '../src/net/inner-header.js'

writeFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'native', 'inner.h'), innerHeader())
