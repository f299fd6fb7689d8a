/*
 * ferry: the command-line tool. Creates, lists, inspects and removes ferry
 * segments and channels, streams data through channels, and runs the demo,
 * through the public API (include/ferry.h) only.
 *
 * Conventions
 * - Exit codes: 0 success, 1 an operation failed, 2 usage error.
 * - A failure is one line on stderr:
 *     ferry: COMMAND: NAME: FERRY_ECODE: detail
 *   and a usage error is
 *     ferry: COMMAND: problem (see 'ferry COMMAND --help')
 * - A NAME with a '/' is a file path: a file-backed segment (FERRY_FILE).
 * - Portable C11 plus stdio: the few OS-dependent lines (time conversion,
 *   binary stdio, raw stdin reads) sit in small helpers, and process
 *   handling in proc.c, so the tool also builds with mingw-w64.
 *
 * Files: this one holds the shared helpers (cli.h), create/ls/info/rm/help
 * and the commands[] table; stream.c holds send and recv, demo.c the demo,
 * gc.c gc (stale segments);
 * `ferry bench` is bench/bench.c, linked in when the build has benchmarks.
 * A new command is one function and one row of the commands[] table.
 */
#if defined(_WIN32)
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1 /* C99 printf formats (%llu, %zu) */
#endif
#elif !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* localtime_r, gmtime_r */
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ferry.h"
#include "proc.h"

#ifdef FERRY_WITH_BENCH
#include "bench.h"
#endif

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

/* Writes S to F with control characters replaced by '?', so that a message
 * or a hostile segment name always stays on one line. */
void cli_put_clean(FILE *f, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    fputc(c < 0x20 || c == 0x7f ? '?' : c, f);
  }
}

/* The error line for ferry code ERR (the library's detail message, or the
 * code's fixed description when there is none). NAME may be NULL. */
void cli_fail_line(const char *cmd, const char *name, int err) {
  const char *msg = ferry_errmsg();
  if (!msg || !msg[0])
    msg = ferry_strerror(err);
  fprintf(stderr, "ferry: %s: ", cmd);
  if (name) {
    cli_put_clean(stderr, name);
    fputs(": ", stderr);
  }
  fprintf(stderr, "%s: ", ferry_err_name(err));
  cli_put_clean(stderr, msg);
  fputc('\n', stderr);
}

/* Prints a usage error and returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fputs("ferry: ", stderr);
  if (cmd) {
    fprintf(stderr, "%s: ", cmd);
    cli_put_clean(stderr, buf);
    fprintf(stderr, " (see 'ferry %s --help')\n", cmd);
  } else {
    cli_put_clean(stderr, buf);
    fputs(" (see 'ferry --help')\n", stderr);
  }
  return EXIT_USAGE;
}

/* An error line with our own detail, for hot-path calls, which leave no
 * detail message behind. Returns EXIT_FAIL. */
int cli_fail(const char *cmd, const char *name, int err, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fprintf(stderr, "ferry: %s: ", cmd);
  if (name) {
    cli_put_clean(stderr, name);
    fputs(": ", stderr);
  }
  fprintf(stderr, "%s: ", ferry_err_name(err));
  cli_put_clean(stderr, buf);
  fputc('\n', stderr);
  return EXIT_FAIL;
}

/* ------------------------------------------------------------------------ */
/* Argument parsing                                                         */

/* Parses ARGV[1..ARGC) of command CMD against SPECS (terminated by a NULL
 * name). Options and positional arguments may mix; "--" ends the options.
 * Returns 0, or EXIT_USAGE after printing the problem. Positional arguments
 * are collected in place at the front of ARGV. */
int cli_parse_args(const char *cmd, int argc, char **argv,
                   const struct optspec *specs, struct args *a) {
  int i, only_pos = 0;
  memset(a, 0, sizeof *a);
  a->pos = argv + 1;
  for (i = 1; i < argc; i++) {
    char *arg = argv[i];
    const struct optspec *s;
    const char *eq;
    size_t nlen;
    int k;
    if (only_pos || arg[0] != '-' || arg[1] == '\0') {
      a->pos[a->npos++] = arg;
      continue;
    }
    if (strcmp(arg, "--") == 0) {
      only_pos = 1;
      continue;
    }
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      a->help = 1;
      continue;
    }
    if (arg[1] != '-')
      return cli_usage_error(cmd, "unknown option '%s'", arg);
    eq = strchr(arg + 2, '=');
    nlen = eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2);
    for (k = 0, s = specs; s && s->name && k < MAX_OPTS; s++, k++)
      if (strlen(s->name) == nlen && strncmp(s->name, arg + 2, nlen) == 0)
        break;
    if (!s || !s->name || k >= MAX_OPTS)
      return cli_usage_error(cmd, "unknown option '--%.*s'", (int)nlen,
                             arg + 2);
    if (!s->takes_value) {
      if (eq)
        return cli_usage_error(cmd, "option '--%s' takes no value", s->name);
      a->value[k] = "";
    } else if (eq) {
      a->value[k] = eq + 1;
    } else if (i + 1 < argc) {
      a->value[k] = argv[++i];
    } else {
      return cli_usage_error(cmd, "option '--%s' needs a value", s->name);
    }
  }
  return 0;
}

static char lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Parses a size: a positive decimal integer with an optional binary suffix
 * K, M, G, T (or KiB, MiB, GiB, TiB; any case). 0 on success. */
int cli_parse_size(const char *s, uint64_t *out) {
  static const char units[] = "kmgt";
  uint64_t v = 0;
  const char *p = s;
  if (*p < '0' || *p > '9')
    return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1; /* overflow */
    v = v * 10 + d;
  }
  if (*p) {
    const char *u = strchr(units, lower(*p));
    unsigned shift;
    if (!u)
      return -1;
    if (!(p[1] == '\0' ||
          (lower(p[1]) == 'i' && lower(p[2]) == 'b' && p[3] == '\0')))
      return -1;
    shift = 10 * (unsigned)(u - units + 1);
    if (v > (UINT64_MAX >> shift))
      return -1; /* overflow */
    v <<= shift;
  }
  if (v == 0)
    return -1;
  *out = v;
  return 0;
}

