/* Test harness implementation. POSIX for now; the Windows branch arrives
 * with the Windows port (it needs CreateProcess instead of posix_spawn). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *current_test = "(setup)";
static char self_path[PATH_MAX];
static char tmpdir[PATH_MAX];

void test_fail_(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "FAIL %s (%s:%d): ", current_test, file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  exit(1);
}

void test_skip(const char *fmt, ...) {
  va_list ap;
  printf("skip %s: ", current_test);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
  exit(TEST_SKIP);
}

const char *test_self(void) { return self_path; }

int test_is_root(void) { return geteuid() == 0; }

int64_t test_timeout_ms(int64_t base_ms) {
  const char *m = getenv("FERRY_TEST_TIMEOUT_MULTIPLIER");
  double f = m ? atof(m) : 1.0;
  if (f < 1.0)
    f = 1.0;
  return (int64_t)((double)base_ms * f);
}

const char *test_name(char *buf, size_t cap, const char *tag) {
  static unsigned counter;
  snprintf(buf, cap, "t%ld-%u-%s", (long)getpid(), ++counter, tag);
  return buf;
}

static void rm_tmpdir(void) {
  if (tmpdir[0])
    rmdir(tmpdir); /* only succeeds when the tests cleaned up */
}

const char *test_tmpdir(void) {
  if (!tmpdir[0]) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ferry-test-%ld-XXXXXX",
             base ? base : "/tmp", (long)getpid());
    if (!mkdtemp(tmpdir))
      TEST_FAIL("mkdtemp %s: %s", tmpdir, strerror(errno));
    atexit(rm_tmpdir);
  }
  return tmpdir;
}

long test_spawn(const char *role, const char *const *args) {
  const char *argv[64];
  int n = 0, rc;
  pid_t pid;
  argv[n++] = self_path;
  argv[n++] = "--role";
  argv[n++] = role;
  while (args && *args && n < 63)
    argv[n++] = *args++;
  argv[n] = NULL;
  fflush(NULL);
  rc = posix_spawn(&pid, self_path, NULL, NULL, (char *const *)argv, environ);
  if (rc != 0)
    TEST_FAIL("posix_spawn %s --role %s: %s", self_path, role, strerror(rc));
  return (long)pid;
}

int test_wait(long pid, int64_t timeout_ms) {
  struct timespec start, now;
  int status;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    pid_t r = waitpid((pid_t)pid, &status, WNOHANG);
    if (r == (pid_t)pid)
      break;
    if (r < 0 && errno != EINTR)
      TEST_FAIL("waitpid %ld: %s", pid, strerror(errno));
    clock_gettime(CLOCK_MONOTONIC, &now);
    if ((now.tv_sec - start.tv_sec) * 1000 +
            (now.tv_nsec - start.tv_nsec) / 1000000 >
        timeout_ms) {
      kill((pid_t)pid, SIGKILL);
      waitpid((pid_t)pid, &status, 0);
      TEST_FAIL("process %ld did not finish within %lld ms", pid,
                (long long)timeout_ms);
    }
    {
      struct timespec ts = {0, 2000000};
      nanosleep(&ts, NULL);
    }
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 255;
}

void test_await(void *word, uint32_t want, long pid) {
  _Atomic uint32_t *w = (_Atomic uint32_t *)word;
  int64_t limit = test_timeout_ms(60000), waited = 0;
  while (atomic_load(w) < want) {
    struct timespec ts = {0, 1000000};
    if (waited > limit)
      TEST_FAIL("timed out waiting for %u (at %u)", (unsigned)want,
                (unsigned)atomic_load(w));
    if (pid > 0 && kill((pid_t)pid, 0) != 0)
      TEST_FAIL("process %ld is gone", pid);
    nanosleep(&ts, NULL);
    waited++;
  }
}

