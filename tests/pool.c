/* Description: the block pool: allocation, alignment, exhaustion and
 * timeouts; handles checked (garbage, stale, out of range, double release
 * are FERRY_ECORRUPT); blocks handed through SPSC, MPSC and broadcast
 * channels between real processes and verified byte for byte; broadcast
 * fan-out frees a block only after its last subscriber; subscribers that
 * leave or are overrun leak nothing; a holder killed with SIGKILL has its
 * blocks reclaimed while a live slow holder is never robbed; a receiver
 * killed after taking a block but before consuming the message; a damaged
 * pool header; the CLI's create/info/ls/gc/rm for pools. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <stdarg.h>
#include <stdatomic.h>

#include "pool.h"

#ifndef FERRY_CLI_PATH
#error "FERRY_CLI_PATH must name the ferry binary (tests/CMakeLists.txt)"
#endif

#if defined(__GNUC__)
#define FERRY_TEST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FERRY_TEST_PRINTF(f, a)
#endif

#define SEC INT64_C(1000000000)
#define MS INT64_C(1000000)

/* ---- helpers ---- */

/* A control segment for handshakes between the test and its helpers. */
struct ctl {
  _Atomic uint32_t ready; /* helpers that reached their point */
  _Atomic uint32_t go;    /* the test's go-ahead, counted */
  _Atomic uint32_t done;  /* helpers that finished a step */
  uint32_t pad;
  _Atomic uint64_t handle[16]; /* what helper i saw */
};

static struct ctl *ctl_open(const char *name, ferry_segment **seg, int create) {
  ASSERT_OK(ferry_segment_open(seg, name,
                               create ? FERRY_CREATE | FERRY_EXCL : 0,
                               sizeof(struct ctl), NULL));
  return (struct ctl *)ferry_segment_data(*seg);
}

/* Removes the segments named, up to a NULL. Tests call it while they still
 * hold the segments open: on Windows a named segment exists only while some
 * process has a handle to it (unlink only checks that it exists), so the
 * name must be removed before the last close; on POSIX the order makes no
 * difference. */
static void unlink_all(const char *name, ...) {
  va_list ap;
  va_start(ap, name);
  for (; name; name = va_arg(ap, const char *))
    ASSERT_OK(ferry_segment_unlink(name, 0));
  va_end(ap);
}

static ferry_pool *pool_create(const char *name, uint64_t size,
                               uint32_t count) {
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  ferry_pool *p;
  o.block_size = size;
  o.block_count = count;
  o.liveness_ns = MS; /* tests look for dead peers often */
  ASSERT_OK(ferry_pool_open(&p, name, FERRY_CREATE | FERRY_EXCL, &o));
  return p;
}

static ferry_pool *pool_attach(const char *name) {
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  ferry_pool *p;
  o.liveness_ns = MS;
  ASSERT_OK(ferry_pool_open(&p, name, 0, &o));
  return p;
}

static ferry_channel *chan_open(const char *name, unsigned flags, unsigned role,
                                unsigned kind) {
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *ch;
  o.kind = kind;
  o.capacity = 4096;
  o.liveness_ns = MS;
  ASSERT_OK(ferry_channel_open(&ch, name, flags, role, &o));
  return ch;
}

/* A frame: word 0 = its number and sender, the rest a pattern of both. */
static void frame_fill(void *data, uint64_t size, uint64_t id) {
  uint64_t *w = (uint64_t *)data, k, n = size / 8;
  w[0] = id;
  for (k = 1; k < n; k++)
    w[k] = (id * UINT64_C(0x9e3779b97f4a7c15)) ^ k;
}

static void frame_check(const void *data, uint64_t size, uint64_t id) {
  const uint64_t *w = (const uint64_t *)data;
  uint64_t k, n = size / 8;
  ASSERT_UEQ(w[0], id);
  for (k = 1; k < n; k++)
    if (w[k] != ((id * UINT64_C(0x9e3779b97f4a7c15)) ^ k))
      TEST_FAIL("frame %llu: word %llu is wrong", (unsigned long long)id,
                (unsigned long long)k);
}

static void pool_info(ferry_pool *p, ferry_pool_info *in) {
  ASSERT_OK(ferry_pool_get_info(p, in, sizeof *in));
}

static uint64_t holders(ferry_pool *p, uint64_t handle) {
  ferry_pool_block b;
  ASSERT_OK(
      ferry_pool_block_info(p, (uint32_t)(handle & 0xffffff), &b, sizeof b));
  return b.holders;
}

static int popcount(uint64_t m) {
  int n = 0;
  for (; m; m &= m - 1)
    n++;
  return n;
}

/* ---- roles ---- */

/* argv: pool, channel, frames, size: receive FRAMES frames through the
 * channel, check each (numbers from 0), release it. */
static int role_receiver(int argc, char **argv) {
  ferry_pool *p = pool_attach(argv[0]);
  ferry_channel *rx = chan_open(argv[1], 0, FERRY_RECEIVER, 0);
  uint64_t i, n = (uint64_t)atoll(argv[2]), size = (uint64_t)atoll(argv[3]);
  (void)argc;
  for (i = 0; i < n; i++) {
    uint64_t h;
    void *d;
    ASSERT_OK(ferry_pool_recv(p, rx, &h, &d, NULL, 0, NULL, 30 * SEC));
    frame_check(d, size, i);
    ASSERT_OK(ferry_pool_release(p, h));
  }
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_close(p));
  return 0;
}

/* argv: pool, channel, sender id, frames, size: send FRAMES frames numbered
 * id << 32 | i through an MPSC channel. */
static int role_sender(int argc, char **argv) {
  ferry_pool *p = pool_attach(argv[0]);
  ferry_channel *tx = chan_open(argv[1], 0, FERRY_SENDER, 0);
  uint64_t id = (uint64_t)atoll(argv[2]), n = (uint64_t)atoll(argv[3]);
  uint64_t size = (uint64_t)atoll(argv[4]), i;
  (void)argc;
  for (i = 0; i < n; i++) {
    uint64_t h;
    void *d;
    ASSERT_OK(ferry_pool_alloc(p, &h, &d, 30 * SEC));
    frame_fill(d, size, id << 32 | i);
    ASSERT_OK(ferry_pool_send(p, tx, h, &id, sizeof id, 30 * SEC));
  }
  /* Stay until every frame is consumed: leaving earlier would release
   * references the receiver has yet to take (it would then see
   * FERRY_ECORRUPT for a reused block, by design). */
  ASSERT_OK(ferry_pool_flush(p, 30 * SEC));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_pool_close(p));
  return 0;
}

