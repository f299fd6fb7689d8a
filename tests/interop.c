/* Description: a 32-bit and a 64-bit process share one segment and one
 * channel. Both ways round: what one ABI creates the other opens, reads and
 * writes byte for byte (named and file-backed segments; SPSC, MPSC and
 * broadcast channels, also with senders of both ABIs at once); each ABI's
 * `ferry` CLI reads the header and the peer table of what the other made, and
 * streams through a channel the other created; a robust mutex of one ABI is a
 * clear FERRY_ENOTSUP in the other; a 32-bit process refuses (FERRY_ETOOBIG)
 * a segment it cannot map instead of truncating its size.
 *
 * The other ABI is the same test program built for it: FERRY_INTEROP_PEER
 * names that build's directory (make test-32 sets it, both ways round), and
 * the test starts PEER/tests/test_interop --role NAME and runs PEER/ferry.
 * Without FERRY_INTEROP_PEER every test skips. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "header.h"

#ifndef FERRY_CLI_PATH
#error "FERRY_CLI_PATH must name the ferry binary (tests/CMakeLists.txt)"
#endif

extern char **environ;

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)
#define BITS ((unsigned)(sizeof(void *) * 8))
#define OUT_CAP 65536

/* ---------------------------------------------------------------------- */
/* The other ABI's build                                                  */

static char peer_test[PATH_MAX + 32], peer_cli[PATH_MAX + 32];
static unsigned peer_bits;
static const char *clis[2] = {FERRY_CLI_PATH, peer_cli}; /* ours, theirs */

/* Our own layout of the shared structures, as one line; the peer prints its
 * own (role layout) and the two must be equal. The _Static_asserts in the
 * headers say the same at compile time, for each build on its own. */
static void layout_line(char *buf, size_t cap) {
  snprintf(buf, cap,
           "hdr %u %u %u %u %u %u %u chan %u %u %u %u %u %u %u %u %u %u "
           "peer %u %u %u %u rec %u %u mutex %u %u",
           (unsigned)sizeof(struct ferry_hdr),
           (unsigned)offsetof(struct ferry_hdr, total_size),
           (unsigned)offsetof(struct ferry_hdr, data_offset),
           (unsigned)offsetof(struct ferry_hdr, data_size),
           (unsigned)offsetof(struct ferry_hdr, creator_pid),
           (unsigned)offsetof(struct ferry_hdr, created_ns),
           (unsigned)offsetof(struct ferry_hdr, name),
           (unsigned)sizeof(struct ferry_chan_hdr),
           (unsigned)offsetof(struct ferry_chan_hdr, capacity),
           (unsigned)offsetof(struct ferry_chan_hdr, max_msg),
           (unsigned)offsetof(struct ferry_chan_hdr, tail),
           (unsigned)offsetof(struct ferry_chan_hdr, tail_seq),
           (unsigned)offsetof(struct ferry_chan_hdr, head),
           (unsigned)offsetof(struct ferry_chan_hdr, rx),
           (unsigned)offsetof(struct ferry_chan_hdr, tx),
           (unsigned)offsetof(struct ferry_chan_hdr, sent_total),
           (unsigned)offsetof(struct ferry_chan_hdr, abandoned),
           (unsigned)sizeof(struct ferry_chan_peer),
           (unsigned)offsetof(struct ferry_chan_peer, pid),
           (unsigned)offsetof(struct ferry_chan_peer, cursor),
           (unsigned)offsetof(struct ferry_chan_peer, claim_end),
           (unsigned)sizeof(struct ferry_rec_bc),
           (unsigned)offsetof(struct ferry_rec_bc, seq), FERRY_MUTEX_SIZE,
           FERRY_MUTEX_ALIGN);
}

static int role_layout(int argc, char **argv) {
  char line[512];
  (void)argc;
  (void)argv;
  layout_line(line, sizeof line);
  printf("bits %u\n%s\n", BITS, line);
  return 0;
}

/* Runs the shell command line that FMT formats; its output in OUT and ERR
 * (either may be NULL); returns its exit code. */
static int sh(char *out, char *err, const char *fmt, ...) {
  static char scratch[OUT_CAP];
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return test_run(cmd, out ? out : scratch, OUT_CAP, err ? err : scratch,
                  OUT_CAP, test_timeout_ms(60000));
}

/* Finds the other ABI's build, or skips. Every test starts here. */
static void peer_setup(void) {
  static char out[OUT_CAP], err[OUT_CAP];
  const char *dir = getenv("FERRY_INTEROP_PEER");
  char mine[512];
  const char *nl;
  int rc;
  if (!dir || !*dir)
    test_skip("FERRY_INTEROP_PEER is not set: it names the build directory "
              "of the other ABI (make test-32 sets it)");
  snprintf(peer_test, sizeof peer_test, "%s/tests/test_interop", dir);
  snprintf(peer_cli, sizeof peer_cli, "%s/ferry", dir);
  if (access(peer_test, X_OK) != 0 || access(peer_cli, X_OK) != 0)
    TEST_FAIL("FERRY_INTEROP_PEER=%s: %s or %s is missing (build it first)",
              dir, peer_test, peer_cli);
  rc = sh(out, err, "exec '%s' --role layout", peer_test);
  if (rc != 0 || sscanf(out, "bits %u", &peer_bits) != 1)
    TEST_FAIL("%s --role layout: exit %d, output \"%s\", errors \"%s\"",
              peer_test, rc, out, err);
  if (peer_bits == BITS)
    TEST_FAIL("FERRY_INTEROP_PEER=%s is a %u-bit build like this one: it "
              "must be the other ABI's",
              dir, peer_bits);
  layout_line(mine, sizeof mine);
  nl = strchr(out, '\n');
  ASSERT_TRUE(nl != NULL);
  if (strncmp(nl + 1, mine, strlen(mine)) != 0)
    TEST_FAIL("shared layouts differ:\n  %u-bit: %s\n  %u-bit: %s", BITS, mine,
              peer_bits, nl + 1);
}

