/* Test harness implementation, for POSIX and Windows. Processes are started
 * through tools/ferry/proc.c (posix_spawn / CreateProcess), never fork. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>

#include "../tools/ferry/proc.h"

#ifdef _WIN32
#include <direct.h>
#include <process.h>
#include <windows.h>
#define NULL_DEVICE "NUL"
#ifndef PATH_MAX
#define PATH_MAX 4096
#endif
#else
#include <sys/stat.h>
#include <unistd.h>
#define NULL_DEVICE "/dev/null"
#endif

static const char *current_test = "(setup)";
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

void test_posix_only(const char *why) {
#ifdef _WIN32
  test_skip("POSIX only: %s", why);
#else
  (void)why;
#endif
}

const char *test_self(void) { return proc_self(); }

int test_is_root(void) {
#ifdef _WIN32
  return 0;
#else
  return geteuid() == 0;
#endif
}

long test_getpid(void) {
#ifdef _WIN32
  return (long)_getpid();
#else
  return (long)getpid();
#endif
}

void test_sleep_ms(int64_t ms) { proc_sleep_ms(ms); }

int64_t test_timeout_ms(int64_t base_ms) {
  const char *m = getenv("FERRY_TEST_TIMEOUT_MULTIPLIER");
  double f = m ? atof(m) : 1.0;
  if (f < 1.0)
    f = 1.0;
  return (int64_t)((double)base_ms * f);
}

const char *test_name(char *buf, size_t cap, const char *tag) {
  static _Atomic unsigned counter; /* tests may name segments in threads */
  snprintf(buf, cap, "t%ld-%u-%s", test_getpid(), ++counter, tag);
  return buf;
}

static void rm_tmpdir(void) {
  if (tmpdir[0])
    rmdir(tmpdir); /* only succeeds when the tests cleaned up */
}

void test_use_tmpdir(const char *dir) {
  if (tmpdir[0] || strlen(dir) >= sizeof tmpdir)
    TEST_FAIL("test_use_tmpdir(%s): too late, or too long", dir);
  snprintf(tmpdir, sizeof tmpdir, "%s", dir); /* not ours: never removed */
}

const char *test_tmpdir(void) {
  if (!tmpdir[0]) {
#ifdef _WIN32
    char base[PATH_MAX];
    unsigned i;
    DWORD n = GetTempPathA(sizeof base, base);
    if (n == 0 || n >= sizeof base)
      snprintf(base, sizeof base, ".\\");
    for (i = 0;; i++) {
      snprintf(tmpdir, sizeof tmpdir, "%sferry-test-%ld-%u", base,
               test_getpid(), i);
      if (_mkdir(tmpdir) == 0)
        break;
      if (errno != EEXIST || i > 1000)
        TEST_FAIL("mkdir %s: %s", tmpdir, strerror(errno));
    }
#else
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/ferry-test-%ld-XXXXXX",
             base ? base : "/tmp", test_getpid());
    if (!mkdtemp(tmpdir))
      TEST_FAIL("mkdtemp %s: %s", tmpdir, strerror(errno));
#endif
    atexit(rm_tmpdir);
  }
  return tmpdir;
}

long test_spawn(const char *role, const char *const *args) {
  const char *argv[64];
  int n = 0;
  long pid;
  argv[n++] = test_self();
  argv[n++] = "--role";
  argv[n++] = role;
  while (args && *args && n < 63)
    argv[n++] = *args++;
  argv[n] = NULL;
  pid = proc_spawn(test_self(), argv, NULL, NULL, NULL);
  if (pid <= 0)
    TEST_FAIL("cannot start %s --role %s", test_self(), role);
  return pid;
}

int test_wait(long pid, int64_t timeout_ms) {
  int rc = proc_wait(pid, timeout_ms);
  if (rc < 0) {
    proc_kill(pid);
    TEST_FAIL("process %ld did not finish within %lld ms", pid,
              (long long)timeout_ms);
  }
  return rc;
}

void test_kill(long pid) { proc_kill_nowait(pid); }

void test_kill_reap(long pid) {
  int code;
  test_kill(pid);
  code = test_wait(pid, test_timeout_ms(30000));
  if (code != 137)
    TEST_FAIL("process %ld ended with %d, not by the kill", pid, code);
}

void test_await(void *word, uint32_t want, long pid) {
  _Atomic uint32_t *w = (_Atomic uint32_t *)word;
  int64_t deadline = proc_now_ns() + test_timeout_ms(60000) * 1000000;
  while (atomic_load(w) < want) {
    int code;
    if (proc_now_ns() > deadline)
      TEST_FAIL("timed out waiting for %u (at %u)", (unsigned)want,
                (unsigned)atomic_load(w));
    if (pid > 0 && (code = proc_wait(pid, 0)) >= 0)
      TEST_FAIL("process %ld is gone (exit %d)", pid, code);
    test_sleep_ms(1);
  }
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
#ifdef _WIN32
  { /* text written in text mode ends its lines with \r\n: compare as \n */
    size_t i, j;
    for (i = j = 0; i < n; i++)
      if (!(buf[i] == '\r' && buf[i + 1] == '\n'))
        buf[j++] = buf[i];
    buf[j] = '\0';
  }
#endif
}

