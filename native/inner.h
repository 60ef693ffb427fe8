/* Generated from innerFamilies() in src/net/addr.ts by scripts/gen-inner-header.mts: do not edit.
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
    {TM_IPIP, NULL, TP_IPV4},
    {TM_IPIP, "ipip", TP_IPV4},
    {TM_IPIP, "mplsip", TP_IPV4},
    {TM_IPIP, "any", TP_IPV4},
    {TM_GRE, NULL, TP_IPV4 | TP_IPV6},
    {TM_SIT, NULL, TP_IPV6},
    {TM_SIT, "ip6ip", TP_IPV6},
    {TM_SIT, "ipip", TP_IPV4},
    {TM_SIT, "mplsip", TP_IPV4 | TP_IPV6},
    {TM_SIT, "any", TP_IPV4 | TP_IPV6},
    {TM_ISATAP, NULL, TP_IPV6},
    {TM_ISATAP, "ip6ip", TP_IPV6},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
    if (rows[i].mode == mode && (rows[i].proto == NULL ? proto == NULL : proto != NULL && !strcmp(rows[i].proto, proto))) return rows[i].inner;
  return 0;
}

#endif
