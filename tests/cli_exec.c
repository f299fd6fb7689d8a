/* Description: the ferry CLI run directly (no shell), on Linux and Windows
 *
 * tests/cli.c covers the CLI in depth through /bin/sh pipelines; this file
 * drives the same program with test_exec (posix_spawn / CreateProcess with
 * redirected standard streams), so it runs under Wine too: create, ls,
 * info, rm, send, recv, demo and bench, the pool sections of info (blocks
 * in use, their holders alive or dead), plus the Windows lifetime rule (a
 * named segment lives while some process has it open). */
#include "test.h"

#include <stdarg.h>
#include <stdatomic.h>

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
  int rc = ferry("bench", "--quick", "--json");
  if (rc == 2 && strstr(err, "unknown command 'bench'"))
    test_skip("ferry was built without FERRY_BUILD_BENCH");
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(out[0], '{');
  ASSERT_CONTAINS(out, "}");
}

/* argv: pool, count, ctl: attach to the pool, allocate COUNT blocks, set
 * the ctl segment's first word and wait to be killed holding them. */
static int role_pool_holder(int argc, char **argv) {
  ferry_pool *p;
  ferry_segment *cs;
  int i, n = atoi(argv[1]);
  (void)argc;
  ASSERT_OK(ferry_pool_open(&p, argv[0], 0, NULL));
  ASSERT_OK(ferry_segment_open(&cs, argv[2], 0, 0, NULL));
  for (i = 0; i < n; i++) {
    uint64_t h;
    void *d;
    ASSERT_OK(ferry_pool_alloc(p, &h, &d, 0));
    memset(d, i, 64);
  }
  atomic_store((_Atomic uint32_t *)ferry_segment_data(cs), 1);
  for (;;)
    test_sleep_ms(100); /* killed here, holding the blocks */
  return 1;
}

/* A pool this process creates through the API and holds open: ferry info
 * shows its blocks free and in use and who holds them, alive, then dead
 * once the holder is killed (info only observes: it reclaims nothing);
 * ls lists it; gc leaves it (its creator lives); rm removes it. */
static void test_pool(void) {
  char pn[64], cl[64], line[128];
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  ferry_pool *p = NULL;
  ferry_segment *cs = NULL;
  const char *args[4];
  uint64_t h;
  long pid;
  o.block_size = 64 << 10;
  o.block_count = 8;
  ASSERT_OK(ferry_pool_open(&p, test_name(pn, sizeof pn, "cxpool"),
                            FERRY_CREATE | FERRY_EXCL, &o));
  ASSERT_EQ(ferry("info", pn), 0);
  ASSERT_STREQ(err, "");
  ASSERT_CONTAINS(out, "payload:        pool");
  ASSERT_CONTAINS(out, "8 blocks of 65536 bytes (64.0K)");
  ASSERT_CONTAINS(out, "0 in use, 8 free");
  /* one block held by us, three by a helper process */
  ASSERT_OK(ferry_pool_alloc(p, &h, NULL, 0));
  ASSERT_OK(ferry_segment_open(&cs, test_name(cl, sizeof cl, "cxctl"),
                               FERRY_CREATE | FERRY_EXCL, 64, NULL));
  args[0] = pn;
  args[1] = "3";
  args[2] = cl;
  args[3] = NULL;
  pid = test_spawn("pool_holder", args);
  test_await(ferry_segment_data(cs), 1, pid);
  ASSERT_EQ(ferry("info", pn), 0);
  ASSERT_CONTAINS(out, "4 in use, 4 free");
  ASSERT_CONTAINS(out, "blocks in use:");
  snprintf(line, sizeof line, "pid %ld (alive)", pid);
  ASSERT_CONTAINS(out, line);
  snprintf(line, sizeof line, "pid %ld (alive)", test_getpid());
  ASSERT_CONTAINS(out, line);
  ASSERT_EQ(ferry("info", pn, "--json"), 0);
  ASSERT_CONTAINS(out, "\"pool\":{\"block_size\":65536");
  ASSERT_CONTAINS(out, "\"used\":4");
  snprintf(line, sizeof line, "\"pid\":%ld,\"alive\":true", pid);
  ASSERT_CONTAINS(out, line);
  test_kill_reap(pid);
  ASSERT_EQ(ferry("info", pn), 0);
  ASSERT_CONTAINS(out, "4 in use, 4 free");
  snprintf(line, sizeof line, "pid %ld (dead)", pid);
  ASSERT_CONTAINS(out, line);
  snprintf(line, sizeof line, "pid %ld (alive)", test_getpid());
  ASSERT_CONTAINS(out, line);
  ASSERT_EQ(ferry("info", pn, "--json"), 0);
  snprintf(line, sizeof line, "\"pid\":%ld,\"alive\":false", pid);
  ASSERT_CONTAINS(out, line);
  ASSERT_EQ(ferry("ls"), 0);
  ASSERT_CONTAINS(out, pn);
  /* we created it and live: gc keeps it */
  ASSERT_EQ(ferry("gc", pn), 0);
  ASSERT_CONTAINS(out, "0 removed, 1 live");
  /* the dead holder's three blocks come back to a live peer */
  ASSERT_EQ(ferry_pool_reclaim(p), 3);
  ASSERT_EQ(ferry("info", pn), 0);
  ASSERT_CONTAINS(out, "1 in use, 7 free");
  ASSERT_CONTAINS(out, "3 references of dead processes, 1 processes");
  ASSERT_EQ(ferry("info", pn, "--json"), 0);
  snprintf(line, sizeof line, "\"pid\":%ld,", pid);
  ASSERT_TRUE(strstr(out, line) == NULL); /* detached */
  ASSERT_OK(ferry_pool_release(p, h));
  ASSERT_EQ(ferry("rm", pn), 0);
  ASSERT_STREQ(err, "");
  ASSERT_OK(ferry_segment_unlink(cl, 0)); /* before the last close */
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
  ASSERT_EQ(ferry("info", pn), 1);
  ASSERT_CONTAINS(err, "FERRY_ENOENT");
}

int main(int argc, char **argv) {
  static const struct test_role roles[] = {{"pool_holder", role_pool_holder},
                                           {NULL, NULL}};
  static const struct test_case tests[] = {
      {"info_ls_rm", test_info_ls_rm},
      {"create_lifetime", test_create_lifetime},
      {"errors", test_errors},
      {"send_recv", test_send_recv},
      {"demo", test_demo},
      {"bench", test_bench},
      {"pool", test_pool},
      {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
