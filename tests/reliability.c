/* Description: crashed peers: a sender blocked on a full channel learns that
 * its receiver died (FERRY_EPEERDEAD) and a new receiver carries on without
 * losing a committed message; an MPSC sender killed between reserve and
 * commit does not stall the receiver (its claim is skipped and counted);
 * the CLI reports a dead receiver. Processes are killed with SIGKILL. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

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

#define await(word, want, pid) test_await((void *)(word), (want), (pid))
#define kill_and_reap(pid) test_kill(pid)

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
  for (;;)
    pause(); /* killed here, without closing anything */
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
  for (;;)
    pause(); /* killed here, between reserve and commit */
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
  await(&f->ready, 1, pid);
  kill_and_reap(pid);
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
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_segment_close(fs));
  ASSERT_OK(ferry_segment_unlink(ch, 0));
  ASSERT_OK(ferry_segment_unlink(fl, 0));
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
  await(&f->ready, 1, stuck);
  kill_and_reap(stuck);
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
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_segment_close(fs));
  ASSERT_OK(ferry_segment_unlink(ch, 0));
  ASSERT_OK(ferry_segment_unlink(fl, 0));
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
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_segment_unlink(ch, 0));
}

/* The CLI: `ferry send` blocked on a full channel whose `ferry recv` was
 * killed exits non-zero with one clear line, well before its timeout. */
static void test_cli_send_reports_dead_receiver(void) {
  char ch[64], cmd[4096], out[4096], err[4096];
  int rc;
  test_name(ch, sizeof ch, "cli-dead");
  snprintf(cmd, sizeof cmd, "%s create %s --channel spsc --capacity 4K",
           FERRY_CLI_PATH, ch);
  ASSERT_EQ(
      test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(30000)),
      0);
  /* recv runs with its output into a pipe nobody reads, so it stops
   * reading; it is killed once send is blocked; send must then fail. */
  snprintf(cmd, sizeof cmd,
           "F='%s'; \"$F\" recv %s --timeout 60 | sleep 600 & p=$!; "
           "until \"$F\" info --json %s | grep -q '\"role\":\"receiver\"'; "
           "do sleep 0.01; done; "
           "(head -c 50000000 /dev/zero | \"$F\" send %s --chunk 1000 "
           "--timeout 60; echo \"send=$?\" >&2) & s=$!; "
           "until \"$F\" info %s | grep -Eq '^used: *4096 '; "
           "do sleep 0.01; done; "
           "pkill -KILL -f \"^$F recv %s\"; wait $s; kill $p; true",
           FERRY_CLI_PATH, ch, ch, ch, ch, ch);
  rc = test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(120000));
  ASSERT_EQ(rc, 0);
  ASSERT_CONTAINS(err, "send=1");
  ASSERT_CONTAINS(err, "FERRY_EPEERDEAD");
  snprintf(cmd, sizeof cmd, "%s rm %s", FERRY_CLI_PATH, ch);
  ASSERT_EQ(
      test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(30000)),
      0);
}

/* Writes V at byte OFF of segment NAME's object in /dev/shm. */
static void poke_u64(const char *name, off_t off, uint64_t v) {
  char path[128];
  int fd;
  snprintf(path, sizeof path, "/dev/shm/ferry.%s", name);
  fd = open(path, O_RDWR);
  ASSERT_TRUE(fd >= 0);
  ASSERT_EQ(pwrite(fd, &v, sizeof v, off), (long long)sizeof v);
  close(fd);
}

/* Hostile positions: a head or tail that is not record-aligned (found by
 * fuzz_ring: the receiver read a record header at it, past the ring's end)
 * is refused with FERRY_ECORRUPT, at open and while receiving. The channel
 * header sits at byte 4096 of the object; tail at +64, head at +128. */
static void test_unaligned_positions_refused(void) {
  char ch[64];
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *tx, *rx;
  uint64_t v = 7;
  size_t len;
  test_name(ch, sizeof ch, "unaligned");
  o.capacity = 4096;
  o.max_peers = 2; /* the ring then ends where the mapping ends */
  ASSERT_OK(
      ferry_channel_open(&tx, ch, FERRY_CREATE | FERRY_EXCL, FERRY_SENDER, &o));
  ASSERT_OK(ferry_channel_close(tx));
  poke_u64(ch, 4096 + 128, 4094); /* head */
  poke_u64(ch, 4096 + 64, 4102);  /* tail */
  ASSERT_ERR(ferry_channel_open(&rx, ch, 0, FERRY_RECEIVER, NULL),
             FERRY_ECORRUPT);
  ASSERT_ERR(ferry_channel_open(&tx, ch, 0, FERRY_SENDER, NULL),
             FERRY_ECORRUPT);
  /* aligned again, a receiver opens; then the tail goes bad under it */
  poke_u64(ch, 4096 + 128, 4096);
  poke_u64(ch, 4096 + 64, 4096);
  ASSERT_OK(ferry_channel_open(&rx, ch, 0, FERRY_RECEIVER, NULL));
  poke_u64(ch, 4096 + 64, 4100);
  ASSERT_ERR(ferry_channel_recv(rx, &v, sizeof v, &len, 0), FERRY_ECORRUPT);
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_segment_unlink(ch, 0));
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