/* Parses a positive decimal integer, at most MAX. 0 on success. */
int cli_parse_count(const char *s, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  const char *p = s;
  if (*p < '0' || *p > '9')
    return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    v = v * 10 + (uint64_t)(*p - '0');
    if (v > max)
      return -1;
  }
  if (*p || v == 0)
    return -1;
  *out = v;
  return 0;
}

/* Parses seconds: decimal digits with an optional fraction of up to 9
 * digits ("10", "0.5", ".25"), at most 10^9 s, into nanoseconds. */
int cli_parse_seconds(const char *s, int64_t *ns) {
  int64_t sec = 0, frac = 0, scale = 100000000;
  const char *p = s;
  int digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    sec = sec * 10 + (*p - '0');
    if (sec > 1000000000)
      return -1;
  }
  if (*p == '.') {
    for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
      if (scale == 0)
        return -1; /* finer than a nanosecond */
      frac += (*p - '0') * scale;
      scale /= 10;
    }
  }
  if (*p || digits == 0)
    return -1;
  *ns = sec * 1000000000 + frac;
  return 0;
}

/* Parses permission bits in octal ("0644" or "644"), 1 to 0777. */
static int parse_mode(const char *s, uint32_t *out) {
  uint32_t v = 0;
  const char *p = s;
  if (!*p)
    return -1;
  for (; *p; p++) {
    if (*p < '0' || *p > '7')
      return -1;
    v = v * 8 + (uint32_t)(*p - '0');
    if (v > 0777)
      return -1;
  }
  if (v == 0)
    return -1;
  *out = v;
  return 0;
}

/* A NAME with a path separator names a file-backed segment. */
static int is_path(const char *name) {
#ifdef _WIN32
  if (strchr(name, '\\') || strchr(name, ':'))
    return 1;
#endif
  return strchr(name, '/') != NULL;
}

/* ------------------------------------------------------------------------ */
/* Formatting                                                               */

static const char *kind_str(uint32_t kind) {
  switch (kind) {
  case FERRY_KIND_NAMED:
    return "named";
  case FERRY_KIND_ANON:
    return "anon";
  case FERRY_KIND_FILE:
    return "file";
  default:
    return "unknown";
  }
}

static const char *payload_str(uint32_t payload) {
  switch (payload) {
  case FERRY_PAYLOAD_RAW:
    return "raw";
  case FERRY_PAYLOAD_CHANNEL:
    return "channel";
  case FERRY_PAYLOAD_POOL:
    return "pool";
  default:
    return "unknown";
  }
}

static const char *alive_str(int32_t alive) {
  return alive > 0 ? "yes" : alive == 0 ? "no" : "?";
}

static const char *alive_json(int32_t alive) {
  return alive > 0 ? "true" : alive == 0 ? "false" : "null";
}

/* BYTES for people: "512B", "4.0K", "64.0M", "1.5G". */
const char *cli_fmt_size(uint64_t bytes, char *buf, size_t cap) {
  static const char units[] = "KMGTPE";
  double v = (double)bytes;
  int u = -1;
  if (bytes < 1024) {
    snprintf(buf, cap, "%lluB", (unsigned long long)bytes);
    return buf;
  }
  while ((v >= 1024.0 || u < 0) && u < 5) {
    v /= 1024.0;
    u++;
  }
  if (v >= 1023.95 && u < 5) { /* would print as "1024.0" */
    v /= 1024.0;
    u++;
  }
  snprintf(buf, cap, "%.1f%c", v, units[u]);
  return buf;
}

/* NS nanoseconds as seconds, without trailing zeros: "10", "0.5". */
const char *cli_fmt_seconds(int64_t ns, char *buf, size_t cap) {
  size_t n;
  snprintf(buf, cap, "%lld.%09lld", (long long)(ns / 1000000000),
           (long long)(ns % 1000000000));
  n = strlen(buf);
  while (n > 0 && buf[n - 1] == '0')
    buf[--n] = '\0';
  if (n > 0 && buf[n - 1] == '.')
    buf[--n] = '\0';
  return buf;
}

/* An OS-dependent helper: formats NS (ns since the Unix epoch) as local
 * time "2026-11-23 20:30:01" or, with UTC, "2026-11-23T19:30:01Z". Returns
 * NULL when the time cannot be represented. */
static const char *fmt_time(int64_t ns, int utc, char *buf, size_t cap) {
  int64_t sec = ns / 1000000000;
  struct tm tm;
  time_t t;
  int ok;
  if (ns % 1000000000 < 0)
    sec--; /* floor, for times before 1970 */
  t = (time_t)sec;
  if ((int64_t)t != sec)
    return NULL;
#ifdef _WIN32
  ok = (utc ? gmtime_s(&tm, &t) : localtime_s(&tm, &t)) == 0;
#else
  ok = (utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) != NULL;
#endif
  if (!ok ||
      strftime(buf, cap, utc ? "%Y-%m-%dT%H:%M:%SZ" : "%Y-%m-%d %H:%M:%S",
               &tm) == 0)
    return NULL;
  return buf;
}

/* Human-readable seg_flags: "none", "hugepages", "hugepages,sparse". */
static const char *fmt_seg_flags(uint32_t flags, char *buf, size_t cap) {
  buf[0] = '\0';
  if (flags & FERRY_SEG_HUGEPAGES)
    snprintf(buf + strlen(buf), cap - strlen(buf), "hugepages");
  if (flags & FERRY_SEG_SPARSE)
    snprintf(buf + strlen(buf), cap - strlen(buf), "%ssparse",
             buf[0] ? "," : "");
  if (flags & ~(uint32_t)(FERRY_SEG_HUGEPAGES | FERRY_SEG_SPARSE))
    snprintf(buf + strlen(buf), cap - strlen(buf), "%sother",
             buf[0] ? "," : "");
  if (!buf[0])
    snprintf(buf, cap, "none");
  return buf;
}

/* Length of the valid UTF-8 sequence at S (1 to 4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s) {
  size_t n, i;
  uint32_t cp;
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    n = 2, cp = s[0] & 0x1fu;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    n = 3, cp = s[0] & 0x0fu;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    n = 4, cp = s[0] & 0x07u;
  else
    return 0;
  for (i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* Writes S as a JSON string: quotes, backslashes and control characters
 * escaped, bytes that are not UTF-8 replaced by U+FFFD. */
