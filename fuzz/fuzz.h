/* Shared helpers of the libFuzzer targets. */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A broken invariant is a bug: report it and abort, so libFuzzer keeps the
 * input. */
#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      fuzz_fail(__FILE__, __LINE__, #c);                                       \
  } while (0)

static inline void fuzz_fail(const char *file, int line, const char *what) {
  fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
  abort();
}

/* The N-byte little-endian number at P. */
static inline uint64_t get_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  int i;
  for (i = n - 1; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

#endif
