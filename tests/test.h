/*
 * Test harness for ferry's test programs.
 *
 * A test program lists its tests and its helper roles, then calls
 * test_main(). Run with no arguments it runs every test; with a test name it
 * runs that one; with "--role NAME ARGS..." it runs helper role NAME (the
 * multi-process tests start the test binary itself again this way, which
 * works on Windows too). Exit codes: 0 pass, 1 fail, 77 skip.
 *
 * Assertions print both operands, the expression and the place, plus
 * ferry's detail message for error codes, then exit(1).
 */
#ifndef FERRY_TEST_H
#define FERRY_TEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry.h"

#define TEST_SKIP 77

typedef void (*test_fn)(void);
typedef int (*test_role_fn)(int argc, char **argv); /* returns exit code */

struct test_case {
  const char *name;
  test_fn fn;
};
struct test_role {
  const char *name;
  test_role_fn fn;
};

int test_main(int argc, char **argv, const struct test_case *tests,
              const struct test_role *roles);

/* Marks the running test as skipped (prints why) and leaves it. */
void test_skip(const char *fmt, ...);

/* ---- assertions ---- */
void test_fail_(const char *file, int line, const char *fmt, ...);

#define TEST_FAIL(...) test_fail_(__FILE__, __LINE__, __VA_ARGS__)

#define ASSERT_TRUE(c)                                                         \
  do {                                                                         \
    if (!(c))                                                                  \
      TEST_FAIL("ASSERT_TRUE(%s) failed", #c);                                 \
  } while (0)

#define ASSERT_CMP_(a, op, b, fmt, type)                                       \
  do {                                                                         \
    type a_ = (type)(a), b_ = (type)(b);                                       \
    if (!(a_ op b_))                                                           \
      TEST_FAIL("ASSERT(%s %s %s): " fmt " vs " fmt, #a, #op, #b, a_, b_);     \
  } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP_(a, ==, b, "%lld", long long)
#define ASSERT_NE(a, b) ASSERT_CMP_(a, !=, b, "%lld", long long)
#define ASSERT_LT(a, b) ASSERT_CMP_(a, <, b, "%lld", long long)
#define ASSERT_LE(a, b) ASSERT_CMP_(a, <=, b, "%lld", long long)
#define ASSERT_GT(a, b) ASSERT_CMP_(a, >, b, "%lld", long long)
#define ASSERT_GE(a, b) ASSERT_CMP_(a, >=, b, "%lld", long long)
#define ASSERT_UEQ(a, b) ASSERT_CMP_(a, ==, b, "%llu", unsigned long long)

#define ASSERT_STREQ(a, b)                                                     \
  do {                                                                         \
    const char *a_ = (a), *b_ = (b);                                           \
    if (!a_ || !b_ || strcmp(a_, b_) != 0)                                     \
      TEST_FAIL("ASSERT_STREQ(%s, %s): \"%s\" vs \"%s\"", #a, #b,              \
                a_ ? a_ : "(null)", b_ ? b_ : "(null)");                       \
  } while (0)

#define ASSERT_CONTAINS(hay, needle)                                           \
  do {                                                                         \
    const char *h_ = (hay), *n_ = (needle);                                    \
    if (!h_ || !strstr(h_, n_))                                                \
      TEST_FAIL("ASSERT_CONTAINS(%s, %s): \"%s\" lacks \"%s\"", #hay, #needle, \
                h_ ? h_ : "(null)", n_);                                       \
  } while (0)

/* A ferry call that must succeed. */
#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    if (rc_ != 0)                                                              \
      TEST_FAIL("%s = %s (%d): %s", #expr, ferry_err_name(rc_), rc_,           \
                ferry_errmsg());                                               \
  } while (0)

/* A ferry call that must fail with CODE. */
#define ASSERT_ERR(expr, code)                                                 \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    if (rc_ != (code))                                                         \
      TEST_FAIL("%s = %s (%d), expected %s: %s", #expr, ferry_err_name(rc_),   \
                rc_, ferry_err_name(code), ferry_errmsg());                    \
  } while (0)

