/* The C test programs' harness, two styles (test/lib/ctest.ts and test/unit/userspace/esp.test.ts turn each printed
 * line into a test):
 * - a case body returns 0 on success, else fails through CHECK with a message in `why`; report() prints `ok NAME`
 *   or `not ok NAME<tab>WHY` (esp_test.c, vti_test.c, route_test.c);
 * - EXPECT(name, cond, fmt, ...) checks one named condition and goes on, printing `ok NAME` or `not ok NAME: ...`
 *   (dispatch_test.c, twin_test.c, unreach_test.c); summary() ends such a program.
 * unhex() reads the fixtures' hex; ip4() an IPv4 address (network order; NULL or invalid: 0). */
#ifndef TUNCTL_TEST_HARNESS_H
#define TUNCTL_TEST_HARNESS_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>

#define HARNESS_UNUSED __attribute__((unused))

static int ncases, nfailed;
static HARNESS_UNUSED char why[512];

#define CHECK(cond, ...)                                                                                              \
  do {                                                                                                                \
    if (!(cond)) {                                                                                                    \
      snprintf(why, sizeof(why), __VA_ARGS__);                                                                        \
      return 1;                                                                                                       \
    }                                                                                                                 \
  } while (0)

static HARNESS_UNUSED void report(const char *name, int failed) {
  ncases++;
  if (failed) {
    nfailed++;
    printf("not ok %s\t%s\n", name, why);
  } else {
    printf("ok %s\n", name);
  }
  fflush(stdout);
}

static HARNESS_UNUSED size_t unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = 0;
  while (s[0] && s[1] && n < cap) {
    unsigned v;
    if (sscanf(s, "%2x", &v) != 1) break;
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

#define EXPECT(name, cond, ...)                                                                                       \
  do {                                                                                                                \
    ncases++;                                                                                                         \
    if (cond) printf("ok %s\n", name);                                                                                \
    else {                                                                                                            \
      nfailed++;                                                                                                      \
      printf("not ok %s: ", name);                                                                                    \
      printf(__VA_ARGS__);                                                                                            \
      printf("\n");                                                                                                   \
    }                                                                                                                 \
  } while (0)

/* the last line of an EXPECT program, and its exit status */
static HARNESS_UNUSED int summary(void) {
  printf("%d cases, %d failed\n", ncases, nfailed);
  return nfailed ? 1 : 0;
}

static HARNESS_UNUSED uint32_t ip4(const char *s) {
  struct in_addr a;
  if (!s || inet_pton(AF_INET, s, &a) != 1) return 0;
  return a.s_addr;
}

#endif