/* argv: pool, broadcast channel, ctl, index: subscribe, say ready, receive
 * one frame, report its handle, then release it when ctl->go reaches
 * index + 1. */
static int role_subscriber(int argc, char **argv) {
  ferry_pool *p = pool_attach(argv[0]);
  ferry_channel *rx = chan_open(argv[1], 0, FERRY_RECEIVER, 0);
  ferry_segment *cs;
  struct ctl *c = ctl_open(argv[2], &cs, 0);
  uint32_t me = (uint32_t)atoi(argv[3]);
  uint64_t h, size;
  void *d;
  size_t ml;
  (void)argc;
  atomic_fetch_add(&c->ready, 1);
  ASSERT_OK(ferry_pool_recv(p, rx, &h, &d, &size, sizeof size, &ml, 30 * SEC));
  ASSERT_EQ(ml, sizeof size);
  frame_check(d, size, 7);
  atomic_store(&c->handle[me], h);
  atomic_fetch_add(&c->done, 1);
  test_await(&c->go, me + 1, 0);
  ASSERT_OK(ferry_pool_release(p, h));
  atomic_fetch_add(&c->done, 1);
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
  return 0;
}

/* argv: pool, count, ctl: allocate COUNT blocks, fill them, say ready and
 * wait to be killed holding them. */
static int role_holder(int argc, char **argv) {
  ferry_pool *p = pool_attach(argv[0]);
  ferry_segment *cs;
  struct ctl *c = ctl_open(argv[2], &cs, 0);
  int i, n = atoi(argv[1]);
  (void)argc;
  for (i = 0; i < n; i++) {
    uint64_t h;
    void *d;
    ASSERT_OK(ferry_pool_alloc(p, &h, &d, 0));
    frame_fill(d, 64, (uint64_t)i);
  }
  atomic_store(&c->ready, 1);
  for (;;)
    test_sleep_ms(100); /* killed here, holding the blocks */
  return 1;
}

/* argv: pool, channel, ctl: peek a block's message, take the block, say
 * ready, and wait to be killed before consuming the message. */
static int role_taker(int argc, char **argv) {
  ferry_pool *p = pool_attach(argv[0]);
  ferry_channel *rx = chan_open(argv[1], 0, FERRY_RECEIVER, 0);
  ferry_segment *cs;
  struct ctl *c = ctl_open(argv[2], &cs, 0);
  ferry_msg m;
  uint64_t h;
  (void)argc;
  ASSERT_EQ(ferry_channel_peek(rx, &m, 1, 30 * SEC), 1);
  memcpy(&h, m.data, 8);
  ASSERT_OK(ferry_pool_take(p, h, NULL));
  atomic_store(&c->handle[0], h);
  atomic_store(&c->ready, 1);
  for (;;)
    test_sleep_ms(100); /* killed here: block taken, message not consumed */
  return 1;
}

/* argv: pool, channel (commands), channel (replies): take one block from
 * the commands channel, say so, then release it on the next command. */
static int role_borrower(int argc, char **argv) {
  ferry_pool *p = pool_attach(argv[0]);
  ferry_channel *rx = chan_open(argv[1], 0, FERRY_RECEIVER, 0);
  ferry_channel *tx = chan_open(argv[2], 0, FERRY_SENDER, 0);
  uint64_t h, cmd;
  size_t len;
  void *d;
  (void)argc;
  ASSERT_OK(ferry_pool_recv(p, rx, &h, &d, NULL, 0, NULL, 30 * SEC));
  frame_check(d, 64, 42);
  ASSERT_OK(ferry_channel_send(tx, &h, sizeof h, 30 * SEC));
  ASSERT_OK(ferry_channel_recv(rx, &cmd, sizeof cmd, &len, 30 * SEC));
  ASSERT_OK(ferry_pool_release(p, h));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_close(p));
  return 0;
}

/* ---- tests: one process ---- */

/* Allocation hands out every block once, aligned; an exhausted pool is
 * FERRY_EAGAIN / FERRY_ETIMEDOUT; a released block comes back with a new
 * generation (a new handle). */
static void test_alloc_release(void) {
  char name[64];
  ferry_pool *p;
  ferry_pool_info in;
  uint64_t h[4], again;
  void *d[4];
  int i, j;
  p = pool_create(test_name(name, sizeof name, "alloc"), 3 << 20, 4);
  ASSERT_UEQ(ferry_pool_block_size(p), 3 << 20);
  ASSERT_EQ(ferry_pool_block_count(p), 4);
  for (i = 0; i < 4; i++) {
    ASSERT_OK(ferry_pool_alloc(p, &h[i], &d[i], 0));
    ASSERT_EQ((uintptr_t)d[i] % 4096, 0); /* page-aligned */
    ASSERT_NE(h[i], 0);
    memset(d[i], i, 3 << 20); /* the whole block is ours to write */
    for (j = 0; j < i; j++) {
      ASSERT_NE(h[i], h[j]);
      ASSERT_TRUE(d[i] != d[j]);
    }
  }
  pool_info(p, &in);
  ASSERT_EQ(in.free, 0);
  ASSERT_EQ(in.used, 4);
  ASSERT_EQ(in.npeers, 1);
  ASSERT_EQ(in.peers[0].held, 4);
  ASSERT_UEQ(in.allocs, 4);
  ASSERT_ERR(ferry_pool_alloc(p, &again, NULL, 0), FERRY_EAGAIN);
  ASSERT_ERR(ferry_pool_alloc(p, &again, NULL, 20 * MS), FERRY_ETIMEDOUT);
  ASSERT_OK(ferry_pool_release(p, h[2]));
  ASSERT_OK(ferry_pool_alloc(p, &again, &d[0], 0));
  ASSERT_NE(again, h[2]); /* same block, next generation */
  ASSERT_UEQ(again & 0xffffff, h[2] & 0xffffff);
  ASSERT_ERR(ferry_pool_release(p, h[2]), FERRY_ECORRUPT); /* stale */
  ASSERT_OK(ferry_pool_release(p, again));
  for (i = 0; i < 4; i++)
    if (i != 2)
      ASSERT_OK(ferry_pool_release(p, h[i]));
  pool_info(p, &in);
  ASSERT_EQ(in.free, 4);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_pool_close(p));
}