/* ---------------------------------------------------------------------- */
/* Processes and names, cleaned up at exit (also after a failed assert)   */

#define MAX_KIDS 8
#define MAX_OBJS 32
static long kids[MAX_KIDS];
static char objs[MAX_OBJS][PATH_MAX];
static int nobjs;

static void cleanup(void) {
  int i;
  for (i = 0; i < MAX_KIDS; i++)
    if (kids[i] > 0 && waitpid((pid_t)kids[i], NULL, WNOHANG) == 0) {
      kill((pid_t)kids[i], SIGKILL);
      waitpid((pid_t)kids[i], NULL, 0);
    }
  for (i = 0; i < nobjs; i++)
    if (strchr(objs[i], '/'))
      unlink(objs[i]); /* a file-backed segment, or a plain file */
    else
      ferry_segment_unlink(objs[i], 0);
}

/* A new segment name (or, for FILE, a path in the scratch directory),
 * removed at exit. */
static const char *new_obj(const char *tag, int file) {
  static int registered;
  char name[64];
  if (!registered) {
    test_tmpdir(); /* its atexit handler runs after ours */
    atexit(cleanup);
    registered = 1;
  }
  if (nobjs == MAX_OBJS)
    TEST_FAIL("too many objects");
  test_name(name, sizeof name, tag);
  if (file)
    snprintf(objs[nobjs], PATH_MAX, "%s/%s.seg", test_tmpdir(), name);
  else
    snprintf(objs[nobjs], PATH_MAX, "%s", name);
  return objs[nobjs++];
}

static void kid_add(long pid) {
  int i;
  for (i = 0; i < MAX_KIDS; i++)
    if (kids[i] == 0) {
      kids[i] = pid;
      return;
    }
}

/* Starts EXE --role ROLE OBJ NUMS: EXE is the peer's test binary, or ours;
 * OBJ a segment name or path; NUMS the numbers that FMT formats, in one
 * argument, which the role reads with role_nums(). */
static long start(const char *exe, const char *role, const char *obj,
                  const char *fmt, ...) {
  char nums[256];
  const char *argv[6];
  int rc;
  pid_t pid;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(nums, sizeof nums, fmt, ap);
  va_end(ap);
  argv[0] = exe;
  argv[1] = "--role";
  argv[2] = role;
  argv[3] = obj;
  argv[4] = nums;
  argv[5] = NULL;
  fflush(NULL);
  rc = posix_spawn(&pid, exe, NULL, NULL, (char *const *)argv, environ);
  if (rc != 0)
    TEST_FAIL("posix_spawn %s --role %s: %s", exe, role, strerror(rc));
  kid_add((long)pid);
  return (long)pid;
}

/* Waits for a process started by start(); it must exit 0. */
static void finish(long pid, const char *what) {
  int i, code = test_wait(pid, test_timeout_ms(120000));
  for (i = 0; i < MAX_KIDS; i++)
    if (kids[i] == pid)
      kids[i] = 0;
  if (code != 0)
    TEST_FAIL("%s (process %ld) ended with %d", what, pid, code);
}

/* 1 once process PID (not yet reaped) has ended. */
static int ended(long pid) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         si.si_pid != 0;
}

/* A role's arguments OBJ NUMS: N numbers into V; 0, or -1 when they are
 * not what start() passes. */
static int role_nums(int argc, char **argv, unsigned long long *v, int n) {
  int i, used = 0;
  const char *p;
  if (argc != 2)
    return -1;
  for (i = 0, p = argv[1]; i < n; i++, p += used)
    if (sscanf(p, "%llu%n", &v[i], &used) != 1)
      return -1;
  return 0;
}

static int64_t wait_ns(void) { return test_timeout_ms(30000) * 1000000ll; }

/* ---------------------------------------------------------------------- */
/* Contents: bytes both ABIs compute alike                                */

static uint64_t rnd(uint64_t *s) { /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545f4914f6cdd1dull;
}

/* Byte J of the pattern SEED: the same in every process of any ABI. */
static uint8_t pat(uint64_t seed, uint64_t j) {
  uint64_t s = (seed * 0x9e3779b97f4a7c15ull) ^ (j >> 3) ^ 0x5bd1e995ull;
  return (uint8_t)(rnd(&s) >> (8 * (j & 7)));
}

static void pat_fill(uint8_t *p, uint64_t n, uint64_t seed) {
  uint64_t j;
  for (j = 0; j < n; j++)
    p[j] = pat(seed, j);
}

