/* The C test programs' harness (esp_test.c, vti_test.c): a case body returns 0 on success, else fails through
 * CHECK with a message in `why`; report() prints `ok NAME` or `not ok NAME<tab>WHY` (test/lib/ctest.ts and
 * test/unit/userspace/esp.test.ts turn each line into a test); unhex() reads the fixtures' hex. */
#ifndef TUNCTL_TEST_HARNESS_H
#define TUNCTL_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>

static int ncases, nfailed;
static char why[512];

#define CHECK(cond, ...)                                                                                              \
  do {                                                                                                                \
    if (!(cond)) {                                                                                                    \
      snprintf(why, sizeof(why), __VA_ARGS__);                                                                        \
      return 1;                                                                                                       \
    }                                                                                                                 \
  } while (0)

static void report(const char *name, int failed) {
  ncases++;
  if (failed) {
    nfailed++;
    printf("not ok %s\t%s\n", name, why);
  } else {
    printf("ok %s\n", name);
  }
  fflush(stdout);
}

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = 0;
  while (s[0] && s[1] && n < cap) {
    unsigned v;
    if (sscanf(s, "%2x", &v) != 1) break;
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

#endif
