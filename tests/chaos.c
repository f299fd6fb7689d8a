/* Description: chaos: MPSC producers and a consumer are killed with SIGKILL
 * (TerminateProcess on Windows) at random points and restarted, for hundreds of
 * kills. Every message carries its producer's id and a sequence number; a
 * ledger in shared memory records what each sender was told and what the
 * consumer received. The test asserts that no message is delivered twice, that
 * every message whose send succeeded is delivered, that no message whose send
 * reported an error is delivered, and that no process hangs (every wait is
 * bounded).
 *
 * Exactly-once across a consumer crash takes the consumer's help: the
 * library redelivers, in order, a message that was peeked but not released,
 * and only that (the consumer peeks one at a time). So a restarted consumer
 * whose FIRST message was already counted releases it without counting it
 * again; any other message counted twice is a duplicate the library made. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <stdatomic.h>

#include "os/os.h"

#define SEC INT64_C(1000000000)
#define KILLED 137 /* test_wait's code for a process ended by test_kill */
#define PRODUCERS 3
#define PER_PRODUCER 200000
#define KILLS 200 /* kills that strike a running process */
#define MAX_ROUNDS 3000

enum { UNTOUCHED = 0, IN_FLIGHT = 1, SENT = 2, REFUSED = 3 };

struct ledger {
  _Atomic uint32_t stop;            /* producers: finish now */
  _Atomic uint32_t next[PRODUCERS]; /* next sequence to try */
  _Atomic uint8_t state[PRODUCERS][PER_PRODUCER];
  _Atomic uint8_t delivered[PRODUCERS][PER_PRODUCER];
  _Atomic uint32_t total_delivered;
};

struct msg {
  uint32_t producer, seq, check;
};

/* The test process, whose pid a helper gets as an argument: the helper
 * stops when it is gone (a pid and its start time name one process). */
static uint64_t parent_pid, parent_start;

static void parent_init(const char *pid) {
  parent_pid = strtoull(pid, NULL, 10);
  ASSERT_OK(ferry_os_proc_start(parent_pid, &parent_start));
}

static int parent_alive(void) {
  uint64_t start;
  return ferry_os_proc_start(parent_pid, &start) == 0 && start == parent_start;
}

static struct ledger *ledger_open(const char *name, ferry_segment **seg,
                                  int create) {
  ASSERT_OK(ferry_segment_open(seg, name,
                               create ? FERRY_CREATE | FERRY_EXCL : 0,
                               sizeof(struct ledger), NULL));
  return (struct ledger *)ferry_segment_data(*seg);
}

/* argv: channel, ledger, parent pid, producer id. Sends its sequence numbers in
 * order, recording before each send that it is in flight, and after it what the
 * library said. A restarted producer skips a sequence left in flight. */
static int role_producer(int argc, char **argv) {
  ferry_channel *tx;
  ferry_segment *ls;
  struct ledger *L;
  uint32_t p = (uint32_t)atoi(argv[3]);
  (void)argc;
  parent_init(argv[2]);
  L = ledger_open(argv[1], &ls, 0);
  ASSERT_OK(ferry_channel_open(&tx, argv[0], 0, FERRY_SENDER, NULL));
  for (;;) {
    uint32_t seq = atomic_load(&L->next[p]);
    struct msg m;
    void *buf;
    int rc;
    if (seq >= PER_PRODUCER || atomic_load(&L->stop))
      break;
    if ((seq & 4095) == 0 && !parent_alive())
      return 3; /* the test is gone: do not linger */
    if (atomic_load(&L->state[p][seq]) != UNTOUCHED) {
      atomic_store(&L->next[p], seq + 1); /* killed around this one */
      continue;
    }
    atomic_store(&L->state[p][seq], IN_FLIGHT);
    m.producer = p;
    m.seq = seq;
    m.check = p * 2654435761u ^ seq;
    /* reserve/commit, so a kill can land between them */
    rc = ferry_channel_reserve(tx, sizeof m, &buf, 5 * SEC);
    if (rc == 0) {
      memcpy(buf, &m, sizeof m);
      rc = ferry_channel_commit(tx, sizeof m);
    }
    atomic_store(&L->state[p][seq], rc == 0 ? SENT : REFUSED);
    atomic_store(&L->next[p], seq + 1);
  }
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_segment_close(ls));
  return 0;
}

/* argv: channel, ledger, parent pid. Receives one message at a time with
 * peek/release, counting each once (see the file comment). Exits when told to
 * and the channel is drained. */
static int role_consumer(int argc, char **argv) {
  ferry_channel *rx;
  ferry_segment *ls;
  struct ledger *L;
  int first = 1;
  (void)argc;
  parent_init(argv[2]);
  L = ledger_open(argv[1], &ls, 0);
  ASSERT_OK(ferry_channel_open(&rx, argv[0], 0, FERRY_RECEIVER, NULL));
  for (;;) {
    ferry_msg msg;
    struct msg m;
    int n = ferry_channel_peek(rx, &msg, 1, SEC / 10);
    if (n == FERRY_ETIMEDOUT) {
      if (atomic_load(&L->stop) == 2)
        break; /* producers are done and nothing came for 100 ms */
      if (!parent_alive())
        return 3; /* the test is gone: do not linger */
      continue;
    }
    if (n != 1)
      TEST_FAIL("peek: %s", ferry_err_name(n));
    ASSERT_EQ(msg.len, sizeof m);
    memcpy(&m, msg.data, sizeof m);
    ASSERT_LT(m.producer, PRODUCERS);
    ASSERT_LT(m.seq, PER_PRODUCER);
    ASSERT_EQ(m.check, m.producer * 2654435761u ^ m.seq);
    if (first && atomic_load(&L->delivered[m.producer][m.seq]) != 0) {
      /* our predecessor counted it, then died before releasing it */
    } else {
      atomic_fetch_add(&L->delivered[m.producer][m.seq], 1);
      atomic_fetch_add(&L->total_delivered, 1);
    }
    first = 0;
    ASSERT_OK(ferry_channel_release(rx));
  }
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_segment_close(ls));
  return 0;
}

