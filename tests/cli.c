/* Description: the ferry CLI: commands, exit codes, error lines, bad objects */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "test.h"

#ifdef _WIN32
/* Every test here drives the CLI through /bin/sh command lines (pipes,
 * redirections, background jobs) and pokes /dev/shm; tests/cli_exec.c runs
 * the CLI without a shell and covers it on Windows. */
static void test_needs_sh(void) {
  test_skip("the CLI tests run through /bin/sh and /dev/shm; cli_exec "
            "covers the CLI on Windows");
}
int main(int argc, char **argv) {
  static const struct test_case tests[] = {{"cli", test_needs_sh},
                                           {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
#else

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#ifndef FERRY_CLI_PATH
#error "FERRY_CLI_PATH must name the ferry binary (tests/CMakeLists.txt)"
#endif

#define OUT_CAP 65536

static char out[OUT_CAP], err[OUT_CAP];
static int64_t run_timeout_ms = 20000; /* per command, before scaling */

/* ---------------------------------------------------------------------- */
/* Cleanup: everything a test makes is recorded here and removed at exit,  */
/* also when an assertion fails (test_fail_ calls exit).                  */

#define MAX_TRACKED 32
static char tracked_names[MAX_TRACKED][80];
static char tracked_files[MAX_TRACKED][4200];
static int n_names, n_files;

static void cleanup(void) {
  int i;
  for (i = 0; i < n_names; i++) {
    char path[200];
    if (snprintf(path, sizeof path, "/dev/shm/ferry.%s", tracked_names[i]) <
        (int)sizeof path)
      unlink(path); /* also removes objects with names ferry rejects */
  }
  for (i = 0; i < n_files; i++)
    unlink(tracked_files[i]);
}

static void cleanup_init(void) {
  static int done;
  if (!done) {
    /* After test_tmpdir()'s own atexit handler, so that ours runs first
     * and the scratch directory is empty when it is removed. */
    test_tmpdir();
    atexit(cleanup);
    done = 1;
  }
}

/* A unique segment name, removed at exit. */
static const char *new_name(char *buf, size_t cap, const char *tag) {
  cleanup_init();
  test_name(buf, cap, tag);
  if (n_names < MAX_TRACKED)
    snprintf(tracked_names[n_names++], sizeof tracked_names[0], "%s", buf);
  return buf;
}

/* A raw /dev/shm entry name (maybe not a valid ferry name), removed at
 * exit. */
static void track_raw_name(const char *name) {
  cleanup_init();
  if (n_names < MAX_TRACKED)
    snprintf(tracked_names[n_names++], sizeof tracked_names[0], "%s", name);
}

/* A path in the scratch directory, removed at exit. */
static const char *new_file(char *buf, size_t cap, const char *base) {
  cleanup_init();
  snprintf(buf, cap, "%s/%s", test_tmpdir(), base);
  if (n_files < MAX_TRACKED)
    snprintf(tracked_files[n_files++], sizeof tracked_files[0], "%s", buf);
  return buf;
}

/* ---------------------------------------------------------------------- */
/* Running the tool                                                       */

/* Runs `ferry ARGS` (ARGS formatted, already shell-quoted by the caller)
 * with stdout in out[] and stderr in err[]; returns the exit code, or 128 +
 * signal when a signal ended it. */
static int ferry(const char *fmt, ...) {
  char args[4096], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  /* exec: on a timeout the harness kills the tool itself, not just sh */
  snprintf(cmd, sizeof cmd, "exec '%s' %s", FERRY_CLI_PATH, args);
  cleanup_init();
  return test_run(cmd, out, sizeof out, err, sizeof err,
                  test_timeout_ms(run_timeout_ms));
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    if (*s == '\n')
      n++;
  return n;
}

/* Asserts that err[] is exactly one line that starts with PREFIX and holds
 * CODE, the shape of every error line. */
#define ASSERT_ONE_ERROR_LINE(prefix, code)                                    \
  do {                                                                         \
    const char *p_ = (prefix);                                                 \
    ASSERT_EQ(count_lines(err), 1);                                            \
    ASSERT_EQ(err[strlen(err) - 1], '\n');                                     \
    if (strncmp(err, p_, strlen(p_)) != 0)                                     \
      TEST_FAIL("stderr \"%s\" does not start with \"%s\"", err, p_);          \
    ASSERT_CONTAINS(err, (code));                                              \
  } while (0)

/* The value of "KEY: value" in `ferry info` output, or NULL. */
static const char *info_value(const char *text, const char *key) {
  static char val[4200];
  size_t klen = strlen(key);
  const char *p = text;
  while (p && *p) {
    if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
      const char *v = p + klen + 1;
      size_t n;
      while (*v == ' ')
        v++;
      n = strcspn(v, "\n");
      if (n >= sizeof val)
        n = sizeof val - 1;
      memcpy(val, v, n);
      val[n] = '\0';
      return val;
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return NULL;
}

#define ASSERT_INFO(text, key, expect)                                         \
  do {                                                                         \
    const char *v_ = info_value((text), (key));                                \
    if (!v_)                                                                   \
      TEST_FAIL("no '%s:' line in:\n%s", (key), (text));                       \
    ASSERT_STREQ(v_, (expect));                                                \
  } while (0)

/* The JSON object of segment NAME in `ferry ls --json` output (up to its
 * closing brace: the objects hold no nested objects), or NULL. */
static const char *ls_json_entry(const char *json, const char *name) {
  static char obj[8192];
  char key[256];
  const char *p, *end;
  snprintf(key, sizeof key, "{\"name\":\"%s\"", name);
  p = strstr(json, key);
  if (!p)
    return NULL;
  end = strchr(p, '}');
  if (!end)
    return NULL;
  snprintf(obj, sizeof obj, "%.*s", (int)(end - p + 1), p);
  return obj;
}

/* The line of the `ferry ls` table that starts with NAME and a space. */
static const char *ls_line(const char *table, const char *name) {
  static char line[4096];
  size_t n = strlen(name);
  const char *p = table;
  while (p && *p) {
    if (strncmp(p, name, n) == 0 && p[n] == ' ') {
      snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\n"), p);
      return line;
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return NULL;
}

static void shm_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "/dev/shm/ferry.%s", name);
}

/* Overwrites LEN bytes at OFF of FILE with BYTE. */
static void poke(const char *file, off_t off, int byte, size_t len) {
  unsigned char b[64];
  int fd = open(file, O_WRONLY);
  ASSERT_TRUE(fd >= 0);
  ASSERT_TRUE(len <= sizeof b);
  memset(b, byte, len);
  ASSERT_EQ(pwrite(fd, b, len, off), (long long)len);
  close(fd);
}

static void truncate_to(const char *file, off_t size) {
  int fd = open(file, O_WRONLY);
  ASSERT_TRUE(fd >= 0);
  ASSERT_EQ(ftruncate(fd, size), 0);
  close(fd);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                  */

static void test_lifecycle(void) {
  char n[64], prefix[128], path[128];
  const char *e, *line;
  new_name(n, sizeof n, "life");
  shm_path(path, sizeof path, n);

  ASSERT_EQ(ferry("create %s --size 4K", n), 0);
  ASSERT_STREQ(out, "");
  ASSERT_STREQ(err, "");
  ASSERT_TRUE(exists(path));

  /* ls: a table with a header and a row for n */
  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_TRUE(strncmp(out, "NAME ", 5) == 0);
  ASSERT_CONTAINS(out, "KIND");
  ASSERT_CONTAINS(out, "SIZE");
  ASSERT_CONTAINS(out, "CREATOR");
  ASSERT_CONTAINS(out, "ALIVE");
  ASSERT_CONTAINS(out, "CREATED");
  line = ls_line(out, n);
  if (!line)
    TEST_FAIL("ls does not list %s:\n%s", n, out);
  ASSERT_CONTAINS(line, " named ");
  ASSERT_CONTAINS(line, " 4.0K ");
  /* The creator was the `ferry create` process, which has exited. */
  ASSERT_CONTAINS(line, " no ");
  ASSERT_TRUE(strstr(line, "error") == NULL);

  /* ls --json */
  ASSERT_EQ(ferry("ls --json"), 0);
  ASSERT_TRUE(strncmp(out, "{\"segments\":[", 13) == 0);
  ASSERT_STREQ(out + strlen(out) - 3, "]}\n");
  e = ls_json_entry(out, n);
  if (!e)
    TEST_FAIL("ls --json does not list %s:\n%s", n, out);
  ASSERT_CONTAINS(e, "\"kind\":\"named\"");
  ASSERT_CONTAINS(e, "\"payload\":\"raw\"");
  ASSERT_CONTAINS(e, "\"size\":4096,");
  ASSERT_CONTAINS(e, "\"total_size\":");
  ASSERT_CONTAINS(e, "\"creator_pid\":");
  ASSERT_CONTAINS(e, "\"creator_alive\":false");
  ASSERT_CONTAINS(e, "Z\",\"created_ns\":");
  ASSERT_TRUE(strstr(e, "\"error\"") == NULL);

  /* info: every field */
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_STREQ(err, "");
  ASSERT_INFO(out, "name", n);
  snprintf(prefix, sizeof prefix, "/ferry.%s", n);
  ASSERT_INFO(out, "os_name", prefix);
  ASSERT_INFO(out, "kind", "named");
  ASSERT_INFO(out, "payload", "raw");
  ASSERT_INFO(out, "version", "1.0");
  ASSERT_INFO(out, "header_size", "256");
  ASSERT_INFO(out, "state", "0x59444552 (ready)");
  ASSERT_INFO(out, "flags", "0x0 (none)");
  ASSERT_INFO(out, "mode", "0600");
  ASSERT_INFO(out, "data_size", "4096 (4.0K)");
  ASSERT_INFO(out, "creator_alive", "no");
  ASSERT_INFO(out, "readonly", "yes");
  ASSERT_INFO(out, "handle_created", "no");
  {
    static const char *const keys[] = {
        "total_size",   "data_offset", "creator_pid", "creator_start",
        "creator_boot", "created",     "created_ns",  "header_crc"};
    size_t i;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
      if (!info_value(out, keys[i]))
        TEST_FAIL("info lacks '%s:':\n%s", keys[i], out);
    ASSERT_GE(strtoull(info_value(out, "data_offset"), NULL, 10), 256);
    ASSERT_GE(strtoull(info_value(out, "total_size"), NULL, 10),
              strtoull(info_value(out, "data_offset"), NULL, 10) + 4096);
    ASSERT_GT(strtoull(info_value(out, "creator_pid"), NULL, 10), 0);
    ASSERT_TRUE(strncmp(info_value(out, "header_crc"), "0x", 2) == 0);
    ASSERT_EQ(strlen(info_value(out, "created")), 19); /* YYYY-MM-DD hh:mm:ss */
    ASSERT_EQ(info_value(out, "created")[10], ' ');
  }

  /* info --json: one object with every field */
  ASSERT_EQ(ferry("info --json %s", n), 0);
  ASSERT_EQ(count_lines(out), 1);
  ASSERT_EQ(out[0], '{');
  {
    static const char *const keys[] = {"\"name\":",
                                       "\"os_name\":",
                                       "\"kind\":\"named\"",
                                       "\"payload\":\"raw\"",
                                       "\"version_major\":1",
                                       "\"version_minor\":0",
                                       "\"header_size\":256",
                                       "\"state\":\"0x59444552\"",
                                       "\"flags\":0",
                                       "\"mode\":\"0600\"",
                                       "\"total_size\":",
                                       "\"data_offset\":",
                                       "\"data_size\":4096,",
                                       "\"creator_pid\":",
                                       "\"creator_start\":",
                                       "\"creator_boot\":\"0x",
                                       "\"creator_alive\":false",
                                       "\"created\":\"",
                                       "\"created_ns\":",
                                       "\"header_crc\":\"0x",
                                       "\"readonly\":true",
                                       "\"handle_created\":false"};
    size_t i;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
      ASSERT_CONTAINS(out, keys[i]);
  }

  /* rm: quiet */
  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_STREQ(out, "");
  ASSERT_STREQ(err, "");
  ASSERT_TRUE(!exists(path));

  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_TRUE(ls_line(out, n) == NULL);
  ASSERT_EQ(ferry("ls --json"), 0);
  ASSERT_TRUE(ls_json_entry(out, n) == NULL);

  ASSERT_EQ(ferry("info %s", n), 1);
  ASSERT_STREQ(out, "");
  snprintf(prefix, sizeof prefix, "ferry: info: %s: FERRY_ENOENT: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "does not exist");

  ASSERT_EQ(ferry("rm %s", n), 1);
  snprintf(prefix, sizeof prefix, "ferry: rm: %s: FERRY_ENOENT: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "FERRY_ENOENT");
}

/* A segment whose creator still runs (this process) shows as alive. */
static void test_creator_alive(void) {
  char n[64], pid[64];
  ferry_segment *seg = NULL;
  const char *e;
  new_name(n, sizeof n, "alive");
  ASSERT_OK(ferry_segment_open(&seg, n, FERRY_CREATE | FERRY_EXCL, 1000, NULL));

  ASSERT_EQ(ferry("ls --json"), 0);
  e = ls_json_entry(out, n);
  if (!e)
    TEST_FAIL("ls --json does not list %s:\n%s", n, out);
  snprintf(pid, sizeof pid, "\"creator_pid\":%ld,", (long)getpid());
  ASSERT_CONTAINS(e, pid);
  ASSERT_CONTAINS(e, "\"creator_alive\":true");
  ASSERT_CONTAINS(e, "\"size\":1000,");

  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_CONTAINS(ls_line(out, n), " yes ");
  ASSERT_CONTAINS(ls_line(out, n), " 1000B ");

  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "creator_alive", "yes");
  snprintf(pid, sizeof pid, "%ld", (long)getpid());
  ASSERT_INFO(out, "creator_pid", pid);
  ASSERT_INFO(out, "data_size", "1000 (1000B)");

  ferry_segment_close(seg);
  ASSERT_OK(ferry_segment_unlink(n, 0));
}

/* `ferry create NAME OPT` must give a segment of EXPECT data bytes. */
static void check_size(const char *opt, const char *expect) {
  char n[64];
  new_name(n, sizeof n, "size");
  ASSERT_EQ(ferry("create %s %s", n, opt), 0);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "data_size", expect);
  ASSERT_EQ(ferry("rm %s", n), 0);
}

static void check_bad_size(const char *arg) {
  char n[64], path[128];
  new_name(n, sizeof n, "badsize");
  shm_path(path, sizeof path, n);
  ASSERT_EQ(ferry("create %s --size %s", n, arg), 2);
  ASSERT_STREQ(out, "");
  ASSERT_ONE_ERROR_LINE("ferry: create: ", "(see 'ferry create --help')");
  ASSERT_TRUE(!exists(path));
}

static void test_sizes(void) {
  char n[64];
  check_size("--size 4K", "4096 (4.0K)");
  check_size("--size 4k", "4096 (4.0K)");
  check_size("--size 2M", "2097152 (2.0M)");
  check_size("--size 2MiB", "2097152 (2.0M)");
  check_size("--size 3kib", "3072 (3.0K)");
  check_size("--size=1", "1 (1B)");
  check_size("--size 12345", "12345 (12.1K)");
  check_size("--size 1M --size 8K", "8192 (8.0K)"); /* the last one wins */

  check_bad_size("0");
  check_bad_size("0K");
  check_bad_size("12Q");
  check_bad_size("4KB");
  check_bad_size("4K5");
  check_bad_size("-5");
  check_bad_size("' 5'");
  check_bad_size("''");
  check_bad_size("1.5M");
  check_bad_size("99999999999999999999");
  check_bad_size("18446744073709551616");
  check_bad_size("16777216T"); /* 2^64 */
  check_bad_size("16777216TiB");

  /* --size without a value, and no --size at all */
  new_name(n, sizeof n, "nosize");
  ASSERT_EQ(ferry("create %s --size", n), 2);
  ASSERT_ONE_ERROR_LINE("ferry: create: option '--size' needs a value",
                        "(see 'ferry create --help')");
  ASSERT_EQ(ferry("create %s", n), 2);
  ASSERT_ONE_ERROR_LINE("ferry: create: missing --size",
                        "(see 'ferry create --help')");
  ASSERT_EQ(ferry("info %s", n), 1);
}

static void test_mode(void) {
  char n[64], n2[64], path[128];
  struct stat st;
  new_name(n, sizeof n, "mode");
  shm_path(path, sizeof path, n);
  ASSERT_EQ(ferry("create %s --size 4K --mode 0644", n), 0);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "mode", "0644");
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0644);
  ASSERT_EQ(ferry("info --json %s", n), 0);
  ASSERT_CONTAINS(out, "\"mode\":\"0644\"");
  ASSERT_EQ(ferry("rm %s", n), 0);

  /* without the leading 0, and with --mode=VALUE */
  new_name(n2, sizeof n2, "mode2");
  shm_path(path, sizeof path, n2);
  ASSERT_EQ(ferry("create %s --size=4K --mode=640", n2), 0);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0640);
  ASSERT_EQ(ferry("rm %s", n2), 0);

  /* bad modes are usage errors and create nothing */
  {
    static const char *const bad[] = {"0888", "1777", "abc",  "0",
                                      "''",   "-1",   "7777", "0o644"};
    size_t i;
    shm_path(path, sizeof path, n);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      ASSERT_EQ(ferry("create %s --size 4K --mode %s", n, bad[i]), 2);
      ASSERT_ONE_ERROR_LINE("ferry: create: bad mode", "--help");
      ASSERT_TRUE(!exists(path));
    }
  }
}

static void test_create_twice(void) {
  char n[64], prefix[128];
  new_name(n, sizeof n, "twice");
  ASSERT_EQ(ferry("create %s --size 4K", n), 0);
  ASSERT_EQ(ferry("create %s --size 8K", n), 1);
  ASSERT_STREQ(out, "");
  snprintf(prefix, sizeof prefix, "ferry: create: %s: FERRY_EEXIST: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "already exists");
  /* the first one is untouched */
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "data_size", "4096 (4.0K)");
  ASSERT_EQ(ferry("rm %s", n), 0);
}

static void test_usage(void) {
  static const char *const cmds[] = {"create", "ls",   "info", "rm",  "gc",
                                     "send",   "recv", "demo", "help"};
  char want[64];
  size_t i;

  ASSERT_EQ(ferry(""), 2);
  ASSERT_STREQ(out, "");
  ASSERT_CONTAINS(err, "usage: ferry");

  ASSERT_EQ(ferry("frobnicate"), 2);
  ASSERT_STREQ(out, "");
  ASSERT_ONE_ERROR_LINE("ferry: unknown command 'frobnicate'", "--help");

  ASSERT_EQ(ferry("--frob"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: unknown option '--frob'", "--help");

  ASSERT_EQ(ferry("ls --bogus"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: ls: unknown option '--bogus'",
                        "(see 'ferry ls --help')");
  ASSERT_EQ(ferry("ls -x"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: ls: unknown option '-x'", "--help");
  ASSERT_EQ(ferry("ls extra"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: ls: unexpected argument 'extra'", "--help");
  ASSERT_EQ(ferry("ls --json=1"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: ls: option '--json' takes no value", "--help");
  ASSERT_EQ(ferry("info --size 4K x"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: info: unknown option '--size'", "--help");
  ASSERT_EQ(ferry("create --size 4K"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: create: missing NAME", "--help");
  ASSERT_EQ(ferry("create a b --size 4K"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: create: unexpected argument 'b'", "--help");
  ASSERT_EQ(ferry("create a --size 4K --sparse"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: create: --sparse applies to file-backed",
                        "--help");
  ASSERT_EQ(ferry("info"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: info: missing NAME", "--help");
  ASSERT_EQ(ferry("info a b"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: info: unexpected argument 'b'", "--help");
  ASSERT_EQ(ferry("rm"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: rm: missing NAME", "--help");
  ASSERT_EQ(ferry("help nosuch"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: unknown command 'nosuch'", "--help");

  ASSERT_EQ(ferry("--help"), 0);
  ASSERT_CONTAINS(out, "usage: ferry COMMAND");
  for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    ASSERT_CONTAINS(out, cmds[i]);
  ASSERT_STREQ(err, "");
  ASSERT_EQ(ferry("-h"), 0);
  ASSERT_CONTAINS(out, "usage: ferry COMMAND");
  ASSERT_EQ(ferry("help"), 0);
  ASSERT_CONTAINS(out, "usage: ferry COMMAND");

  for (i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    snprintf(want, sizeof want, "usage: ferry %s", cmds[i]);
    ASSERT_EQ(ferry("%s --help", cmds[i]), 0);
    ASSERT_TRUE(strncmp(out, want, strlen(want)) == 0);
    ASSERT_STREQ(err, "");
    ASSERT_EQ(ferry("%s -h", cmds[i]), 0);
    ASSERT_TRUE(strncmp(out, want, strlen(want)) == 0);
    ASSERT_EQ(ferry("help %s", cmds[i]), 0);
    ASSERT_TRUE(strncmp(out, want, strlen(want)) == 0);
  }
  /* --help wins over missing arguments */
  ASSERT_EQ(ferry("create --help"), 0);
  ASSERT_CONTAINS(out, "--size");
  ASSERT_CONTAINS(out, "--sparse");
  ASSERT_CONTAINS(out, "'/'");

  ASSERT_EQ(ferry("--version"), 0);
  snprintf(want, sizeof want, "ferry %s\n", ferry_version_string());
  ASSERT_STREQ(out, want);
}

static void check_invalid_name(const char *quoted) {
  ASSERT_EQ(ferry("create %s --size 4K", quoted), 1);
  ASSERT_ONE_ERROR_LINE("ferry: create: ", "FERRY_EINVAL: segment name");
  ASSERT_EQ(ferry("info %s", quoted), 1);
  ASSERT_ONE_ERROR_LINE("ferry: info: ", "FERRY_EINVAL: segment name");
  ASSERT_EQ(ferry("rm %s", quoted), 1);
  ASSERT_ONE_ERROR_LINE("ferry: rm: ", "FERRY_EINVAL: segment name");
}

static void test_invalid_names(void) {
  char longname[80];
  memset(longname + 1, 'a', 70);
  longname[0] = '\'';
  longname[71] = '\'';
  longname[72] = '\0';
  check_invalid_name("'bad name'");
  check_invalid_name("''");
  check_invalid_name(longname);
  ASSERT_CONTAINS(err, "70 characters");
  check_invalid_name("'.hidden'");
  check_invalid_name("'a*b'");
  /* no /dev/shm entry was made for any of them */
  ASSERT_TRUE(!exists("/dev/shm/ferry.bad name"));
  ASSERT_TRUE(!exists("/dev/shm/ferry..hidden"));
}

/* An existing header damaged in various ways: info fails with one line, ls
 * still lists the segment, and rm removes it. Never a signal. */
static void check_damaged(const char *tag, off_t off, int byte, size_t len,
                          const char *code) {
  char n[64], path[128], prefix[160];
  const char *line, *e;
  new_name(n, sizeof n, tag);
  shm_path(path, sizeof path, n);
  ASSERT_EQ(ferry("create %s --size 4K", n), 0);
  poke(path, off, byte, len);

  ASSERT_EQ(ferry("info %s", n), 1);
  ASSERT_STREQ(out, "");
  snprintf(prefix, sizeof prefix, "ferry: info: %s: %s: ", n, code);
  ASSERT_ONE_ERROR_LINE(prefix, code);
  ASSERT_EQ(ferry("info --json %s", n), 1);
  ASSERT_ONE_ERROR_LINE(prefix, code);

  ASSERT_EQ(ferry("ls"), 0);
  line = ls_line(out, n);
  if (!line)
    TEST_FAIL("ls does not list %s:\n%s", n, out);
  snprintf(prefix, sizeof prefix, "error: %s: ", code);
  ASSERT_CONTAINS(line, prefix);

  ASSERT_EQ(ferry("ls --json"), 0);
  e = ls_json_entry(out, n);
  if (!e)
    TEST_FAIL("ls --json does not list %s:\n%s", n, out);
  snprintf(prefix, sizeof prefix, "\"error\":\"%s\",\"message\":\"", code);
  ASSERT_CONTAINS(e, prefix);
  ASSERT_TRUE(strstr(e, "\"size\"") == NULL);

  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_TRUE(!exists(path));
}

static void test_corrupt_header(void) {
  /* total_size: covered by the checksum */
  check_damaged("crc", 24, 0xa5, 8, "FERRY_EBADHDR");
  /* the magic number */
  check_damaged("magic", 0, 'X', 4, "FERRY_EBADHDR");
  /* a state word that is neither 0 nor ready */
  check_damaged("state", 8, 0x77, 4, "FERRY_EBADHDR");
  /* state 0 with a dead creator: half-initialised; must not wait */
  check_damaged("halfinit", 8, 0, 4, "FERRY_EBADHDR");
  /* the layout version */
  check_damaged("version", 12, 0x09, 2, "FERRY_EVERSION");
}

static void check_resized(const char *tag, off_t size, const char *code,
                          const char *msg) {
  char n[64], path[128], prefix[160];
  new_name(n, sizeof n, tag);
  shm_path(path, sizeof path, n);
  ASSERT_EQ(ferry("create %s --size 4K", n), 0);
  truncate_to(path, size);
  ASSERT_EQ(ferry("info %s", n), 1);
  snprintf(prefix, sizeof prefix, "ferry: info: %s: %s: ", n, code);
  ASSERT_ONE_ERROR_LINE(prefix, msg);
  ASSERT_EQ(ferry("ls"), 0);
  snprintf(prefix, sizeof prefix, "error: %s: ", code);
  ASSERT_CONTAINS(ls_line(out, n), prefix);
  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_TRUE(!exists(path));
}

static void test_truncated(void) {
  check_resized("trunc", 100, "FERRY_ESIZE", "100 bytes");
  check_resized("grown", 1 << 20, "FERRY_ESIZE", "FERRY_ESIZE");
  /* an empty object: a creator that has not set the size yet; ls and info
   * do not wait for it */
  check_resized("empty", 0, "FERRY_ETIMEDOUT", "still empty");
}

static void test_permission_denied(void) {
  char n[64], cmd[512], prefix[160], path[128];
  int rc;
  if (!test_is_root())
    test_skip("needs root to run the tool as another user");
  if (test_run("command -v setpriv", NULL, 0, NULL, 0,
               test_timeout_ms(10000)) != 0)
    test_skip("setpriv (util-linux) is not installed");
  if (access(FERRY_CLI_PATH, X_OK) != 0)
    test_skip("%s is not executable", FERRY_CLI_PATH);
  new_name(n, sizeof n, "perm");
  shm_path(path, sizeof path, n);
  ASSERT_EQ(ferry("create %s --size 4K", n), 0);

  snprintf(cmd, sizeof cmd,
           "exec setpriv --reuid=65534 --regid=65534 --clear-groups '%s' "
           "info %s",
           FERRY_CLI_PATH, n);
  rc = test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(20000));
  if (rc == 126 || rc == 127 || strncmp(err, "setpriv:", 8) == 0)
    test_skip("cannot run %s as uid 65534: %s", FERRY_CLI_PATH, err);
  ASSERT_EQ(rc, 1);
  snprintf(prefix, sizeof prefix, "ferry: info: %s: FERRY_EACCES: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "mode 0600");

  /* ls as that user: listed with the error, and ls succeeds */
  snprintf(cmd, sizeof cmd,
           "exec setpriv --reuid=65534 --regid=65534 --clear-groups '%s' ls",
           FERRY_CLI_PATH);
  ASSERT_EQ(
      test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(20000)),
      0);
  ASSERT_CONTAINS(ls_line(out, n), "error: FERRY_EACCES: ");

  /* rm as that user: /dev/shm is sticky, so it may not remove root's */
  snprintf(cmd, sizeof cmd,
           "exec setpriv --reuid=65534 --regid=65534 --clear-groups '%s' rm "
           "%s",
           FERRY_CLI_PATH, n);
  ASSERT_EQ(
      test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(20000)),
      1);
  snprintf(prefix, sizeof prefix, "ferry: rm: %s: FERRY_EACCES: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "FERRY_EACCES");
  ASSERT_TRUE(exists(path));

  ASSERT_EQ(ferry("rm %s", n), 0);
}

static void test_file_backed(void) {
  char seg[4200], sparse[4200], prefix[4300];
  struct stat st;
  new_file(seg, sizeof seg, "x.seg");
  new_file(sparse, sizeof sparse, "sparse.seg");

  ASSERT_EQ(ferry("create '%s' --size 64K", seg), 0);
  ASSERT_STREQ(err, "");
  ASSERT_EQ(stat(seg, &st), 0);
  ASSERT_GE(st.st_size, 65536 + 4096);
  ASSERT_EQ(st.st_mode & 07777, 0600);

  ASSERT_EQ(ferry("info '%s'", seg), 0);
  ASSERT_INFO(out, "kind", "file");
  ASSERT_INFO(out, "name", "x.seg");
  ASSERT_INFO(out, "os_name", seg);
  ASSERT_INFO(out, "data_size", "65536 (64.0K)");
  ASSERT_INFO(out, "flags", "0x0 (none)");
  ASSERT_EQ(ferry("info --json '%s'", seg), 0);
  ASSERT_CONTAINS(out, "\"kind\":\"file\"");
  ASSERT_CONTAINS(out, "\"sparse\":false");

  /* a file-backed segment is not a named one */
  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_TRUE(ls_line(out, "x.seg") == NULL);

  ASSERT_EQ(ferry("create '%s' --size 64K", seg), 1);
  snprintf(prefix, sizeof prefix, "ferry: create: %s: FERRY_EEXIST: ", seg);
  ASSERT_ONE_ERROR_LINE(prefix, "already exists");

  ASSERT_EQ(ferry("rm '%s'", seg), 0);
  ASSERT_STREQ(err, "");
  ASSERT_TRUE(!exists(seg));
  ASSERT_EQ(ferry("info '%s'", seg), 1);
  snprintf(prefix, sizeof prefix, "ferry: info: %s: FERRY_ENOENT: ", seg);
  ASSERT_ONE_ERROR_LINE(prefix, "does not exist");

  /* --sparse, --mode */
  ASSERT_EQ(ferry("create '%s' --size 1M --sparse --mode 0640", sparse), 0);
  ASSERT_EQ(ferry("info '%s'", sparse), 0);
  ASSERT_INFO(out, "flags", "0x10 (sparse)");
  ASSERT_INFO(out, "mode", "0640");
  ASSERT_EQ(stat(sparse, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0640);
  ASSERT_EQ(ferry("rm '%s'", sparse), 0);
  ASSERT_TRUE(!exists(sparse));

  /* in a directory that does not exist */
  ASSERT_EQ(ferry("create '%s/nodir/y.seg' --size 4K", test_tmpdir()), 1);
  ASSERT_ONE_ERROR_LINE("ferry: create: ", "FERRY_ENOENT");
}

static void test_rm_foreign_file(void) {
  char txt[4200], prefix[4300];
  FILE *f;
  new_file(txt, sizeof txt, "notes.txt");
  f = fopen(txt, "w");
  ASSERT_TRUE(f != NULL);
  fputs("hello", f);
  fclose(f);

  ASSERT_EQ(ferry("rm '%s'", txt), 1);
  snprintf(prefix, sizeof prefix, "ferry: rm: %s: FERRY_EBADHDR: ", txt);
  ASSERT_ONE_ERROR_LINE(prefix, "not a ferry segment");
  ASSERT_TRUE(exists(txt));

  ASSERT_EQ(ferry("info '%s'", txt), 1);
  snprintf(prefix, sizeof prefix, "ferry: info: %s: FERRY_ESIZE: ", txt);
  ASSERT_ONE_ERROR_LINE(prefix, "too small");

  /* a directory is not a segment either */
  ASSERT_EQ(ferry("info '%s'", test_tmpdir()), 1);
  ASSERT_ONE_ERROR_LINE("ferry: info: ", "FERRY_EINVAL");
  ASSERT_EQ(ferry("rm '%s'", test_tmpdir()), 1);
  ASSERT_ONE_ERROR_LINE("ferry: rm: ", "FERRY_EINVAL");
  ASSERT_TRUE(exists(test_tmpdir()));

  ASSERT_EQ(unlink(txt), 0);
}

static void test_rm_several(void) {
  char a[64], b[64], missing[64], prefix[160];
  new_name(a, sizeof a, "rma");
  new_name(b, sizeof b, "rmb");
  new_name(missing, sizeof missing, "rmmissing");
  ASSERT_EQ(ferry("create %s --size 4K", a), 0);
  ASSERT_EQ(ferry("create %s --size 4K", b), 0);

  /* the failure in the middle does not stop the others */
  ASSERT_EQ(ferry("rm %s %s %s", a, missing, b), 1);
  ASSERT_STREQ(out, "");
  snprintf(prefix, sizeof prefix, "ferry: rm: %s: FERRY_ENOENT: ", missing);
  ASSERT_ONE_ERROR_LINE(prefix, "does not exist");
  ASSERT_EQ(ferry("info %s", a), 1);
  ASSERT_CONTAINS(err, "FERRY_ENOENT");
  ASSERT_EQ(ferry("info %s", b), 1);
  ASSERT_CONTAINS(err, "FERRY_ENOENT");

  /* two failures: two lines */
  ASSERT_EQ(ferry("rm %s %s", a, b), 1);
  ASSERT_EQ(count_lines(err), 2);
}

/* Names in /dev/shm that ferry rejects are listed with the error, escaped
 * in JSON, and kept on one line in the table. */
static void test_ls_hostile_names(void) {
  char raw[64], path[128], esc[160];
  const char *e;
  int fd;
  snprintf(raw, sizeof raw, "t%ld-we\"ird\\na\x01me\n", (long)getpid());
  track_raw_name(raw);
  shm_path(path, sizeof path, raw);
  fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
  ASSERT_TRUE(fd >= 0);
  close(fd);

  ASSERT_EQ(ferry("ls --json"), 0);
  ASSERT_EQ(count_lines(out), 1);
  snprintf(esc, sizeof esc, "t%ld-we\\\"ird\\\\na\\u0001me\\n", (long)getpid());
  e = ls_json_entry(out, esc);
  if (!e)
    TEST_FAIL("ls --json lacks \"%s\":\n%s", esc, out);
  ASSERT_CONTAINS(e, "\"error\":\"FERRY_EINVAL\"");

  ASSERT_EQ(ferry("ls"), 0);
  snprintf(esc, sizeof esc, "t%ld-we\"ird\\na?me?", (long)getpid());
  ASSERT_CONTAINS(ls_line(out, esc), "error: FERRY_EINVAL: ");

  ASSERT_EQ(unlink(path), 0);
}

/* A FIFO named like a segment must not make ls hang (ferry opens with
 * O_NONBLOCK and refuses anything but a regular file). */
static void test_ls_fifo(void) {
  char raw[64], path[128];
  snprintf(raw, sizeof raw, "t%ld-fifo", (long)getpid());
  track_raw_name(raw);
  shm_path(path, sizeof path, raw);
  ASSERT_EQ(mkfifo(path, 0600), 0);
  run_timeout_ms = 5000;
  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_CONTAINS(ls_line(out, raw), "error: ");
  ASSERT_EQ(ferry("info %s", raw), 1);
  ASSERT_EQ(unlink(path), 0);
}

/* ---------------------------------------------------------------------- */
/* gc and stale segments                                                  */
/*                                                                        */
/* `ferry gc` without NAMEs judges every ferry segment on the machine, and */
/* segments made by `ferry create` count as stale as soon as nobody uses  */
/* them: other test programs' fixtures included. So these tests run gc    */
/* without NAMEs only with --dry-run, and remove only their own segments, */
/* named on the command line.                                             */

/* A process id that is not running: a helper that has exited and been
 * reaped. */
static long dead_pid(void) {
  long pid = test_spawn("exit", NULL);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(20000)), 0);
  return pid;
}

/* This process's start time in clock ticks (/proc/self/stat field 22), as
 * ferry records it for a creator. */
static uint64_t self_start_ticks(void) {
  char buf[1024];
  const char *p;
  unsigned long long v = 0;
  size_t n;
  int field;
  FILE *f = fopen("/proc/self/stat", "r");
  ASSERT_TRUE(f != NULL);
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')');
  ASSERT_TRUE(p != NULL);
  for (p += 2, field = 3; field < 22 && *p; p++)
    if (*p == ' ')
      field++;
  ASSERT_EQ(sscanf(p, "%llu", &v), 1);
  return v;
}

/* Makes /dev/shm/ferry.NAME as a creator that stopped before publishing
 * the header would leave it: SIZE zero bytes, but for the creator's pid
 * (header offset 64) and start time (72). */
static void write_half_initialised(const char *name, uint64_t size,
                                   uint64_t pid, uint64_t start) {
  char path[128];
  int fd;
  shm_path(path, sizeof path, name);
  fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_TRUE(fd >= 0);
  ASSERT_EQ(ftruncate(fd, (off_t)size), 0);
  ASSERT_EQ(pwrite(fd, &pid, 8, 64), 8);
  ASSERT_EQ(pwrite(fd, &start, 8, 72), 8);
  close(fd);
}

/* The creator_pid `ferry info` shows for NAME. */
static unsigned long long creator_of(const char *name) {
  ASSERT_EQ(ferry("info %s", name), 0);
  return strtoull(info_value(out, "creator_pid"), NULL, 10);
}

/* A stale segment is listed by --dry-run and left alone, then removed; a
 * segment whose creator lives, and one that a live process maps, are
 * never removed. */
static void test_gc(void) {
  char stale[64], alive[64], mapped[64], path[128], want[512];
  ferry_segment *seg = NULL, *map = NULL;
  unsigned long long pid;
  new_name(stale, sizeof stale, "gcstale");
  new_name(alive, sizeof alive, "gcalive");
  new_name(mapped, sizeof mapped, "gcmapped");
  ASSERT_EQ(ferry("create %s --size 4K", stale), 0);
  pid = creator_of(stale);
  /* created by this (live) process, and not even open any more */
  ASSERT_OK(
      ferry_segment_open(&seg, alive, FERRY_CREATE | FERRY_EXCL, 100, NULL));
  ferry_segment_close(seg);
  /* created by `ferry create` (dead), but mapped by this process */
  ASSERT_EQ(ferry("create %s --size 4K", mapped), 0);
  ASSERT_OK(ferry_segment_open(&map, mapped, 0, 0, NULL));

  /* every segment on the machine, but nothing removed */
  ASSERT_EQ(ferry("gc --dry-run"), 0);
  ASSERT_STREQ(err, "");
  snprintf(want, sizeof want, "would remove %s (creator pid %llu dead)\n",
           stale, pid);
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want, " %s ", alive);
  ASSERT_TRUE(strstr(out, want) == NULL);
  snprintf(want, sizeof want, " %s ", mapped);
  ASSERT_TRUE(strstr(out, want) == NULL);
  ASSERT_CONTAINS(out, "dry run: ");
  ASSERT_CONTAINS(out, " would be removed, ");
  shm_path(path, sizeof path, stale);
  ASSERT_TRUE(exists(path));

  ASSERT_EQ(ferry("gc --dry-run --json"), 0);
  ASSERT_EQ(count_lines(out), 1);
  ASSERT_TRUE(strncmp(out, "{\"dry_run\":true,\"removed\":[", 27) == 0);
  snprintf(want, sizeof want,
           "{\"name\":\"%s\",\"creator_pid\":%llu,\"half_initialised\":false,"
           "\"dead_peers\":0}",
           stale, pid);
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want,
           "{\"name\":\"%s\",\"reason\":\"creator pid %ld alive\"}", alive,
           (long)getpid());
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want,
           "{\"name\":\"%s\",\"reason\":\"mapped by pid %ld\"}", mapped,
           (long)getpid());
  ASSERT_CONTAINS(out, want);
  ASSERT_CONTAINS(out, ",\"kept\":[");
  ASSERT_CONTAINS(out, ",\"live\":[");
  ASSERT_CONTAINS(out, ",\"failed\":[");
  ASSERT_TRUE(exists(path));

  /* only the named ones; the stale one goes */
  ASSERT_EQ(ferry("gc --dry-run %s %s %s", stale, alive, mapped), 0);
  snprintf(want, sizeof want,
           "would remove %s (creator pid %llu dead)\n"
           "dry run: 1 would be removed, 2 live, 0 kept\n",
           stale, pid);
  ASSERT_STREQ(out, want);
  ASSERT_EQ(ferry("gc %s %s %s", stale, alive, mapped), 0);
  ASSERT_STREQ(err, "");
  snprintf(want, sizeof want,
           "removed %s (creator pid %llu dead)\n1 removed, 2 live, 0 kept\n",
           stale, pid);
  ASSERT_STREQ(out, want);
  ASSERT_TRUE(!exists(path));
  shm_path(path, sizeof path, alive);
  ASSERT_TRUE(exists(path));
  shm_path(path, sizeof path, mapped);
  ASSERT_TRUE(exists(path));

  /* nothing left to do: still success */
  ASSERT_EQ(ferry("gc %s %s --json", alive, mapped), 0);
  ASSERT_STREQ(err, "");
  snprintf(want, sizeof want,
           "{\"dry_run\":false,\"removed\":[],\"kept\":[],\"live\":["
           "{\"name\":\"%s\",\"reason\":\"creator pid %ld alive\"},"
           "{\"name\":\"%s\",\"reason\":\"mapped by pid %ld\"}],"
           "\"failed\":[]}\n",
           alive, (long)getpid(), mapped, (long)getpid());
  ASSERT_STREQ(out, want);

  /* once nothing maps it, the `ferry create` segment is stale too */
  ferry_segment_close(map);
  ASSERT_EQ(ferry("gc %s", mapped), 0);
  snprintf(want, sizeof want, "removed %s (creator pid ", mapped);
  ASSERT_TRUE(strncmp(out, want, strlen(want)) == 0);
  ASSERT_TRUE(!exists(path));

  /* a NAME that does not exist: one error line, exit 1 */
  ASSERT_EQ(ferry("gc %s %s", stale, alive), 1);
  snprintf(want, sizeof want, "ferry: gc: %s: FERRY_ENOENT: ", stale);
  ASSERT_ONE_ERROR_LINE(want, "does not exist");
  ASSERT_STREQ(out, "0 removed, 1 live, 0 kept, 1 failed\n");
  ASSERT_EQ(ferry("gc 'bad name'"), 1);
  ASSERT_ONE_ERROR_LINE("ferry: gc: bad name: FERRY_EINVAL: ", "FERRY_EINVAL");

  ASSERT_OK(ferry_segment_unlink(alive, 0));
}

/* Channels: kept while an attached process lives, removed once the
 * creator and every attached process are dead. */
static void test_gc_channels(void) {
  char used[64], dead[64], path[128], want[512];
  ferry_channel *rx = NULL;
  const char *args[3];
  unsigned long long pid;
  long p1, p2;
  new_name(used, sizeof used, "gcchused");
  new_name(dead, sizeof dead, "gcchdead");

  /* created by `ferry create`, now received from by this process */
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4K", used), 0);
  ASSERT_OK(ferry_channel_open(&rx, used, 0, FERRY_RECEIVER, NULL));
  ASSERT_EQ(ferry("gc --json %s", used), 0);
  snprintf(want, sizeof want,
           "\"live\":[{\"name\":\"%s\",\"reason\":\"receiver pid %ld "
           "alive\"}]",
           used, (long)getpid());
  ASSERT_CONTAINS(out, want);
  ASSERT_EQ(ferry("gc %s", used), 0);
  ASSERT_STREQ(out, "0 removed, 1 live, 0 kept\n");
  shm_path(path, sizeof path, used);
  ASSERT_TRUE(exists(path));
  /* detached: nobody is left */
  ferry_channel_close(rx);
  pid = creator_of(used);
  ASSERT_EQ(ferry("gc %s", used), 0);
  snprintf(want, sizeof want,
           "removed %s (creator pid %llu dead)\n1 removed, 0 live, 0 kept\n",
           used, pid);
  ASSERT_STREQ(out, want);
  ASSERT_TRUE(!exists(path));

  /* a sender and a receiver that died attached */
  ASSERT_EQ(ferry("create %s --channel mpsc --capacity 4K", dead), 0);
  pid = creator_of(dead);
  args[0] = dead;
  args[2] = NULL;
  args[1] = "receiver";
  p1 = test_spawn("attach", args);
  ASSERT_EQ(test_wait(p1, test_timeout_ms(20000)), 0);
  args[1] = "sender";
  p2 = test_spawn("attach", args);
  ASSERT_EQ(test_wait(p2, test_timeout_ms(20000)), 0);
  ASSERT_EQ(ferry("info %s", dead), 0);
  ASSERT_INFO(out, "peers", "2");
  ASSERT_EQ(ferry("gc --dry-run %s", dead), 0);
  snprintf(want, sizeof want,
           "would remove %s (creator pid %llu dead, 2 dead peers)\n", dead,
           pid);
  ASSERT_CONTAINS(out, want);
  ASSERT_EQ(ferry("gc --json %s", dead), 0);
  snprintf(want, sizeof want,
           "{\"dry_run\":false,\"removed\":[{\"name\":\"%s\",\"creator_pid\":"
           "%llu,\"half_initialised\":false,\"dead_peers\":2}],\"kept\":[],"
           "\"live\":[],\"failed\":[]}\n",
           dead, pid);
  ASSERT_STREQ(out, want);
  shm_path(path, sizeof path, dead);
  ASSERT_TRUE(!exists(path));
}

/* A creator that died before publishing the header: open-or-create (a
 * restart) fails at once with a message naming `ferry gc` and `ferry rm`,
 * and gc removes the segment, after which the restart succeeds. One still
 * being created by a live process is kept. */
static void test_gc_half_initialised(void) {
  char half[64], busy[64], path[128], want[512];
  ferry_segment *seg = NULL;
  ferry_segment_info info;
  long pid = dead_pid();
  new_name(half, sizeof half, "gchalf");
  new_name(busy, sizeof busy, "gcbusy");
  write_half_initialised(half, 8192, (uint64_t)pid, 12345);

  /* FERRY_EBADHDR, not a wait for the default 5 s and FERRY_ETIMEDOUT */
  ASSERT_ERR(ferry_segment_open(&seg, half, FERRY_CREATE, 4096, NULL),
             FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "half-initialised");
  ASSERT_CONTAINS(ferry_errmsg(), "`ferry gc`");
  ASSERT_CONTAINS(ferry_errmsg(), "`ferry rm`");
  ASSERT_EQ(ferry("info %s", half), 1);
  snprintf(want, sizeof want, "ferry: info: %s: FERRY_EBADHDR: ", half);
  ASSERT_ONE_ERROR_LINE(want, "ferry gc");

  ASSERT_EQ(ferry("gc --dry-run %s", half), 0);
  snprintf(want, sizeof want,
           "would remove %s (half-initialised, creator pid %ld dead)\n"
           "dry run: 1 would be removed, 0 live, 0 kept\n",
           half, pid);
  ASSERT_STREQ(out, want);
  shm_path(path, sizeof path, half);
  ASSERT_TRUE(exists(path));
  ASSERT_EQ(ferry("gc --json %s", half), 0);
  snprintf(want, sizeof want,
           "\"removed\":[{\"name\":\"%s\",\"creator_pid\":%ld,"
           "\"half_initialised\":true,\"dead_peers\":0}]",
           half, pid);
  ASSERT_CONTAINS(out, want);
  ASSERT_TRUE(!exists(path));

  /* the restart now creates the segment afresh */
  ASSERT_OK(ferry_segment_open(&seg, half, FERRY_CREATE, 4096, NULL));
  ASSERT_OK(ferry_segment_get_info(seg, &info, sizeof info));
  ASSERT_EQ(info.created, 1);
  ferry_segment_close(seg);
  ASSERT_OK(ferry_segment_unlink(half, 0));

  /* being created by a live process (this one): kept, never waited for */
  write_half_initialised(busy, 8192, (uint64_t)getpid(), self_start_ticks());
  ASSERT_EQ(ferry("gc %s", busy), 0);
  snprintf(want, sizeof want, "kept %s (FERRY_ETIMEDOUT: ", busy);
  ASSERT_TRUE(strncmp(out, want, strlen(want)) == 0);
  ASSERT_CONTAINS(out, "still being initialised");
  ASSERT_CONTAINS(out, "`ferry rm`");
  ASSERT_CONTAINS(out, "\n0 removed, 0 live, 1 kept\n");
  shm_path(path, sizeof path, busy);
  ASSERT_TRUE(exists(path));
  ASSERT_EQ(unlink(path), 0);
}

/* A stale segment whose header is whole simply opens again: a restart
 * with open-or-create gets the data left behind. */
static void test_restart_stale(void) {
  char n[64];
  ferry_segment *seg = NULL;
  ferry_segment_info info;
  new_name(n, sizeof n, "restart");
  ASSERT_EQ(ferry("create %s --size 4K", n), 0);
  ASSERT_OK(ferry_segment_open(&seg, n, 0, 0, NULL));
  memcpy(ferry_segment_data(seg), "left behind", 12);
  ferry_segment_close(seg);

  ASSERT_OK(ferry_segment_open(&seg, n, FERRY_CREATE, 4096, NULL));
  ASSERT_OK(ferry_segment_get_info(seg, &info, sizeof info));
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.creator_alive, 0);
  ASSERT_STREQ((const char *)ferry_segment_data(seg), "left behind");
  ferry_segment_close(seg);
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* What gc cannot judge safely, it keeps and reports: damaged headers,
 * foreign or truncated objects, a channel whose own header is broken. */
static void test_gc_keeps_damaged(void) {
  char magic[64], version[64], small[64], empty[64], chan[64], path[128];
  char want[256];
  const char *line;
  new_name(magic, sizeof magic, "gcmagic");
  new_name(version, sizeof version, "gcversion");
  new_name(small, sizeof small, "gcsmall");
  new_name(empty, sizeof empty, "gcempty");
  new_name(chan, sizeof chan, "gcchan");
  ASSERT_EQ(ferry("create %s --size 4K", magic), 0);
  shm_path(path, sizeof path, magic);
  poke(path, 0, 'X', 4);
  ASSERT_EQ(ferry("create %s --size 4K", version), 0);
  shm_path(path, sizeof path, version);
  poke(path, 12, 0x09, 2);
  ASSERT_EQ(ferry("create %s --size 4K", small), 0);
  shm_path(path, sizeof path, small);
  truncate_to(path, 100);
  ASSERT_EQ(ferry("create %s --size 4K", empty), 0);
  shm_path(path, sizeof path, empty);
  truncate_to(path, 0);
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4K", chan), 0);
  shm_path(path, sizeof path, chan);
  poke(path, 4096, 'X', 4); /* the channel header's magic */

  ASSERT_EQ(ferry("gc %s %s %s %s %s", magic, version, small, empty, chan), 0);
  ASSERT_STREQ(err, "");
  ASSERT_EQ(count_lines(out), 6);
  snprintf(want, sizeof want, "kept %s (FERRY_EBADHDR: ", magic);
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want, "kept %s (FERRY_EVERSION: ", version);
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want, "kept %s (FERRY_ESIZE: ", small);
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want, "kept %s (FERRY_ETIMEDOUT: ", empty);
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want, "kept %s (FERRY_EBADHDR: ", chan);
  ASSERT_CONTAINS(out, want);
  ASSERT_CONTAINS(out, "\n0 removed, 0 live, 5 kept\n");

  ASSERT_EQ(ferry("gc --json %s", magic), 0);
  snprintf(want, sizeof want,
           "\"kept\":[{\"name\":\"%s\",\"error\":\"FERRY_EBADHDR\","
           "\"message\":\"",
           magic);
  ASSERT_CONTAINS(out, want);

  /* without NAMEs (dry run) they are reported the same way */
  ASSERT_EQ(ferry("gc --dry-run"), 0);
  snprintf(want, sizeof want, "kept %s ", magic);
  line = strstr(out, want);
  if (!line)
    TEST_FAIL("gc --dry-run does not report %s:\n%s", magic, out);
  ASSERT_CONTAINS(line, "(FERRY_EBADHDR: ");

  /* all still there; rm removes them */
  ASSERT_EQ(ferry("rm %s %s %s %s %s", magic, version, small, empty, chan), 0);
}

/* As a user who may open a stale segment (mode 0666) but not remove it
 * from the sticky /dev/shm: the removal fails, exit 1, one error line. A
 * segment that user may not open (0600) is kept and reported. */
static void test_gc_permission(void) {
  char open_to_all[64], private_[64], cmd[512], want[256], path[128];
  int rc;
  if (!test_is_root())
    test_skip("needs root to run the tool as another user");
  if (test_run("command -v setpriv", NULL, 0, NULL, 0,
               test_timeout_ms(10000)) != 0)
    test_skip("setpriv (util-linux) is not installed");
  new_name(open_to_all, sizeof open_to_all, "gcperm");
  new_name(private_, sizeof private_, "gcpriv");
  ASSERT_EQ(ferry("create %s --size 4K --mode 0666", open_to_all), 0);
  ASSERT_EQ(ferry("create %s --size 4K", private_), 0);
  snprintf(cmd, sizeof cmd,
           "exec setpriv --reuid=65534 --regid=65534 --clear-groups '%s' gc "
           "%s %s",
           FERRY_CLI_PATH, open_to_all, private_);
  rc = test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(20000));
  if (rc == 126 || rc == 127 || strncmp(err, "setpriv:", 8) == 0)
    test_skip("cannot run %s as uid 65534: %s", FERRY_CLI_PATH, err);
  ASSERT_EQ(rc, 1);
  snprintf(want, sizeof want, "ferry: gc: %s: FERRY_EACCES: ", open_to_all);
  ASSERT_ONE_ERROR_LINE(want, "FERRY_EACCES");
  snprintf(want, sizeof want, "kept %s (FERRY_EACCES: ", private_);
  ASSERT_CONTAINS(out, want);
  ASSERT_CONTAINS(out, "\n0 removed, 0 live, 1 kept, 1 failed\n");
  shm_path(path, sizeof path, open_to_all);
  ASSERT_TRUE(exists(path));
  ASSERT_EQ(ferry("gc %s %s", open_to_all, private_), 0);
  ASSERT_CONTAINS(out, "2 removed, 0 live, 0 kept\n");
}

/* ---- helper roles ---- */

static int role_exit(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return 0;
}

/* argv: channel, "sender" or "receiver": attach, then exit without
 * detaching, as a crashed process would (_exit: nothing runs at exit, and
 * the leak checker does not report the handle left open on purpose). */
static int role_attach(int argc, char **argv) {
  ferry_channel *ch = NULL;
  (void)argc;
  ASSERT_OK(ferry_channel_open(
      &ch, argv[0], 0,
      strcmp(argv[1], "sender") == 0 ? FERRY_SENDER : FERRY_RECEIVER, NULL));
  fflush(NULL);
  _exit(0);
}

/* ---------------------------------------------------------------------- */
/* Channels: create, info, send, recv, demo                               */

/* Runs a shell command line (a group, so that the harness's redirections
 * apply to all of it) with $F set to the ferry binary. */
static int shell(int64_t timeout_ms, const char *fmt, ...) {
  char body[8192], cmd[9000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "{ F='%s'; %s; }", FERRY_CLI_PATH, body);
  cleanup_init();
  return test_run(cmd, out, sizeof out, err, sizeof err,
                  test_timeout_ms(timeout_ms));
}

static int same_files(const char *a, const char *b) {
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "cmp '%s' '%s'", a, b);
  return test_run(cmd, NULL, 0, NULL, 0, test_timeout_ms(60000)) == 0;
}

static void write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fwrite(data, 1, len, f), (long long)len);
  ASSERT_EQ(fclose(f), 0);
}

/* `ferry recv NAME RECV_OPTS > OUTF` and `ferry send NAME SEND_OPTS < INF`
 * at the same time; their exit codes in *SRC and *RRC, their stderr in
 * err[]. With WAIT_ATTACH, send starts only once recv is attached (a
 * broadcast channel delivers only to receivers attached at the time). */
static void round_trip(const char *name, const char *inf, const char *outf,
                       const char *send_opts, const char *recv_opts,
                       int wait_attach, int64_t timeout_ms, int *src,
                       int *rrc) {
  int rc =
      shell(timeout_ms,
            "\"$F\" recv %s %s >'%s' & p=$!; "
            "if [ %d = 1 ]; then i=0; until \"$F\" info --json %s | grep -q "
            "'\"role\":\"receiver\"';"
            " do i=$((i+1)); [ $i -gt 1000 ] && break; sleep 0.01; done; fi; "
            "\"$F\" send %s %s <'%s'; s=$?; wait $p; r=$?; "
            "echo \"send=$s recv=$r\"",
            name, recv_opts, outf, wait_attach, name, name, send_opts, inf);
  ASSERT_EQ(rc, 0);
  if (sscanf(out, "send=%d recv=%d", src, rrc) != 2)
    TEST_FAIL("unexpected output \"%s\", stderr \"%s\"", out, err);
}

#define ASSERT_ROUND_TRIP_OK(name, inf, outf, sopts, ropts, wait)              \
  do {                                                                         \
    int s_, r_;                                                                \
    round_trip((name), (inf), (outf), (sopts), (ropts), (wait), 60000, &s_,    \
               &r_);                                                           \
    if (s_ != 0 || r_ != 0)                                                    \
      TEST_FAIL("send exited %d, recv %d: %s", s_, r_, err);                   \
    ASSERT_STREQ(err, "");                                                     \
    if (!same_files((inf), (outf)))                                            \
      TEST_FAIL("%s and %s differ", (inf), (outf));                            \
  } while (0)

static void check_channel_info(const char *n, const char *opts,
                               const char *kind, const char *overrun,
                               const char *capacity, const char *max_msg) {
  char want[256];
  ASSERT_EQ(ferry("create %s %s", n, opts), 0);
  ASSERT_STREQ(out, "");
  ASSERT_STREQ(err, "");

  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_STREQ(err, "");
  ASSERT_INFO(out, "name", n); /* the segment's fields come first */
  ASSERT_INFO(out, "payload", "channel");
  ASSERT_INFO(out, "channel", kind);
  snprintf(want, sizeof want, "%s (", overrun);
  ASSERT_TRUE(strncmp(info_value(out, "overrun"), want, strlen(want)) == 0);
  ASSERT_INFO(out, "capacity", capacity);
  ASSERT_INFO(out, "max_msg", max_msg);
  ASSERT_INFO(out, "used", "0 (0B)");
  ASSERT_INFO(out, "sent", "0");
  ASSERT_INFO(out, "received", "0");
  ASSERT_INFO(out, "lost", "0");
  ASSERT_INFO(out, "closed", "no");
  ASSERT_INFO(out, "peers", "0");

  ASSERT_EQ(ferry("info --json %s", n), 0);
  ASSERT_EQ(count_lines(out), 1);
  ASSERT_CONTAINS(out, "\"payload\":\"channel\"");
  snprintf(want, sizeof want, ",\"channel\":{\"kind\":\"%s\",\"overrun\":%s,",
           kind, strcmp(overrun, "yes") == 0 ? "true" : "false");
  ASSERT_CONTAINS(out, want);
  snprintf(want, sizeof want, "\"capacity\":%.*s,", (int)strcspn(capacity, " "),
           capacity);
  ASSERT_CONTAINS(out, want);
  ASSERT_CONTAINS(out, "\"used\":0,\"sent\":0,\"received\":0,\"lost\":0,"
                       "\"closed\":false,\"peers\":[]}}\n");
}

static void test_channel_create(void) {
  char a[64], b[64], c[64], d[64], e[64];
  new_name(a, sizeof a, "spsc");
  new_name(b, sizeof b, "mpsc");
  new_name(c, sizeof c, "bcast");
  new_name(d, sizeof d, "bover");
  new_name(e, sizeof e, "round");
  /* default capacity 1M; max_msg = capacity / 2 - 8 (16 for broadcast) */
  check_channel_info(a, "--channel spsc", "spsc", "no", "1048576 (1.0M)",
                     "524280 (512.0K)");
  check_channel_info(b, "--channel=mpsc --capacity 64K --max-peers 8", "mpsc",
                     "no", "65536 (64.0K)", "32760 (32.0K)");
  check_channel_info(c, "--channel broadcast --capacity 4K --mode 0640",
                     "broadcast", "no", "4096 (4.0K)", "2032 (2.0K)");
  ASSERT_EQ(ferry("info %s", c), 0);
  ASSERT_INFO(out, "mode", "0640");
  check_channel_info(d, "--channel broadcast --overrun --capacity 2M",
                     "broadcast", "yes", "2097152 (2.0M)", "1048560 (1.0M)");
  /* the capacity is rounded up to a power of two, at least 4K */
  check_channel_info(e, "--channel spsc --capacity 5000", "spsc", "no",
                     "8192 (8.0K)", "4088 (4.0K)");

  /* an existing name */
  ASSERT_EQ(ferry("create %s --channel mpsc", a), 1);
  ASSERT_ONE_ERROR_LINE("ferry: create: ", "FERRY_EEXIST");
  ASSERT_EQ(ferry("rm %s %s %s %s %s", a, b, c, d, e), 0);

  /* a plain segment still has no channel section */
  ASSERT_EQ(ferry("create %s --size 4K", a), 0);
  ASSERT_EQ(ferry("info %s", a), 0);
  ASSERT_TRUE(info_value(out, "channel") == NULL);
  ASSERT_EQ(ferry("info --json %s", a), 0);
  ASSERT_TRUE(strstr(out, "\"channel\"") == NULL);
  ASSERT_STREQ(out + strlen(out) - 2, "}\n");
  ASSERT_EQ(ferry("rm %s", a), 0);
}

static void check_bad_create(const char *args, const char *msg) {
  char n[64], path[128];
  new_name(n, sizeof n, "badch");
  shm_path(path, sizeof path, n);
  ASSERT_EQ(ferry("create %s %s", n, args), 2);
  ASSERT_STREQ(out, "");
  ASSERT_ONE_ERROR_LINE("ferry: create: ", msg);
  ASSERT_CONTAINS(err, "(see 'ferry create --help')");
  ASSERT_TRUE(!exists(path));
}

static void test_channel_create_usage(void) {
  char n[64];
  check_bad_create("--channel", "option '--channel' needs a value");
  check_bad_create("--channel fifo", "bad channel kind 'fifo'");
  check_bad_create("--channel SPSC", "bad channel kind");
  check_bad_create("--channel ''", "bad channel kind");
  check_bad_create("--capacity 64K", "--capacity needs --channel");
  check_bad_create("--size 4K --capacity 64K", "--capacity needs --channel");
  check_bad_create("--overrun --size 4K", "--overrun needs --channel");
  check_bad_create("--max-peers 4 --size 4K", "--max-peers needs --channel");
  check_bad_create("--channel spsc --size 4K", "--size is for segments");
  check_bad_create("--channel spsc --overrun",
                   "--overrun applies to broadcast");
  check_bad_create("--channel mpsc --overrun",
                   "--overrun applies to broadcast");
  check_bad_create("--channel broadcast --capacity 0", "bad capacity '0'");
  check_bad_create("--channel broadcast --capacity 1.5M", "bad capacity");
  check_bad_create("--channel spsc --capacity 4KB", "bad capacity");
  check_bad_create("--channel spsc --capacity", "needs a value");
  check_bad_create("--channel spsc --max-peers 1", "bad peer count '1'");
  check_bad_create("--channel spsc --max-peers 0", "bad peer count");
  check_bad_create("--channel spsc --max-peers 257", "bad peer count");
  check_bad_create("--channel spsc --max-peers x", "bad peer count");
  check_bad_create("--channel spsc --sparse", "--sparse applies to file");
  check_bad_create("--channel spsc --overrun=1", "takes no value");
  check_bad_create("--channel spsc --mode 0999", "bad mode");
  /* a path: channels are never file-backed */
  ASSERT_EQ(ferry("create '%s/ch' --channel spsc", test_tmpdir()), 2);
  ASSERT_ONE_ERROR_LINE("ferry: create: a channel cannot be file-backed",
                        "--help");
  /* a capacity beyond the library's limit: an error from the library */
  new_name(n, sizeof n, "huge");
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 16G", n), 1);
  ASSERT_ONE_ERROR_LINE("ferry: create: ", "FERRY_EINVAL");
  ASSERT_EQ(ferry("create --channel spsc"), 2);
  ASSERT_ONE_ERROR_LINE("ferry: create: missing NAME", "--help");
}

/* A channel whose own header is damaged: info still shows the segment,
 * then fails with one line; send and recv refuse it. Never a signal. */
static void test_channel_damaged(void) {
  char n[64], path[128], prefix[256];
  new_name(n, sizeof n, "damaged");
  shm_path(path, sizeof path, n);
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4K", n), 0);
  /* the channel header sits at the data offset, 4096: break its magic */
  poke(path, 4096, 'X', 4);

  ASSERT_EQ(ferry("info %s", n), 1);
  ASSERT_INFO(out, "payload", "channel");
  ASSERT_INFO(out, "state", "0x59444552 (ready)");
  ASSERT_TRUE(info_value(out, "capacity") == NULL);
  snprintf(prefix, sizeof prefix,
           "ferry: info: %s: FERRY_EBADHDR: the channel: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "magic");
  ASSERT_EQ(ferry("info --json %s", n), 1);
  ASSERT_EQ(count_lines(out), 1);
  ASSERT_CONTAINS(out, ",\"channel\":{\"error\":\"FERRY_EBADHDR\",\"message\":"
                       "\"");
  ASSERT_STREQ(out + strlen(out) - 3, "}}\n");
  ASSERT_EQ(ferry("recv %s --timeout 1", n), 1);
  ASSERT_ONE_ERROR_LINE("ferry: recv: ", "FERRY_EBADHDR");
  ASSERT_EQ(shell(20000, "echo hi | \"$F\" send %s --timeout 1", n), 1);
  ASSERT_ONE_ERROR_LINE("ferry: send: ", "FERRY_EBADHDR");
  ASSERT_EQ(ferry("rm %s", n), 0);

  /* ring positions that cannot be right: the receiver's head (channel
   * header offset 128) far beyond the tail */
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4K", n), 0);
  poke(path, 4096 + 128, 0x7f, 8);
  ASSERT_EQ(ferry("recv %s --timeout 1", n), 1);
  ASSERT_ONE_ERROR_LINE("ferry: recv: ", "FERRY_ECORRUPT");
  ASSERT_EQ(ferry("info %s", n), 0); /* inspection still works */
  ASSERT_INFO(out, "channel", "spsc");
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* info shows the processes attached to a channel: here, this one. */
static void test_channel_info_peers(void) {
  char n[64], want[256];
  ferry_channel *ch = NULL;
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  const char *p;
  int i;
  new_name(n, sizeof n, "peers");
  o.kind = FERRY_CHANNEL_MPSC;
  o.capacity = 8192;
  ASSERT_OK(
      ferry_channel_open(&ch, n, FERRY_CREATE | FERRY_EXCL, FERRY_SENDER, &o));
  for (i = 0; i < 3; i++)
    ASSERT_OK(ferry_channel_send(ch, "hello", 5, 0));

  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "channel", "mpsc");
  ASSERT_INFO(out, "sent", "3");
  ASSERT_INFO(out, "received", "0");
  ASSERT_INFO(out, "used", "48 (48B)"); /* 3 x (8-byte header + 8) */
  ASSERT_INFO(out, "peers", "1");
  ASSERT_CONTAINS(out, "  PID ");
  snprintf(want, sizeof want, "\n  %ld ", (long)getpid());
  p = strstr(out, want);
  if (!p)
    TEST_FAIL("no peer line for pid %ld:\n%s", (long)getpid(), out);
  ASSERT_CONTAINS(p, " sender ");
  ASSERT_CONTAINS(p, " yes ");
  ASSERT_CONTAINS(p, " 3 ");

  ASSERT_EQ(ferry("info --json %s", n), 0);
  snprintf(want, sizeof want,
           "\"peers\":[{\"pid\":%ld,\"role\":\"sender\",\"alive\":true,"
           "\"msgs\":3,\"lost\":0}]}}",
           (long)getpid());
  ASSERT_CONTAINS(out, want);
  ASSERT_CONTAINS(out, "\"sent\":3,\"received\":0,");

  /* ferry recv drains it once the stream is closed */
  ASSERT_OK(ferry_channel_close_send(ch));
  ASSERT_EQ(ferry("recv %s", n), 0);
  ASSERT_STREQ(out, "hellohellohello");
  ASSERT_STREQ(err, "");
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "received", "3");
  ASSERT_INFO(out, "closed", "yes");
  ASSERT_INFO(out, "used", "0 (0B)");
  ferry_channel_close(ch);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "peers", "0");
  ASSERT_INFO(out, "sent", "3"); /* departed peers are counted */
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* Text: empty lines, a line longer than a message, CR LF, UTF-8, and no
 * newline at the end. */
static void write_text(const char *path) {
  char longline[10002], text[12000];
  size_t len;
  memset(longline, 'x', 10000);
  longline[10000] = '\0';
  len = (size_t)snprintf(text, sizeof text,
                         "a\n\nb\n\n\n%s\ncr lf\r\n\xc3\xa9t\xc3\xa9\n\tlast",
                         longline);
  write_file(path, text, len);
}

/* One message per line, the newline included: the text round trip. */
static void test_send_recv_text(void) {
  char n[64], in[4200], outf[4200];
  new_name(n, sizeof n, "text");
  new_file(in, sizeof in, "text.in");
  new_file(outf, sizeof outf, "text.out");
  write_text(in);

  /* 4K: the largest message is 2040 bytes, so the long line (10001 bytes
   * with its newline) goes as 5 messages */
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4K", n), 0);
  ASSERT_ROUND_TRIP_OK(n, in, outf, "", "", 0);
  ASSERT_EQ(ferry("info %s", n), 0);
  /* a, "", b, "", "", 5 x long, cr lf, ete, last */
  ASSERT_INFO(out, "sent", "13");
  ASSERT_INFO(out, "received", "13");
  ASSERT_INFO(out, "closed", "yes");
  ASSERT_INFO(out, "peers", "0");
  ASSERT_EQ(ferry("rm %s", n), 0);

  /* the same through a broadcast channel (mpsc: test_send_recv_text_mpsc) */
  ASSERT_EQ(ferry("create %s --channel broadcast --capacity 4K", n), 0);
  ASSERT_ROUND_TRIP_OK(n, in, outf, "--timeout 20", "--timeout=20", 1);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "13");
  ASSERT_INFO(out, "received", "13");
  ASSERT_EQ(ferry("rm %s", n), 0);

  /* empty input: no message, and the stream still ends */
  write_file(in, "", 0);
  ASSERT_EQ(ferry("create %s --channel spsc", n), 0);
  ASSERT_ROUND_TRIP_OK(n, in, outf, "", "", 0);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "0");
  ASSERT_INFO(out, "closed", "yes");

  /* a trailing newline only */
  write_file(in, "\n", 1);
  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_EQ(ferry("create %s --channel spsc", n), 0);
  ASSERT_ROUND_TRIP_OK(n, in, outf, "", "", 0);
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* Line-mode round trip through an MPSC channel with a 4K ring and long
 * lines: the receiver skips padding at the ring's end many times. */
static void test_send_recv_text_mpsc(void) {
  char n[64], in[4200], outf[4200];
  int s, r;
  new_name(n, sizeof n, "textmp");
  new_file(in, sizeof in, "textmp.in");
  new_file(outf, sizeof outf, "textmp.out");
  write_text(in);
  ASSERT_EQ(ferry("create %s --channel mpsc --capacity 4K", n), 0);
  round_trip(n, in, outf, "--timeout 3", "", 0, 60000, &s, &r);
  if (s != 0 || r != 0)
    TEST_FAIL("send exited %d, recv %d: %s", s, r, err);
  ASSERT_STREQ(err, "");
  ASSERT_TRUE(same_files(in, outf));
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "13");
  ASSERT_INFO(out, "received", "13");
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* Binary data in fixed-size chunks; every byte value, NULs and newlines
 * included. */
static void test_send_recv_chunks(void) {
  char n[64], in[4200], outf[4200];
  size_t len = (1u << 20) + 13, i;
  unsigned char *data = (unsigned char *)malloc(len);
  ASSERT_TRUE(data != NULL);
  for (i = 0; i < len; i++)
    data[i] = (unsigned char)(i * 7 + (i >> 11));
  new_name(n, sizeof n, "chunks");
  new_file(in, sizeof in, "bin.in");
  new_file(outf, sizeof outf, "bin.out");
  write_file(in, data, len);
  free(data);

  ASSERT_EQ(ferry("create %s --channel spsc --capacity 64K", n), 0);
  ASSERT_ROUND_TRIP_OK(n, in, outf, "--chunk 4K", "", 0);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "257"); /* 256 x 4096, then 13 */
  ASSERT_INFO(out, "received", "257");
  ASSERT_EQ(ferry("rm %s", n), 0);

  /* a chunk of the largest message size, and an odd one */
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 64K", n), 0);
  ASSERT_ROUND_TRIP_OK(n, in, outf, "--chunk 32760", "", 0);
  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_EQ(ferry("create %s --channel mpsc --capacity 64K", n), 0);
  ASSERT_ROUND_TRIP_OK(n, in, outf, "--chunk=1", "", 0);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "1048589");

  /* larger than the largest message: an error, and nothing sent */
  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 64K", n), 0);
  ASSERT_EQ(shell(20000, "\"$F\" send %s --chunk 32761 <'%s'", n, in), 1);
  ASSERT_ONE_ERROR_LINE("ferry: send: ", "FERRY_EMSGSIZE: --chunk 32761");
  ASSERT_CONTAINS(err, "32760 bytes");
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "0");
  ASSERT_INFO(out, "closed", "no");
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* Several senders of an mpsc channel: --keep-open, then an empty input
 * ends the stream. Each sender's lines arrive in its order. */
static void test_send_recv_mpsc(void) {
  char n[64], a[4200], b[4200], outf[4200];
  int rc;
  new_name(n, sizeof n, "many");
  new_file(a, sizeof a, "a.in");
  new_file(b, sizeof b, "b.in");
  new_file(outf, sizeof outf, "ab.out");
  ASSERT_EQ(shell(20000,
                  "seq 1 3000 | sed 's/^/A/' >'%s'; "
                  "seq 1 3000 | sed 's/^/B/' >'%s'",
                  a, b),
            0);
  ASSERT_EQ(ferry("create %s --channel mpsc --capacity 8K", n), 0);
  rc = shell(60000,
             "\"$F\" recv %s >'%s' & p=$!; "
             "\"$F\" send %s --keep-open <'%s' & q=$!; "
             "\"$F\" send %s --keep-open <'%s'; s1=$?; wait $q; s2=$?; "
             "\"$F\" send %s </dev/null; s3=$?; wait $p; r=$?; "
             "echo \"$s1 $s2 $s3 $r\"; "
             "grep '^A' '%s' | cmp - '%s' && grep '^B' '%s' | cmp - '%s' && "
             "[ $(wc -l <'%s') = 6000 ]",
             n, outf, n, a, n, b, n, outf, a, outf, b, outf);
  ASSERT_STREQ(out, "0 0 0 0\n");
  ASSERT_STREQ(err, "");
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "6000");
  ASSERT_INFO(out, "received", "6000");
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* Broadcast with --overrun: a receiver that falls behind loses messages,
 * and says so: never a silent loss.
 * A lapped receiver catches up; its losses are counted exactly. */
static void test_send_recv_overrun(void) {
  char n[64], in[4200], outf[4200];
  int src, rrc;
  new_name(n, sizeof n, "overrun");
  new_file(in, sizeof in, "over.in");
  new_file(outf, sizeof outf, "over.out");
  ASSERT_EQ(shell(20000, "seq 1 200000 >'%s'", in), 0);
  ASSERT_EQ(ferry("create %s --channel broadcast --overrun --capacity 4K", n),
            0);
  /* recv writes into a pipe that is not read for a while */
  ASSERT_EQ(shell(60000,
                  "{ \"$F\" recv %s; echo $? >'%s.rc'; } | "
                  "{ sleep 1; cat >'%s'; } & p=$!; "
                  "i=0; until \"$F\" info --json %s | grep -q "
                  "'\"role\":\"receiver\"'; do "
                  "i=$((i+1)); [ $i -gt 1000 ] && break; sleep 0.01; done; "
                  "\"$F\" send %s <'%s'; s=$?; wait $p; "
                  "echo \"send=$s recv=$(cat '%s.rc')\"; rm -f '%s.rc'",
                  n, outf, outf, n, n, in, outf, outf),
            0);
  if (sscanf(out, "send=%d recv=%d", &src, &rrc) != 2)
    TEST_FAIL("unexpected output \"%s\"", out);
  ASSERT_EQ(src, 0);
  if (rrc == 0) {
    /* it kept up after all: then everything arrived */
    ASSERT_STREQ(err, "");
    ASSERT_TRUE(same_files(in, outf));
  } else {
    unsigned long long lost = 0, received;
    const char *p;
    ASSERT_EQ(rrc, 1);
    ASSERT_ONE_ERROR_LINE("ferry: recv: ", "FERRY_EOVERRUN: ");
    p = strstr(err, "FERRY_EOVERRUN: ");
    ASSERT_EQ(sscanf(p, "FERRY_EOVERRUN: %llu", &lost), 1);
    ASSERT_GT(lost, 0);
    ASSERT_EQ(ferry("info %s", n), 0);
    ASSERT_INFO(out, "sent", "200000");
    received = strtoull(info_value(out, "received"), NULL, 10);
    ASSERT_UEQ(received + lost, 200000);
    ASSERT_UEQ(strtoull(info_value(out, "lost"), NULL, 10), lost);
  }
  ASSERT_EQ(ferry("rm %s", n), 0);
}

/* A big file, byte for byte, in lines (the default) and in chunks. */
static void test_send_recv_big(void) {
  char n[64], in[4200], outf[4200];
  /* 300 MB; under sanitizers (FERRY_TEST_TIMEOUT_MULTIPLIER > 1) 300 MB
   * still fits the time budget, so the size is the same everywhere. */
  const size_t total = 300000000;
  size_t done = 0;
  uint64_t x = 0x9e3779b97f4a7c15ull;
  unsigned char *buf = (unsigned char *)malloc(1 << 20);
  FILE *f;
  ASSERT_TRUE(buf != NULL);
  new_name(n, sizeof n, "big");
  new_file(in, sizeof in, "big.in");
  new_file(outf, sizeof outf, "big.out");
  /* deterministic pseudo-random bytes (xorshift64*) */
  f = fopen(in, "wb");
  ASSERT_TRUE(f != NULL);
  while (done < total) {
    size_t k, m = total - done < (1u << 20) ? total - done : (1u << 20);
    for (k = 0; k + 8 <= m; k += 8) {
      uint64_t v;
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
      v = x * 0x2545f4914f6cdd1dull;
      memcpy(buf + k, &v, 8);
    }
    for (; k < m; k++)
      buf[k] = (unsigned char)k;
    ASSERT_EQ(fwrite(buf, 1, m, f), (long long)m);
    done += m;
  }
  ASSERT_EQ(fclose(f), 0);
  free(buf);

  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4M", n), 0);
  {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ASSERT_ROUND_TRIP_OK(n, in, outf, "", "", 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("  300 MB in lines: %.0f MB/s\n",
           300.0 / ((double)(b.tv_sec - a.tv_sec) +
                    (double)(b.tv_nsec - a.tv_nsec) / 1e9));
  }
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", info_value(out, "received"));
  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_EQ(unlink(outf), 0);

  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4M", n), 0);
  {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ASSERT_ROUND_TRIP_OK(n, in, outf, "--chunk 1M", "", 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("  300 MB in 1 MiB chunks: %.0f MB/s\n",
           300.0 / ((double)(b.tv_sec - a.tv_sec) +
                    (double)(b.tv_nsec - a.tv_nsec) / 1e9));
  }
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "sent", "287"); /* ceil(300000000 / 1048576) */
  ASSERT_EQ(ferry("rm %s", n), 0);
  ASSERT_EQ(unlink(outf), 0);
  ASSERT_EQ(unlink(in), 0);
}

static void test_send_recv_errors(void) {
  char n[64], seg[64], in[4200], prefix[256];
  ferry_channel *ch = NULL;
  new_name(n, sizeof n, "errs");
  new_name(seg, sizeof seg, "plain");
  new_file(in, sizeof in, "errs.in");

  /* no channel */
  ASSERT_EQ(ferry("recv %s", n), 1);
  snprintf(prefix, sizeof prefix, "ferry: recv: %s: FERRY_ENOENT: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "does not exist");
  ASSERT_EQ(ferry("send %s", n), 1);
  snprintf(prefix, sizeof prefix, "ferry: send: %s: FERRY_ENOENT: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "does not exist");

  /* a segment that is not a channel */
  ASSERT_EQ(ferry("create %s --size 4K", seg), 0);
  ASSERT_EQ(ferry("recv %s", seg), 1);
  ASSERT_ONE_ERROR_LINE("ferry: recv: ", "FERRY_EINVAL: ");
  ASSERT_CONTAINS(err, "not a channel");
  ASSERT_EQ(ferry("send %s", seg), 1);
  ASSERT_CONTAINS(err, "not a channel");
  ASSERT_EQ(ferry("rm %s", seg), 0);

  /* recv with no sender: a timeout, one line, exit 1 */
  ASSERT_EQ(ferry("create %s --channel spsc --capacity 4K", n), 0);
  ASSERT_EQ(ferry("recv %s --timeout 0.3", n), 1);
  ASSERT_STREQ(out, "");
  snprintf(prefix, sizeof prefix, "ferry: recv: %s: FERRY_ETIMEDOUT: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "no message within 0.3 s");

  /* send with no receiver: the 4K ring fills, then a timeout; the stream
   * stays open (a receiver must not take a partial stream as complete) */
  ASSERT_EQ(shell(20000, "head -c 100000 /dev/zero >'%s'", in), 0);
  ASSERT_EQ(
      shell(20000, "\"$F\" send %s --chunk 1K --timeout .25 <'%s'", n, in), 1);
  snprintf(prefix, sizeof prefix, "ferry: send: %s: FERRY_ETIMEDOUT: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "no room for the next message within 0.25 s");
  ASSERT_EQ(ferry("info %s", n), 0);
  ASSERT_INFO(out, "closed", "no");
  ASSERT_INFO(out, "sent", "3"); /* 3 x (1024 + 8) fit in 4096 */

  /* a second receiver of an spsc channel: busy */
  ASSERT_OK(ferry_channel_open(&ch, n, 0, FERRY_RECEIVER, NULL));
  ASSERT_EQ(ferry("recv %s --timeout 1", n), 1);
  snprintf(prefix, sizeof prefix, "ferry: recv: %s: FERRY_EBUSY: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "receiver");
  ferry_channel_close(ch);
  ASSERT_EQ(ferry("rm %s", n), 0);

  /* a stream, once ended, stays ended: a second sender is refused (a
   * receiver that saw the end would miss its messages) */
  ASSERT_EQ(ferry("create %s --channel spsc", n), 0);
  ASSERT_EQ(shell(20000, "echo one | \"$F\" send %s", n), 0);
  ASSERT_EQ(shell(20000, "echo two | \"$F\" send %s", n), 1);
  snprintf(prefix, sizeof prefix, "ferry: send: %s: FERRY_ECLOSED: ", n);
  ASSERT_ONE_ERROR_LINE(prefix, "ended");
  ASSERT_EQ(ferry("recv %s", n), 0);
  ASSERT_STREQ(out, "one\n");
  ASSERT_EQ(ferry("recv %s", n), 0); /* ended and drained: nothing */
  ASSERT_STREQ(out, "");
  ASSERT_EQ(ferry("rm %s", n), 0);

  /* usage errors */
  {
    static const char *const bad[] = {
        "send",
        "recv",
        "send a b",
        "recv a b",
        "send a --chunk 0",
        "send a --chunk 1.5K",
        "send a --chunk",
        "send a --timeout -1",
        "send a --timeout abc",
        "recv a --timeout 1e3",
        "recv a --timeout 1.2.3",
        "recv a --timeout ''",
        "recv a --timeout 0.0000000001",
        "recv a --chunk 4K",
        "send a --bogus",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      char want[64];
      snprintf(want, sizeof want, "ferry: %.4s: ", bad[i]);
      if (ferry("%s", bad[i]) != 2)
        TEST_FAIL("'ferry %s' did not exit 2: %s", bad[i], err);
      ASSERT_STREQ(out, "");
      ASSERT_ONE_ERROR_LINE(want, "--help");
    }
  }
}

/* The name of the frames channel from the demo's first line. */
static void demo_channels_gone(void) {
  char name[128], path[200];
  const char *p = strstr(out, "SPSC channel ");
  size_t len;
  if (!p)
    TEST_FAIL("no channel name in:\n%s", out);
  p += strlen("SPSC channel ");
  len = strcspn(p, " ");
  ASSERT_LT(len, 100);
  snprintf(name, sizeof name, "%.*s", (int)len, p);
  ASSERT_TRUE(strncmp(name, "demo-", 5) == 0);
  ASSERT_STREQ(name + strlen(name) - 7, "-frames");
  shm_path(path, sizeof path, name);
  if (exists(path))
    TEST_FAIL("%s is left behind", path);
  strcpy(path + strlen(path) - 7, "-acks");
  if (exists(path))
    TEST_FAIL("%s is left behind", path);
}

static void test_demo(void) {
  ASSERT_EQ(ferry("demo --frames 20 --size 1M"), 0);
  ASSERT_STREQ(err, "");
  ASSERT_CONTAINS(out, "verified: 20/20 frames, 0 lost, 0 corrupt\n");
  ASSERT_INFO(out, "frames", "20");
  ASSERT_INFO(out, "frame size", "1048576 bytes (1.0M)");
  {
    static const char *const keys[] = {"elapsed", "frames/s", "MB/s",
                                       "latency p50", "latency p99"};
    size_t i;
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
      if (!info_value(out, keys[i]))
        TEST_FAIL("demo output lacks '%s:':\n%s", keys[i], out);
    ASSERT_CONTAINS(info_value(out, "latency p50"), " us");
  }
  ASSERT_CONTAINS(out, "(4.0M ring)");
  demo_channels_gone();

  /* the default frame: 3 MiB, in an 8 MiB ring */
  ASSERT_EQ(ferry("demo --frames 5"), 0);
  ASSERT_CONTAINS(out, "verified: 5/5 frames, 0 lost, 0 corrupt\n");
  ASSERT_INFO(out, "frame size", "3145728 bytes (3.0M)");
  ASSERT_CONTAINS(out, "(8.0M ring)");
  demo_channels_gone();

  /* sizes that are not a multiple of 8, and tiny frames */
  ASSERT_EQ(ferry("demo --frames 50 --size 1001"), 0);
  ASSERT_CONTAINS(out, "verified: 50/50 frames");
  ASSERT_EQ(ferry("demo --frames 3 --size 1"), 0);
  ASSERT_CONTAINS(out, "verified: 3/3 frames");

  /* JSON: one object */
  ASSERT_EQ(ferry("demo --frames 10 --size 100K --json"), 0);
  ASSERT_EQ(count_lines(out), 1);
  ASSERT_EQ(out[0], '{');
  ASSERT_CONTAINS(out, "\"frames\":10,\"frame_size\":102400,");
  ASSERT_CONTAINS(out, "\"elapsed_s\":");
  ASSERT_CONTAINS(out, "\"frames_per_s\":");
  ASSERT_CONTAINS(out, "\"mb_per_s\":");
  ASSERT_CONTAINS(out, "\"latency_p50_us\":");
  ASSERT_CONTAINS(out, "\"latency_p99_us\":");
  ASSERT_CONTAINS(out, "\"verified\":10,\"lost\":0,\"corrupt\":0}\n");

  /* a corrupted frame is caught by the receiver: exit 1, one line */
  ASSERT_EQ(ferry("demo --frames 6 --size 64K --corrupt-frame 3"), 1);
  ASSERT_STREQ(out, "");
  ASSERT_ONE_ERROR_LINE("ferry: demo: frame 3 is corrupt", "checksum");
  ASSERT_EQ(ferry("demo --frames 4 --size 100 --corrupt-frame 0 --json"), 1);
  ASSERT_ONE_ERROR_LINE("ferry: demo: frame 0 is corrupt", "checksum");

  /* usage errors */
  {
    static const char *const bad[] = {
        "demo --frames 0",
        "demo --frames x",
        "demo --frames 1000000000",
        "demo --size 0",
        "demo --size 2G",
        "demo --size 1.5M",
        "demo --corrupt-frame 5 --frames 5",
        "demo --corrupt-frame -1",
        "demo --timeout 0",
        "demo extra",
        "demo --role sender a b 1 1",
        "demo --role receiver a b",
        "demo --bogus",
    };
    size_t i;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      if (ferry("%s", bad[i]) != 2)
        TEST_FAIL("'ferry %s' did not exit 2: %s", bad[i], err);
      ASSERT_STREQ(out, "");
      ASSERT_ONE_ERROR_LINE("ferry: demo: ", "(see 'ferry demo --help')");
    }
  }
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"lifecycle", test_lifecycle},
      {"creator_alive", test_creator_alive},
      {"sizes", test_sizes},
      {"mode", test_mode},
      {"create_twice", test_create_twice},
      {"usage", test_usage},
      {"invalid_names", test_invalid_names},
      {"corrupt_header", test_corrupt_header},
      {"truncated", test_truncated},
      {"permission_denied", test_permission_denied},
      {"file_backed", test_file_backed},
      {"rm_foreign_file", test_rm_foreign_file},
      {"rm_several", test_rm_several},
      {"ls_hostile_names", test_ls_hostile_names},
      {"ls_fifo", test_ls_fifo},
      {"gc", test_gc},
      {"gc_channels", test_gc_channels},
      {"gc_half_initialised", test_gc_half_initialised},
      {"restart_stale", test_restart_stale},
      {"gc_keeps_damaged", test_gc_keeps_damaged},
      {"gc_permission", test_gc_permission},
      {"channel_create", test_channel_create},
      {"channel_create_usage", test_channel_create_usage},
      {"channel_info_peers", test_channel_info_peers},
      {"channel_damaged", test_channel_damaged},
      {"send_recv_text", test_send_recv_text},
      {"send_recv_text_mpsc", test_send_recv_text_mpsc},
      {"send_recv_chunks", test_send_recv_chunks},
      {"send_recv_mpsc", test_send_recv_mpsc},
      {"send_recv_overrun", test_send_recv_overrun},
      {"send_recv_big", test_send_recv_big},
      {"send_recv_errors", test_send_recv_errors},
      {"demo", test_demo},
      {NULL, NULL}};
  static const struct test_role roles[] = {
      {"exit", role_exit}, {"attach", role_attach}, {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
#endif /* !_WIN32 */