/* Small blocks are 64-byte aligned; a second reference (take) keeps a
 * block until both are released. */
static void test_small_blocks_and_refs(void) {
  char name[64];
  ferry_pool *p;
  uint64_t h;
  void *d, *d2;
  p = pool_create(test_name(name, sizeof name, "small"), 100, 3);
  ASSERT_OK(ferry_pool_alloc(p, &h, &d, 0));
  ASSERT_EQ((uintptr_t)d % 64, 0);
  ASSERT_OK(ferry_pool_take(p, h, &d2));
  ASSERT_TRUE(d == d2);
  ASSERT_OK(ferry_pool_data(p, h, &d2));
  ASSERT_TRUE(d == d2);
  ASSERT_OK(ferry_pool_release(p, h));
  ASSERT_NE(holders(p, h), 0); /* one reference left */
  ASSERT_OK(ferry_pool_release(p, h));
  ASSERT_UEQ(holders(p, h), 0);
  ASSERT_ERR(ferry_pool_release(p, h), FERRY_ECORRUPT); /* double release */
  ASSERT_ERR(ferry_pool_data(p, h, &d2), FERRY_ECORRUPT);
  ASSERT_ERR(ferry_pool_take(p, h, &d2), FERRY_ECORRUPT); /* free block */
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_pool_close(p));
}

/* Handles that do not name a live block of this pool are FERRY_ECORRUPT
 * with a message, for every call that takes one; nothing is changed. */
static void test_bad_handles(void) {
  char name[64], other[64];
  ferry_pool *p, *q;
  uint64_t h, hq, x = 88172645463325252ull;
  void *d;
  int i;
  p = pool_create(test_name(name, sizeof name, "bad"), 4096, 8);
  q = pool_create(test_name(other, sizeof other, "other"), 4096, 8);
  ASSERT_OK(ferry_pool_alloc(p, &h, &d, 0));
  ASSERT_OK(ferry_pool_alloc(q, &hq, NULL, 0));
  /* random values */
  for (i = 0; i < 100000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    if (x == h)
      continue;
    ASSERT_ERR(ferry_pool_take(p, x, &d), FERRY_ECORRUPT);
    ASSERT_ERR(ferry_pool_release(p, x), FERRY_ECORRUPT);
    ASSERT_ERR(ferry_pool_data(p, x, &d), FERRY_ECORRUPT);
  }
  ASSERT_ERR(ferry_pool_take(p, 0, &d), FERRY_ECORRUPT);
  ASSERT_CONTAINS(ferry_errmsg(), "does not name a block");
  /* out-of-range index, right tag and generation */
  ASSERT_ERR(ferry_pool_take(p, (h & ~UINT64_C(0xffffff)) | 8, &d),
             FERRY_ECORRUPT);
  ASSERT_ERR(ferry_pool_take(p, (h & ~UINT64_C(0xffffff)) | 0xffffff, &d),
             FERRY_ECORRUPT);
  /* wrong generation */
  ASSERT_ERR(ferry_pool_take(p, h + (UINT64_C(1) << 24), &d), FERRY_ECORRUPT);
  ASSERT_CONTAINS(ferry_errmsg(), "stale");
  /* generation 0 */
  ASSERT_ERR(ferry_pool_take(p, h & ~(UINT64_C(0xffffff) << 24), &d),
             FERRY_ECORRUPT);
  /* another pool's handle (tags differ, or the block is free here) */
  if ((hq >> 48) != (h >> 48))
    ASSERT_ERR(ferry_pool_take(p, hq, &d), FERRY_ECORRUPT);
  /* a free block of this pool at a plausible generation */
  ASSERT_ERR(ferry_pool_take(p, (h & ~UINT64_C(0xffffff)) | 1, &d),
             FERRY_ECORRUPT);
  ASSERT_CONTAINS(ferry_errmsg(), "free block");
  /* nothing was disturbed */
  ASSERT_UEQ(popcount(holders(p, h)), 1);
  ASSERT_OK(ferry_pool_release(p, h));
  ASSERT_ERR(ferry_pool_release(p, h), FERRY_ECORRUPT);
  unlink_all(name, other, NULL);
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_pool_close(q));
}

/* Broadcast, in one process with two subscriber handles: one subscriber
 * reads, the other leaves without reading; a third is overrun. The
 * sender's references for consumed or skipped messages are released, and
 * once the readers let go every block is free: nothing leaks. */