/* The helpers alive now, killed at exit if the test fails half-way. */
static long helpers[PRODUCERS + 1];
static void kill_helpers(void) {
  int i;
  for (i = 0; i <= PRODUCERS; i++)
    if (helpers[i] > 0)
      test_kill(helpers[i]);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void test_chaos(void) {
  char ch[64], ld[64], me[24], ids[PRODUCERS][8];
  const char *args[5];
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *keep;
  ferry_segment *ls;
  struct ledger *L;
  long prod[PRODUCERS], cons;
  int kills = 0, i, p, s;
  long sent = 0, refused = 0, inflight = 0, delivered = 0;
  test_name(ch, sizeof ch, "chaos");
  test_name(ld, sizeof ld, "ledger");
  L = ledger_open(ld, &ls, 1);
  o.kind = FERRY_CHANNEL_MPSC;
  o.capacity = 4096; /* small: producers block, claims wrap often */
  o.liveness_ns = 2000000;
  ASSERT_OK(ferry_channel_open(&keep, ch, FERRY_CREATE | FERRY_EXCL,
                               FERRY_OBSERVE, &o));
  snprintf(me, sizeof me, "%ld", test_getpid());
  args[0] = ch;
  args[1] = ld;
  args[2] = me;
  args[4] = NULL;
  for (p = 0; p < PRODUCERS; p++) {
    snprintf(ids[p], sizeof ids[p], "%d", p);
    args[3] = ids[p];
    prod[p] = helpers[p] = test_spawn("producer", args);
  }
  args[3] = NULL;
  cons = helpers[PRODUCERS] = test_spawn("consumer", args);
  atexit(kill_helpers);

  for (i = 0; kills < KILLS && i < MAX_ROUNDS; i++) {
    int victim = (int)(rng() % (PRODUCERS + 1));
    /* a random point to strike (after 1 to 3 ms), not a sync */
    test_sleep_ms(1 + (int64_t)(rng() % 3));
    if (victim == PRODUCERS) {
      test_kill(cons);
      ASSERT_EQ(test_wait(cons, test_timeout_ms(30000)), KILLED);
      cons = helpers[PRODUCERS] = test_spawn("consumer", args);
      kills++;
    } else {
      int code;
      test_kill(prod[victim]);
      code = test_wait(prod[victim], test_timeout_ms(30000));
      ASSERT_TRUE(code == KILLED || code == 0); /* 0: it had finished */
      kills += code == KILLED;
      args[3] = ids[victim];
      prod[victim] = helpers[victim] = test_spawn("producer", args);
      args[3] = NULL;
    }
  }
  if (kills < KILLS)
    TEST_FAIL("only %d of %d rounds killed a running process", kills, i);
  /* Let the producers finish their quotas, then the consumer drain. */
  for (p = 0; p < PRODUCERS; p++) {
    ASSERT_EQ(test_wait(prod[p], test_timeout_ms(120000)), 0);
    helpers[p] = 0;
  }
  atomic_store(&L->stop, 2);
  ASSERT_EQ(test_wait(cons, test_timeout_ms(120000)), 0);
  memset(helpers, 0, sizeof helpers); /* all reaped */

  for (p = 0; p < PRODUCERS; p++)
    for (s = 0; s < PER_PRODUCER; s++) {
      int st = atomic_load(&L->state[p][s]);
      int d = atomic_load(&L->delivered[p][s]);
      if (d > 1)
        TEST_FAIL("producer %d message %d delivered %d times", p, s, d);
      if (st == SENT && d != 1)
        TEST_FAIL("producer %d message %d: its send succeeded but it was "
                  "never delivered (silent loss)",
                  p, s);
      if (st == REFUSED && d != 0)
        TEST_FAIL("producer %d message %d: its send failed, yet it was "
                  "delivered",
                  p, s);
      if (st == UNTOUCHED)
        TEST_FAIL("producer %d message %d was never attempted", p, s);
      sent += st == SENT;
      refused += st == REFUSED;
      inflight += st == IN_FLIGHT;
      delivered += d;
    }
  printf("chaos: %d kills in %d rounds; %ld sent, %ld refused, %ld cut short "
         "by a kill "
         "(%ld of those delivered); %ld delivered, none twice\n",
         kills, i, sent, refused, inflight, delivered - sent, delivered);
  ASSERT_OK(ferry_segment_unlink(ch, 0));
  ASSERT_OK(ferry_segment_unlink(ld, 0));
  ASSERT_OK(ferry_channel_close(keep));
  ASSERT_OK(ferry_segment_close(ls));
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {{"chaos", test_chaos}, {NULL, NULL}};
  static const struct test_role roles[] = {
      {"producer", role_producer}, {"consumer", role_consumer}, {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