static void pat_check(const uint8_t *p, uint64_t n, uint64_t seed,
                      const char *what) {
  uint64_t j;
  for (j = 0; j < n; j++)
    if (p[j] != pat(seed, j))
      TEST_FAIL("%s: byte %llu is 0x%02x, expected 0x%02x", what,
                (unsigned long long)j, p[j], pat(seed, j));
}

/* Message I of sender SEED: 8 to MAX bytes (small, largest and in between):
 * the sender's seed and I, little-endian, then pattern bytes. */
static size_t msg_len(uint32_t seed, uint32_t i, uint64_t max) {
  uint64_t s = ((uint64_t)seed << 32 | i) + 1;
  uint64_t r = rnd(&s);
  switch (r & 3) {
  case 0:
    return (size_t)(8 + (r >> 8) % 57);
  case 1:
    return (size_t)(max - (r >> 8) % 9);
  default:
    return (size_t)(8 + (r >> 8) % (max - 7));
  }
}

static void msg_fill(uint8_t *p, size_t len, uint32_t seed, uint32_t i) {
  size_t j;
  for (j = 0; j < 4; j++) {
    p[j] = (uint8_t)(seed >> (8 * j));
    p[4 + j] = (uint8_t)(i >> (8 * j));
  }
  pat_fill(p + 8, len - 8, (uint64_t)seed << 32 | i);
}

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* ---------------------------------------------------------------------- */
/* Channel traffic: the same code sends and receives in both ABIs         */

/* Sends COUNT messages of sender SEED (copied, and zero-copy every other
 * one); ends the stream when CLOSE. */
static void traffic_send(ferry_channel *ch, uint32_t seed, uint32_t count,
                         int close) {
  uint64_t max = ferry_channel_max_msg(ch);
  uint8_t *buf = (uint8_t *)malloc((size_t)max);
  uint32_t i;
  ASSERT_TRUE(buf != NULL);
  for (i = 0; i < count; i++) {
    size_t len = msg_len(seed, i, max);
    if (i & 1) {
      void *p;
      ASSERT_OK(ferry_channel_reserve(ch, len, &p, wait_ns()));
      msg_fill((uint8_t *)p, len, seed, i);
      ASSERT_OK(ferry_channel_commit(ch, len));
    } else {
      msg_fill(buf, len, seed, i);
      ASSERT_OK(ferry_channel_send(ch, buf, len, wait_ns()));
    }
  }
  if (close)
    ASSERT_OK(ferry_channel_close_send(ch));
  free(buf);
}

/* Checks one received message against what its sender (one of the NSEEDS
 * in SEEDS, each with NEXT[k] messages seen) sent; SEQ is the broadcast
 * number (UINT64_MAX when not known). */
static void traffic_accept(const uint8_t *m, size_t len, uint64_t max,
                           const uint32_t *seeds, uint32_t *next, int nseeds,
                           uint64_t seq) {
  uint8_t *want;
  uint32_t seed, i;
  int k;
  if (len < 8)
    TEST_FAIL("a message of %u bytes: every message has at least 8",
              (unsigned)len);
  seed = le32(m);
  i = le32(m + 4);
  for (k = 0; k < nseeds && seeds[k] != seed; k++)
    ;
  if (k == nseeds)
    TEST_FAIL("message from unknown sender %u", (unsigned)seed);
  if (i != next[k])
    TEST_FAIL("sender %u: message %u arrived, expected %u", (unsigned)seed,
              (unsigned)i, (unsigned)next[k]);
  if (seq != UINT64_MAX && seq != i)
    TEST_FAIL("message %u carries broadcast number %llu", (unsigned)i,
              (unsigned long long)seq);
  ASSERT_EQ(len, msg_len(seed, i, max));
  want = (uint8_t *)malloc(len);
  ASSERT_TRUE(want != NULL);
  msg_fill(want, len, seed, i);
  if (memcmp(want, m, len) != 0) {
    size_t j = 0;
    while (want[j] == m[j])
      j++;
    TEST_FAIL("sender %u message %u (%u bytes): byte %u is 0x%02x, expected "
              "0x%02x",
              (unsigned)seed, (unsigned)i, (unsigned)len, (unsigned)j, m[j],
              want[j]);
  }
  free(want);
  next[k]++;
}

/* 1 for a broadcast channel, whose messages carry numbers from 0. */
static int is_broadcast(ferry_channel *ch) {
  ferry_channel_info *in = (ferry_channel_info *)calloc(1, sizeof *in);
  int bc;
  ASSERT_TRUE(in != NULL);
  ASSERT_OK(ferry_channel_get_info(ch, in, sizeof *in));
  bc = in->kind == FERRY_CHANNEL_BROADCAST;
  free(in);
  return bc;
}

/* Receives COUNT messages from each of the NSEEDS senders in SEEDS, in
 * each sender's order, alternating copying receives and zero-copy batches;
 * then, when CLOSED, the end of the stream. */
