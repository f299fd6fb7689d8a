/* Description: crashed peers: a sender blocked on a full channel learns that
 * its receiver died (FERRY_EPEERDEAD) and a new receiver carries on without
 * losing a committed message; an MPSC sender killed between reserve and
 * commit does not stall the receiver (its claim is skipped and counted);
 * the CLI reports a dead receiver. Processes are killed with SIGKILL
 * (TerminateProcess on Windows). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <stdatomic.h>
#include <stddef.h>

#include "../tools/ferry/proc.h"
#include "channel.h"
#include "os/os.h"

#define SEC INT64_C(1000000000)

/* A flag segment for "I am at the point where you may kill me". */
struct flags {
  _Atomic uint32_t ready;
  _Atomic uint32_t count;
};

static struct flags *flags_open(const char *name, ferry_segment **seg,
                                int create) {
  ASSERT_OK(ferry_segment_open(seg, name,
                               create ? FERRY_CREATE | FERRY_EXCL : 0,
                               sizeof(struct flags), NULL));
  return (struct flags *)ferry_segment_data(*seg);
}

/* 1 while process PID runs (an exited, unreaped one counts as gone). */
static int alive(long pid) {
  uint64_t start;
  return ferry_os_proc_start((uint64_t)pid, &start) == 0;
}

/* Waits to be killed (giving up after a long while, so that a helper of a
 * failed test does not linger for ever). */
static void wait_for_death(void) {
  int64_t deadline = proc_now_ns() + test_timeout_ms(600000) * 1000000;
  while (proc_now_ns() < deadline)
    test_sleep_ms(100);
}

/* ---- roles ---- */

/* argv: channel, flags segment, count: receive COUNT messages (checking
 * their numbers from 0), then report and wait to be killed. */
static int role_receiver(int argc, char **argv) {
  ferry_channel *rx;
  ferry_segment *fs;
  struct flags *f;
  uint64_t i, n = (uint64_t)atoll(argv[2]);
  (void)argc;
  f = flags_open(argv[1], &fs, 0);
  ASSERT_OK(ferry_channel_open(&rx, argv[0], 0, FERRY_RECEIVER, NULL));
  for (i = 0; i < n; i++) {
    uint64_t v;
    size_t len;
    ASSERT_OK(ferry_channel_recv(rx, &v, sizeof v, &len, 30 * SEC));
    ASSERT_EQ(len, sizeof v);
    ASSERT_UEQ(v, i);
  }
  atomic_store(&f->ready, 1);
  wait_for_death(); /* killed here, without closing anything */
  return 1;
}

/* argv: channel, flags segment: reserve, write half a message, report,
 * and wait to be killed before committing. */
static int role_stuck_sender(int argc, char **argv) {
  ferry_channel *tx;
  ferry_segment *fs;
  struct flags *f;
  void *buf;
  (void)argc;
  f = flags_open(argv[1], &fs, 0);
  ASSERT_OK(ferry_channel_open(&tx, argv[0], 0, FERRY_SENDER, NULL));
  ASSERT_OK(ferry_channel_reserve(tx, 100, &buf, 10 * SEC));
  memset(buf, 0xab, 50);
  atomic_store(&f->ready, 1);
  wait_for_death(); /* killed here, between reserve and commit */
  return 1;
}

/* argv: channel, first, count: send numbers FIRST.. as 8-byte messages. */
static int role_sender(int argc, char **argv) {
  ferry_channel *tx;
  uint64_t i, first = (uint64_t)atoll(argv[1]), n = (uint64_t)atoll(argv[2]);
  (void)argc;
  ASSERT_OK(ferry_channel_open(&tx, argv[0], 0, FERRY_SENDER, NULL));
  for (i = first; i < first + n; i++)
    ASSERT_OK(ferry_channel_send(tx, &i, sizeof i, 30 * SEC));
  ASSERT_OK(ferry_channel_close(tx));
  return 0;
}

/* ---- tests ---- */

/* A sender fills the ring; the receiver, having read some, is killed. The
 * blocked sender gets FERRY_EPEERDEAD (not a timeout, not a hang); a new
 * receiver takes over and gets every message the dead one had not
 * received, in order. */