static void test_broadcast_leave_and_overrun(void) {
  char pn[64], cn[64];
  ferry_pool *ps, *pa, *pb;
  ferry_channel *tx, *ra, *rb;
  ferry_channel_opts co = FERRY_CHANNEL_OPTS_INIT;
  ferry_pool_info in;
  uint64_t h, i, lost_or_got = 0;
  void *d;
  int rc;
  ps = pool_create(test_name(pn, sizeof pn, "bc"), 256, 64);
  pa = pool_attach(pn);
  pb = pool_attach(pn);
  co.kind = FERRY_CHANNEL_BROADCAST;
  co.flags = FERRY_CHANNEL_OVERRUN;
  co.capacity = 4096; /* ~170 messages of 24 bytes */
  ASSERT_OK(ferry_channel_open(&tx, test_name(cn, sizeof cn, "bc"),
                               FERRY_CREATE | FERRY_EXCL, FERRY_SENDER, &co));
  ASSERT_OK(ferry_channel_open(&ra, cn, 0, FERRY_RECEIVER, NULL));
  ASSERT_OK(ferry_channel_open(&rb, cn, 0, FERRY_RECEIVER, NULL));
  /* 3 frames: A reads them, B leaves without reading */
  for (i = 0; i < 3; i++) {
    ASSERT_OK(ferry_pool_alloc(ps, &h, &d, 0));
    frame_fill(d, 256, i);
    ASSERT_OK(ferry_pool_send(ps, tx, h, NULL, 0, 0));
  }
  ASSERT_OK(ferry_channel_close(rb));
  ASSERT_OK(ferry_pool_close(pb));
  for (i = 0; i < 3; i++) {
    ASSERT_OK(ferry_pool_recv(pa, ra, &h, &d, NULL, 0, NULL, 0));
    frame_check(d, 256, i);
    ASSERT_OK(ferry_pool_release(pa, h));
  }
  ASSERT_EQ(ferry_pool_reclaim(ps), 3);
  pool_info(ps, &in);
  ASSERT_EQ(in.free, 64);
  /* Overrun: the sender never waits; A is lapped many times. Every block
   * the sender let go of because its message was overwritten comes back. */
  for (i = 0; i < 2000; i++) {
    rc = ferry_pool_alloc(ps, &h, &d, 5 * SEC);
    ASSERT_OK(rc);
    frame_fill(d, 256, 1000 + i);
    ASSERT_OK(ferry_pool_send(ps, tx, h, NULL, 0, 0));
  }
  for (;;) {
    rc = ferry_pool_recv(pa, ra, &h, &d, NULL, 0, NULL, 0);
    if (rc == FERRY_EAGAIN)
      break;
    if (rc == FERRY_EOVERRUN) {
      lost_or_got++;
      continue;
    }
    ASSERT_OK(rc);
    ASSERT_TRUE(((const uint64_t *)d)[0] >= 1000);
    frame_check(d, 256, ((const uint64_t *)d)[0]);
    ASSERT_OK(ferry_pool_release(pa, h));
    lost_or_got++;
  }
  ASSERT_GT(ferry_channel_lost(ra), 0);
  ASSERT_LE(lost_or_got + ferry_channel_lost(ra), 2000);
  ferry_pool_reclaim(ps);
  pool_info(ps, &in);
  ASSERT_EQ(in.free, 64);
  ASSERT_OK(ferry_pool_forget(ps, tx));
  unlink_all(pn, cn, NULL);
  ASSERT_OK(ferry_channel_close(ra));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_pool_close(pa));
  ASSERT_OK(ferry_pool_close(ps));
}

/* A message that is not a pool message, or names no live block, is
 * FERRY_ECORRUPT from recv; it is consumed and the next one arrives. */
