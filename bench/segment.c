/* bench_segment: what a segment costs before channels exist.
 *
 * Measured in one run, each against a baseline from the same run:
 * - create + map + unlink of a segment (with and without prefault);
 * - first touch of fresh shared memory per 4 KiB page, versus first touch of
 *   fresh private memory (malloc'd, mmap'd anonymous) and versus touching
 *   pages that are already mapped (reuse);
 * - open of an existing segment (header validation included).
 * Prints a table, or JSON with --json. Never fails on timing.
 * Usage: bench_segment [--json] [--quick]
 *
 * Linux and Windows; what differs is the private memory of the baseline
 * (mmap / VirtualAlloc), the page size and the process id, below.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "../tools/ferry/proc.h"
#include "ferry.h"

#ifdef _WIN32
static uint64_t page_size(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwPageSize;
}

/* Fresh private memory, committed but not touched; NULL on failure. */
static void *private_alloc(uint64_t size) {
  return VirtualAlloc(NULL, (SIZE_T)size, MEM_RESERVE | MEM_COMMIT,
                      PAGE_READWRITE);
}

static void private_free(void *p, uint64_t size) {
  (void)size;
  VirtualFree(p, 0, MEM_RELEASE);
}

static long self_pid(void) { return (long)GetCurrentProcessId(); }
#else
static uint64_t page_size(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }

/* Fresh private anonymous memory, not touched; NULL on failure. */
static void *private_alloc(uint64_t size) {
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

static void private_free(void *p, uint64_t size) { munmap(p, (size_t)size); }

static long self_pid(void) { return (long)getpid(); }
#endif

static double now_ns(void) { return (double)proc_now_ns(); }

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_segment: %s: %s: %s\n", what, ferry_err_name(rc),
          ferry_errmsg());
  exit(1);
}

struct row {
  const char *test;
  const char *transport;
  uint64_t size;
  double ns;      /* per operation */
  double base_ns; /* baseline per operation, 0 if none */
  const char *baseline;
};

static volatile uint8_t sink;

static void touch(uint8_t *p, uint64_t len, uint64_t page) {
  uint64_t i;
  for (i = 0; i < len; i += page)
    p[i] = (uint8_t)i;
  sink = p[0];
}

int main(int argc, char **argv) {
  int json = 0, quick = 0, i, reps, nrows = 0;
  uint64_t size = 64ull << 20, page = page_size();
  char name[64];
  struct row rows[8];
  double t0, t_create = 0, t_create_pf = 0, t_open = 0, t_touch_shm = 0,
             t_touch_priv = 0, t_touch_reuse = 0;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else {
      fprintf(stderr, "usage: bench_segment [--json] [--quick]\n");
      return 2;
    }
  }
  reps = quick ? 3 : 10;
  snprintf(name, sizeof name, "bench-seg-%ld", self_pid());

  for (i = 0; i < reps; i++) {
    ferry_segment *s, *o;
    ferry_segment_opts opts = FERRY_SEGMENT_OPTS_INIT;
    uint8_t *priv;
    int rc;

    /* create (reserves with fallocate on Linux) + map, then first touch */
    t0 = now_ns();
    rc = ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, size, NULL);
    if (rc)
      die("create", rc);
    t_create += now_ns() - t0;
    t0 = now_ns();
    touch((uint8_t *)ferry_segment_data(s), size, page);
    t_touch_shm += now_ns() - t0;
    t0 = now_ns();
    touch((uint8_t *)ferry_segment_data(s), size, page);
    t_touch_reuse += now_ns() - t0;
    t0 = now_ns();
    rc = ferry_segment_open(&o, name, 0, 0, NULL);
    if (rc)
      die("open", rc);
    t_open += now_ns() - t0;
    ferry_segment_close(o);
    ferry_segment_close(s);
    ferry_segment_unlink(name, 0);

    /* the same with prefault: the cost moves into create */
    opts.flags = FERRY_SEG_PREFAULT;
    t0 = now_ns();
    rc = ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, size, &opts);
    if (rc)
      die("create prefault", rc);
    t_create_pf += now_ns() - t0;
    ferry_segment_close(s);
    ferry_segment_unlink(name, 0);

    /* baseline: fresh private anonymous memory */
    priv = (uint8_t *)private_alloc(size);
    if (!priv) {
      fprintf(stderr, "bench_segment: cannot allocate %llu MiB\n",
              (unsigned long long)(size >> 20));
      return 1;
    }
    t0 = now_ns();
    touch(priv, size, page);
    t_touch_priv += now_ns() - t0;
    private_free(priv, size);
  }

  {
    double pages = (double)(size / page) * reps;
    rows[nrows++] =
        (struct row){"create_map", "ferry", size, t_create / reps, 0, NULL};
    rows[nrows++] = (struct row){"create_map_prefault", "ferry", size,
                                 t_create_pf / reps,    0,       NULL};
    rows[nrows++] =
        (struct row){"open_validate", "ferry", size, t_open / reps, 0, NULL};
    rows[nrows++] = (struct row){"first_touch_page",
                                 "ferry",
                                 page,
                                 t_touch_shm / pages,
                                 t_touch_priv / pages,
                                 "private anonymous memory"};
    rows[nrows++] = (struct row){"reused_touch_page",
                                 "ferry",
                                 page,
                                 t_touch_reuse / pages,
                                 t_touch_shm / pages,
                                 "first touch of the same segment"};
  }

  if (json) {
    printf("{\"results\":[");
    for (i = 0; i < nrows; i++) {
      printf("%s{\"transport\":\"%s\",\"test\":\"%s\",\"size\":%llu,"
             "\"ns_per_op\":%.1f",
             i ? "," : "", rows[i].transport, rows[i].test,
             (unsigned long long)rows[i].size, rows[i].ns);
      if (rows[i].base_ns > 0) /* baseline fields only where there is one */
        printf(",\"baseline\":\"%s\",\"baseline_ns_per_op\":%.1f,"
               "\"ratio\":%.3f",
               rows[i].baseline, rows[i].base_ns, rows[i].ns / rows[i].base_ns);
      printf("}");
    }
    printf("]}\n");
  } else {
    printf("ferry segment benchmark (%d repetitions, %llu MiB segments)\n",
           reps, (unsigned long long)(size >> 20));
    printf("%-22s %12s %14s  %s\n", "test", "size", "time",
           "ratio to baseline");
    for (i = 0; i < nrows; i++) {
      char t[32];
      if (rows[i].ns >= 1e6)
        snprintf(t, sizeof t, "%.2f ms", rows[i].ns / 1e6);
      else if (rows[i].ns >= 1e3)
        snprintf(t, sizeof t, "%.2f us", rows[i].ns / 1e3);
      else
        snprintf(t, sizeof t, "%.0f ns", rows[i].ns);
      printf("%-22s %12llu %14s", rows[i].test,
             (unsigned long long)rows[i].size, t);
      if (rows[i].base_ns > 0)
        printf("  %.2fx %s", rows[i].ns / rows[i].base_ns, rows[i].baseline);
      printf("\n");
    }
  }
  return 0;
}