static void run_dead_receiver(unsigned kind) {
  char ch[64], fl[64], cnt[16];
  const char *args[4];
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *tx, *rx;
  ferry_segment *fs;
  struct flags *f;
  uint64_t sent = 0, i;
  long pid;
  int rc;
  test_name(ch, sizeof ch, "dead-rx");
  test_name(fl, sizeof fl, "flags");
  f = flags_open(fl, &fs, 1);
  o.kind = kind;
  o.capacity = 4096;
  ASSERT_OK(
      ferry_channel_open(&tx, ch, FERRY_CREATE | FERRY_EXCL, FERRY_SENDER, &o));
  snprintf(cnt, sizeof cnt, "%d", 10);
  args[0] = ch;
  args[1] = fl;
  args[2] = cnt;
  args[3] = NULL;
  pid = test_spawn("receiver", args);
  for (i = 0; i < 10; i++, sent++)
    ASSERT_OK(ferry_channel_send(tx, &sent, sizeof sent, 30 * SEC));
  test_await(&f->ready, 1, pid);
  test_kill_reap(pid);
  /* Fill the ring: try-sends until full. */
  while ((rc = ferry_channel_send(tx, &sent, sizeof sent, 0)) == 0)
    sent++;
  ASSERT_ERR(rc, FERRY_EAGAIN);
  /* A blocking send now learns that nobody will ever make room. */
  ASSERT_ERR(ferry_channel_send(tx, &sent, sizeof sent, 60 * SEC),
             FERRY_EPEERDEAD);
  ASSERT_CONTAINS(ferry_strerror(FERRY_EPEERDEAD), "died");
  /* A new receiver takes over the dead one's place and position. */
  ASSERT_OK(ferry_channel_open(&rx, ch, 0, FERRY_RECEIVER, NULL));
  for (i = 10; i < sent; i++) {
    uint64_t v;
    size_t len;
    ASSERT_OK(ferry_channel_recv(rx, &v, sizeof v, &len, 0));
    ASSERT_UEQ(v, i);
  }
  {
    size_t len;
    ASSERT_ERR(ferry_channel_recv(rx, &i, sizeof i, &len, 0), FERRY_EAGAIN);
  }
  /* and the sender can go on */
  ASSERT_OK(ferry_channel_send(tx, &sent, sizeof sent, 30 * SEC));
  ASSERT_OK(ferry_segment_unlink(ch, 0));
  ASSERT_OK(ferry_segment_unlink(fl, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_segment_close(fs));
}

static void test_dead_receiver_spsc(void) {
  run_dead_receiver(FERRY_CHANNEL_SPSC);
}
static void test_dead_receiver_mpsc(void) {
  run_dead_receiver(FERRY_CHANNEL_MPSC);
}

/* An MPSC sender is killed between reserve and commit. Messages from other
 * senders, claimed after it, still arrive; the dead claim is skipped and
 * counted; nothing hangs. */
static void test_sender_killed_mid_message(void) {
  char ch[64], fl[64];
  const char *args[4];
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *rx;
  ferry_channel_info *info;
  ferry_segment *fs;
  struct flags *f;
  uint64_t i, got = 0;
  long stuck, other;
  test_name(ch, sizeof ch, "dead-tx");
  test_name(fl, sizeof fl, "flags");
  f = flags_open(fl, &fs, 1);
  o.kind = FERRY_CHANNEL_MPSC;
  o.capacity = 8192;
  ASSERT_OK(ferry_channel_open(&rx, ch, FERRY_CREATE | FERRY_EXCL,
                               FERRY_RECEIVER, &o));
  args[0] = ch;
  args[1] = fl;
  args[2] = NULL;
  stuck = test_spawn("stuck-sender", args);
  test_await(&f->ready, 1, stuck);
  test_kill_reap(stuck);
  /* Another sender's messages sit behind the dead claim. */
  args[1] = "0";
  args[2] = "1000";
  args[3] = NULL;
  other = test_spawn("sender", args);
  for (i = 0; i < 1000; i++) {
    uint64_t v;
    size_t len;
    ASSERT_OK(ferry_channel_recv(rx, &v, sizeof v, &len, 60 * SEC));
    ASSERT_UEQ(v, i);
    got++;
  }
  ASSERT_EQ(test_wait(other, test_timeout_ms(60000)), 0);
  info = (ferry_channel_info *)malloc(sizeof *info);
  ASSERT_TRUE(info != NULL);
  ASSERT_OK(ferry_channel_get_info(rx, info, sizeof *info));
  ASSERT_UEQ(info->abandoned, 1);
  ASSERT_UEQ(info->received, got);
  free(info);
  ASSERT_OK(ferry_segment_unlink(ch, 0));
  ASSERT_OK(ferry_segment_unlink(fl, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_segment_close(fs));
}

/* A sender that is merely slow between reserve and commit is waited for,
 * not skipped: its message arrives. */
static void test_slow_sender_not_skipped(void) {
  char ch[64];
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *rx, *tx;
  void *buf;
  uint64_t v = 0;
  size_t len;
  test_name(ch, sizeof ch, "slow-tx");
  o.kind = FERRY_CHANNEL_MPSC;
  o.liveness_ns = 1000000; /* check often */
  ASSERT_OK(ferry_channel_open(&rx, ch, FERRY_CREATE | FERRY_EXCL,
                               FERRY_RECEIVER, &o));
  ASSERT_OK(ferry_channel_open(&tx, ch, 0, FERRY_SENDER, NULL));
  ASSERT_OK(ferry_channel_reserve(tx, 8, &buf, SEC));
  /* The receiver waits well past several liveness checks: nothing is
   * skipped while the claim's owner (this process) lives. */
  ASSERT_ERR(ferry_channel_recv(rx, &v, sizeof v, &len, 30000000),
             FERRY_ETIMEDOUT);
  v = 42;
  memcpy(buf, &v, 8);
  ASSERT_OK(ferry_channel_commit(tx, 8));
  v = 0;
  ASSERT_OK(ferry_channel_recv(rx, &v, sizeof v, &len, SEC));
  ASSERT_UEQ(v, 42);
  ASSERT_OK(ferry_segment_unlink(ch, 0));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_channel_close(rx));
}

/* Reads file PATH into BUF (NUL-terminated, truncated to CAP bytes). */
static void slurp(const char *path, char *buf, size_t cap) {
  FILE *fp = fopen(path, "rb");
  size_t n = 0;
  if (fp) {
    n = fread(buf, 1, cap - 1, fp);
    fclose(fp);
  }
  buf[n] = '\0';
}

/* The CLI: `ferry send` blocked on a full channel whose receiver was killed
 * exits non-zero with one clear line, well before its timeout. The test
 * creates the channel and keeps it open (on Windows a channel lives only
 * while a handle is open); the receiver is a helper that attaches and never
 * reads. */
static void test_cli_send_reports_dead_receiver(void) {
  char ch[64], fl[64], in[4096], out[4096], errf[4096], err[4096];
  const char *args[8];
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *obs;
  ferry_channel_info *info;
  ferry_segment *fs;
  struct flags *f;
  struct ferry_chan_hdr *h;
  FILE *fp;
  int64_t deadline;
  long rx, tx;
  int rc, i;
  test_name(ch, sizeof ch, "cli-dead");
  test_name(fl, sizeof fl, "flags");
  f = flags_open(fl, &fs, 1);
  o.kind = FERRY_CHANNEL_SPSC;
  o.capacity = 4096;
  ASSERT_OK(ferry_channel_open(&obs, ch, FERRY_CREATE | FERRY_EXCL,
                               FERRY_OBSERVE, &o));
  h = (struct ferry_chan_hdr *)ferry_segment_data(ferry_channel_segment(obs));
  info = (ferry_channel_info *)malloc(sizeof *info);
  ASSERT_TRUE(info != NULL);
  args[0] = ch;
  args[1] = fl;
  args[2] = "0"; /* receive nothing */
  args[3] = NULL;
  rx = test_spawn("receiver", args);
  test_await(&f->ready, 1, rx);
  /* 64 KiB of input: far more than the ring holds */
  snprintf(in, sizeof in, "%s/zeros", test_tmpdir());
  snprintf(out, sizeof out, "%s/send.out", test_tmpdir());
  snprintf(errf, sizeof errf, "%s/send.err", test_tmpdir());
  fp = fopen(in, "wb");
  ASSERT_TRUE(fp != NULL);
  for (i = 0; i < 64; i++) {
    static const char zeros[1024];
    ASSERT_EQ(fwrite(zeros, 1, sizeof zeros, fp), sizeof zeros);
  }
  ASSERT_EQ(fclose(fp), 0);
  args[0] = FERRY_CLI_PATH;
  args[1] = "send";
  args[2] = ch;
  args[3] = "--chunk";
  args[4] = "1000";
  args[5] = "--timeout";
  args[6] = "60";
  args[7] = NULL;
  tx = proc_spawn(FERRY_CLI_PATH, args, in, out, errf);
  ASSERT_GT(tx, 0);
  /* Kill the receiver once send is blocked: the ring has no room for
   * another 1000-byte message and the sender sleeps. */
  deadline = proc_now_ns() + test_timeout_ms(30000) * 1000000;
  for (;;) {
    ASSERT_OK(ferry_channel_get_info(obs, info, sizeof *info));
    if (info->used + 1008 > info->capacity && /* 1008: the 1000-byte record */
        atomic_load(&h->tx.sleepers) >= 1)
      break;
    if (proc_now_ns() > deadline || !alive(tx)) {
      slurp(errf, err, sizeof err);
      TEST_FAIL("ferry send did not block on the full channel (used %llu); "
                "its stderr: %s",
                (unsigned long long)info->used, err);
    }
    test_sleep_ms(1);
  }
  test_kill_reap(rx);
  rc = proc_wait(tx, test_timeout_ms(60000));
  if (rc < 0) {
    proc_kill(tx);
    TEST_FAIL("ferry send did not end after its receiver died");
  }
  slurp(errf, err, sizeof err);
  ASSERT_EQ(rc, 1);
  ASSERT_CONTAINS(err, "FERRY_EPEERDEAD");
  /* `ferry rm` removes it (on Windows: finds it, as the observer holds it) */
  args[0] = FERRY_CLI_PATH;
  args[1] = "rm";
  args[2] = ch;
  args[3] = NULL;
  ASSERT_EQ(test_exec(FERRY_CLI_PATH, args, NULL, NULL, 0, err, sizeof err,
                      test_timeout_ms(30000)),
            0);
  remove(in);
  remove(out);
  remove(errf);
  free(info);
  ASSERT_OK(ferry_segment_unlink(fl, 0));
  ASSERT_OK(ferry_channel_close(obs));
  ASSERT_OK(ferry_segment_close(fs));
}

/* Writes V at byte OFF of the channel header in SEG (a read-write mapping
 * of the channel's segment: a hostile process's write). */
static void poke_u64(ferry_segment *seg, size_t off, uint64_t v) {
  memcpy((uint8_t *)ferry_segment_data(seg) + off, &v, sizeof v);
}

/* Hostile positions: a head or tail that is not record-aligned (found by
 * fuzz_ring: the receiver read a record header at it, past the ring's end)
 * is refused with FERRY_ECORRUPT, at open and while receiving. The channel
 * header starts the segment's data; tail at +64, head at +128. The raw
 * segment handle also keeps the channel in existence between its users
 * (Windows). */
static void test_unaligned_positions_refused(void) {
  const size_t tail = offsetof(struct ferry_chan_hdr, tail);
  const size_t head = offsetof(struct ferry_chan_hdr, head);
  char ch[64];
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *tx, *rx;
  ferry_segment *raw;
  uint64_t v = 7;
  size_t len;
  test_name(ch, sizeof ch, "unaligned");
  o.capacity = 4096;
  o.max_peers = 2; /* the ring then ends where the mapping ends */
  ASSERT_OK(
      ferry_channel_open(&tx, ch, FERRY_CREATE | FERRY_EXCL, FERRY_SENDER, &o));
  ASSERT_OK(ferry_segment_open(&raw, ch, 0, 0, NULL));
  ASSERT_OK(ferry_channel_close(tx));
  poke_u64(raw, head, 4094);
  poke_u64(raw, tail, 4102);
  ASSERT_ERR(ferry_channel_open(&rx, ch, 0, FERRY_RECEIVER, NULL),
             FERRY_ECORRUPT);
  ASSERT_ERR(ferry_channel_open(&tx, ch, 0, FERRY_SENDER, NULL),
             FERRY_ECORRUPT);
  /* aligned again, a receiver opens; then the tail goes bad under it */
  poke_u64(raw, head, 4096);
  poke_u64(raw, tail, 4096);
  ASSERT_OK(ferry_channel_open(&rx, ch, 0, FERRY_RECEIVER, NULL));
  poke_u64(raw, tail, 4100);
  ASSERT_ERR(ferry_channel_recv(rx, &v, sizeof v, &len, 0), FERRY_ECORRUPT);
  ASSERT_OK(ferry_segment_unlink(ch, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_segment_close(raw));
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"dead_receiver_spsc", test_dead_receiver_spsc},
      {"dead_receiver_mpsc", test_dead_receiver_mpsc},
      {"sender_killed_mid_message", test_sender_killed_mid_message},
      {"slow_sender_not_skipped", test_slow_sender_not_skipped},
      {"cli_send_reports_dead_receiver", test_cli_send_reports_dead_receiver},
      {"unaligned_positions_refused", test_unaligned_positions_refused},
      {NULL, NULL}};
  static const struct test_role roles[] = {{"receiver", role_receiver},
                                           {"stuck-sender", role_stuck_sender},
                                           {"sender", role_sender},
                                           {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