static void traffic_recv(ferry_channel *ch, const uint32_t *seeds, int nseeds,
                         uint32_t count, int closed) {
  uint64_t max = ferry_channel_max_msg(ch), got = 0;
  uint64_t total = (uint64_t)count * (uint64_t)nseeds;
  uint8_t *buf = (uint8_t *)malloc((size_t)max);
  uint32_t next[4] = {0, 0, 0, 0};
  int bc = is_broadcast(ch);
  size_t len;
  ASSERT_TRUE(buf != NULL && nseeds <= 4);
  while (got < total) {
    if (got % 3 == 0) {
      ferry_msg m[8];
      int n = ferry_channel_peek(ch, m, 8, wait_ns()), j;
      if (n < 0)
        ASSERT_OK(n);
      for (j = 0; j < n; j++)
        traffic_accept((const uint8_t *)m[j].data, m[j].len, max, seeds, next,
                       nseeds, bc ? m[j].seq : UINT64_MAX);
      got += (uint64_t)n;
      ASSERT_OK(ferry_channel_release(ch));
    } else {
      ASSERT_OK(ferry_channel_recv(ch, buf, (size_t)max, &len, wait_ns()));
      traffic_accept(buf, len, max, seeds, next, nseeds, UINT64_MAX);
      got++;
    }
  }
  ASSERT_UEQ(got, total);
  if (closed)
    ASSERT_ERR(ferry_channel_recv(ch, buf, (size_t)max, &len, wait_ns()),
               FERRY_ECLOSED);
  free(buf);
}

static ferry_channel *chan_open(const char *name, unsigned role) {
  ferry_channel *ch = NULL;
  ASSERT_OK(ferry_channel_open(&ch, name, 0, role, NULL));
  return ch;
}

/* send NAME "SEED COUNT CLOSE" */
static int role_send(int argc, char **argv) {
  unsigned long long v[3];
  ferry_channel *ch;
  if (role_nums(argc, argv, v, 3) != 0)
    return 2;
  ch = chan_open(argv[0], FERRY_SENDER);
  traffic_send(ch, (uint32_t)v[0], (uint32_t)v[1], (int)v[2]);
  ASSERT_OK(ferry_channel_close(ch));
  return 0;
}

/* recv NAME "SEED COUNT": one sender, which ends the stream. */
static int role_recv(int argc, char **argv) {
  unsigned long long v[2];
  ferry_channel *ch;
  uint32_t seed;
  if (role_nums(argc, argv, v, 2) != 0)
    return 2;
  ch = chan_open(argv[0], FERRY_RECEIVER);
  seed = (uint32_t)v[0];
  traffic_recv(ch, &seed, 1, (uint32_t)v[1], 1);
  ASSERT_OK(ferry_channel_close(ch));
  return 0;
}

/* ---------------------------------------------------------------------- */
/* ferry info of either ABI                                               */

static char info_out[OUT_CAP];

/* `ferry info NAME --json` with CLI (ours or the peer's); must succeed. */
static const char *info_json(const char *cli, const char *name) {
  static char err[OUT_CAP];
  int rc = sh(info_out, err, "exec '%s' info '%s' --json", cli, name);
  if (rc != 0)
    TEST_FAIL("%s info %s: exit %d: %s", cli, name, rc, err);
  return info_out;
}