void test_kill(long pid) {
  int code;
  if (kill((pid_t)pid, SIGKILL) != 0)
    TEST_FAIL("kill %ld: %s", pid, strerror(errno));
  code = test_wait(pid, test_timeout_ms(30000));
  if (code != 128 + SIGKILL)
    TEST_FAIL("process %ld ended with %d, not by SIGKILL", pid, code);
}

static void slurp(const char *path, char *buf, size_t cap) {
  FILE *f;
  size_t n = 0;
  if (!buf || cap == 0)
    return;
  f = fopen(path, "rb");
  if (f) {
    n = fread(buf, 1, cap - 1, f);
    fclose(f);
  }
  buf[n] = '\0';
  unlink(path);
}

int test_run(const char *cmdline, char *out, size_t out_cap, char *err,
             size_t err_cap, int64_t timeout_ms) {
  char o[PATH_MAX + 32], e[PATH_MAX + 32], full[3 * PATH_MAX + 64];
  const char *argv[4];
  static unsigned n;
  pid_t pid;
  int rc;
  snprintf(o, sizeof o, "%s/run%u.out", test_tmpdir(), ++n);
  snprintf(e, sizeof e, "%s/run%u.err", test_tmpdir(), n);
  /* braces: the redirections apply to every command of the line */
  if (snprintf(full, sizeof full, "{ %s\n} >'%s' 2>'%s' </dev/null", cmdline, o,
               e) >= (int)sizeof full)
    TEST_FAIL("command line too long: %s", cmdline);
  argv[0] = "/bin/sh";
  argv[1] = "-c";
  argv[2] = full;
  argv[3] = NULL;
  fflush(NULL);
  rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, (char *const *)argv, environ);
  if (rc != 0)
    TEST_FAIL("posix_spawn /bin/sh: %s", strerror(rc));
  rc = test_wait(pid, timeout_ms);
  slurp(o, out, out_cap);
  slurp(e, err, err_cap);
  if (!out)
    unlink(o);
  if (!err)
    unlink(e);
  return rc;
}

int test_main(int argc, char **argv, const struct test_case *tests,
              const struct test_role *roles) {
  const struct test_case *t;
  int ran = 0, skipped = 0, failed = 0, code;
  if (!realpath(argv[0], self_path))
    snprintf(self_path, sizeof self_path, "%s", argv[0]);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 3 && strcmp(argv[1], "--role") == 0) {
    const struct test_role *r;
    for (r = roles; r && r->name; r++)
      if (strcmp(r->name, argv[2]) == 0) {
        current_test = r->name;
        return r->fn(argc - 3, argv + 3);
      }
    fprintf(stderr, "unknown role %s\n", argv[2]);
    return 2;
  }
  if (argc >= 2) { /* one test, in this process */
    for (t = tests; t->name; t++)
      if (strcmp(argv[1], t->name) == 0) {
        current_test = t->name;
        t->fn();
        fflush(NULL);
        return 0;
      }
    fprintf(stderr, "no test named %s\n", argv[1]);
    return 2;
  }
  /* Every test runs in a process of its own (this binary again, with the
   * test's name), so a skip or a crash in one cannot hide the others. */
  for (t = tests; t->name; t++) {
    const char *args[3];
    int rc;
    pid_t pid;
    args[0] = self_path;
    args[1] = t->name;
    args[2] = NULL;
    fflush(NULL);
    rc = posix_spawn(&pid, self_path, NULL, NULL, (char *const *)args, environ);
    if (rc != 0)
      TEST_FAIL("posix_spawn %s: %s", self_path, strerror(rc));
    code = test_wait(pid, test_timeout_ms(600000));
    ran++;
    if (code == 0) {
      printf("ok   %s\n", t->name);
    } else if (code == TEST_SKIP) {
      skipped++;
    } else {
      printf("FAIL %s (exit %d)\n", t->name, code);
      failed++;
    }
  }
  printf("summary: %d passed, %d failed, %d skipped\n", ran - failed - skipped,
         failed, skipped);
  if (failed)
    return 1;
  if (skipped == ran)
    return TEST_SKIP;
  return 0;
}