static void test_recv_garbage(void) {
  char pn[64], cn[64];
  ferry_pool *ps, *pr;
  ferry_channel *tx, *rx;
  uint64_t h, junk = 0x1234567890abcdefull;
  void *d;
  ps = pool_create(test_name(pn, sizeof pn, "junk"), 64, 2);
  pr = pool_attach(pn);
  tx = chan_open(test_name(cn, sizeof cn, "junk"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_SENDER, FERRY_CHANNEL_SPSC);
  rx = chan_open(cn, 0, FERRY_RECEIVER, 0);
  ASSERT_OK(ferry_channel_send(tx, "abc", 3, 0));
  ASSERT_OK(ferry_channel_send(tx, &junk, 8, 0));
  ASSERT_OK(ferry_pool_alloc(ps, &h, &d, 0));
  frame_fill(d, 64, 5);
  ASSERT_OK(ferry_pool_send(ps, tx, h, NULL, 0, 0));
  ASSERT_ERR(ferry_pool_recv(pr, rx, &h, &d, NULL, 0, NULL, 0), FERRY_ECORRUPT);
  ASSERT_CONTAINS(ferry_errmsg(), "not a pool message");
  ASSERT_ERR(ferry_pool_recv(pr, rx, &h, &d, NULL, 0, NULL, 0), FERRY_ECORRUPT);
  ASSERT_OK(ferry_pool_recv(pr, rx, &h, &d, NULL, 0, NULL, 0));
  frame_check(d, 64, 5);
  ASSERT_OK(ferry_pool_release(pr, h));
  ASSERT_EQ(ferry_pool_reclaim(ps), 1);
  ASSERT_UEQ(holders(ps, h), 0);
  unlink_all(pn, cn, NULL);
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_forget(ps, tx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_pool_close(pr));
  ASSERT_OK(ferry_pool_close(ps));
}

/* A damaged pool header is refused at open; a channel is not a pool. */
static void test_corrupt_header(void) {
  char pn[64], cn[64];
  ferry_pool *p;
  ferry_segment *seg;
  ferry_channel *ch;
  uint8_t *base;
  size_t off;
  static const size_t fields[] = {0, 8, 12, 16, 24, 32, 36, 40, 44, 48, 60};
  p = pool_create(test_name(pn, sizeof pn, "hdr"), 4096, 4);
  /* opened raw before the pool is closed: the handle keeps it on Windows */
  ASSERT_OK(ferry_segment_open(&seg, pn, 0, 0, NULL));
  ASSERT_OK(ferry_pool_close(p));
  base = (uint8_t *)ferry_segment_data(seg);
  for (off = 0; off < sizeof fields / sizeof fields[0]; off++) {
    int rc;
    base[fields[off]] ^= 0x10;
    rc = ferry_pool_open(&p, pn, 0, NULL);
    ASSERT_TRUE(rc == FERRY_EBADHDR || rc == FERRY_EVERSION);
    base[fields[off]] ^= 0x10;
  }
  p = pool_attach(pn); /* repaired */
  ASSERT_OK(ferry_pool_close(p));
  ch = chan_open(test_name(cn, sizeof cn, "notpool"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_SENDER, 0);
  ASSERT_ERR(ferry_pool_open(&p, cn, 0, NULL), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "not a pool");
  {
    ferry_channel *ch2;
    ASSERT_ERR(ferry_channel_open(&ch2, pn, 0, FERRY_RECEIVER, NULL),
               FERRY_EINVAL);
  }
  unlink_all(pn, cn, NULL);
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_segment_close(seg));
}

/* Options are checked; a pool reopened with other sizes is refused. */
static void test_options(void) {
  char pn[64];
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  ferry_pool *p;
  test_name(pn, sizeof pn, "opts");
  ASSERT_ERR(ferry_pool_open(&p, pn, FERRY_CREATE, &o), FERRY_EINVAL);
  o.block_size = 64;
  o.block_count = FERRY_POOL_BLOCKS_MAX + 1;
  ASSERT_ERR(ferry_pool_open(&p, pn, FERRY_CREATE, &o), FERRY_EINVAL);
  o.block_count = 2;
  o.max_peers = FERRY_POOL_PEERS_MAX + 1;
  ASSERT_ERR(ferry_pool_open(&p, pn, FERRY_CREATE, &o), FERRY_EINVAL);
  o.max_peers = 2;
  ASSERT_OK(ferry_pool_open(&p, pn, FERRY_CREATE | FERRY_EXCL, &o));
  {
    ferry_pool *q, *r;
    ferry_pool_opts o2 = FERRY_POOL_OPTS_INIT;
    o2.block_size = 128;
    ASSERT_ERR(ferry_pool_open(&q, pn, 0, &o2), FERRY_EINVAL);
    ASSERT_OK(ferry_pool_open(&q, pn, 0, NULL));
    ASSERT_ERR(ferry_pool_open(&r, pn, 0, NULL), FERRY_EBUSY); /* 2 peers */
    ASSERT_OK(ferry_pool_open(&r, pn, FERRY_RDONLY, NULL));    /* observer */
    {
      uint64_t h;
      ASSERT_ERR(ferry_pool_alloc(r, &h, NULL, 0), FERRY_EINVAL);
    }
    ASSERT_OK(ferry_pool_close(r));
    ASSERT_OK(ferry_pool_close(q));
  }
  ASSERT_OK(ferry_segment_unlink(pn, 0));
  ASSERT_OK(ferry_pool_close(p));
}

/* ---- tests: several processes ---- */

/* SPSC: 200 frames of 64 KiB through a pool of 4 blocks: the sender waits
 * for blocks the receiver releases; every byte arrives; afterwards every
 * block is free. */
static void test_spsc_frames(void) {
  char pn[64], cn[64];
  const char *args[5];
  ferry_pool *p;
  ferry_channel *tx;
  ferry_pool_info in;
  uint64_t i, h;
  void *d;
  long pid;
  p = pool_create(test_name(pn, sizeof pn, "spsc"), 64 << 10, 4);
  tx = chan_open(test_name(cn, sizeof cn, "spsc"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_SENDER, FERRY_CHANNEL_SPSC);
  args[0] = pn;
  args[1] = cn;
  args[2] = "200";
  args[3] = "65536";
  args[4] = NULL;
  pid = test_spawn("receiver", args);
  for (i = 0; i < 200; i++) {
    ASSERT_OK(ferry_pool_alloc(p, &h, &d, 30 * SEC));
    frame_fill(d, 64 << 10, i);
    ASSERT_OK(ferry_pool_send(p, tx, h, NULL, 0, 30 * SEC));
  }
  ASSERT_EQ(test_wait(pid, test_timeout_ms(60000)), 0);
  ASSERT_OK(ferry_pool_flush(p, 0)); /* the receiver consumed everything */
  pool_info(p, &in);
  ASSERT_EQ(in.free, 4);
  ASSERT_UEQ(in.allocs, 200);
  unlink_all(pn, cn, NULL);
  ASSERT_OK(ferry_pool_forget(p, tx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_pool_close(p));
}

/* MPSC: three sender processes share the pool and the channel; every
 * frame arrives intact, each sender's in order. */
static void test_mpsc_frames(void) {
  char pn[64], cn[64], ids[3][8];
  const char *args[6];
  ferry_pool *p;
  ferry_channel *rx;
  ferry_pool_info in;
  uint64_t next[3] = {0, 0, 0}, i;
  long pid[3];
  int k;
  p = pool_create(test_name(pn, sizeof pn, "mpsc"), 16 << 10, 6);
  rx = chan_open(test_name(cn, sizeof cn, "mpsc"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_RECEIVER, FERRY_CHANNEL_MPSC);
  for (k = 0; k < 3; k++) {
    snprintf(ids[k], sizeof ids[k], "%d", k);
    args[0] = pn;
    args[1] = cn;
    args[2] = ids[k];
    args[3] = "100";
    args[4] = "16384";
    args[5] = NULL;
    pid[k] = test_spawn("sender", args);
  }
  for (i = 0; i < 300; i++) {
    uint64_t h, id, fid;
    size_t ml;
    void *d;
    ASSERT_OK(ferry_pool_recv(p, rx, &h, &d, &id, sizeof id, &ml, 30 * SEC));
    ASSERT_EQ(ml, 8);
    ASSERT_TRUE(id < 3);
    fid = ((const uint64_t *)d)[0];
    ASSERT_UEQ(fid >> 32, id);
    ASSERT_UEQ(fid & 0xffffffff, next[id]);
    next[id]++;
    frame_check(d, 16 << 10, fid);
    ASSERT_OK(ferry_pool_release(p, h));
  }
  for (k = 0; k < 3; k++)
    ASSERT_EQ(test_wait(pid[k], test_timeout_ms(60000)), 0);
  pool_info(p, &in);
  ASSERT_EQ(in.free, 6);
  ASSERT_UEQ(in.allocs, 300);
  unlink_all(pn, cn, NULL);
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_close(p));
}

/* Broadcast fan-out: three subscriber processes each get the same block;
 * it stays allocated while any of them holds it, and is free right after
 * the last release. */
static void test_broadcast_fanout(void) {
  char pn[64], cn[64], cl[64], ids[3][8];
  const char *args[5];
  ferry_pool *p;
  ferry_channel *tx;
  ferry_channel_opts co = FERRY_CHANNEL_OPTS_INIT;
  ferry_segment *cs;
  struct ctl *c;
  uint64_t h, size = 64 << 10;
  void *d;
  long pid[3];
  int k;
  p = pool_create(test_name(pn, sizeof pn, "fan"), size, 2);
  co.kind = FERRY_CHANNEL_BROADCAST;
  ASSERT_OK(ferry_channel_open(&tx, test_name(cn, sizeof cn, "fan"),
                               FERRY_CREATE | FERRY_EXCL, FERRY_SENDER, &co));
  c = ctl_open(test_name(cl, sizeof cl, "ctl"), &cs, 1);
  for (k = 0; k < 3; k++) {
    snprintf(ids[k], sizeof ids[k], "%d", k);
    args[0] = pn;
    args[1] = cn;
    args[2] = cl;
    args[3] = ids[k];
    args[4] = NULL;
    pid[k] = test_spawn("subscriber", args);
  }
  test_await(&c->ready, 3, 0); /* all three have subscribed */
  ASSERT_OK(ferry_pool_alloc(p, &h, &d, 0));
  frame_fill(d, size, 7);
  ASSERT_OK(ferry_pool_send(p, tx, h, &size, sizeof size, 30 * SEC));
  test_await(&c->done, 3, 0);
  for (k = 0; k < 3; k++)
    ASSERT_UEQ(atomic_load(&c->handle[k]), h); /* the same block */
  /* Every subscriber consumed the message: the sender lets go. */
  ASSERT_EQ(ferry_pool_reclaim(p), 1);
  ASSERT_EQ(popcount(holders(p, h)), 3);
  {
    uint64_t other, again;
    ASSERT_OK(ferry_pool_alloc(p, &other, NULL, 0)); /* the second block */
    ASSERT_ERR(ferry_pool_alloc(p, &again, NULL, 0), FERRY_EAGAIN);
    ASSERT_OK(ferry_pool_release(p, other));
    ASSERT_OK(ferry_pool_alloc(p, &other, NULL, 0));
    ASSERT_UEQ(other & 0xffffff, (h & 0xffffff) ^ 1); /* not the held one */
  }
  for (k = 0; k < 3; k++) {
    atomic_fetch_add(&c->go, 1);
    test_await(&c->done, 3 + (uint32_t)k + 1, 0);
    ASSERT_EQ(popcount(holders(p, h)), 2 - k);
  }
  ASSERT_UEQ(holders(p, h), 0); /* free right after the last release */
  {
    uint64_t again;
    ASSERT_OK(ferry_pool_alloc(p, &again, NULL, 0)); /* the freed block */
    ASSERT_UEQ(again & 0xffffff, h & 0xffffff);
  }
  for (k = 0; k < 3; k++)
    ASSERT_EQ(test_wait(pid[k], test_timeout_ms(60000)), 0);
  unlink_all(pn, cn, cl, NULL);
  ASSERT_OK(ferry_pool_forget(p, tx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
}

/* An exhausted pool: alloc times out; a blocked alloc succeeds as soon as
 * another process releases a block (no sleeps: the release follows a
 * command sent after the allocation started waiting, or before). */
static void test_alloc_waits_for_release(void) {
  char pn[64], cmd[64], rep[64];
  const char *args[4];
  ferry_pool *p;
  ferry_channel *tx, *rx;
  uint64_t a, b, c, got, go = 1;
  size_t len;
  void *d;
  long pid;
  p = pool_create(test_name(pn, sizeof pn, "wait"), 64, 2);
  tx = chan_open(test_name(cmd, sizeof cmd, "cmd"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_SENDER, FERRY_CHANNEL_SPSC);
  rx = chan_open(test_name(rep, sizeof rep, "rep"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_RECEIVER, FERRY_CHANNEL_SPSC);
  args[0] = pn;
  args[1] = cmd;
  args[2] = rep;
  args[3] = NULL;
  pid = test_spawn("borrower", args);
  ASSERT_OK(ferry_pool_alloc(p, &a, &d, 0));
  frame_fill(d, 64, 42);
  ASSERT_OK(ferry_pool_alloc(p, &b, NULL, 0));
  ASSERT_OK(ferry_pool_send(p, tx, a, NULL, 0, 30 * SEC));
  ASSERT_OK(ferry_channel_recv(rx, &got, sizeof got, &len, 30 * SEC));
  ASSERT_UEQ(got, a);                  /* the borrower holds it */
  ASSERT_EQ(ferry_pool_reclaim(p), 1); /* our reference for the message */
  ASSERT_ERR(ferry_pool_alloc(p, &c, NULL, 0), FERRY_EAGAIN);
  ASSERT_ERR(ferry_pool_alloc(p, &c, NULL, 10 * MS), FERRY_ETIMEDOUT);
  ASSERT_OK(ferry_channel_send(tx, &go, sizeof go, 30 * SEC));
  ASSERT_OK(ferry_pool_alloc(p, &c, NULL, 60 * SEC));
  ASSERT_UEQ(c & 0xffffff, a & 0xffffff);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(60000)), 0);
  ASSERT_OK(ferry_pool_release(p, b));
  ASSERT_OK(ferry_pool_release(p, c));
  unlink_all(pn, cmd, rep, NULL);
  ASSERT_OK(ferry_pool_forget(p, tx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_close(p));
}

/* A holder killed with SIGKILL while holding blocks: a waiting allocator
 * reclaims them and they are allocatable again; a live holder, however
 * slow, is never robbed. */
static void test_dead_holder_reclaimed(void) {
  char pn[64], cl[64];
  const char *args[4];
  ferry_pool *p;
  ferry_segment *cs;
  struct ctl *c;
  ferry_pool_info in;
  uint64_t h[4];
  long pid;
  int i;
  p = pool_create(test_name(pn, sizeof pn, "dead"), 4096, 4);
  c = ctl_open(test_name(cl, sizeof cl, "ctl"), &cs, 1);
  args[0] = pn;
  args[1] = "3";
  args[2] = cl;
  args[3] = NULL;
  pid = test_spawn("holder", args);
  test_await(&c->ready, 1, pid);
  ASSERT_OK(ferry_pool_alloc(p, &h[0], NULL, 0));
  /* Alive: waiting, and sweeping for dead peers every millisecond, takes
   * nothing from it. */
  ASSERT_ERR(ferry_pool_alloc(p, &h[1], NULL, 50 * MS), FERRY_ETIMEDOUT);
  ASSERT_EQ(ferry_pool_reclaim(p), 0);
  pool_info(p, &in);
  ASSERT_EQ(in.used, 4);
  ASSERT_EQ(in.npeers, 2);
  for (i = 0; i < 2; i++)
    if (in.peers[i].pid == (uint64_t)pid) {
      ASSERT_EQ(in.peers[i].held, 3);
      ASSERT_EQ(in.peers[i].alive, 1);
    }
  test_kill_reap(pid);
  /* Dead: the allocator reclaims its three blocks. */
  for (i = 1; i < 4; i++)
    ASSERT_OK(ferry_pool_alloc(p, &h[i], NULL, 30 * SEC));
  pool_info(p, &in);
  ASSERT_EQ(in.used, 4);
  ASSERT_UEQ(in.reclaimed, 3);
  ASSERT_UEQ(in.retired, 1);
  ASSERT_EQ(in.npeers, 1);
  ASSERT_EQ(in.peers[0].held, 4);
  for (i = 0; i < 4; i++)
    ASSERT_OK(ferry_pool_release(p, h[i]));
  unlink_all(pn, cl, NULL);
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
}

/* A receiver takes a block and is killed before it consumes the message.
 * The sender still holds the block for the message, so the next receiver
 * gets the same block, intact (at-least-once, like the channel); the dead
 * one's reference is reclaimed; in the end every block is free. */
static void test_dead_receiver_redelivery(void) {
  char pn[64], cn[64], cl[64];
  const char *args[4];
  ferry_pool *p, *pr;
  ferry_channel *tx, *rx;
  ferry_segment *cs;
  struct ctl *c;
  ferry_pool_info in;
  uint64_t h, h2;
  void *d;
  long pid;
  p = pool_create(test_name(pn, sizeof pn, "redo"), 4096, 2);
  tx = chan_open(test_name(cn, sizeof cn, "redo"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_SENDER, FERRY_CHANNEL_SPSC);
  c = ctl_open(test_name(cl, sizeof cl, "ctl"), &cs, 1);
  ASSERT_OK(ferry_pool_alloc(p, &h, &d, 0));
  frame_fill(d, 4096, 99);
  ASSERT_OK(ferry_pool_send(p, tx, h, NULL, 0, 0));
  args[0] = pn;
  args[1] = cn;
  args[2] = cl;
  args[3] = NULL;
  pid = test_spawn("taker", args);
  test_await(&c->ready, 1, pid);
  ASSERT_UEQ(atomic_load(&c->handle[0]), h);
  ASSERT_EQ(popcount(holders(p, h)), 2);
  test_kill_reap(pid);
  ASSERT_EQ(ferry_pool_reclaim(p), 1);   /* the dead receiver's reference */
  ASSERT_EQ(popcount(holders(p, h)), 1); /* ours, for the message */
  pr = pool_attach(pn);
  rx = chan_open(cn, 0, FERRY_RECEIVER, 0);
  ASSERT_OK(ferry_pool_recv(pr, rx, &h2, &d, NULL, 0, NULL, 0));
  ASSERT_UEQ(h2, h);
  frame_check(d, 4096, 99);
  ASSERT_OK(ferry_pool_release(pr, h2));
  ASSERT_EQ(ferry_pool_reclaim(p), 1);
  pool_info(p, &in);
  ASSERT_EQ(in.free, 2);
  unlink_all(pn, cn, cl, NULL);
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_close(pr));
  ASSERT_OK(ferry_pool_forget(p, tx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
}

/* A sender killed after sending: its references are reclaimed, so the
 * messages it left name free blocks: the receiver gets FERRY_ECORRUPT for
 * each (never a pointer to a block someone else may now own), then goes
 * on. */
static void test_dead_sender(void) {
  char pn[64], cn[64], cl[64];
  const char *args[4];
  ferry_pool *p;
  ferry_channel *rx, *tx;
  ferry_segment *cs;
  struct ctl *c;
  uint64_t h;
  void *d;
  long pid;
  p = pool_create(test_name(pn, sizeof pn, "deadtx"), 64, 2);
  rx = chan_open(test_name(cn, sizeof cn, "deadtx"), FERRY_CREATE | FERRY_EXCL,
                 FERRY_RECEIVER, FERRY_CHANNEL_SPSC);
  c = ctl_open(test_name(cl, sizeof cl, "ctl"), &cs, 1);
  args[0] = pn;
  args[1] = "1";
  args[2] = cl;
  args[3] = NULL;
  /* A holder allocates one block; we send its handle ourselves as if the
   * holder had sent it (a raw handle message), then kill the holder. */
  pid = test_spawn("holder", args);
  test_await(&c->ready, 1, pid);
  {
    ferry_pool_block b;
    uint32_t i;
    h = 0;
    for (i = 0; i < 2; i++) {
      ASSERT_OK(ferry_pool_block_info(p, i, &b, sizeof b));
      if (b.holders)
        h = b.handle;
    }
    ASSERT_NE(h, 0);
  }
  tx = chan_open(cn, 0, FERRY_SENDER, 0);
  ASSERT_OK(ferry_channel_send(tx, &h, 8, 0));
  test_kill_reap(pid);
  ASSERT_EQ(ferry_pool_reclaim(p), 1);
  ASSERT_ERR(ferry_pool_recv(p, rx, &h, &d, NULL, 0, NULL, 0), FERRY_ECORRUPT);
  ASSERT_ERR(ferry_pool_recv(p, rx, &h, &d, NULL, 0, NULL, 0), FERRY_EAGAIN);
  unlink_all(pn, cn, cl, NULL);
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
}

/* ---- the CLI ---- */

static char out[65536], err[8192];

static int cli(const char *fmt, ...) FERRY_TEST_PRINTF(1, 2);
static int cli(const char *fmt, ...) {
  char args[1024], cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "exec '%s' %s", FERRY_CLI_PATH, args);
  return test_run(cmd, out, sizeof out, err, sizeof err,
                  test_timeout_ms(60000));
}

/* ferry create --pool, info (blocks in use, who holds them, alive or
 * dead), ls, gc and rm. Through /bin/sh, so POSIX only; tests/cli_exec.c
 * ("pool") runs ferry info/ls/gc/rm on a pool without a shell, on Windows
 * too. */
static void test_cli(void) {
  char pn[64], cl[64], line[128];
  const char *args[4];
  ferry_segment *cs;
  struct ctl *c;
  long pid;
  test_name(pn, sizeof pn, "cli");
  ASSERT_EQ(cli("create %s --pool --block-size 64K --blocks 8", pn), 0);
  ASSERT_EQ(cli("create %s --pool --block-size 64K", pn), 2);
  ASSERT_CONTAINS(err, "--blocks");
  ASSERT_EQ(
      cli("create %s-x --pool --blocks 2 --block-size 1K --channel spsc", pn),
      2);
  ASSERT_EQ(cli("info %s", pn), 0);
  ASSERT_CONTAINS(out, "payload:        pool");
  ASSERT_CONTAINS(out, "8 blocks of 65536 bytes (64.0K)");
  ASSERT_CONTAINS(out, "0 in use, 8 free");
  c = ctl_open(test_name(cl, sizeof cl, "ctl"), &cs, 1);
  args[0] = pn;
  args[1] = "3";
  args[2] = cl;
  args[3] = NULL;
  pid = test_spawn("holder", args);
  test_await(&c->ready, 1, pid);
  ASSERT_EQ(cli("info %s", pn), 0);
  ASSERT_CONTAINS(out, "3 in use, 5 free");
  snprintf(line, sizeof line, "pid %ld (alive)", pid);
  ASSERT_CONTAINS(out, line);
  ASSERT_CONTAINS(out, "blocks in use:");
  ASSERT_EQ(cli("info %s --json", pn), 0);
  ASSERT_CONTAINS(out, "\"pool\":{\"block_size\":65536");
  ASSERT_CONTAINS(out, "\"used\":3");
  snprintf(line, sizeof line, "\"pid\":%ld,\"alive\":true", pid);
  ASSERT_CONTAINS(out, line);
  ASSERT_EQ(cli("gc --dry-run %s", pn), 0);
  ASSERT_CONTAINS(out, "live");
  test_kill_reap(pid);
  ASSERT_EQ(cli("info %s", pn), 0);
  snprintf(line, sizeof line, "pid %ld (dead)", pid);
  ASSERT_CONTAINS(out, line);
  ASSERT_EQ(cli("ls"), 0);
  ASSERT_CONTAINS(out, pn);
  ASSERT_EQ(cli("gc %s", pn), 0);
  ASSERT_CONTAINS(out, "removed");
  ASSERT_EQ(cli("info %s", pn), 1);
  ASSERT_CONTAINS(err, "FERRY_ENOENT");
  /* rm removes a pool too */
  ASSERT_EQ(cli("create %s --pool --block-size 100 --blocks 2", pn), 0);
  ASSERT_EQ(cli("rm %s", pn), 0);
  ASSERT_OK(ferry_segment_unlink(cl, 0));
  ASSERT_OK(ferry_segment_close(cs));
}

/* argv: handle, ctl: open the anonymous pool behind the inherited HANDLE,
 * allocate a block, fill it, report its handle, and close (which releases
 * the block) when told. */
static int role_anon(int argc, char **argv) {
  ferry_pool *p;
  ferry_segment *cs;
  struct ctl *c = ctl_open(argv[1], &cs, 0);
  uint64_t h;
  void *d;
  (void)argc;
  ASSERT_OK(ferry_pool_open_handle(&p, (ferry_handle)atoll(argv[0]), 0, NULL));
  ASSERT_OK(ferry_pool_alloc(p, &h, &d, 0));
  frame_fill(d, 4096, 31);
  atomic_store(&c->handle[0], h);
  atomic_store(&c->ready, 1);
  test_await(&c->go, 1, 0);
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
  return 0;
}

/* An anonymous pool, shared with a child by handle inheritance: the child's
 * block is seen in place; it stays while we hold it after the child left. */
static void test_anonymous(void) {
  char cl[64], hs[32];
  const char *args[3];
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  ferry_pool *p;
  ferry_segment *cs;
  struct ctl *c;
  uint64_t h;
  void *d;
  long pid;
  o.block_size = 4096;
  o.block_count = 2;
  o.seg_flags = FERRY_SEG_INHERIT;
  ASSERT_OK(ferry_pool_create_anon(&p, &o));
  c = ctl_open(test_name(cl, sizeof cl, "ctl"), &cs, 1);
  snprintf(hs, sizeof hs, "%lld",
           (long long)ferry_segment_handle(ferry_pool_segment(p)));
  args[0] = hs;
  args[1] = cl;
  args[2] = NULL;
  pid = test_spawn("anon", args);
  test_await(&c->ready, 1, pid);
  h = atomic_load(&c->handle[0]);
  ASSERT_OK(ferry_pool_take(p, h, &d));
  frame_check(d, 4096, 31);
  atomic_store(&c->go, 1);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(60000)), 0);
  ASSERT_EQ(popcount(holders(p, h)), 1); /* ours alone now */
  frame_check(d, 4096, 31);
  ASSERT_OK(ferry_pool_release(p, h));
  ASSERT_UEQ(holders(p, h), 0);
  ASSERT_OK(ferry_segment_unlink(cl, 0));
  ASSERT_OK(ferry_pool_close(p));
  ASSERT_OK(ferry_segment_close(cs));
}

static const struct test_case tests[] = {
    {"alloc_release", test_alloc_release},
    {"small_blocks_and_refs", test_small_blocks_and_refs},
    {"bad_handles", test_bad_handles},
    {"broadcast_leave_and_overrun", test_broadcast_leave_and_overrun},
    {"recv_garbage", test_recv_garbage},
    {"corrupt_header", test_corrupt_header},
    {"options", test_options},
    {"spsc_frames", test_spsc_frames},
    {"mpsc_frames", test_mpsc_frames},
    {"broadcast_fanout", test_broadcast_fanout},
    {"alloc_waits_for_release", test_alloc_waits_for_release},
    {"dead_holder_reclaimed", test_dead_holder_reclaimed},
    {"dead_receiver_redelivery", test_dead_receiver_redelivery},
    {"dead_sender", test_dead_sender},
    {"anonymous", test_anonymous},
    {"cli", test_cli},
    {NULL, NULL}};

static const struct test_role roles[] = {{"receiver", role_receiver},
                                         {"sender", role_sender},
                                         {"subscriber", role_subscriber},
                                         {"holder", role_holder},
                                         {"taker", role_taker},
                                         {"borrower", role_borrower},
                                         {"anon", role_anon},
                                         {NULL, NULL}};

int main(int argc, char **argv) { return test_main(argc, argv, tests, roles); }
