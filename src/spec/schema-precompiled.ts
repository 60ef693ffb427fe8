// The spec's validator compiled ahead of time. Here (src, the tests) it is undefined: loadSchema compiles the schema
// at run time. In the CLI bundle, scripts/bundle.mjs replaces this module with ajv's standalone code for
// schemas/tunnels.schema.json, made with specAjv (schema.ts): the same validator without ajv compiling it (and its
// meta-schema) at each start (~40-60 ms of a cold start).
import type {ValidateFunction} from 'ajv'

export const precompiled: ValidateFunction | undefined = undefined
