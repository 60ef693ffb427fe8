// native/inner.h, generated from innerFamilies (net/addr.ts): the inner families the userspace encapsulator lets
// through per mode and inner protocol are the ones the spec accepts addresses and routes for. One rule, two
// languages: test/unit/drivers/inner-header.test.ts fails when the committed header is not this text
// (regenerate: node --import tsx scripts/gen-inner-header.mts).
import type {InnerProto, Mode} from '../model/types.js'
import {innerFamilies} from './addr.js'

/** The modes the userspace encapsulator implements (native/tunctl.h enum tunctl_mode) and their inner protocols. */
const NATIVE: Array<[Mode, string, readonly (InnerProto | undefined)[]]> = [
  ['ipip', 'TM_IPIP', [undefined, 'ipip', 'mplsip', 'any']],
  ['gre', 'TM_GRE', [undefined]],
  ['sit', 'TM_SIT', [undefined, 'ip6ip', 'ipip', 'mplsip', 'any']],
  ['isatap', 'TM_ISATAP', [undefined, 'ip6ip']],
]

export function innerHeader(): string {
  const rows: string[] = []
  for (const [mode, tm, protos] of NATIVE) {
    for (const proto of protos) {
      const fams = innerFamilies(mode, proto).families
      const mask = fams.map((f) => (f === 4 ? 'TP_IPV4' : 'TP_IPV6')).join(' | ')
      rows.push(`    {${tm}, ${proto === undefined ? 'NULL' : JSON.stringify(proto)}, ${mask}},`)
    }
  }
  return `/* Generated from innerFamilies() in src/net/addr.ts by scripts/gen-inner-header.mts: do not edit.
 * The inner families (TP_IPV4 | TP_IPV6) a tunnel carries by mode and inner protocol (NULL: none given), the same
 * rule the spec checks addresses and routes with. test/unit/drivers/inner-header.test.ts keeps the two equal. */
#ifndef TUNCTL_INNER_H
#define TUNCTL_INNER_H
#include <stddef.h>
#include <string.h>
#include "tunctl.h"

/* 0: not a combination tunctl makes */
static inline int tunctl_inner(int mode, const char *proto) {
  static const struct {
    int mode;
    const char *proto;
    int inner;
  } rows[] = {
${rows.join('\n')}
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    if (rows[i].mode == mode && (rows[i].proto == NULL ? proto == NULL : proto != NULL && !strcmp(rows[i].proto, proto))) return rows[i].inner;
  return 0;
}

#endif
`
}