/* ---- helpers ---- */

/* A segment name unique to this process and call: "t<pid>-<n>-<tag>". */
const char *test_name(char *buf, size_t cap, const char *tag);

/* A fresh scratch directory for this process (removed at exit if empty
 * is not guaranteed: tests remove what they create). */
const char *test_tmpdir(void);

/* Makes test_tmpdir() return DIR (another process's scratch directory),
 * before its first call: for a helper that dies of a signal and so cannot
 * remove a directory of its own. Names in DIR must not clash with the
 * owner's (test_exec and test_run put the pid in theirs). */
void test_use_tmpdir(const char *dir);

/* Timeouts for waiting on other processes, scaled by the environment
 * variable FERRY_TEST_TIMEOUT_MULTIPLIER (for sanitizers and Wine). */
int64_t test_timeout_ms(int64_t base_ms);

/* Starts this test binary again as helper role ROLE with the NULL-terminated
 * extra arguments. Returns a process id (> 0). Works on POSIX and Windows
 * (re-exec, never fork). */
long test_spawn(const char *role, const char *const *args);

/* Waits up to TIMEOUT_MS for process PID; kills it and fails the test on
 * timeout. Returns its exit code, or 128 + signal number if a signal ended
 * it (137 for a process killed by test_kill, on every system). */
int test_wait(long pid, int64_t timeout_ms);

/* Kills process PID at once (SIGKILL; TerminateProcess on Windows). Reap it
 * with test_wait, which returns 137. */
void test_kill(long pid);

/* This process's id, and a pause of about MS milliseconds. */
long test_getpid(void);
void test_sleep_ms(int64_t ms);

/* The path of this test binary. */
const char *test_self(void);

/* Runs program PATH with ARGV (NULL-terminated, argv[0] included) directly,
 * without a shell: standard input from file IN (or the null device when
 * NULL), output and error captured into OUT/ERR (may be NULL), NUL-
 * terminated and truncated to CAP bytes. Returns the exit code; fails the
 * test if the program does not end within TIMEOUT_MS. Portable. */
int test_exec(const char *path, const char *const *argv, const char *in,
              char *out, size_t out_cap, char *err, size_t err_cap,
              int64_t timeout_ms);

/* Starts program PATH with ARGV like test_exec, but returns at once with
 * its process id (for test_wait): standard input from IN (NULL: the null
 * device), standard output into the file OUT_PATH (NULL: inherited). */
long test_exec_start(const char *path, const char *const *argv, const char *in,
                     const char *out_path);

/* Runs a shell command line (/bin/sh) with output captured: returns the exit
 * code (or 128 + signal) and fills OUT/ERR (may be NULL) with stdout and
 * stderr, NUL-terminated and truncated to CAP bytes. Fails the test if the
 * command does not end within TIMEOUT_MS. POSIX only: on Windows the
 * calling test is skipped (exit 77) with that reason. */
int test_run(const char *cmdline, char *out, size_t out_cap, char *err,
             size_t err_cap, int64_t timeout_ms);

/* Polls *WORD (a 32-bit atomic in shared memory, passed as void * so that
 * this header needs no <stdatomic.h>) until it is at least WANT; fails the
 * test after 60 s (scaled), or at once when process PID (if > 0) has
 * exited. For "I am at the point where you may kill me" handshakes. */
void test_await(void *word, uint32_t want, long pid);

/* test_kill, then reaps PID, asserting that the kill ended it (137). */
void test_kill_reap(long pid);

/* Has another process (a helper of this binary) set the size of file PATH
 * to SIZE bytes: shrink it under this process's mappings, say. Returns 0,
 * or the error code (errno, GetLastError) the OS gave that process. */
int test_set_size_other(const char *path, uint64_t size);

/* 1 if this process is root (and so may drop privileges or unshare);
 * always 0 on Windows. */
int test_is_root(void);

/* Skips the running test on Windows, with WHY. */
void test_posix_only(const char *why);

#endif