/* Waits for PID, then reads its output files into OUT and ERR. */
static int collect(long pid, int64_t timeout_ms, const char *o, char *out,
                   size_t out_cap, const char *e, char *err, size_t err_cap) {
  int rc = proc_wait(pid, timeout_ms);
  if (rc < 0) {
    proc_kill(pid);
    slurp(o, out, out_cap);
    slurp(e, err, err_cap);
    remove(o);
    remove(e);
    TEST_FAIL("command did not finish within %lld ms; stderr so far: %s",
              (long long)timeout_ms, err ? err : "");
  }
  slurp(o, out, out_cap);
  slurp(e, err, err_cap);
  remove(o);
  remove(e);
  return rc;
}

int test_exec(const char *path, const char *const *argv, const char *in,
              char *out, size_t out_cap, char *err, size_t err_cap,
              int64_t timeout_ms) {
  char o[PATH_MAX + 32], e[PATH_MAX + 32];
  static unsigned n;
  long pid;
  /* the pid too: helpers share the scratch directory */
  snprintf(o, sizeof o, "%s/exec%ld-%u.out", test_tmpdir(), test_getpid(), ++n);
  snprintf(e, sizeof e, "%s/exec%ld-%u.err", test_tmpdir(), test_getpid(), n);
  pid = proc_spawn(path, argv, in ? in : NULL_DEVICE, o, e);
  if (pid <= 0)
    TEST_FAIL("cannot start %s", path);
  return collect(pid, timeout_ms, o, out, out_cap, e, err, err_cap);
}

long test_exec_start(const char *path, const char *const *argv, const char *in,
                     const char *out_path) {
  long pid = proc_spawn(path, argv, in ? in : NULL_DEVICE, out_path, NULL);
  if (pid <= 0)
    TEST_FAIL("cannot start %s", path);
  return pid;
}

int test_run(const char *cmdline, char *out, size_t out_cap, char *err,
             size_t err_cap, int64_t timeout_ms) {
#ifdef _WIN32
  (void)cmdline;
  (void)out;
  (void)out_cap;
  (void)err;
  (void)err_cap;
  (void)timeout_ms;
  test_skip("needs /bin/sh to run a command line");
  return -1;
#else
  char o[PATH_MAX + 32], e[PATH_MAX + 32], full[3 * PATH_MAX + 64];
  const char *argv[4];
  static unsigned n;
  long pid;
  snprintf(o, sizeof o, "%s/run%ld-%u.out", test_tmpdir(), test_getpid(), ++n);
  snprintf(e, sizeof e, "%s/run%ld-%u.err", test_tmpdir(), test_getpid(), n);
  /* braces: the redirections apply to every command of the line */
  if (snprintf(full, sizeof full, "{ %s\n} >'%s' 2>'%s' </dev/null", cmdline, o,
               e) >= (int)sizeof full)
    TEST_FAIL("command line too long: %s", cmdline);
  argv[0] = "/bin/sh";
  argv[1] = "-c";
  argv[2] = full;
  argv[3] = NULL;
  pid = proc_spawn("/bin/sh", argv, NULL, NULL, NULL);
  if (pid <= 0)
    TEST_FAIL("cannot start /bin/sh");
  return collect(pid, timeout_ms, o, out, out_cap, e, err, err_cap);
#endif
}

/* The harness's own role: argv PATH SIZE: sets the size of file PATH
 * (opened read-write, shared with every other opener). Prints the OS's
 * error code (0 on success): Windows' do not fit in an exit status. */
static int role_set_size(int argc, char **argv) {
  unsigned long long size;
  long e = 0;
  if (argc != 2)
    return 2;
  size = strtoull(argv[1], NULL, 10);
#ifdef _WIN32
  {
    HANDLE h =
        CreateFileA(argv[0], GENERIC_READ | GENERIC_WRITE,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                    NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    LARGE_INTEGER li;
    if (h == INVALID_HANDLE_VALUE) {
      e = (long)GetLastError();
    } else {
      li.QuadPart = (LONGLONG)size;
      if (!SetFilePointerEx(h, li, NULL, FILE_BEGIN) || !SetEndOfFile(h))
        e = (long)GetLastError();
      CloseHandle(h);
    }
  }
#else
  if (truncate(argv[0], (off_t)size) != 0)
    e = errno;
#endif
  printf("%ld\n", e);
  return 0;
}

int test_set_size_other(const char *path, uint64_t size) {
  char num[32], out[64];
  const char *argv[6];
  snprintf(num, sizeof num, "%llu", (unsigned long long)size);
  argv[0] = test_self();
  argv[1] = "--role";
  argv[2] = "@set-size";
  argv[3] = path;
  argv[4] = num;
  argv[5] = NULL;
  if (test_exec(test_self(), argv, NULL, out, sizeof out, NULL, 0,
                test_timeout_ms(30000)) != 0)
    TEST_FAIL("the helper that sets the size of %s failed", path);
  return atoi(out);
}

int test_main(int argc, char **argv, const struct test_case *tests,
              const struct test_role *roles) {
  const struct test_case *t;
  int ran = 0, skipped = 0, failed = 0, code;
  proc_init(argv[0]);
#ifdef _WIN32
  setvbuf(stdout, NULL, _IONBF, 0); /* the CRT has no line buffering */
#else
  setvbuf(stdout, NULL, _IOLBF, 0);
#endif
  if (argc >= 3 && strcmp(argv[1], "--role") == 0) {
    const struct test_role *r;
    if (strcmp(argv[2], "@set-size") == 0)
      return role_set_size(argc - 3, argv + 3);
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
    long pid;
    args[0] = test_self();
    args[1] = t->name;
    args[2] = NULL;
    pid = proc_spawn(test_self(), args, NULL, NULL, NULL);
    if (pid <= 0)
      TEST_FAIL("cannot start %s %s", test_self(), t->name);
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