/* Asserts that JSON holds the formatted text. */
static void json_has(const char *json, const char *fmt, ...) {
  char want[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(want, sizeof want, fmt, ap);
  va_end(ap);
  if (!strstr(json, want))
    TEST_FAIL("`ferry info --json` output lacks %s: %s", want, json);
}

/* ---------------------------------------------------------------------- */
/* Segments                                                               */

/* A size that is not a round number, so a truncation would show. */
#define SEG_SIZE (3 * MIB + 4321)

/* seg-check NAME "SIZE SEED CREATOR TOTAL": opens the segment another ABI
 * made, checks its header and every byte, writes pattern SEED + 1 over the
 * upper half. */
static int role_seg_check(int argc, char **argv) {
  unsigned long long v[4];
  ferry_segment *s = NULL;
  ferry_segment_info in;
  uint64_t size, seed;
  const char *name;
  uint8_t *d;
  if (role_nums(argc, argv, v, 4) != 0)
    return 2;
  name = argv[0];
  size = v[0];
  seed = v[1];
  ASSERT_OK(ferry_segment_open(&s, name, strchr(name, '/') ? FERRY_FILE : 0, 0,
                               NULL));
  ASSERT_OK(ferry_segment_get_info(s, &in, sizeof in));
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_UEQ(in.data_size, size);
  ASSERT_UEQ(in.data_offset, FERRY_HDR_REGION);
  ASSERT_UEQ(in.total_size, v[3]);
  ASSERT_UEQ(in.creator_pid, v[2]);
  ASSERT_EQ(in.creator_alive, 1);
  ASSERT_EQ(in.kind, strchr(name, '/') ? FERRY_KIND_FILE : FERRY_KIND_NAMED);
  ASSERT_EQ(in.created, 0);
  d = (uint8_t *)ferry_segment_data(s);
  pat_check(d, size, seed, "segment made by the other ABI");
  pat_fill(d + size / 2, size - size / 2, seed + 1);
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* seg-make NAME "SIZE SEED": creates the segment with pattern SEED, exits. */
static int role_seg_make(int argc, char **argv) {
  unsigned long long v[2];
  ferry_segment *s = NULL;
  const char *name;
  if (role_nums(argc, argv, v, 2) != 0)
    return 2;
  name = argv[0];
  ASSERT_OK(ferry_segment_open(&s, name,
                               FERRY_CREATE | FERRY_EXCL |
                                   (strchr(name, '/') ? FERRY_FILE : 0),
                               v[0], NULL));
  pat_fill((uint8_t *)ferry_segment_data(s), v[0], v[1]);
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* The segment's header, as `ferry info --json` of both ABIs reads it. */
static void seg_info_check(const char *name, uint64_t size, uint64_t total,
                           uint64_t creator, int alive) {
  int c;
  for (c = 0; c < 2; c++) {
    const char *j = info_json(clis[c], name);
    json_has(j, "\"data_size\":%llu", (unsigned long long)size);
    json_has(j, "\"total_size\":%llu", (unsigned long long)total);
    json_has(j, "\"data_offset\":%u", FERRY_HDR_REGION);
    json_has(j, "\"creator_pid\":%llu", (unsigned long long)creator);
    json_has(j, "\"creator_alive\":%s", alive ? "true" : "false");
    json_has(j, "\"payload\":\"raw\"");
  }
}

/* We create; the other ABI opens, checks and writes; we check its bytes. */
static void seg_here_to_there(int file) {
  const char *name = new_obj("seg", file);
  ferry_segment *s = NULL;
  ferry_segment_info in;
  uint8_t *d;
  uint64_t seed = 0x3200 + (uint64_t)file;
  ASSERT_OK(ferry_segment_open(
      &s, name, FERRY_CREATE | FERRY_EXCL | (file ? FERRY_FILE : 0), SEG_SIZE,
      NULL));
  ASSERT_OK(ferry_segment_get_info(s, &in, sizeof in));
  d = (uint8_t *)ferry_segment_data(s);
  pat_fill(d, SEG_SIZE, seed);
  finish(start(peer_test, "seg-check", name, "%llu %llu %ld %llu", SEG_SIZE,
               (unsigned long long)seed, (long)getpid(),
               (unsigned long long)in.total_size),
         "seg-check");
  pat_check(d, SEG_SIZE / 2, seed, "lower half");
  pat_check(d + SEG_SIZE / 2, SEG_SIZE - SEG_SIZE / 2, seed + 1,
            "upper half, written by the other ABI");
  seg_info_check(name, SEG_SIZE, in.total_size, (uint64_t)getpid(), 1);
  ASSERT_OK(ferry_segment_close(s));
}

/* The other ABI creates and fills; we open and check. */
static void seg_there_to_here(int file) {
  const char *name = new_obj("seg", file);
  ferry_segment *s = NULL;
  ferry_segment_info in;
  uint64_t seed = 0x6400 + (uint64_t)file;
  long pid = start(peer_test, "seg-make", name, "%llu %llu", SEG_SIZE,
                   (unsigned long long)seed);
  finish(pid, "seg-make");
  ASSERT_OK(ferry_segment_open(&s, name, file ? FERRY_FILE : 0, 0, NULL));
  ASSERT_OK(ferry_segment_get_info(s, &in, sizeof in));
  ASSERT_UEQ(ferry_segment_data_size(s), SEG_SIZE);
  ASSERT_UEQ(in.data_size, SEG_SIZE);
  ASSERT_UEQ(in.data_offset, FERRY_HDR_REGION);
  ASSERT_UEQ(in.total_size % 4096, 0);
  ASSERT_TRUE(in.total_size >= FERRY_HDR_REGION + SEG_SIZE);
  ASSERT_UEQ(in.creator_pid, (uint64_t)pid);
  ASSERT_EQ(in.creator_alive, 0);
  pat_check((const uint8_t *)ferry_segment_data(s), SEG_SIZE, seed,
            "segment made by the other ABI");
  seg_info_check(name, SEG_SIZE, in.total_size, (uint64_t)pid, 0);
  ASSERT_OK(ferry_segment_close(s));
}

static void test_segment_named(void) {
  peer_setup();
  seg_here_to_there(0);
  seg_there_to_here(0);
}

static void test_segment_file(void) {
  peer_setup();
  seg_here_to_there(1);
  seg_there_to_here(1);
}

/* ---------------------------------------------------------------------- */
/* Channels                                                               */

#define CHAN_CAP (16u * 1024u) /* small: records wrap around many times */
#define CHAN_MSGS 3000u

static const char *const kind_names[] = {"", "spsc", "mpsc", "broadcast"};

static ferry_channel *chan_create(const char *name, uint32_t kind,
                                  unsigned role) {
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *ch = NULL;
  o.kind = kind;
  o.capacity = CHAN_CAP;
  ASSERT_OK(ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_EXCL, role, &o));
  return ch;
}

/* Waits until process PID is attached to CH in ROLE (it reads the peer
 * table that the other ABI wrote). */
static void await_peer(ferry_channel *ch, long pid, uint32_t role) {
  ferry_channel_info *in = (ferry_channel_info *)calloc(1, sizeof *in);
  int64_t deadline = test_timeout_ms(30000), waited = 0;
  ASSERT_TRUE(in != NULL);
  for (;;) {
    uint32_t i;
    ASSERT_OK(ferry_channel_get_info(ch, in, sizeof *in));
    for (i = 0; i < in->npeers; i++)
      if (in->peers[i].pid == (uint64_t)pid && in->peers[i].role == role &&
          in->peers[i].alive == 1) {
        free(in);
        return;
      }
    if (ended(pid))
      TEST_FAIL("process %ld ended before it attached", pid);
    if (waited++ > deadline)
      TEST_FAIL("process %ld did not attach within %lld ms", pid,
                (long long)deadline);
    {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
}

/* The channel as both CLIs see it: header, counters, and the peer table,
 * which lists ROLES[k] for the live process PIDS[k] (N of them). */
static void chan_info_check(const char *name, uint32_t kind, uint64_t sent,
                            uint64_t received, int closed, const long *pids,
                            const char *const *roles, int n) {
  int c, k;
  for (c = 0; c < 2; c++) {
    const char *j = info_json(clis[c], name);
    json_has(j, "\"payload\":\"channel\"");
    json_has(j, "\"kind\":\"%s\"", kind_names[kind]);
    json_has(j, "\"capacity\":%u", CHAN_CAP);
    json_has(j, "\"max_msg\":%u",
             CHAN_CAP / 2 - (kind == FERRY_CHANNEL_BROADCAST ? 16 : 8));
    json_has(j, "\"sent\":%llu,\"received\":%llu", (unsigned long long)sent,
             (unsigned long long)received);
    json_has(j, "\"closed\":%s", closed ? "true" : "false");
    for (k = 0; k < n; k++)
      json_has(j, "{\"pid\":%ld,\"role\":\"%s\",\"alive\":true", pids[k],
               roles[k]);
  }
}

/* We send, the other ABI receives; both CLIs read the peer table while
 * both are attached. */
static void chan_here_sends(uint32_t kind) {
  const char *name = new_obj(kind_names[kind], 0);
  ferry_channel *tx = chan_create(name, kind, FERRY_SENDER);
  uint32_t seed = 0x1000 + kind;
  long pid = start(peer_test, "recv", name, "%u %u", (unsigned)seed, CHAN_MSGS);
  const long pids[2] = {(long)getpid(), pid};
  const char *const roles[2] = {"sender", "receiver"};
  await_peer(tx, pid, FERRY_RECEIVER);
  chan_info_check(name, kind, 0, 0, 0, pids, roles, 2);
  traffic_send(tx, seed, CHAN_MSGS, 1);
  finish(pid, "receiver of the other ABI");
  chan_info_check(name, kind, CHAN_MSGS, CHAN_MSGS, 1, pids, roles, 1);
  ASSERT_OK(ferry_channel_close(tx));
}

/* The other ABI sends, we receive. */
static void chan_there_sends(uint32_t kind) {
  const char *name = new_obj(kind_names[kind], 0);
  ferry_channel *rx = chan_create(name, kind, FERRY_RECEIVER);
  uint32_t seed = 0x2000 + kind;
  long pid =
      start(peer_test, "send", name, "%u %u 1", (unsigned)seed, CHAN_MSGS);
  const long me = (long)getpid();
  const char *const role = "receiver";
  traffic_recv(rx, &seed, 1, CHAN_MSGS, 1);
  finish(pid, "sender of the other ABI");
  chan_info_check(name, kind, CHAN_MSGS, CHAN_MSGS, 1, &me, &role, 1);
  ASSERT_OK(ferry_channel_close(rx));
}

static void test_channel_spsc(void) {
  peer_setup();
  chan_here_sends(FERRY_CHANNEL_SPSC);
  chan_there_sends(FERRY_CHANNEL_SPSC);
}

static void test_channel_mpsc(void) {
  peer_setup();
  chan_here_sends(FERRY_CHANNEL_MPSC);
  chan_there_sends(FERRY_CHANNEL_MPSC);
}

static void test_channel_broadcast(void) {
  peer_setup();
  chan_here_sends(FERRY_CHANNEL_BROADCAST);
  chan_there_sends(FERRY_CHANNEL_BROADCAST);
}

/* Senders of both ABIs at once into one MPSC channel: their claims
 * interleave in the same ring. */
static void test_mpsc_mixed_senders(void) {
  const char *name;
  ferry_channel *rx;
  uint32_t seeds[2] = {0x3001, 0x3002};
  long a, b;
  peer_setup();
  name = new_obj("mixed", 0);
  rx = chan_create(name, FERRY_CHANNEL_MPSC, FERRY_RECEIVER);
  a = start(peer_test, "send", name, "%u %u 0", (unsigned)seeds[0], CHAN_MSGS);
  b = start(test_self(), "send", name, "%u %u 0", (unsigned)seeds[1],
            CHAN_MSGS);
  traffic_recv(rx, seeds, 2, CHAN_MSGS, 0);
  finish(a, "sender of the other ABI");
  finish(b, "sender of this ABI");
  {
    const long me = (long)getpid();
    const char *const role = "receiver";
    chan_info_check(name, FERRY_CHANNEL_MPSC, 2 * CHAN_MSGS, 2 * CHAN_MSGS, 0,
                    &me, &role, 1);
  }
  ASSERT_OK(ferry_channel_close(rx));
}

/* ---------------------------------------------------------------------- */
/* The CLIs stream through a channel the other ABI created                */

static void cli_stream(const char *maker, const char *sender,
                       const char *receiver, const char *send_opts) {
  static uint8_t data[300000];
  static char out[OUT_CAP], err[OUT_CAP];
  const char *in_path = new_obj("in", 1), *out_path = new_obj("out", 1);
  const char *name = new_obj("stream", 0);
  int s_rc = -1, r_rc = -1, rc;
  FILE *f;
  pat_fill(data, sizeof data, 77); /* binary, with newlines here and there */
  f = fopen(in_path, "wb");
  ASSERT_TRUE(f != NULL);
  ASSERT_EQ(fwrite(data, 1, sizeof data, f), sizeof data);
  ASSERT_EQ(fclose(f), 0);
  rc = sh(out, err, "exec '%s' create %s --channel spsc --capacity 64K", maker,
          name);
  if (rc != 0)
    TEST_FAIL("%s create: exit %d: %s", maker, rc, err);
  rc = sh(out, err,
          "'%s' recv %s --timeout 60 >'%s' & r=$!\n"
          "'%s' send %s --timeout 60 %s <'%s'; s=$?\n"
          "wait $r; echo \"$s $?\"",
          receiver, name, out_path, sender, name, send_opts, in_path);
  if (rc != 0 || sscanf(out, "%d %d", &s_rc, &r_rc) != 2 || s_rc != 0 ||
      r_rc != 0)
    TEST_FAIL("send (%s) | recv (%s): exit %d, statuses \"%s\": %s", sender,
              receiver, rc, out, err);
  rc = sh(out, err, "cmp '%s' '%s'", in_path, out_path);
  if (rc != 0)
    TEST_FAIL("received bytes differ from the sent ones: %s", out);
}

static void test_cli_stream(void) {
  peer_setup();
  /* made by one ABI, sent by it, received by the other; and back */
  cli_stream(FERRY_CLI_PATH, FERRY_CLI_PATH, peer_cli, "");
  cli_stream(peer_cli, peer_cli, FERRY_CLI_PATH, "--chunk 1000");
  /* made by one, used by the other alone */
  cli_stream(FERRY_CLI_PATH, peer_cli, peer_cli, "");
  cli_stream(peer_cli, FERRY_CLI_PATH, FERRY_CLI_PATH, "--chunk 4096");
}

/* ---------------------------------------------------------------------- */
/* Robust mutex: one ABI's is a clear error in the other                  */

/* Every call on the other ABI's mutex at MX is FERRY_ENOTSUP, with a
 * message that says why. */
static void mutex_foreign(void *mx) {
  ASSERT_ERR(ferry_mutex_lock(mx, 0), FERRY_ENOTSUP);
  ASSERT_CONTAINS(ferry_errmsg(), "a 32-bit and a 64-bit process");
  ASSERT_ERR(ferry_mutex_lock(mx, 1000000), FERRY_ENOTSUP);
  ASSERT_ERR(ferry_mutex_unlock(mx), FERRY_ENOTSUP);
  ASSERT_ERR(ferry_mutex_consistent(mx), FERRY_ENOTSUP);
}

static ferry_segment *mutex_seg(const char *name, unsigned flags) {
  ferry_segment *s = NULL;
  ASSERT_OK(ferry_segment_open(&s, name, flags, 4096, NULL));
  return s;
}

/* mutex-foreign NAME: the segment's mutex was made by the other ABI. */
static int role_mutex_foreign(int argc, char **argv) {
  ferry_segment *s;
  if (role_nums(argc, argv, NULL, 0) != 0)
    return 2;
  s = mutex_seg(argv[0], 0);
  mutex_foreign(ferry_segment_data(s));
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* mutex-make NAME: creates the segment with a mutex in it. */
static int role_mutex_make(int argc, char **argv) {
  ferry_segment *s;
  if (role_nums(argc, argv, NULL, 0) != 0)
    return 2;
  s = mutex_seg(argv[0], FERRY_CREATE | FERRY_EXCL);
  ASSERT_OK(ferry_mutex_init(ferry_segment_data(s)));
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

static void test_mutex_other_abi(void) {
  const char *name;
  ferry_segment *s;
  void *mx;
  peer_setup();
  /* ours, refused by the other ABI, and still fine for us afterwards */
  name = new_obj("mutex", 0);
  s = mutex_seg(name, FERRY_CREATE | FERRY_EXCL);
  mx = ferry_segment_data(s);
  ASSERT_OK(ferry_mutex_init(mx));
  finish(start(peer_test, "mutex-foreign", name, ""), "mutex-foreign");
  ASSERT_OK(ferry_mutex_lock(mx, 0));
  ASSERT_OK(ferry_mutex_unlock(mx));
  ASSERT_OK(ferry_segment_close(s));
  /* theirs, refused by us */
  name = new_obj("mutex", 0);
  finish(start(peer_test, "mutex-make", name, ""), "mutex-make");
  s = mutex_seg(name, 0);
  mutex_foreign(ferry_segment_data(s));
  ASSERT_OK(ferry_segment_close(s));
}

/* ---------------------------------------------------------------------- */
/* Sizes a 32-bit process cannot map: FERRY_ETOOBIG, never truncation     */

#define BIG_SIZE (5 * GIB + 123)

/* big-make PATH: a sparse file-backed segment of BIG_SIZE (64-bit only). */
static int role_big_make(int argc, char **argv) {
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  ferry_segment *s = NULL;
  if (role_nums(argc, argv, NULL, 0) != 0)
    return 2;
  o.flags = FERRY_SEG_SPARSE;
  ASSERT_OK(ferry_segment_open(
      &s, argv[0], FERRY_FILE | FERRY_CREATE | FERRY_EXCL, BIG_SIZE, &o));
  /* the last byte, past 4 GiB */
  ((uint8_t *)ferry_segment_data(s))[ferry_segment_data_size(s) - 1] = 0x5a;
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* In the 32-bit process: the 64-bit process's BIG_SIZE segment at BIG is
 * refused, and so is making one (nothing is left behind). */
static void big_refuse(const char *big) {
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  ferry_segment *s = NULL;
  char path[PATH_MAX + 8], name[64];
  struct stat st;
  ASSERT_EQ(BITS, 32);
  ASSERT_ERR(ferry_segment_open(&s, big, FERRY_FILE, 0, NULL), FERRY_ETOOBIG);
  ASSERT_CONTAINS(ferry_errmsg(), "32-bit process");
  ASSERT_ERR(ferry_segment_open(&s, big, FERRY_FILE | FERRY_RDONLY, 0, NULL),
             FERRY_ETOOBIG);
  /* making one: refused before anything is created or reserved */
  snprintf(path, sizeof path, "%s.new", big);
  o.flags = FERRY_SEG_SPARSE;
  ASSERT_ERR(ferry_segment_open(&s, path,
                                FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                                BIG_SIZE, &o),
             FERRY_ETOOBIG);
  ASSERT_CONTAINS(ferry_errmsg(), "32-bit process");
  ASSERT_TRUE(stat(path, &st) != 0 && errno == ENOENT);
  test_name(name, sizeof name, "big");
  ASSERT_ERR(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, BIG_SIZE, NULL),
      FERRY_ETOOBIG);
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, NULL), FERRY_ENOENT);
  /* just under 4 GiB of data still does not fit with the header */
  ASSERT_ERR(ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL,
                                4 * GIB - 4096, NULL),
             FERRY_ETOOBIG);
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, NULL), FERRY_ENOENT);
}

/* big-refuse PATH */
static int role_big_refuse(int argc, char **argv) {
  if (role_nums(argc, argv, NULL, 0) != 0)
    return 2;
  big_refuse(argv[0]);
  return 0;
}

static void test_too_big_for_32_bits(void) {
  static char out[OUT_CAP], err[OUT_CAP];
  const char *path, *cli32;
  ferry_segment *s = NULL;
  int rc;
  peer_setup();
  path = new_obj("big", 1);
  if (BITS == 64) { /* we make it; the peer is the 32-bit one */
    finish(start(test_self(), "big-make", path, ""), "big-make");
    finish(start(peer_test, "big-refuse", path, ""), "big-refuse");
    cli32 = peer_cli;
  } else {
    finish(start(peer_test, "big-make", path, ""), "big-make");
    big_refuse(path);
    cli32 = FERRY_CLI_PATH;
  }
  /* the 32-bit CLI says so too */
  rc = sh(out, err, "exec '%s' info '%s'", cli32, path);
  ASSERT_EQ(rc, 1);
  ASSERT_CONTAINS(err, "FERRY_ETOOBIG");
  if (BITS == 64) { /* and the segment is intact */
    ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE, 0, NULL));
    ASSERT_UEQ(ferry_segment_data_size(s), BIG_SIZE);
    ASSERT_EQ(
        ((uint8_t *)ferry_segment_data(s))[ferry_segment_data_size(s) - 1],
        0x5a);
    ASSERT_OK(ferry_segment_close(s));
  }
}

/* ---------------------------------------------------------------------- */

static void test_abi(void) {
  peer_setup(); /* which checks that the other build is the other ABI and
                   that both lay the shared structures out alike */
  printf("this process is %u-bit, the peer build %u-bit\n", BITS, peer_bits);
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"abi", test_abi},
      {"segment_named", test_segment_named},
      {"segment_file", test_segment_file},
      {"channel_spsc", test_channel_spsc},
      {"channel_mpsc", test_channel_mpsc},
      {"channel_broadcast", test_channel_broadcast},
      {"mpsc_mixed_senders", test_mpsc_mixed_senders},
      {"cli_stream", test_cli_stream},
      {"mutex_other_abi", test_mutex_other_abi},
      {"too_big_for_32_bits", test_too_big_for_32_bits},
      {NULL, NULL}};
  static const struct test_role roles[] = {
      {"layout", role_layout},
      {"seg-check", role_seg_check},
      {"seg-make", role_seg_make},
      {"send", role_send},
      {"recv", role_recv},
      {"mutex-foreign", role_mutex_foreign},
      {"mutex-make", role_mutex_make},
      {"big-make", role_big_make},
      {"big-refuse", role_big_refuse},
      {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