void cli_json_str(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  putchar('"');
  while (*p) {
    size_t n = utf8_len(p);
    if (n == 0) {
      fputs("\\ufffd", stdout);
      p++;
    } else if (n > 1) {
      fwrite(p, 1, n, stdout);
      p += n;
    } else {
      switch (*p) {
      case '"':
        fputs("\\\"", stdout);
        break;
      case '\\':
        fputs("\\\\", stdout);
        break;
      case '\n':
        fputs("\\n", stdout);
        break;
      case '\r':
        fputs("\\r", stdout);
        break;
      case '\t':
        fputs("\\t", stdout);
        break;
      default:
        if (*p < 0x20 || *p == 0x7f)
          printf("\\u%04x", (unsigned)*p);
        else
          putchar(*p);
      }
      p++;
    }
  }
  putchar('"');
}

/* ------------------------------------------------------------------------ */
/* Opening for inspection                                                   */

/* Opens NAME (a path when it has a '/') read-only, without waiting for a
 * segment still being initialised, and fills *INFO. Returns a ferry code;
 * on failure ferry_errmsg() tells why. */
static int inspect(const char *name, ferry_segment_info *info) {
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  ferry_segment *seg = NULL;
  int rc;
  o.timeout_ms = -1;
  rc = ferry_segment_open(
      &seg, name, FERRY_RDONLY | (is_path(name) ? FERRY_FILE : 0u), 0, &o);
  if (rc != 0)
    return rc;
  rc = ferry_segment_get_info(seg, info, sizeof *info);
  ferry_segment_close(seg);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* ferry create                                                             */

static const char create_usage[] =
    "usage: ferry create NAME --size BYTES [options]\n"
    "       ferry create NAME --channel KIND [--capacity BYTES] [--overrun]\n"
    "                         [--max-peers N] [options]\n"
    "       ferry create NAME --pool --block-size BYTES --blocks N\n"
    "                         [--max-peers N] [options]\n"
    "\n"
    "Creates the segment NAME with BYTES bytes of user data or, with\n"
    "--channel, the channel NAME. It fails when NAME already exists. A NAME\n"
    "that contains a '/' is a file path: the segment is then backed by that\n"
    "file (use ./NAME for the current directory); otherwise NAME is 1 to 63\n"
    "characters from [A-Za-z0-9._-] and the segment is shared memory\n"
    "(/dev/shm/ferry.NAME on Linux). Channels are never file-backed.\n"
    "\n"
    "options:\n"
    "  --size BYTES     user-data size (required for a segment): a positive\n"
    "                   integer with an optional suffix K, M, G, T (or KiB,\n"
    "                   MiB, GiB, TiB; powers of 1024, any case), e.g. 4096,\n"
    "                   64K, 2M\n"
    "  --mode OCTAL     permission bits, e.g. 0644 (default 0600)\n"
    "  --prefault       touch every page now, so first accesses do not fault\n"
    "  --mlock          lock the pages in RAM (needs a memory-lock limit)\n"
    "  --hugepages      use huge pages; fail if the system offers none\n"
    "  --hugepages-try  use huge pages if the system offers them\n"
    "  --sparse         file-backed only: do not reserve the disk space now\n"
    "                   (a later write may then fail with SIGBUS when the\n"
    "                   disk is full)\n"
    "\n"
    "channel options:\n"
    "  --channel KIND   create a channel: spsc (one sender, one receiver),\n"
    "                   mpsc (many senders, one receiver) or broadcast (one\n"
    "                   sender, many receivers, each gets every message)\n"
    "  --capacity BYTES ring size, same suffixes as --size, rounded up to a\n"
    "                   power of two of at least 4K (default 1M); the\n"
    "                   largest message is half of it less 8 or 16 bytes\n"
    "  --overrun        broadcast only: the sender never waits; a receiver\n"
    "                   that falls a whole ring behind loses the oldest\n"
    "                   messages and is told how many (default: the sender\n"
    "                   waits for the slowest receiver)\n"
    "  --max-peers N    processes attached at most, 2 to 256 (default 64;\n"
    "                   pools: 1 to 40, default 16)\n"
    "\n"
    "pool options:\n"
    "  --pool           create a pool of fixed-size blocks for zero-copy\n"
    "                   hand-off (ferry_pool_*): needs --block-size and\n"
    "                   --blocks\n"
    "  --block-size BYTES  bytes per block, same suffixes as --size (blocks\n"
    "                   of 4K or more are page-aligned)\n"
    "  --blocks N       number of blocks, 1 to 16777216\n";

/* KIND as given to --channel, or 0. */
static uint32_t parse_channel_kind(const char *s) {
  if (strcmp(s, "spsc") == 0)
    return FERRY_CHANNEL_SPSC;
  if (strcmp(s, "mpsc") == 0)
    return FERRY_CHANNEL_MPSC;
  if (strcmp(s, "broadcast") == 0)
    return FERRY_CHANNEL_BROADCAST;
  return 0;
}

static int cmd_create(int argc, char **argv) {
  enum {
    O_SIZE,
    O_MODE,
    O_PREFAULT,
    O_MLOCK,
    O_HUGE,
    O_HUGE_TRY,
    O_SPARSE,
    O_CHANNEL,
    O_CAPACITY,
    O_OVERRUN,
    O_MAX_PEERS,
    O_POOL,
    O_BLOCK_SIZE,
    O_BLOCKS
  };
  static const struct optspec specs[] = {
      {"size", 1},       {"mode", 1},          {"prefault", 0},  {"mlock", 0},
      {"hugepages", 0},  {"hugepages-try", 0}, {"sparse", 0},    {"channel", 1},
      {"capacity", 1},   {"overrun", 0},       {"max-peers", 1}, {"pool", 0},
      {"block-size", 1}, {"blocks", 1},        {NULL, 0}};
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  ferry_segment *seg = NULL;
  struct args a;
  uint64_t size = 0;
  unsigned flags = FERRY_CREATE | FERRY_EXCL;
  const char *name;
  int rc;

  rc = cli_parse_args(argv[0], argc, argv, specs, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(create_usage, stdout);
    return EXIT_OK;
  }
  if (a.npos == 0)
    return cli_usage_error(argv[0], "missing NAME");
  if (a.npos > 1)
    return cli_usage_error(argv[0], "unexpected argument '%s'", a.pos[1]);
  name = a.pos[0];
  if (a.value[O_POOL] && a.value[O_CHANNEL])
    return cli_usage_error(argv[0], "--pool and --channel exclude each other");
  if (!a.value[O_POOL] && (a.value[O_BLOCK_SIZE] || a.value[O_BLOCKS]))
    return cli_usage_error(argv[0], "--%s needs --pool",
                           a.value[O_BLOCKS] ? "blocks" : "block-size");
  if (a.value[O_POOL]) {
    if (a.value[O_SIZE])
      return cli_usage_error(argv[0], "--size is for segments; a pool's size "
                                      "is --block-size times --blocks");
    if (a.value[O_CAPACITY] || a.value[O_OVERRUN])
      return cli_usage_error(argv[0], "--capacity and --overrun need "
                                      "--channel");
    if (!a.value[O_BLOCK_SIZE] || !a.value[O_BLOCKS])
      return cli_usage_error(argv[0], "a pool needs --block-size and "
                                      "--blocks");
  } else if (!a.value[O_CHANNEL]) {
    static const char *const chan_only[] = {"capacity", "overrun", "max-peers"};
    static const int chan_idx[] = {O_CAPACITY, O_OVERRUN, O_MAX_PEERS};
    size_t i;
    for (i = 0; i < sizeof chan_idx / sizeof chan_idx[0]; i++)
      if (a.value[chan_idx[i]])
        return cli_usage_error(argv[0], "--%s needs --channel", chan_only[i]);
    if (!a.value[O_SIZE])
      return cli_usage_error(argv[0], "missing --size");
  } else if (a.value[O_SIZE]) {
    return cli_usage_error(argv[0], "--size is for segments; a channel's "
                                    "size is its --capacity");
  }
  if (a.value[O_SIZE] && cli_parse_size(a.value[O_SIZE], &size) != 0)
    return cli_usage_error(argv[0],
                           "bad size '%s': expected a positive integer with "
                           "an optional suffix K, M, G or T, below 16 EiB",
                           a.value[O_SIZE]);
  if (a.value[O_MODE] && parse_mode(a.value[O_MODE], &o.mode) != 0)
    return cli_usage_error(argv[0], "bad mode '%s': expected octal 1 to 0777",
                           a.value[O_MODE]);
  if (is_path(name))
    flags |= FERRY_FILE;
  if (a.value[O_SPARSE] && !(flags & FERRY_FILE))
    return cli_usage_error(argv[0],
                           "--sparse applies to file-backed segments only (a "
                           "NAME with a '/')");
  if (a.value[O_HUGE] && a.value[O_HUGE_TRY])
    return cli_usage_error(argv[0], "--hugepages and --hugepages-try exclude "
                                    "each other");
  if (a.value[O_PREFAULT])
    o.flags |= FERRY_SEG_PREFAULT;
  if (a.value[O_MLOCK])
    o.flags |= FERRY_SEG_MLOCK;
  if (a.value[O_HUGE])
    o.flags |= FERRY_SEG_HUGEPAGES;
  if (a.value[O_HUGE_TRY])
    o.flags |= FERRY_SEG_HUGEPAGES_TRY;
  if (a.value[O_SPARSE])
    o.flags |= FERRY_SEG_SPARSE;

  if (a.value[O_POOL]) {
    uint64_t bs, n, mp = 0;
    if (flags & FERRY_FILE)
      return cli_usage_error(argv[0], "a pool cannot be file-backed (a NAME "
                                      "with a '/')");
    if (cli_parse_size(a.value[O_BLOCK_SIZE], &bs) != 0)
      return cli_usage_error(argv[0],
                             "bad block size '%s': expected a positive "
                             "integer with an optional suffix K, M, G or T",
                             a.value[O_BLOCK_SIZE]);
    if (cli_parse_count(a.value[O_BLOCKS], FERRY_POOL_BLOCKS_MAX, &n) != 0)
      return cli_usage_error(argv[0], "bad block count '%s': expected 1 to %u",
                             a.value[O_BLOCKS], FERRY_POOL_BLOCKS_MAX);
    if (a.value[O_MAX_PEERS] &&
        cli_parse_count(a.value[O_MAX_PEERS], FERRY_POOL_PEERS_MAX, &mp) != 0)
      return cli_usage_error(argv[0], "bad peer count '%s': expected 1 to %d",
                             a.value[O_MAX_PEERS], FERRY_POOL_PEERS_MAX);
    return cli_pool_create(argv[0], name, bs, n, (uint32_t)mp, o.mode, o.flags);
  }

  if (a.value[O_CHANNEL]) {
    ferry_channel_opts co = FERRY_CHANNEL_OPTS_INIT;
    ferry_channel *ch = NULL;
    uint64_t v;
    co.kind = parse_channel_kind(a.value[O_CHANNEL]);
    if (co.kind == 0)
      return cli_usage_error(argv[0],
                             "bad channel kind '%s': expected spsc, mpsc or "
                             "broadcast",
                             a.value[O_CHANNEL]);
    if (flags & FERRY_FILE)
      return cli_usage_error(argv[0], "a channel cannot be file-backed (a "
                                      "NAME with a '/')");
    if (a.value[O_OVERRUN] && co.kind != FERRY_CHANNEL_BROADCAST)
      return cli_usage_error(argv[0], "--overrun applies to broadcast "
                                      "channels only");
    if (a.value[O_CAPACITY]) {
      if (cli_parse_size(a.value[O_CAPACITY], &co.capacity) != 0)
        return cli_usage_error(argv[0],
                               "bad capacity '%s': expected a positive "
                               "integer with an optional suffix K, M, G or T",
                               a.value[O_CAPACITY]);
    }
    if (a.value[O_MAX_PEERS]) {
      if (cli_parse_count(a.value[O_MAX_PEERS], FERRY_CHANNEL_PEERS_MAX, &v) !=
              0 ||
          v < 2)
        return cli_usage_error(argv[0], "bad peer count '%s': expected 2 to %d",
                               a.value[O_MAX_PEERS], FERRY_CHANNEL_PEERS_MAX);
      co.max_peers = (uint32_t)v;
    }
    if (a.value[O_OVERRUN])
      co.flags |= FERRY_CHANNEL_OVERRUN;
    co.mode = o.mode;
    co.seg_flags = o.flags;
    rc = ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_EXCL, FERRY_OBSERVE,
                            &co);
    if (rc != 0) {
      cli_fail_line(argv[0], name, rc);
      return EXIT_FAIL;
    }
    ferry_channel_close(ch);
    return EXIT_OK;
  }

  rc = ferry_segment_open(&seg, name, flags, size, &o);
  if (rc != 0) {
    cli_fail_line(argv[0], name, rc);
    return EXIT_FAIL;
  }
  ferry_segment_close(seg);
  return EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* ferry ls                                                                 */

static const char ls_usage[] =
    "usage: ferry ls [--json]\n"
    "\n"
    "Lists the named segments (on Linux the ferry.* objects of /dev/shm)\n"
    "with their kind, data size, creator process, whether it still runs and\n"
    "when it made the segment. A segment that cannot be opened is listed\n"
    "with the reason. File-backed segments are not listed: use 'ferry info\n"
    "PATH'.\n"
    "\n"
    "options:\n"
    "  --json   one JSON object: {\"segments\":[...]}, sizes in bytes, times "
    "in\n"
    "           UTC; a segment that cannot be opened has \"error\" and\n"
    "           \"message\" instead of the other fields\n";

int cli_names_push(const char *name, void *ctx) {
  struct cli_names *l = (struct cli_names *)ctx;
  size_t len = strlen(name);
  char *copy;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **p = (char **)realloc(l->v, cap * sizeof *p);
    if (!p) {
      l->oom = 1;
      return 1;
    }
    l->v = p;
    l->cap = cap;
  }
  copy = (char *)malloc(len + 1);
  if (!copy) {
    l->oom = 1;
    return 1;
  }
  memcpy(copy, name, len + 1);
  l->v[l->n++] = copy;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void cli_names_sort(struct cli_names *l) {
  if (l->n > 1)
    qsort(l->v, l->n, sizeof *l->v, cmp_names);
}

void cli_names_free(struct cli_names *l) {
  size_t i;
  for (i = 0; i < l->n; i++)
    free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* One row of the listing. */
struct ls_row {
  int rc;
  char msg[512]; /* ferry_errmsg() when rc != 0 */
  ferry_segment_info info;
};

static void put_padded(const char *s, size_t width) {
  size_t n = strlen(s);
  cli_put_clean(stdout, s);
  while (n++ < width)
    putchar(' ');
}

static void ls_print_table(char **names, const struct ls_row *rows, size_t n) {
  size_t w_name = 4, w_size = 4, w_pid = 7, i;
  char buf[64];
  for (i = 0; i < n; i++) {
    if (strlen(names[i]) > w_name)
      w_name = strlen(names[i]);
    if (rows[i].rc == 0) {
      size_t l = (size_t)snprintf(buf, sizeof buf, "%llu",
                                  (unsigned long long)rows[i].info.creator_pid);
      if (l > w_pid)
        w_pid = l;
      l = strlen(cli_fmt_size(rows[i].info.data_size, buf, sizeof buf));
      if (l > w_size)
        w_size = l;
    }
  }
  put_padded("NAME", w_name + 2);
  put_padded("KIND", 7);
  put_padded("SIZE", w_size + 2);
  put_padded("CREATOR", w_pid + 2);
  put_padded("ALIVE", 7);
  puts("CREATED");
  for (i = 0; i < n; i++) {
    const ferry_segment_info *in = &rows[i].info;
    if (rows[i].rc != 0) {
      put_padded(names[i], w_name + 2);
      printf("error: %s: ", ferry_err_name(rows[i].rc));
      cli_put_clean(stdout, rows[i].msg);
      putchar('\n');
      continue;
    }
    put_padded(names[i], w_name + 2);
    put_padded(kind_str(in->kind), 7);
    put_padded(cli_fmt_size(in->data_size, buf, sizeof buf), w_size + 2);
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)in->creator_pid);
    put_padded(buf, w_pid + 2);
    put_padded(alive_str(in->creator_alive), 7);
    {
      const char *t = fmt_time(in->created_ns, 0, buf, sizeof buf);
      puts(t ? t : "?");
    }
  }
}

