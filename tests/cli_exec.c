/* Description: the ferry CLI run directly (no shell), on Linux and Windows
 *
 * tests/cli.c covers the CLI in depth through /bin/sh pipelines; this file
 * drives the same program with test_exec (posix_spawn / CreateProcess with
 * redirected standard streams), so it runs under Wine too: create, ls,
 * info, rm, send, recv, demo and bench, plus the Windows lifetime rule (a
 * named segment lives while some process has it open). */
#include "test.h"

#include <stdarg.h>

#ifndef FERRY_CLI_PATH
#error "FERRY_CLI_PATH must name the ferry binary (tests/CMakeLists.txt)"
#endif

#define OUT_CAP 65536
static char out[OUT_CAP], err[OUT_CAP];

/* Runs `ferry ARGS...` (NULL-terminated) with stdin from IN (NULL: the null
 * device); returns the exit code, output in out[] and err[]. */
static int ferry_in(const char *in, const char *arg, ...) {
  const char *argv[32];
  va_list ap;
  int n = 0;
  argv[n++] = FERRY_CLI_PATH;
  va_start(ap, arg);
  for (; arg && n < 31; arg = va_arg(ap, const char *))
    argv[n++] = arg;
  va_end(ap);
  argv[n] = NULL;
  return test_exec(FERRY_CLI_PATH, argv, in, out, sizeof out, err, sizeof err,
                   test_timeout_ms(60000));
}
#define ferry(...) ferry_in(NULL, __VA_ARGS__, (const char *)NULL)

static void write_file(const char *path, const char *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fwrite(data, 1, len, f), (long long)len);
  ASSERT_EQ(fclose(f), 0);
}

static size_t read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "rb");
  size_t n;
  ASSERT_TRUE(f != NULL);
  n = fread(buf, 1, cap, f);
  fclose(f);
  return n;
}

/* Info, ls and rm on a segment this process holds open. */
static void test_info_ls_rm(void) {
  char n[64];
  ferry_segment *s = NULL;
  test_name(n, sizeof n, "cx");
  ASSERT_OK(ferry_segment_open(&s, n, FERRY_CREATE | FERRY_EXCL, 12345, NULL));
  ASSERT_EQ(ferry("info", n), 0);
  ASSERT_STREQ(err, "");
  ASSERT_CONTAINS(out, n);
  ASSERT_CONTAINS(out, "12345");
  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_CONTAINS(out, n);
  ASSERT_EQ(ferry("rm", n), 0);
  ASSERT_STREQ(err, "");
  ASSERT_OK(ferry_segment_close(s));
  /* gone for good once the last handle closed (Windows) or unlinked */
  ASSERT_EQ(ferry("info", n), 1);
  ASSERT_CONTAINS(err, "FERRY_ENOENT");
  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_TRUE(strstr(out, n) == NULL);
}

/* `ferry create` alone: on POSIX the segment outlives the command; on
 * Windows it goes when ferry exits, because no process holds it open
 * (docs/design.md, "Lifetime on Windows"). */
static void test_create_lifetime(void) {
  char n[64];
  test_name(n, sizeof n, "life");
  ASSERT_EQ(ferry("create", n, "--size", "64K"), 0);
#ifdef _WIN32
  ASSERT_EQ(ferry("info", n), 1);
  ASSERT_CONTAINS(err, "FERRY_ENOENT");
#else
  ASSERT_EQ(ferry("info", n), 0);
  ASSERT_CONTAINS(out, n);
  ASSERT_EQ(ferry("rm", n), 0);
#endif
}

/* One error line with the code for a missing segment; exit 2 for usage. */
static void test_errors(void) {
  ASSERT_EQ(ferry("info", "no-such-segment-here"), 1);
  ASSERT_STREQ(out, "");
  ASSERT_CONTAINS(err, "ferry: info: no-such-segment-here: FERRY_ENOENT");
  ASSERT_EQ(ferry("frobnicate"), 2);
  ASSERT_EQ(ferry("info", "bad name"), 1);
  ASSERT_CONTAINS(err, "FERRY_EINVAL");
}

/* `ferry recv` and `ferry send` at the same time through a channel this
 * process created (and holds), 300 KB of binary data byte for byte; the
 * stream's end ends recv. */
static void test_send_recv(void) {
  char n[64], in[4200], got[4200];
  static char data[300000], back[300001];
  const char *argv[4];
  long rpid;
  size_t i, len;
  ferry_channel *obs = NULL;
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  test_name(n, sizeof n, "sr");
  o.capacity = 65536; /* smaller than the data: the two must take turns */
  ASSERT_OK(ferry_channel_open(&obs, n, FERRY_CREATE | FERRY_EXCL,
                               FERRY_OBSERVE, &o));
  /* every byte value, "\r\n" and ^Z included (Windows text mode would
   * change or stop at them) */
  for (i = 0; i < sizeof data; i++)
    data[i] = (char)(i * 131 + i / 7);
  for (i = 0; i + 2 < sizeof data; i += 997) {
    data[i] = '\r';
    data[i + 1] = '\n';
    data[i + 2] = 0x1a;
  }
  snprintf(in, sizeof in, "%s/in.txt", test_tmpdir());
  snprintf(got, sizeof got, "%s/out.txt", test_tmpdir());
  write_file(in, data, sizeof data);
  argv[0] = FERRY_CLI_PATH;
  argv[1] = "recv";
  argv[2] = n;
  argv[3] = NULL;
  rpid = test_exec_start(FERRY_CLI_PATH, argv, NULL, got);
  ASSERT_EQ(ferry_in(in, "send", n, (const char *)NULL), 0);
  ASSERT_STREQ(err, "");
  ASSERT_EQ(test_wait(rpid, test_timeout_ms(60000)), 0);
  len = read_file(got, back, sizeof back);
  ASSERT_EQ(len, sizeof data);
  ASSERT_TRUE(memcmp(back, data, sizeof data) == 0);
  ASSERT_EQ(ferry("info", n), 0);
  ASSERT_CONTAINS(out, "spsc");
  ASSERT_OK(ferry_segment_unlink(n, 0));
  ASSERT_OK(ferry_channel_close(obs));
  remove(in);
  remove(got);
}

/* The main job: two processes, frames verified. */
static void test_demo(void) {
  ASSERT_EQ(ferry("demo", "--frames", "20", "--size", "1M"), 0);
  ASSERT_STREQ(err, "");
  ASSERT_CONTAINS(out, "verified: 20/20 frames, 0 lost, 0 corrupt\n");
  ASSERT_EQ(ferry("demo", "--frames", "4", "--size", "64K", "--json"), 0);
  ASSERT_CONTAINS(out, "\"verified\":4,\"lost\":0,\"corrupt\":0}");
}

/* `ferry bench --quick --json` completes with one JSON object. */
static void test_bench(void) {
  ASSERT_EQ(ferry("bench", "--quick", "--json"), 0);
  ASSERT_EQ(out[0], '{');
  ASSERT_CONTAINS(out, "}");
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"info_ls_rm", test_info_ls_rm},
      {"create_lifetime", test_create_lifetime},
      {"errors", test_errors},
      {"send_recv", test_send_recv},
      {"demo", test_demo},
      {"bench", test_bench},
      {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
