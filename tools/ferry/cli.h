/*
 * What the ferry CLI's source files share: exit codes, error lines, the
 * argument parser, value parsers and JSON output (tools/ferry/main.c), and
 * the commands that live in files of their own (stream.c: send and recv;
 * demo.c: demo; gc.c: gc). Everything here uses the public API
 * (include/ferry.h) and portable C only (gc.c adds Linux-only /proc checks
 * behind #ifdef __linux__); the cli_ prefix keeps the names apart from
 * bench.c's, which is linked into the same program.
 */
#ifndef FERRY_TOOL_CLI_H
#define FERRY_TOOL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* ---- messages ---------------------------------------------------------- */

/* A growable list of segment names, filled by cli_names_push (usable as a
 * ferry_segment_list callback; sets oom and stops on allocation failure). */
struct cli_names {
  char **v;
  size_t n, cap;
  int oom;
};
int cli_names_push(const char *name, void *ctx);
void cli_names_sort(struct cli_names *l);
void cli_names_free(struct cli_names *l);

/* Writes S to F with control characters replaced by '?'. */
void cli_put_clean(FILE *f, const char *s);

/* The error line "ferry: CMD: NAME: FERRY_ECODE: detail" for ferry code ERR,
 * with the library's detail message (or the code's fixed description when
 * there is none). NAME may be NULL. For slow-path calls (open, create). */
void cli_fail_line(const char *cmd, const char *name, int err);

/* The same line with a detail of our own (printf FMT): for hot-path calls,
 * which leave no detail message. Returns EXIT_FAIL. */
int cli_fail(const char *cmd, const char *name, int err, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Prints "ferry: CMD: problem (see 'ferry CMD --help')" and returns
 * EXIT_USAGE. CMD may be NULL. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- arguments --------------------------------------------------------- */

/* One option of a command: "--NAME" alone (a flag) or "--NAME VALUE" /
 * "--NAME=VALUE". */
struct optspec {
  const char *name; /* without the leading "--" */
  int takes_value;
};

#define MAX_OPTS 16

struct args {
  /* value[i]: the value of spec i, "" for a given flag, NULL if absent. */
  const char *value[MAX_OPTS];
  char **pos; /* positional arguments (points into argv) */
  int npos;
  int help; /* -h or --help was given */
};

/* Parses ARGV[1..ARGC) of command CMD against SPECS (terminated by a NULL
 * name; NULL for none). Returns 0, or EXIT_USAGE after printing the
 * problem. */
int cli_parse_args(const char *cmd, int argc, char **argv,
                   const struct optspec *specs, struct args *a);

/* A positive size with an optional binary suffix K, M, G, T (KiB...). */
int cli_parse_size(const char *s, uint64_t *out);

/* A positive decimal integer no larger than MAX. */
int cli_parse_count(const char *s, uint64_t max, uint64_t *out);

/* Seconds as a decimal ("10", "0.5", up to 9 fraction digits, at most
 * 10^9 s) into nanoseconds. 0 is allowed: the caller decides what it
 * means. */
int cli_parse_seconds(const char *s, int64_t *ns);

/* ---- formatting -------------------------------------------------------- */

/* BYTES for people: "512B", "4.0K", "64.0M", "1.5G". */
const char *cli_fmt_size(uint64_t bytes, char *buf, size_t cap);

/* Seconds for people from nanoseconds: "10", "0.5". */
const char *cli_fmt_seconds(int64_t ns, char *buf, size_t cap);

/* Writes S to stdout as a JSON string. */
void cli_json_str(const char *s);

/* ---- commands in other files ------------------------------------------- */

extern const char cli_send_usage[];
extern const char cli_recv_usage[];
extern const char cli_demo_usage[];
extern const char cli_gc_usage[];
int cli_cmd_send(int argc, char **argv);
int cli_cmd_recv(int argc, char **argv);
int cli_cmd_demo(int argc, char **argv);
int cli_cmd_gc(int argc, char **argv);

/* pool.c: ferry create --pool, and the pool part of ferry info. */
struct ferry_pool;
struct ferry_pool_info;
int cli_pool_create(const char *cmd, const char *name, uint64_t block_size,
                    uint64_t blocks, uint32_t max_peers, uint32_t mode,
                    uint32_t seg_flags);
/* Opens pool NAME as an observer and fills *IN (allocated; free it, and
 * close *P). Returns a ferry code. */
int cli_pool_inspect(const char *name, struct ferry_pool **p,
                     struct ferry_pool_info **in);
void cli_pool_print_text(const struct ferry_pool *p,
                         const struct ferry_pool_info *in);
void cli_pool_print_json(const struct ferry_pool *p,
                         const struct ferry_pool_info *in);

#endif