static void ls_print_json(char **names, const struct ls_row *rows, size_t n) {
  size_t i;
  char buf[64];
  fputs("{\"segments\":[", stdout);
  for (i = 0; i < n; i++) {
    const ferry_segment_info *in = &rows[i].info;
    const char *t;
    if (i)
      putchar(',');
    fputs("{\"name\":", stdout);
    cli_json_str(names[i]);
    if (rows[i].rc != 0) {
      printf(",\"error\":\"%s\",\"message\":", ferry_err_name(rows[i].rc));
      cli_json_str(rows[i].msg);
      putchar('}');
      continue;
    }
    fputs(",\"kind\":", stdout);
    cli_json_str(kind_str(in->kind));
    fputs(",\"payload\":", stdout);
    cli_json_str(payload_str(in->payload));
    printf(",\"size\":%llu,\"total_size\":%llu,\"creator_pid\":%llu,"
           "\"creator_alive\":%s,\"created\":",
           (unsigned long long)in->data_size,
           (unsigned long long)in->total_size,
           (unsigned long long)in->creator_pid, alive_json(in->creator_alive));
    t = fmt_time(in->created_ns, 1, buf, sizeof buf);
    if (t)
      cli_json_str(t);
    else
      fputs("null", stdout);
    printf(",\"created_ns\":%lld}", (long long)in->created_ns);
  }
  puts("]}");
}

static int cmd_ls(int argc, char **argv) {
  enum { O_JSON };
  static const struct optspec specs[] = {{"json", 0}, {NULL, 0}};
  struct cli_names l = {NULL, 0, 0, 0};
  struct ls_row *rows = NULL;
  struct args a;
  size_t i;
  int rc;

  rc = cli_parse_args(argv[0], argc, argv, specs, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(ls_usage, stdout);
    return EXIT_OK;
  }
  if (a.npos > 0)
    return cli_usage_error(argv[0], "unexpected argument '%s'", a.pos[0]);

  rc = ferry_segment_list(cli_names_push, &l);
  if (l.oom) {
    fprintf(stderr, "ferry: %s: out of memory\n", argv[0]);
    rc = EXIT_FAIL;
    goto out;
  }
  if (rc != 0) {
    cli_fail_line(argv[0], NULL, rc);
    rc = EXIT_FAIL;
    goto out;
  }
  if (l.n > 0) {
    cli_names_sort(&l);
    rows = (struct ls_row *)calloc(l.n, sizeof *rows);
    if (!rows) {
      fprintf(stderr, "ferry: %s: out of memory\n", argv[0]);
      rc = EXIT_FAIL;
      goto out;
    }
  }
  for (i = 0; i < l.n; i++) {
    rows[i].rc = inspect(l.v[i], &rows[i].info);
    if (rows[i].rc != 0) {
      const char *m = ferry_errmsg();
      snprintf(rows[i].msg, sizeof rows[i].msg, "%s",
               m && m[0] ? m : ferry_strerror(rows[i].rc));
    }
  }
  if (a.value[O_JSON])
    ls_print_json(l.v, rows, l.n);
  else
    ls_print_table(l.v, rows, l.n);
  rc = EXIT_OK;
out:
  cli_names_free(&l);
  free(rows);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* ferry info                                                               */

static const char info_usage[] =
    "usage: ferry info NAME [--json]\n"
    "\n"
    "Opens the segment NAME read-only (a NAME with a '/' is a file path)\n"
    "and prints every field of its header and handle. When the segment is a\n"
    "channel it also prints the channel: its kind, overrun policy, capacity,\n"
    "largest message, bytes in use, messages sent, received and lost,\n"
    "whether the sender closed the stream, and the attached processes (pid,\n"
    "role, alive, messages, lost). For a pool it prints its blocks (size,\n"
    "count, how many are free and in use), the attached processes (slot,\n"
    "pid, alive, blocks held, allocations) and each block in use with the\n"
    "processes that hold it (pid, alive or dead). Inspecting a channel or a\n"
    "pool does not attach to it.\n"
    "\n"
    "options:\n"
    "  --json   one JSON object; mode, state, creator_boot and header_crc are\n"
    "           strings (octal and hex), times are UTC; a channel adds a\n"
    "           \"channel\" object with a \"peers\" array\n";

static void info_line(const char *key, const char *fmt, ...) {
  va_list ap;
  char buf[FERRY_PATH_MAX + 64];
  printf("%-15s ", key);
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  cli_put_clean(stdout, buf);
  putchar('\n');
}

static void info_print_text(const ferry_segment_info *in) {
  char a[64], b[64];
  const char *t = fmt_time(in->created_ns, 0, a, sizeof a);
  info_line("name:", "%s", in->name);
  info_line("os_name:", "%s", in->os_name);
  info_line("kind:", "%s", kind_str(in->kind));
  info_line("payload:", "%s", payload_str(in->payload));
  info_line("version:", "%u.%u", (unsigned)in->version_major,
            (unsigned)in->version_minor);
  info_line("header_size:", "%u", (unsigned)in->header_size);
  info_line("state:", "0x%08x%s", (unsigned)in->state,
            in->state == 0x59444552u ? " (ready)" : "");
  info_line("flags:", "0x%x (%s)", (unsigned)in->seg_flags,
            fmt_seg_flags(in->seg_flags, b, sizeof b));
  info_line("mode:", "%04o", (unsigned)in->mode);
  info_line("total_size:", "%llu (%s)", (unsigned long long)in->total_size,
            cli_fmt_size(in->total_size, b, sizeof b));
  info_line("data_offset:", "%llu", (unsigned long long)in->data_offset);
  info_line("data_size:", "%llu (%s)", (unsigned long long)in->data_size,
            cli_fmt_size(in->data_size, b, sizeof b));
  info_line("creator_pid:", "%llu", (unsigned long long)in->creator_pid);
  info_line("creator_start:", "%llu", (unsigned long long)in->creator_start);
  info_line("creator_boot:", "0x%016llx", (unsigned long long)in->creator_boot);
  info_line("creator_alive:", "%s", alive_str(in->creator_alive));
  info_line("created:", "%s", t ? t : "?");
  info_line("created_ns:", "%lld", (long long)in->created_ns);
  info_line("header_crc:", "0x%08x", (unsigned)in->header_crc);
  info_line("readonly:", "%s", in->readonly ? "yes" : "no");
  info_line("handle_created:", "%s", in->created ? "yes" : "no");
}

static void info_print_json(const ferry_segment_info *in) {
  char buf[64];
  const char *t;
  fputs("{\"name\":", stdout);
  cli_json_str(in->name);
  fputs(",\"os_name\":", stdout);
  cli_json_str(in->os_name);
  fputs(",\"kind\":", stdout);
  cli_json_str(kind_str(in->kind));
  fputs(",\"payload\":", stdout);
  cli_json_str(payload_str(in->payload));
  printf(",\"version_major\":%u,\"version_minor\":%u,\"header_size\":%u",
         (unsigned)in->version_major, (unsigned)in->version_minor,
         (unsigned)in->header_size);
  printf(",\"state\":\"0x%08x\",\"flags\":%u,\"hugepages\":%s,\"sparse\":%s",
         (unsigned)in->state, (unsigned)in->seg_flags,
         (in->seg_flags & FERRY_SEG_HUGEPAGES) ? "true" : "false",
         (in->seg_flags & FERRY_SEG_SPARSE) ? "true" : "false");
  printf(",\"mode\":\"%04o\",\"total_size\":%llu,\"data_offset\":%llu,"
         "\"data_size\":%llu",
         (unsigned)in->mode, (unsigned long long)in->total_size,
         (unsigned long long)in->data_offset,
         (unsigned long long)in->data_size);
  printf(",\"creator_pid\":%llu,\"creator_start\":%llu,"
         "\"creator_boot\":\"0x%016llx\",\"creator_alive\":%s",
         (unsigned long long)in->creator_pid,
         (unsigned long long)in->creator_start,
         (unsigned long long)in->creator_boot, alive_json(in->creator_alive));
  t = fmt_time(in->created_ns, 1, buf, sizeof buf);
  fputs(",\"created\":", stdout);
  if (t)
    cli_json_str(t);
  else
    fputs("null", stdout);
  printf(",\"created_ns\":%lld,\"header_crc\":\"0x%08x\",\"readonly\":%s,"
         "\"handle_created\":%s",
         (long long)in->created_ns, (unsigned)in->header_crc,
         in->readonly ? "true" : "false", in->created ? "true" : "false");
}

/* The channel in segment NAME, for inspection: opened read-only as an
 * observer (it does not attach), without waiting. */
static int inspect_channel(const char *name, ferry_channel_info *ci) {
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *ch = NULL;
  int rc;
  o.open_timeout_ms = -1;
  rc = ferry_channel_open(&ch, name,
                          FERRY_RDONLY | (is_path(name) ? FERRY_FILE : 0u),
                          FERRY_OBSERVE, &o);
  if (rc != 0)
    return rc;
  rc = ferry_channel_get_info(ch, ci, sizeof *ci);
  ferry_channel_close(ch);
  return rc;
}

static const char *channel_kind_str(uint32_t kind) {
  switch (kind) {
  case FERRY_CHANNEL_SPSC:
    return "spsc";
  case FERRY_CHANNEL_MPSC:
    return "mpsc";
  case FERRY_CHANNEL_BROADCAST:
    return "broadcast";
  default:
    return "unknown";
  }
}

static const char *role_str(uint32_t role) {
  return role == FERRY_SENDER     ? "sender"
         : role == FERRY_RECEIVER ? "receiver"
                                  : "unknown";
}

static void channel_print_text(const ferry_channel_info *ci) {
  char b[64];
  uint32_t i;
  info_line("channel:", "%s", channel_kind_str(ci->kind));
  info_line("overrun:", "%s",
            (ci->flags & FERRY_CHANNEL_OVERRUN)
                ? "yes (the sender never waits; a slow receiver loses the "
                  "oldest messages)"
                : "no (the sender waits for room)");
  info_line("capacity:", "%llu (%s)", (unsigned long long)ci->capacity,
            cli_fmt_size(ci->capacity, b, sizeof b));
  info_line("max_msg:", "%llu (%s)", (unsigned long long)ci->max_msg,
            cli_fmt_size(ci->max_msg, b, sizeof b));
  info_line("used:", "%llu (%s)", (unsigned long long)ci->used,
            cli_fmt_size(ci->used, b, sizeof b));
  info_line("sent:", "%llu", (unsigned long long)ci->sent);
  info_line("received:", "%llu", (unsigned long long)ci->received);
  info_line("lost:", "%llu", (unsigned long long)ci->lost);
  info_line("closed:", "%s", ci->closed ? "yes" : "no");
  info_line("peers:", "%u", (unsigned)ci->npeers);
  if (ci->npeers == 0)
    return;
  printf("  %-10s %-9s %-6s %-14s %s\n", "PID", "ROLE", "ALIVE", "MSGS",
         "LOST");
  for (i = 0; i < ci->npeers && i < FERRY_CHANNEL_PEERS_MAX; i++) {
    const ferry_channel_peer *p = &ci->peers[i];
    printf("  %-10llu %-9s %-6s %-14llu %llu\n", (unsigned long long)p->pid,
           role_str(p->role), alive_str(p->alive), (unsigned long long)p->msgs,
           (unsigned long long)p->lost);
  }
}

static void channel_print_json(const ferry_channel_info *ci) {
  uint32_t i;
  fputs(",\"channel\":{\"kind\":", stdout);
  cli_json_str(channel_kind_str(ci->kind));
  printf(",\"overrun\":%s,\"capacity\":%llu,\"max_msg\":%llu,\"used\":%llu,"
         "\"sent\":%llu,\"received\":%llu,\"lost\":%llu,\"closed\":%s,"
         "\"peers\":[",
         (ci->flags & FERRY_CHANNEL_OVERRUN) ? "true" : "false",
         (unsigned long long)ci->capacity, (unsigned long long)ci->max_msg,
         (unsigned long long)ci->used, (unsigned long long)ci->sent,
         (unsigned long long)ci->received, (unsigned long long)ci->lost,
         ci->closed ? "true" : "false");
  for (i = 0; i < ci->npeers && i < FERRY_CHANNEL_PEERS_MAX; i++) {
    const ferry_channel_peer *p = &ci->peers[i];
    printf("%s{\"pid\":%llu,\"role\":\"%s\",\"alive\":%s,\"msgs\":%llu,"
           "\"lost\":%llu}",
           i ? "," : "", (unsigned long long)p->pid, role_str(p->role),
           alive_json(p->alive), (unsigned long long)p->msgs,
           (unsigned long long)p->lost);
  }
  fputs("]}", stdout);
}

static int cmd_info(int argc, char **argv) {
  enum { O_JSON };
  static const struct optspec specs[] = {{"json", 0}, {NULL, 0}};
  ferry_segment_info info;
  ferry_channel_info *ci = NULL;
  ferry_pool *pool = NULL;
  ferry_pool_info *pi = NULL;
  struct args a;
  int rc, crc = 0;
  char msg[512];

  rc = cli_parse_args(argv[0], argc, argv, specs, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(info_usage, stdout);
    return EXIT_OK;
  }
  if (a.npos == 0)
    return cli_usage_error(argv[0], "missing NAME");
  if (a.npos > 1)
    return cli_usage_error(argv[0], "unexpected argument '%s'", a.pos[1]);
  memset(&info, 0, sizeof info);
  rc = inspect(a.pos[0], &info);
  if (rc != 0) {
    cli_fail_line(argv[0], a.pos[0], rc);
    return EXIT_FAIL;
  }
  if (info.payload == FERRY_PAYLOAD_CHANNEL) {
    /* ~12 KiB with its peer table: not on the stack */
    ci = (ferry_channel_info *)calloc(1, sizeof *ci);
    if (!ci) {
      fprintf(stderr, "ferry: %s: out of memory\n", argv[0]);
      return EXIT_FAIL;
    }
    crc = inspect_channel(a.pos[0], ci);
  } else if (info.payload == FERRY_PAYLOAD_POOL && !is_path(a.pos[0])) {
    crc = cli_pool_inspect(a.pos[0], &pool, &pi);
  }
  if (crc != 0) {
    const char *m = ferry_errmsg();
    snprintf(msg, sizeof msg, "%s", m && m[0] ? m : ferry_strerror(crc));
  }
  if (a.value[O_JSON]) {
    info_print_json(&info);
    if (ci && crc == 0) {
      channel_print_json(ci);
    } else if (pi) {
      cli_pool_print_json(pool, pi);
    } else if (crc != 0) {
      printf(",\"%s\":{\"error\":\"%s\",\"message\":", ci ? "channel" : "pool",
             ferry_err_name(crc));
      cli_json_str(msg);
      putchar('}');
    }
    puts("}");
  } else {
    info_print_text(&info);
    if (ci && crc == 0)
      channel_print_text(ci);
    if (pi)
      cli_pool_print_text(pool, pi);
  }
  free(pi);
  ferry_pool_close(pool);
  if (crc != 0) {
    /* the segment was shown; its channel or pool could not be read */
    fflush(stdout);
    cli_fail(argv[0], a.pos[0], crc, "the %s: %s", ci ? "channel" : "pool",
             msg);
    free(ci);
    return EXIT_FAIL;
  }
  free(ci);
  return EXIT_OK;
}

/* ------------------------------------------------------------------------ */
/* ferry rm                                                                 */

static const char rm_usage[] =
    "usage: ferry rm NAME...\n"
    "\n"
    "Removes the segments NAME... (a channel is a segment too). Processes\n"
    "that have one open keep using it. A NAME with a '/' is a file-backed "
    "segment: the file is removed,\n"
    "but only if it is a ferry segment. Quiet on success; one error line per\n"
    "failure, and exit status 1 if any failed.\n";

static int cmd_rm(int argc, char **argv) {
  struct args a;
  int i, rc, status = EXIT_OK;

  rc = cli_parse_args(argv[0], argc, argv, NULL, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(rm_usage, stdout);
    return EXIT_OK;
  }
  if (a.npos == 0)
    return cli_usage_error(argv[0], "missing NAME");
  for (i = 0; i < a.npos; i++) {
    const char *name = a.pos[i];
    rc = ferry_segment_unlink(name, is_path(name) ? FERRY_FILE : 0u);
    if (rc != 0) {
      cli_fail_line(argv[0], name, rc);
      status = EXIT_FAIL;
    }
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* Command table and main                                                   */

static int cmd_help(int argc, char **argv);

struct command {
  const char *name;
  int (*fn)(int argc, char **argv); /* argv[0] is the command's name */
  const char *summary;
  const char *usage;
};

static const char help_usage[] = "usage: ferry help [COMMAND]\n"
                                 "\n"
                                 "Shows the usage of ferry or of COMMAND.\n";

#ifdef FERRY_WITH_BENCH
/* bench/bench.c, linked in when the build has the benchmarks. */
static const char bench_usage[] =
    "usage: ferry bench [--json] [--quick]\n"
    "\n"
    "Measures ferry's channels against baselines in one run and prints a\n"
    "table (or, with --json, one JSON object). --quick runs a shorter\n"
    "version.\n";

static int cmd_bench(int argc, char **argv) {
  static const char *const prefix[] = {"bench", NULL};
  int i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      break;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      fputs(bench_usage, stdout);
      return EXIT_OK;
    }
  }
  return ferry_bench_main(argc, argv, prefix);
}
#endif

static const struct command commands[] = {
    {"create", cmd_create, "create a segment or a channel", create_usage},
    {"ls", cmd_ls, "list the named segments", ls_usage},
    {"info", cmd_info, "show everything about a segment or channel",
     info_usage},
    {"rm", cmd_rm, "remove segments and channels", rm_usage},
    {"gc", cli_cmd_gc, "remove stale segments (creator and users dead)",
     cli_gc_usage},
    {"send", cli_cmd_send, "send standard input through a channel",
     cli_send_usage},
    {"recv", cli_cmd_recv, "write a channel's messages to standard output",
     cli_recv_usage},
    {"demo", cli_cmd_demo, "stream frames between two processes, verified",
     cli_demo_usage},
#ifdef FERRY_WITH_BENCH
    {"bench", cmd_bench, "measure channels against baselines", bench_usage},
#endif
    {"help", cmd_help, "show the usage of a command", help_usage},
    {NULL, NULL, NULL, NULL}};

static const struct command *find_command(const char *name) {
  const struct command *c;
  for (c = commands; c->name; c++)
    if (strcmp(c->name, name) == 0)
      return c;
  return NULL;
}

static void print_usage(FILE *f) {
  const struct command *c;
  fputs("usage: ferry COMMAND [ARGS...]\n"
        "       ferry COMMAND --help\n"
        "       ferry --version\n"
        "\n"
        "Manages ferry shared-memory segments and channels.\n"
        "\n"
        "commands:\n",
        f);
  for (c = commands; c->name; c++)
    fprintf(f, "  %-8s %s\n", c->name, c->summary);
  fputs("\n"
        "A NAME is a segment name (1 to 63 characters from [A-Za-z0-9._-],\n"
        "starting with a letter or digit) or, when it contains a '/', the\n"
        "path of a file-backed segment.\n"
        "\n"
        "Exit status: 0 success, 1 failure, 2 usage error. Errors are one\n"
        "line on stderr: ferry: COMMAND: NAME: FERRY_ECODE: detail\n",
        f);
}

static int cmd_help(int argc, char **argv) {
  struct args a;
  const struct command *c;
  int rc = cli_parse_args(argv[0], argc, argv, NULL, &a);
  if (rc != 0)
    return rc;
  if (a.help || a.npos == 0) {
    if (a.help && a.npos == 0)
      fputs(help_usage, stdout);
    else
      print_usage(stdout);
    return EXIT_OK;
  }
  if (a.npos > 1)
    return cli_usage_error(argv[0], "unexpected argument '%s'", a.pos[1]);
  c = find_command(a.pos[0]);
  if (!c)
    return cli_usage_error(NULL, "unknown command '%s'", a.pos[0]);
  fputs(c->usage, stdout);
  return EXIT_OK;
}

int main(int argc, char **argv) {
  const struct command *c;
  int rc;
  proc_init(argv[0]); /* demo and bench start this program again */
  if (argc < 2) {
    print_usage(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    print_usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("ferry %s\n", ferry_version_string());
    return EXIT_OK;
  }
  if (argv[1][0] == '-')
    return cli_usage_error(NULL, "unknown option '%s'", argv[1]);
  c = find_command(argv[1]);
  if (!c)
    return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
  rc = c->fn(argc - 1, argv + 1);
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "ferry: %s: cannot write the output\n", c->name);
    return EXIT_FAIL;
  }
  return rc;
}
