/* Description: channels (SPSC, MPSC, broadcast with and without overrun)
 * across real processes: ordering and exactly-once delivery of long streams
 * through small rings, every message size at every ring offset (copying and
 * zero-copy), full/empty edges, timeouts and argument errors, futex wake-ups
 * with and without spinning, contending producers, slow, joining, leaving,
 * dead and overrun subscribers with exact loss counts, abort and short
 * commits, batched receive, unique roles and takeover from dead peers, end of
 * stream, counters, and open-time and run-time validation of corrupt shared
 * state. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>

#include "../tools/ferry/proc.h"
#include "channel.h"

#define MS_NS INT64_C(1000000)
#define KIB 1024u
#define MIB (1024ull * 1024ull)

/* ---------------------------------------------------------------------- */
/* Time and polling                                                       */

static int64_t mono_ns(void) { return proc_now_ns(); }

/* A blocking-call timeout in ns: generous, scaled for sanitizers. */
static int64_t tmo_ns(int64_t base_ms) {
  return test_timeout_ms(base_ms) * MS_NS;
}

struct poller {
  int64_t deadline;
  unsigned n;
  const char *what;
};

static struct poller poll_start(int64_t base_ms, const char *what) {
  struct poller p;
  p.deadline = mono_ns() + tmo_ns(base_ms);
  p.n = 0;
  p.what = what;
  return p;
}

/* One more look is due: fails the test past the deadline, else backs off
 * (yield, then short naps). Not a synchronisation sleep: the condition is
 * re-checked after every nap. */
static void check_helpers(const char *what);

static void poll_next(struct poller *p) {
  if (mono_ns() > p->deadline)
    TEST_FAIL("timed out waiting for %s", p->what);
  if ((p->n & 63) == 0)
    check_helpers(p->what);
  if (p->n++ < 200)
    sched_yield();
  else
    test_sleep_ms(1);
}

#define POLL_UNTIL(cond, base_ms, what)                                        \
  do {                                                                         \
    struct poller p_ = poll_start((base_ms), (what));                          \
    while (!(cond))                                                            \
      poll_next(&p_);                                                          \
  } while (0)

/* ---------------------------------------------------------------------- */
/* Channel kinds                                                          */

struct kind {
  const char *tag;
  uint32_t kind;
  uint32_t flags;
};

static const struct kind kinds[] = {
    {"spsc", FERRY_CHANNEL_SPSC, 0},
    {"mpsc", FERRY_CHANNEL_MPSC, 0},
    {"bc", FERRY_CHANNEL_BROADCAST, 0},
    {"bco", FERRY_CHANNEL_BROADCAST, FERRY_CHANNEL_OVERRUN}};
#define NKINDS 4
#define K_SPSC (&kinds[0])
#define K_MPSC (&kinds[1])
#define K_BC (&kinds[2])
#define K_BCO (&kinds[3])

static int is_bc(const struct kind *k) {
  return k->kind == FERRY_CHANNEL_BROADCAST;
}
static int is_ovr(const struct kind *k) {
  return (k->flags & FERRY_CHANNEL_OVERRUN) != 0;
}
static uint32_t rec_hdr(const struct kind *k) { return is_bc(k) ? 16u : 8u; }
static uint64_t rec_size(uint64_t len, uint32_t rh) {
  return (rh + len + rh - 1) & ~(uint64_t)(rh - 1);
}

/* ---------------------------------------------------------------------- */
/* Names and processes: everything made is removed, also when a test      */
/* fails (the assertion exits, and the atexit handler cleans up).         */

#define MAX_TRACKED 64
static char tracked_names[MAX_TRACKED][FERRY_NAME_MAX + 1];
static int ntracked_names;
static long tracked_pids[MAX_TRACKED];
/* A helper found ended by check_helpers is reaped there: its exit code is
 * kept here (-1 while it runs) for reap(). */
static int tracked_codes[MAX_TRACKED];
static int cleanup_registered;

static void cleanup(void) {
  int i;
  for (i = 0; i < MAX_TRACKED; i++) {
    /* only our own, still unreaped children */
    if (tracked_pids[i] > 0 && tracked_codes[i] < 0)
      proc_kill(tracked_pids[i]); /* kills and reaps */
    tracked_pids[i] = 0;
  }
  for (i = 0; i < ntracked_names; i++)
    ferry_segment_unlink(tracked_names[i], 0);
}

static void track_setup(void) {
  if (!cleanup_registered) {
    atexit(cleanup);
    cleanup_registered = 1;
  }
}

/* A fresh unique name for a channel or segment, removed at exit. */
static const char *new_name(char *buf, size_t cap, const char *tag) {
  test_name(buf, cap, tag);
  track_setup();
  if (ntracked_names < MAX_TRACKED)
    snprintf(tracked_names[ntracked_names++], FERRY_NAME_MAX + 1, "%s", buf);
  return buf;
}

/* Starts helper ROLE with the NULL-terminated string arguments. */
static long spawn(const char *role, ...) {
  const char *args[32];
  int n = 0, i;
  long pid;
  va_list ap;
  va_start(ap, role);
  while (n < 31 && (args[n] = va_arg(ap, const char *)) != NULL)
    n++;
  args[n] = NULL;
  va_end(ap);
  track_setup();
  pid = test_spawn(role, args);
  for (i = 0; i < MAX_TRACKED; i++)
    if (tracked_pids[i] == 0) {
      tracked_pids[i] = pid;
      tracked_codes[i] = -1;
      break;
    }
  return pid;
}

/* A helper that already failed cannot produce what we are polling for:
 * fail at once. A helper that ended is reaped here (a look that does not
 * wait) and its exit code kept for reap(). */
static void check_helpers(const char *what) {
  int i;
  for (i = 0; i < MAX_TRACKED; i++) {
    if (tracked_pids[i] <= 0 || tracked_codes[i] >= 0)
      continue;
    tracked_codes[i] = proc_wait(tracked_pids[i], 0); /* -1: still runs */
    if (tracked_codes[i] > 0)
      TEST_FAIL("helper %ld ended (exit code %d) while waiting for %s",
                tracked_pids[i], tracked_codes[i], what);
  }
}

/* Waits for a helper (scaled timeout); returns its exit code. */
static int reap(long pid, int64_t base_ms) {
  int code = -1, i;
  for (i = 0; i < MAX_TRACKED; i++)
    if (tracked_pids[i] == pid && tracked_codes[i] >= 0)
      code = tracked_codes[i]; /* check_helpers reaped it */
  if (code < 0)
    code = test_wait(pid, test_timeout_ms(base_ms));
  for (i = 0; i < MAX_TRACKED; i++)
    if (tracked_pids[i] == pid)
      tracked_pids[i] = 0;
  return code;
}

#define REAP_OK(pid) ASSERT_EQ(reap((pid), 120000), 0)

/* Numbers as arguments: a small pool of buffers. */
static const char *u64s(uint64_t v) {
  static char pool[16][24];
  static unsigned next;
  char *b = pool[next++ % 16];
  snprintf(b, 24, "%llu", (unsigned long long)v);
  return b;
}
static const char *i64s(int64_t v) {
  static char pool[8][24];
  static unsigned next;
  char *b = pool[next++ % 8];
  snprintf(b, 24, "%lld", (long long)v);
  return b;
}

static uint64_t arg_u64(const char *s) { return strtoull(s, NULL, 0); }

/* ---------------------------------------------------------------------- */
/* Channels, info, control segments                                       */

static ferry_channel_opts chan_opts(const struct kind *k, uint64_t cap,
                                    int64_t spin) {
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  if (k) {
    o.kind = k->kind;
    o.flags = k->flags;
  }
  o.capacity = cap;
  o.spin_ns = spin;
  return o;
}

static ferry_channel *ch_create(const char *name, const struct kind *k,
                                uint64_t cap, unsigned role) {
  ferry_channel *ch = NULL;
  ferry_channel_opts o = chan_opts(k, cap, 0);
  ASSERT_OK(ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_EXCL, role, &o));
  ASSERT_TRUE(ch != NULL);
  return ch;
}

static ferry_channel *ch_open(const char *name, unsigned role, int64_t spin) {
  ferry_channel *ch = NULL;
  ferry_channel_opts o = chan_opts(NULL, 0, spin);
  ASSERT_OK(ferry_channel_open(&ch, name, 0, role, &o));
  ASSERT_TRUE(ch != NULL);
  return ch;
}

static ferry_channel_info g_info;

/* A snapshot of CH's counters (one static buffer: use it before the next
 * call). */
static const ferry_channel_info *info_of(const ferry_channel *ch) {
  memset(&g_info, 0xa5, sizeof g_info);
  ASSERT_OK(ferry_channel_get_info(ch, &g_info, sizeof g_info));
  return &g_info;
}

static uint32_t live_peers(const ferry_channel *ch, uint32_t role) {
  const ferry_channel_info *in = info_of(ch);
  uint32_t i, n = 0;
  for (i = 0; i < in->npeers; i++)
    if (in->peers[i].role == role && in->peers[i].alive == 1)
      n++;
  return n;
}

static void wait_peers(const ferry_channel *ch, uint32_t role, uint32_t want) {
  POLL_UNTIL(live_peers(ch, role) >= want, 30000, "peers to attach");
}

static const ferry_channel_peer *peer_by_pid(const ferry_channel_info *in,
                                             uint64_t pid, uint32_t role) {
  uint32_t i;
  for (i = 0; i < in->npeers; i++)
    if (in->peers[i].pid == pid && in->peers[i].role == role)
      return &in->peers[i];
  return NULL;
}

/* The channel header in shared memory (to watch the wait queues). */
static struct ferry_chan_hdr *hdr_of(const ferry_channel *ch) {
  return (struct ferry_chan_hdr *)ferry_segment_data(ferry_channel_segment(ch));
}

static ferry_segment *ctl_create(const char *name) {
  ferry_segment *s = NULL;
  ASSERT_OK(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 4096, NULL));
  return s;
}

static ferry_segment *ctl_open(const char *name) {
  ferry_segment *s = NULL;
  ASSERT_OK(ferry_segment_open(&s, name, 0, 0, NULL));
  return s;
}

/* Word I of a control segment (zero at creation). */
static _Atomic uint64_t *cw(ferry_segment *s, unsigned i) {
  return (_Atomic uint64_t *)ferry_segment_data(s) + i;
}

static void wait_word(ferry_segment *s, unsigned i, uint64_t want,
                      const char *what) {
  POLL_UNTIL(atomic_load(cw(s, i)) >= want, 60000, what);
}

/* Writes N bytes at OFF of the user data of segment NAME (where the channel
 * header starts), through a read-write mapping of its own: a hostile
 * process's write. The segment must be open elsewhere (on Windows it
 * lives only while a handle is open). */
static void seg_poke(const char *name, uint64_t off, const void *p, size_t n) {
  ferry_segment *s = NULL;
  ASSERT_OK(ferry_segment_open(&s, name, 0, 0, NULL));
  ASSERT_LE(off + n, ferry_segment_data_size(s));
  memcpy((uint8_t *)ferry_segment_data(s) + off, p, n);
  ASSERT_OK(ferry_segment_close(s));
}

static void seg_poke_u32(const char *name, uint64_t off, uint32_t v) {
  seg_poke(name, off, &v, sizeof v);
}
static void seg_poke_u64(const char *name, uint64_t off, uint64_t v) {
  seg_poke(name, off, &v, sizeof v);
}

/* ---------------------------------------------------------------------- */
/* Message contents                                                       */

static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static uint8_t pbyte(uint64_t seed, size_t j) {
  return (uint8_t)(((seed >> ((j & 7u) << 3)) & 0xffu) ^ ((j >> 3) * 151u) ^
                   (j * 7u));
}

static void fill_pat(void *p, size_t n, uint64_t seed) {
  uint8_t *b = (uint8_t *)p;
  size_t j;
  for (j = 0; j < n; j++)
    b[j] = pbyte(seed, j);
}

/* 0 when P holds the pattern, else the first bad index + 1. */
static size_t check_pat(const void *p, size_t n, uint64_t seed) {
  const uint8_t *b = (const uint8_t *)p;
  size_t j;
  for (j = 0; j < n; j++)
    if (b[j] != pbyte(seed, j))
      return j + 1;
  return 0;
}

#define ASSERT_PAT(p, n, seed)                                                 \
  do {                                                                         \
    size_t bad_ = check_pat((p), (n), (seed));                                 \
    if (bad_)                                                                  \
      TEST_FAIL("content mismatch at byte %zu of %zu (seed %llu)", bad_ - 1,   \
                (size_t)(n), (unsigned long long)(seed));                      \
  } while (0)

static void put_id(void *p, uint64_t id) { memcpy(p, &id, 8); }
static uint64_t get_id(const void *p) {
  uint64_t id;
  memcpy(&id, p, 8);
  return id;
}

/* A message of LEN >= 8 bytes: the pattern of ID with ID in front. */
static void id_msg(void *buf, size_t len, uint64_t id) {
  fill_pat(buf, len, id);
  put_id(buf, id);
}

static int id_msg_ok(const void *buf, size_t len, uint64_t id) {
  uint8_t ref[4096];
  if (len < 8 || len > sizeof ref)
    return 0;
  id_msg(ref, len, id);
  return memcmp(ref, buf, len) == 0;
}

static void burn(unsigned n) {
  volatile uint64_t x = 1;
  unsigned i;
  for (i = 0; i < n; i++)
    x = mix64(x);
}

/* Stream messages: a 16-byte header (id, source, checksum of the payload)
 * and a payload derived from (source, id); the length is derived from them
 * too, so the receiver can check everything. Mostly short, now and then up
 * to max_msg. */
#define SHDR 16u
struct shdr {
  uint64_t id;
  uint32_t src;
  uint32_t sum;
};

static size_t stream_len(uint32_t src, uint64_t id, uint64_t max_msg) {
  uint64_t h = mix64(id * 0x100000001b3ull + src);
  if (h % 53 == 0)
    return SHDR + (size_t)((h >> 16) % (max_msg - SHDR + 1));
  return SHDR + (size_t)((h >> 16) % 200);
}

static uint64_t stream_seed(uint32_t src, uint64_t id) {
  return mix64(((uint64_t)src << 48) ^ id ^ 0x5bd1e995ull);
}

static uint32_t sum32(const uint8_t *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

static void stream_fill(void *buf, uint32_t src, uint64_t id, size_t len) {
  uint8_t *b = (uint8_t *)buf;
  struct shdr h;
  fill_pat(b + SHDR, len - SHDR, stream_seed(src, id));
  h.id = id;
  h.src = src;
  h.sum = sum32(b + SHDR, len - SHDR);
  memcpy(b, &h, SHDR);
}

/* Checks a received stream message completely; returns its header. */
static struct shdr stream_check(const void *msg, size_t len, uint64_t max_msg) {
  const uint8_t *b = (const uint8_t *)msg;
  struct shdr h;
  size_t bad;
  if (len < SHDR)
    TEST_FAIL("a %zu-byte message is shorter than the stream header", len);
  memcpy(&h, b, SHDR);
  if (len != stream_len(h.src, h.id, max_msg))
    TEST_FAIL("message src %u id %llu has %zu bytes, expected %zu",
              (unsigned)h.src, (unsigned long long)h.id, len,
              stream_len(h.src, h.id, max_msg));
  if (sum32(b + SHDR, len - SHDR) != h.sum)
    TEST_FAIL("message src %u id %llu: checksum mismatch", (unsigned)h.src,
              (unsigned long long)h.id);
  bad = check_pat(b + SHDR, len - SHDR, stream_seed(h.src, h.id));
  if (bad)
    TEST_FAIL("message src %u id %llu: byte %zu is wrong", (unsigned)h.src,
              (unsigned long long)h.id, SHDR + bad - 1);
  return h;
}

/* Sends stream message ID of SRC. HOW: 0 send, 1 reserve/commit exactly,
 * 2 reserve more (filled with junk), commit the real length. */
static int stream_send_one(ferry_channel *ch, uint8_t *buf, uint32_t src,
                           uint64_t id, int how, int64_t timeout_ns) {
  uint64_t max = ferry_channel_max_msg(ch);
  size_t len = stream_len(src, id, max);
  void *p;
  int rc;
  if (how == 0) {
    stream_fill(buf, src, id, len);
    return ferry_channel_send(ch, buf, len, timeout_ns);
  }
  if (how == 1) {
    rc = ferry_channel_reserve(ch, len, &p, timeout_ns);
    if (rc != 0)
      return rc;
    stream_fill(p, src, id, len);
    return ferry_channel_commit(ch, len);
  }
  {
    size_t more = len + 1 + (size_t)(id % 300);
    if (more > max)
      more = (size_t)max;
    rc = ferry_channel_reserve(ch, more, &p, timeout_ns);
    if (rc != 0)
      return rc;
    memset(p, 0xee, more);
    stream_fill(p, src, id, len);
    return ferry_channel_commit(ch, len);
  }
}

/* ---------------------------------------------------------------------- */
/* A receive loop for every kind                                          */

enum { RX_RECV = 0, RX_PEEK = 1, RX_MIX = 2 };

struct rx_loop;
typedef void (*accept_fn)(struct rx_loop *L, const void *data, size_t len,
                          uint64_t seq, int has_seq);

struct rx_loop {
  ferry_channel *ch;
  int mode;       /* RX_* */
  size_t batch;   /* peek: up to this many, <= 64 */
  unsigned slow;  /* extra work per recv or batch */
  uint64_t limit; /* stop after this many (0: run until FERRY_ECLOSED) */
  int64_t timeout_ns;
  accept_fn accept;
  void *ctx;
  /* results */
  uint64_t rcvd;
  uint64_t overruns; /* batches discarded because of FERRY_EOVERRUN */
  int closed;
};

static int mode_of(const char *s) {
  if (strcmp(s, "recv") == 0 || strcmp(s, "slow") == 0)
    return RX_RECV;
  if (strcmp(s, "peek") == 0)
    return RX_PEEK;
  return RX_MIX;
}

static void rx_init(struct rx_loop *L, ferry_channel *ch, int mode,
                    accept_fn fn, void *ctx) {
  memset(L, 0, sizeof *L);
  L->ch = ch;
  L->mode = mode;
  L->batch = 64;
  L->timeout_ns = tmo_ns(30000);
  L->accept = fn;
  L->ctx = ctx;
}

/* Receives until FERRY_ECLOSED (or LIMIT messages), handing each message to
 * ACCEPT. On an overrun channel, messages are copied out before the release
 * and only handed over when the release says they were intact. */
static void rx_run(struct rx_loop *L) {
  int ovr = (info_of(L->ch)->flags & FERRY_CHANNEL_OVERRUN) != 0;
  uint64_t max = ferry_channel_max_msg(L->ch);
  uint8_t *buf = (uint8_t *)malloc((size_t)max + 1);
  uint8_t *copies = ovr ? (uint8_t *)malloc((size_t)(64 * max)) : NULL;
  ferry_msg msgs[64];
  size_t lens[64];
  uint64_t seqs[64];
  uint64_t iter = 0;
  ASSERT_TRUE(buf != NULL && (!ovr || copies != NULL));
  while (!L->limit || L->rcvd < L->limit) {
    int peek = L->mode == RX_PEEK || (L->mode == RX_MIX && (iter / 257) % 2);
    iter++;
    if (!peek) {
      size_t len = 0;
      int rc = ferry_channel_recv(L->ch, buf, (size_t)max, &len, L->timeout_ns);
      if (rc == FERRY_ECLOSED) {
        L->closed = 1;
        break;
      }
      if (rc == FERRY_EOVERRUN && ovr) {
        L->overruns++;
        continue;
      }
      if (rc != 0)
        TEST_FAIL("recv after %llu messages: %s", (unsigned long long)L->rcvd,
                  ferry_err_name(rc));
      L->accept(L, buf, len, 0, 0);
      L->rcvd++;
    } else {
      size_t want = L->batch;
      int n, i, rc;
      if (L->limit && L->limit - L->rcvd < want)
        want = (size_t)(L->limit - L->rcvd);
      n = ferry_channel_peek(L->ch, msgs, want, L->timeout_ns);
      if (n == FERRY_ECLOSED) {
        L->closed = 1;
        break;
      }
      if (n <= 0)
        TEST_FAIL("peek after %llu messages: %s", (unsigned long long)L->rcvd,
                  ferry_err_name(n));
      ASSERT_LE(n, want);
      if (ovr) {
        for (i = 0; i < n; i++) {
          lens[i] = msgs[i].len;
          ASSERT_LE(lens[i], max);
          memcpy(copies + (size_t)i * max, msgs[i].data, lens[i]);
          seqs[i] = msgs[i].seq;
        }
        rc = ferry_channel_release(L->ch);
        if (rc == FERRY_EOVERRUN) {
          L->overruns++;
          continue;
        }
        ASSERT_OK(rc);
        for (i = 0; i < n; i++) {
          L->accept(L, copies + (size_t)i * max, lens[i], seqs[i], 1);
          L->rcvd++;
        }
      } else {
        for (i = 0; i < n; i++) {
          L->accept(L, msgs[i].data, msgs[i].len, msgs[i].seq, 1);
          L->rcvd++;
        }
        ASSERT_OK(ferry_channel_release(L->ch));
      }
    }
    if (L->slow)
      burn(L->slow);
  }
  free(buf);
  free(copies);
}

/* Stream checking: without overrun every source's ids arrive in order,
 * each exactly once; with overrun (one source) every id is the number of
 * messages received plus lost before it. Broadcast seq equals the id. */
struct stream_ctx {
  uint64_t nsrc;
  uint64_t *next;
  uint64_t max;
  int ovr, bc;
  uint64_t last_id;
};

static void stream_accept(struct rx_loop *L, const void *d, size_t len,
                          uint64_t seq, int has_seq) {
  struct stream_ctx *c = (struct stream_ctx *)L->ctx;
  struct shdr h = stream_check(d, len, c->max);
  if (c->ovr) {
    uint64_t lost = ferry_channel_lost(L->ch);
    if (h.src != 0)
      TEST_FAIL("unexpected source %u", (unsigned)h.src);
    if (h.id != L->rcvd + lost)
      TEST_FAIL("message %llu arrived after %llu received and %llu lost",
                (unsigned long long)h.id, (unsigned long long)L->rcvd,
                (unsigned long long)lost);
  } else {
    if (h.src >= c->nsrc)
      TEST_FAIL("unexpected source %u", (unsigned)h.src);
    if (h.id != c->next[h.src])
      TEST_FAIL("source %u: got id %llu, expected %llu", (unsigned)h.src,
                (unsigned long long)h.id, (unsigned long long)c->next[h.src]);
    c->next[h.src]++;
  }
  if (has_seq) {
    if (c->bc && seq != h.id)
      TEST_FAIL("message %llu has seq %llu", (unsigned long long)h.id,
                (unsigned long long)seq);
    if (!c->bc && seq != 0)
      TEST_FAIL("non-broadcast message with seq %llu", (unsigned long long)seq);
  }
  c->last_id = h.id;
}

/* ---------------------------------------------------------------------- */
/* Helper roles: streams                                                  */

/* stream-send NAME N SRC CLOSE HOW SPIN: sends stream messages 0..N-1 of
 * source SRC (HOW: copy, zc, mix), then ends the stream if CLOSE is 1. */
static int role_stream_send(int argc, char **argv) {
  ferry_channel *ch;
  uint64_t n, id;
  uint32_t src;
  int close_it, how;
  uint8_t *buf;
  if (argc < 6)
    return 2;
  n = arg_u64(argv[1]);
  src = (uint32_t)arg_u64(argv[2]);
  close_it = atoi(argv[3]);
  how = strcmp(argv[4], "copy") == 0 ? 0 : strcmp(argv[4], "zc") == 0 ? 1 : -1;
  ch = ch_open(argv[0], FERRY_SENDER, atoll(argv[5]));
  buf = (uint8_t *)malloc((size_t)ferry_channel_max_msg(ch));
  ASSERT_TRUE(buf != NULL);
  for (id = 0; id < n; id++) {
    int rc = stream_send_one(ch, buf, src, id, how >= 0 ? how : (int)(id % 3),
                             tmo_ns(30000));
    if (rc != 0)
      TEST_FAIL("send of message %llu: %s", (unsigned long long)id,
                ferry_err_name(rc));
  }
  if (close_it)
    ASSERT_OK(ferry_channel_close_send(ch));
  ASSERT_OK(ferry_channel_close(ch));
  free(buf);
  return 0;
}

/* stream-recv NAME N NSRC MODE SPIN: receives until FERRY_ECLOSED and checks
 * the stream of N messages from each of sources 0..NSRC-1 (see
 * stream_accept). MODE: recv, peek, mix, slow (recv with extra work). */
static int role_stream_recv(int argc, char **argv) {
  ferry_channel *ch;
  struct rx_loop L;
  struct stream_ctx c;
  const ferry_channel_info *in;
  uint64_t n, s;
  ferry_msg m;
  size_t len;
  if (argc < 5)
    return 2;
  n = arg_u64(argv[1]);
  ch = ch_open(argv[0], FERRY_RECEIVER, atoll(argv[4]));
  in = info_of(ch);
  memset(&c, 0, sizeof c);
  c.nsrc = arg_u64(argv[2]);
  c.next = (uint64_t *)calloc((size_t)c.nsrc, sizeof *c.next);
  c.max = ferry_channel_max_msg(ch);
  c.ovr = (in->flags & FERRY_CHANNEL_OVERRUN) != 0;
  c.bc = in->kind == FERRY_CHANNEL_BROADCAST;
  rx_init(&L, ch, mode_of(argv[3]), stream_accept, &c);
  if (strcmp(argv[3], "slow") == 0)
    L.slow = 1500;
  rx_run(&L);
  ASSERT_TRUE(L.closed);
  /* the end of the stream is sticky */
  ASSERT_ERR(ferry_channel_recv(ch, &m, sizeof m, &len, 0), FERRY_ECLOSED);
  ASSERT_ERR(ferry_channel_peek(ch, &m, 1, 0), FERRY_ECLOSED);
  if (c.ovr) {
    ASSERT_GT(L.rcvd, 0);
    ASSERT_UEQ(L.rcvd + ferry_channel_lost(ch), n);
    ASSERT_UEQ(c.last_id, n - 1);
  } else {
    for (s = 0; s < c.nsrc; s++)
      if (c.next[s] != n)
        TEST_FAIL("source %llu: %llu of %llu messages arrived",
                  (unsigned long long)s, (unsigned long long)c.next[s],
                  (unsigned long long)n);
    ASSERT_UEQ(L.rcvd, n * c.nsrc);
    ASSERT_UEQ(ferry_channel_lost(ch), 0);
  }
  ASSERT_OK(ferry_channel_close(ch));
  free(c.next);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* 1, 6, 12: streams between processes                                    */

/* Receivers (modes RMODES) attach first; then one sender streams N
 * messages and ends the stream; every receiver checks everything. */
static void run_stream(const struct kind *k, uint64_t cap, uint64_t n,
                       const char *smode, const char *const *rmodes,
                       int nrecv) {
  char name[64];
  ferry_channel *obs;
  const ferry_channel_info *in;
  long rx[8], tx;
  int i;
  new_name(name, sizeof name, k->tag);
  obs = ch_create(name, k, cap, FERRY_OBSERVE);
  for (i = 0; i < nrecv; i++)
    rx[i] = spawn("stream-recv", name, u64s(n), "1", rmodes[i], "0", NULL);
  wait_peers(obs, FERRY_RECEIVER, (uint32_t)nrecv);
  tx = spawn("stream-send", name, u64s(n), "0", "1", smode, "0", NULL);
  REAP_OK(tx);
  for (i = 0; i < nrecv; i++)
    REAP_OK(rx[i]);
  in = info_of(obs);
  ASSERT_EQ(in->npeers, 0);
  ASSERT_EQ(in->closed, 1);
  ASSERT_UEQ(in->sent, n);
  if (is_ovr(k)) {
    ASSERT_UEQ(in->received + in->lost, n * (uint64_t)nrecv);
  } else {
    ASSERT_UEQ(in->received, n * (uint64_t)nrecv);
    ASSERT_UEQ(in->lost, 0);
  }
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(obs));
}

#define STREAM_N 200000u

static void run_order(const struct kind *k) {
  static const char *const modes[] = {"mix"};
  run_stream(k, 16 * KIB, STREAM_N, "mix", modes, 1);
}

static void test_order_spsc(void) { run_order(K_SPSC); }
static void test_order_mpsc(void) { run_order(K_MPSC); }
static void test_order_broadcast(void) { run_order(K_BC); }
static void test_order_broadcast_overrun(void) { run_order(K_BCO); }

/* 6: three subscribers, one slow, one batching: wait-for-slowest means
 * every one of them gets everything. */
static void test_broadcast_three_subscribers(void) {
  static const char *const modes[] = {"recv", "peek", "slow"};
  run_stream(K_BC, 16 * KIB, 60000, "mix", modes, 3);
}

/* ---------------------------------------------------------------------- */
/* 2: every message size at every offset                                  */

static uint64_t wrap_seed(uint64_t i) {
  return mix64(i * 0x2545f4914f6cdd1dull);
}

/* wrap-send NAME PASSES HOW: message i has size i % (max+1) and the pattern
 * of i; sent with send (HOW copy) or reserve/commit (zc); then ends the
 * stream. */
static int role_wrap_send(int argc, char **argv) {
  ferry_channel *ch;
  uint64_t max, total, i;
  int zc;
  uint8_t *buf;
  if (argc < 3)
    return 2;
  ch = ch_open(argv[0], FERRY_SENDER, 0);
  max = ferry_channel_max_msg(ch);
  total = arg_u64(argv[1]) * (max + 1);
  zc = strcmp(argv[2], "zc") == 0;
  buf = (uint8_t *)malloc((size_t)max + 1);
  ASSERT_TRUE(buf != NULL);
  for (i = 0; i < total; i++) {
    size_t s = (size_t)(i % (max + 1));
    int rc;
    if (zc) {
      void *p;
      rc = ferry_channel_reserve(ch, s, &p, tmo_ns(30000));
      if (rc == 0) {
        fill_pat(p, s, wrap_seed(i));
        rc = ferry_channel_commit(ch, s);
      }
    } else {
      fill_pat(buf, s, wrap_seed(i));
      rc = ferry_channel_send(ch, buf, s, tmo_ns(30000));
    }
    if (rc != 0)
      TEST_FAIL("message %llu (%zu bytes): %s", (unsigned long long)i, s,
                ferry_err_name(rc));
  }
  ASSERT_OK(ferry_channel_close_send(ch));
  ASSERT_OK(ferry_channel_close(ch));
  free(buf);
  return 0;
}

struct wrap_ctx {
  uint64_t max;
  int ovr, bc;
  uint64_t last;
};

static void wrap_accept(struct rx_loop *L, const void *d, size_t len,
                        uint64_t seq, int has_seq) {
  struct wrap_ctx *c = (struct wrap_ctx *)L->ctx;
  uint64_t i = c->ovr ? L->rcvd + ferry_channel_lost(L->ch) : L->rcvd;
  size_t bad;
  if (len != i % (c->max + 1))
    TEST_FAIL("message %llu has %zu bytes, expected %llu",
              (unsigned long long)i, len,
              (unsigned long long)(i % (c->max + 1)));
  bad = check_pat(d, len, wrap_seed(i));
  if (bad)
    TEST_FAIL("message %llu (%zu bytes): byte %zu is wrong",
              (unsigned long long)i, len, bad - 1);
  if (has_seq && seq != (c->bc ? i : 0))
    TEST_FAIL("message %llu has seq %llu", (unsigned long long)i,
              (unsigned long long)seq);
  c->last = i;
}

/* wrap-recv NAME PASSES HOW: receives and checks every message (recv for
 * copy, peek/release for zc). */
static int role_wrap_recv(int argc, char **argv) {
  ferry_channel *ch;
  struct rx_loop L;
  struct wrap_ctx c;
  const ferry_channel_info *in;
  uint64_t total;
  if (argc < 3)
    return 2;
  ch = ch_open(argv[0], FERRY_RECEIVER, 0);
  in = info_of(ch);
  memset(&c, 0, sizeof c);
  c.max = ferry_channel_max_msg(ch);
  c.ovr = (in->flags & FERRY_CHANNEL_OVERRUN) != 0;
  c.bc = in->kind == FERRY_CHANNEL_BROADCAST;
  total = arg_u64(argv[1]) * (c.max + 1);
  rx_init(&L, ch, strcmp(argv[2], "zc") == 0 ? RX_PEEK : RX_RECV, wrap_accept,
          &c);
  L.batch = 16;
  rx_run(&L);
  ASSERT_TRUE(L.closed);
  if (c.ovr) {
    ASSERT_GT(L.rcvd, 0);
    ASSERT_UEQ(L.rcvd + ferry_channel_lost(ch), total);
  } else {
    ASSERT_UEQ(L.rcvd, total);
    ASSERT_UEQ(ferry_channel_lost(ch), 0);
  }
  ASSERT_UEQ(c.last, total - 1);
  ASSERT_OK(ferry_channel_close(ch));
  return 0;
}

static void run_wrap(const struct kind *k) {
  static const char *const hows[] = {"copy", "zc"};
  int h;
  for (h = 0; h < 2; h++) {
    char name[64];
    ferry_channel *obs;
    long rx, tx;
    new_name(name, sizeof name, k->tag);
    obs = ch_create(name, k, 4096, FERRY_OBSERVE);
    ASSERT_UEQ(ferry_channel_max_msg(obs), 2048 - rec_hdr(k));
    rx = spawn("wrap-recv", name, "3", hows[h], NULL);
    wait_peers(obs, FERRY_RECEIVER, 1);
    tx = spawn("wrap-send", name, "3", hows[h], NULL);
    REAP_OK(tx);
    REAP_OK(rx);
    ASSERT_UEQ(info_of(obs)->sent, 3 * (2049 - rec_hdr(k)));
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_channel_close(obs));
  }
}

static void test_wrap_spsc(void) { run_wrap(K_SPSC); }
static void test_wrap_mpsc(void) { run_wrap(K_MPSC); }
static void test_wrap_broadcast(void) { run_wrap(K_BC); }
static void test_wrap_broadcast_overrun(void) { run_wrap(K_BCO); }

/* ---------------------------------------------------------------------- */
/* 3: full and empty edges, timeouts, argument errors (one process)       */

static void run_edges(const struct kind *k) {
  char name[64];
  ferry_channel *tx, *rx, *obs;
  uint32_t rh = rec_hdr(k);
  size_t plen = 64 - rh, len;
  uint64_t max;
  uint8_t buf[4096], out[4096];
  void *p;
  ferry_msg m[4];
  int i, n, rc;
  uint64_t sent = 0;

  new_name(name, sizeof name, k->tag);
  tx = ch_create(name, k, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  obs = ch_open(name, FERRY_OBSERVE, 0);
  max = ferry_channel_max_msg(tx);
  ASSERT_UEQ(max, 4096 / 2 - rh);
  ASSERT_UEQ(ferry_channel_max_msg(rx), max);
  memset(buf, 0x5a, sizeof buf);

  if (!is_ovr(k)) {
    /* Fill: exactly capacity / record size messages fit. */
    for (n = 0;; n++) {
      put_id(buf, (uint64_t)n);
      rc = ferry_channel_send(tx, buf, plen, 0);
      if (rc == FERRY_EAGAIN)
        break;
      ASSERT_OK(rc);
      ASSERT_LT(n, 1000);
    }
    ASSERT_EQ(n, 4096 / 64);
    sent += (uint64_t)n;
    ASSERT_UEQ(info_of(obs)->used, 4096);
    ASSERT_ERR(ferry_channel_send(tx, buf, plen, 20 * MS_NS), FERRY_ETIMEDOUT);
    ASSERT_ERR(ferry_channel_send(tx, NULL, 0, 0), FERRY_EAGAIN);
    ASSERT_ERR(ferry_channel_reserve(tx, plen, &p, 0), FERRY_EAGAIN);
    ASSERT_ERR(ferry_channel_reserve(tx, plen, &p, 20 * MS_NS),
               FERRY_ETIMEDOUT);
    /* One out makes room for exactly one in. */
    ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
    ASSERT_EQ(len, plen);
    ASSERT_UEQ(get_id(out), 0);
    put_id(buf, (uint64_t)n);
    ASSERT_OK(ferry_channel_send(tx, buf, plen, 0));
    sent++;
    ASSERT_ERR(ferry_channel_send(tx, buf, plen, 0), FERRY_EAGAIN);
    for (i = 1; i <= n; i++) {
      ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
      ASSERT_EQ(len, plen);
      ASSERT_UEQ(get_id(out), (uint64_t)i);
    }
  } else {
    /* Overrun never blocks the sender: three rings' worth, timeout 0. */
    for (i = 0; i < 3 * 64; i++) {
      put_id(buf, (uint64_t)i);
      ASSERT_OK(ferry_channel_send(tx, buf, plen, 0));
    }
    sent += 3 * 64;
    for (i = 0;; i++) {
      rc = ferry_channel_recv(rx, out, sizeof out, &len, 0);
      if (rc == FERRY_EAGAIN)
        break;
      ASSERT_OK(rc);
      ASSERT_UEQ(get_id(out), (uint64_t)(128 + i));
    }
    ASSERT_EQ(i, 64);
    ASSERT_UEQ(ferry_channel_lost(rx), 128);
  }

  /* Empty. */
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 20 * MS_NS),
             FERRY_ETIMEDOUT);
  ASSERT_ERR(ferry_channel_peek(rx, m, 4, 0), FERRY_EAGAIN);
  ASSERT_ERR(ferry_channel_peek(rx, m, 4, 20 * MS_NS), FERRY_ETIMEDOUT);

  /* Too large. */
  ASSERT_ERR(ferry_channel_send(tx, buf, (size_t)max + 1, 0), FERRY_EMSGSIZE);
  ASSERT_ERR(ferry_channel_send(tx, buf, SIZE_MAX, 0), FERRY_EMSGSIZE);
  ASSERT_ERR(ferry_channel_reserve(tx, (size_t)max + 1, &p, 0), FERRY_EMSGSIZE);
  ASSERT_ERR(ferry_channel_reserve(tx, (size_t)max + 1, &p, 20 * MS_NS),
             FERRY_EMSGSIZE);
  ASSERT_ERR(ferry_channel_reserve(tx, SIZE_MAX, &p, 0), FERRY_EMSGSIZE);
  /* max_msg itself goes through. */
  fill_pat(buf, (size_t)max, 1);
  ASSERT_OK(ferry_channel_send(tx, buf, (size_t)max, 0));
  sent++;
  memset(out, 0, sizeof out);
  ASSERT_OK(ferry_channel_recv(rx, out, (size_t)max, &len, 0));
  ASSERT_UEQ(len, max);
  ASSERT_PAT(out, len, 1);

  /* A buffer too small: the size is reported, the message stays. */
  fill_pat(buf, 100, 2);
  ASSERT_OK(ferry_channel_send(tx, buf, 100, 0));
  sent++;
  len = 0;
  ASSERT_ERR(ferry_channel_recv(rx, out, 99, &len, 0), FERRY_EMSGSIZE);
  ASSERT_EQ(len, 100);
  len = 0;
  ASSERT_ERR(ferry_channel_recv(rx, NULL, 0, &len, 0), FERRY_EMSGSIZE);
  ASSERT_EQ(len, 100);
  memset(out, 0, sizeof out);
  ASSERT_OK(ferry_channel_recv(rx, out, 100, &len, 0));
  ASSERT_EQ(len, 100);
  ASSERT_PAT(out, 100, 2);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);

  /* Commit longer than reserved; the reservation survives the error. */
  ASSERT_OK(ferry_channel_reserve(tx, 100, &p, 0));
  fill_pat(p, 100, 3);
  ASSERT_ERR(ferry_channel_commit(tx, 101), FERRY_EMSGSIZE);
  ASSERT_ERR(ferry_channel_commit(tx, SIZE_MAX), FERRY_EMSGSIZE);
  ASSERT_OK(ferry_channel_commit(tx, 100));
  sent++;
  ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
  ASSERT_EQ(len, 100);
  ASSERT_PAT(out, 100, 3);

  /* Commit, abort, release with nothing open. */
  ASSERT_ERR(ferry_channel_commit(tx, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_abort(tx), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_release(rx), FERRY_EINVAL);

  /* One reservation at a time; one peeked batch at a time. */
  ASSERT_OK(ferry_channel_reserve(tx, 10, &p, 0));
  ASSERT_ERR(ferry_channel_reserve(tx, 10, &p, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_send(tx, buf, 10, 0), FERRY_EINVAL);
  ASSERT_OK(ferry_channel_abort(tx));
  ASSERT_ERR(ferry_channel_abort(tx), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);
  ASSERT_OK(ferry_channel_send(tx, buf, 10, 0));
  sent++;
  ASSERT_EQ(ferry_channel_peek(rx, m, 4, 0), 1);
  ASSERT_EQ(m[0].len, 10);
  ASSERT_ERR(ferry_channel_peek(rx, m, 4, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EINVAL);
  ASSERT_OK(ferry_channel_release(rx));
  ASSERT_ERR(ferry_channel_release(rx), FERRY_EINVAL);

  /* Wrong roles. */
  ASSERT_ERR(ferry_channel_send(rx, buf, 10, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_reserve(rx, 10, &p, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_commit(rx, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_abort(rx), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_close_send(rx), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(tx, out, sizeof out, &len, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_peek(tx, m, 4, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_release(tx), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_send(obs, buf, 10, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_reserve(obs, 10, &p, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(obs, out, sizeof out, &len, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_peek(obs, m, 4, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_close_send(obs), FERRY_EINVAL);

  /* Negative timeouts. */
  ASSERT_ERR(ferry_channel_send(tx, buf, 10, -1), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_send(tx, buf, 10, INT64_MIN), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_reserve(tx, 10, &p, -1), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, -1), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_peek(rx, m, 4, -5), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);

  /* NULL arguments. */
  ASSERT_ERR(ferry_channel_send(tx, NULL, 10, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_send(NULL, buf, 10, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_reserve(tx, 10, NULL, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_reserve(NULL, 10, &p, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_commit(NULL, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_abort(NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(rx, NULL, 10, &len, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(rx, out, 10, NULL, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_recv(NULL, out, 10, &len, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_peek(rx, NULL, 4, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_peek(rx, m, 0, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_peek(NULL, m, 4, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_release(NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_close_send(NULL), FERRY_EINVAL);
  ASSERT_UEQ(ferry_channel_max_msg(NULL), 0);
  ASSERT_UEQ(ferry_channel_lost(NULL), 0);
  ASSERT_TRUE(ferry_channel_segment(NULL) == NULL);
  ASSERT_OK(ferry_channel_close(NULL));

  /* Zero-length messages, with NULL buffers. */
  ASSERT_OK(ferry_channel_send(tx, NULL, 0, 0));
  sent++;
  len = 99;
  ASSERT_OK(ferry_channel_recv(rx, NULL, 0, &len, 0));
  ASSERT_EQ(len, 0);

  /* Still in working order. */
  put_id(buf, 777);
  ASSERT_OK(ferry_channel_send(tx, buf, 8, 0));
  sent++;
  ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
  ASSERT_EQ(len, 8);
  ASSERT_UEQ(get_id(out), 777);
  ASSERT_UEQ(info_of(obs)->sent, sent);
  ASSERT_UEQ(info_of(obs)->received + ferry_channel_lost(rx), sent);
  ASSERT_UEQ(info_of(obs)->used, 0);

  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_channel_close(obs));

  if (is_bc(k)) {
    /* Without subscribers a broadcast sender never waits, and a late
     * subscriber gets only what is sent after it joined. */
    new_name(name, sizeof name, k->tag);
    tx = ch_create(name, k, 4096, FERRY_SENDER);
    for (i = 0; i < 3 * 64; i++) {
      put_id(buf, (uint64_t)i);
      ASSERT_OK(ferry_channel_send(tx, buf, plen, 0));
    }
    rx = ch_open(name, FERRY_RECEIVER, 0);
    ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);
    put_id(buf, 1000);
    ASSERT_OK(ferry_channel_send(tx, buf, plen, 0));
    ASSERT_EQ(ferry_channel_peek(rx, m, 4, 0), 1);
    ASSERT_UEQ(get_id(m[0].data), 1000);
    ASSERT_UEQ(m[0].seq, 3 * 64);
    ASSERT_OK(ferry_channel_release(rx));
    ASSERT_UEQ(ferry_channel_lost(rx), 0);
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_channel_close(rx));
    ASSERT_OK(ferry_channel_close(tx));
  }
}

static void test_edges_spsc(void) { run_edges(K_SPSC); }
static void test_edges_mpsc(void) { run_edges(K_MPSC); }
static void test_edges_broadcast(void) { run_edges(K_BC); }
static void test_edges_broadcast_overrun(void) { run_edges(K_BCO); }

/* ---------------------------------------------------------------------- */
/* 4: blocking wake-ups across processes                                  */

/* wake-recv NAME R SPIN: R blocking receives of 8-byte ids 0..R-1. */
static int role_wake_recv(int argc, char **argv) {
  ferry_channel *ch;
  uint64_t r, n;
  uint8_t buf[64];
  size_t len;
  if (argc < 3)
    return 2;
  n = arg_u64(argv[1]);
  ch = ch_open(argv[0], FERRY_RECEIVER, atoll(argv[2]));
  for (r = 0; r < n; r++) {
    ASSERT_OK(ferry_channel_recv(ch, buf, sizeof buf, &len, tmo_ns(30000)));
    ASSERT_EQ(len, 8);
    ASSERT_UEQ(get_id(buf), r);
  }
  ASSERT_OK(ferry_channel_close(ch));
  return 0;
}

/* wake-send NAME M PLEN SPIN: M blocking sends of PLEN-byte messages
 * carrying ids 0..M-1. */
static int role_wake_send(int argc, char **argv) {
  ferry_channel *ch;
  uint64_t i, m;
  size_t plen;
  uint8_t buf[4096];
  if (argc < 4)
    return 2;
  m = arg_u64(argv[1]);
  plen = (size_t)arg_u64(argv[2]);
  ch = ch_open(argv[0], FERRY_SENDER, atoll(argv[3]));
  for (i = 0; i < m; i++) {
    id_msg(buf, plen, i);
    ASSERT_OK(ferry_channel_send(ch, buf, plen, tmo_ns(30000)));
  }
  ASSERT_OK(ferry_channel_close(ch));
  return 0;
}

#define WAKE_ROUNDS 100u

static void run_wake(const struct kind *k, int64_t spin) {
  char name[64];
  ferry_channel *tx, *rx;
  struct ferry_chan_hdr *h;
  uint8_t buf[4096];
  uint64_t r;
  size_t len;
  long pid;

  /* The receiver parks before each message is sent. */
  new_name(name, sizeof name, k->tag);
  tx = ch_create(name, k, 4096, FERRY_SENDER);
  h = hdr_of(tx);
  pid = spawn("wake-recv", name, u64s(WAKE_ROUNDS), i64s(spin), NULL);
  wait_peers(tx, FERRY_RECEIVER, 1);
  for (r = 0; r < WAKE_ROUNDS; r++) {
    /* everything consumed and the receiver asleep (or committed to
     * sleeping: it re-checks after announcing itself) */
    POLL_UNTIL(info_of(tx)->used == 0 && atomic_load(&h->rx.sleepers) >= 1,
               30000, "the receiver to park");
    put_id(buf, r);
    ASSERT_OK(ferry_channel_send(tx, buf, 8, 0));
  }
  REAP_OK(pid);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(tx));

  if (is_ovr(k))
    return; /* the overrun sender never waits */

  /* The sender parks on a full ring; each receive frees exactly one
   * record's room (fixed 128-byte records, 32 per ring). */
  new_name(name, sizeof name, k->tag);
  rx = ch_create(name, k, 4096, FERRY_RECEIVER);
  h = hdr_of(rx);
  pid = spawn("wake-send", name, u64s(32 + WAKE_ROUNDS), u64s(128 - rec_hdr(k)),
              i64s(spin), NULL);
  for (r = 0; r < WAKE_ROUNDS; r++) {
    POLL_UNTIL(info_of(rx)->used == 4096 && atomic_load(&h->tx.sleepers) >= 1,
               30000, "the sender to park on a full ring");
    ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
    ASSERT_EQ(len, 128 - rec_hdr(k));
    ASSERT_UEQ(get_id(buf), r);
    ASSERT_TRUE(id_msg_ok(buf, len, r));
  }
  for (; r < 32 + WAKE_ROUNDS; r++) {
    ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, tmo_ns(30000)));
    ASSERT_UEQ(get_id(buf), r);
  }
  ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, 0), FERRY_EAGAIN);
  REAP_OK(pid);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
}

static void run_wake_both(const struct kind *k) {
  run_wake(k, -1); /* no spinning: straight to the futex */
  run_wake(k, 0);  /* the default spin first */
}

static void test_wake_spsc(void) { run_wake_both(K_SPSC); }
static void test_wake_mpsc(void) { run_wake_both(K_MPSC); }
static void test_wake_broadcast(void) { run_wake_both(K_BC); }
static void test_wake_broadcast_overrun(void) { run_wake_both(K_BCO); }

/* ---------------------------------------------------------------------- */
/* 5: MPSC with contending producers                                      */

static void test_mpsc_producers(void) {
  static const char *const hows[] = {"copy", "zc", "mix", "mix"};
  const uint64_t n = 50000;
  char name[64];
  ferry_channel *obs, *tx;
  long rx, pids[4];
  int i;
  new_name(name, sizeof name, "mpsc");
  obs = ch_create(name, K_MPSC, 4096, FERRY_OBSERVE);
  rx = spawn("stream-recv", name, u64s(n), "4", "mix", "0", NULL);
  wait_peers(obs, FERRY_RECEIVER, 1);
  for (i = 0; i < 4; i++)
    pids[i] = spawn("stream-send", name, u64s(n), u64s((uint64_t)i), "0",
                    hows[i], i % 2 ? "-1" : "0", NULL);
  for (i = 0; i < 4; i++)
    REAP_OK(pids[i]);
  /* every producer is done: end the stream from here */
  tx = ch_open(name, FERRY_SENDER, 0);
  ASSERT_OK(ferry_channel_close_send(tx));
  ASSERT_OK(ferry_channel_close(tx));
  REAP_OK(rx);
  ASSERT_UEQ(info_of(obs)->sent, 4 * n);
  ASSERT_UEQ(info_of(obs)->received, 4 * n);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(obs));
}

/* ---------------------------------------------------------------------- */
/* 7: broadcast overrun with exact loss counts                            */

/* Message length argument: 0 = stream messages, "max" = max_msg, else a
 * fixed length of id messages. */
static size_t len_arg(const char *s, const ferry_channel *ch) {
  return strcmp(s, "max") == 0 ? (size_t)ferry_channel_max_msg(ch)
                               : (size_t)arg_u64(s);
}

/* ovr-send NAME CTL N LEN: sends N messages with timeout 0 (never waits),
 * publishing progress in CTL word 0; ends the stream, then sets CTL word 1.
 * LEN: see len_arg (48: 64-byte records). */
static int role_ovr_send(int argc, char **argv) {
  ferry_channel *ch;
  ferry_segment *ctl;
  uint64_t n, id;
  size_t fixed;
  uint8_t *buf;
  if (argc < 4)
    return 2;
  ch = ch_open(argv[0], FERRY_SENDER, 0);
  ctl = ctl_open(argv[1]);
  n = arg_u64(argv[2]);
  fixed = len_arg(argv[3], ch);
  buf = (uint8_t *)malloc((size_t)ferry_channel_max_msg(ch));
  ASSERT_TRUE(buf != NULL);
  for (id = 0; id < n; id++) {
    int rc;
    if (fixed) {
      id_msg(buf, fixed, id);
      rc = ferry_channel_send(ch, buf, fixed, 0);
    } else {
      rc = stream_send_one(ch, buf, 0, id, (int)(id % 3), 0);
    }
    if (rc != 0)
      TEST_FAIL("overrun send %llu: %s", (unsigned long long)id,
                ferry_err_name(rc));
    atomic_store(cw(ctl, 0), id + 1);
  }
  ASSERT_OK(ferry_channel_close_send(ch));
  atomic_store(cw(ctl, 1), 1);
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_segment_close(ctl));
  free(buf);
  return 0;
}

struct ovr_ctx {
  uint64_t first, last;
  size_t fixed; /* fixed message length, 0 for stream messages */
  int have;
  uint64_t max;
};

static void ovr_accept(struct rx_loop *L, const void *d, size_t len,
                       uint64_t seq, int has_seq) {
  struct ovr_ctx *c = (struct ovr_ctx *)L->ctx;
  uint64_t lost = ferry_channel_lost(L->ch), id;
  if (c->fixed) {
    if (len != c->fixed)
      TEST_FAIL("a %zu-byte message, expected %zu", len, c->fixed);
    id = get_id(d);
    if (!id_msg_ok(d, len, id))
      TEST_FAIL("message %llu is damaged", (unsigned long long)id);
  } else {
    id = stream_check(d, len, c->max).id;
  }
  if (c->have && id <= c->last)
    TEST_FAIL("id %llu after id %llu", (unsigned long long)id,
              (unsigned long long)c->last);
  if (id != L->rcvd + lost)
    TEST_FAIL("message %llu arrived after %llu received and %llu lost",
              (unsigned long long)id, (unsigned long long)L->rcvd,
              (unsigned long long)lost);
  if (has_seq && seq != id)
    TEST_FAIL("message %llu has seq %llu", (unsigned long long)id,
              (unsigned long long)seq);
  if (!c->have)
    c->first = id;
  c->have = 1;
  c->last = id;
}

/* ovr-late NAME CTL N MODE: subscribes, then waits for the sender's 'done'
 * (CTL word 1) before reading anything; reads until FERRY_ECLOSED. With
 * 64-byte records in a 4096-byte ring exactly the last 64 survive. */
static int role_ovr_late(int argc, char **argv) {
  ferry_channel *ch;
  ferry_segment *ctl;
  struct rx_loop L;
  struct ovr_ctx c;
  uint64_t n;
  if (argc < 4)
    return 2;
  ch = ch_open(argv[0], FERRY_RECEIVER, 0);
  ctl = ctl_open(argv[1]);
  n = arg_u64(argv[2]);
  memset(&c, 0, sizeof c);
  c.fixed = 48;
  wait_word(ctl, 1, 1, "the sender to finish");
  rx_init(&L, ch, mode_of(argv[3]), ovr_accept, &c);
  rx_run(&L);
  ASSERT_TRUE(L.closed);
  ASSERT_UEQ(L.rcvd, 4096 / 64);
  ASSERT_UEQ(ferry_channel_lost(ch), n - 4096 / 64);
  ASSERT_UEQ(c.first, n - 4096 / 64);
  ASSERT_UEQ(c.last, n - 1);
  ASSERT_UEQ(L.overruns, 0);
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_segment_close(ctl));
  return 0;
}

/* ovr-live NAME CTL N MODE LEN: reads while the sender runs; now and then it
 * stops until the sender is more than a ring ahead, so losses are certain.
 * Ids strictly increase, each id = received + lost, and at the end
 * received + lost = N. */
struct live_ctx {
  struct ovr_ctx o;
  ferry_segment *ctl;
  uint64_t n, stall_at, stalls;
};

static void live_accept(struct rx_loop *L, const void *d, size_t len,
                        uint64_t seq, int has_seq) {
  struct live_ctx *c = (struct live_ctx *)L->ctx;
  ovr_accept(L, d, len, seq, has_seq);
  /* 4096 / 32 (the smallest record) + 2 messages are more than a ring */
  if (c->o.last >= c->stall_at && c->o.last + 130 <= c->n) {
    wait_word(c->ctl, 0, c->o.last + 130, "the sender to get a ring ahead");
    c->stalls++;
    c->stall_at = c->o.last + 2000;
  }
}

static int role_ovr_live(int argc, char **argv) {
  ferry_channel *ch;
  struct rx_loop L;
  struct live_ctx c;
  if (argc < 5)
    return 2;
  ch = ch_open(argv[0], FERRY_RECEIVER, 0);
  memset(&c, 0, sizeof c);
  c.ctl = ctl_open(argv[1]);
  c.n = arg_u64(argv[2]);
  c.o.max = ferry_channel_max_msg(ch);
  c.o.fixed = len_arg(argv[4], ch);
  c.stall_at = 500;
  rx_init(&L, ch, mode_of(argv[3]), live_accept, &c);
  L.slow = 200;
  rx_run(&L);
  ASSERT_TRUE(L.closed);
  ASSERT_GT(L.rcvd, 0);
  ASSERT_GT(ferry_channel_lost(ch), 0);
  ASSERT_UEQ(L.rcvd + ferry_channel_lost(ch), c.n);
  ASSERT_UEQ(c.o.last, c.n - 1);
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_segment_close(c.ctl));
  return 0;
}

static void test_overrun_exact_loss(void) {
  const uint64_t n = 5000;
  char name[64], cname[64];
  ferry_channel *obs;
  ferry_segment *ctl;
  const ferry_channel_info *in;
  long s1, s2, tx;
  new_name(name, sizeof name, "bco");
  new_name(cname, sizeof cname, "ctl");
  obs = ch_create(name, K_BCO, 4096, FERRY_OBSERVE);
  ctl = ctl_create(cname);
  s1 = spawn("ovr-late", name, cname, u64s(n), "peek", NULL);
  s2 = spawn("ovr-late", name, cname, u64s(n), "recv", NULL);
  wait_peers(obs, FERRY_RECEIVER, 2);
  tx = spawn("ovr-send", name, cname, u64s(n), "48", NULL);
  REAP_OK(tx);
  REAP_OK(s1);
  REAP_OK(s2);
  in = info_of(obs);
  ASSERT_UEQ(in->sent, n);
  ASSERT_UEQ(in->received, 2 * 64);
  ASSERT_UEQ(in->lost, 2 * (n - 64));
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_unlink(cname, 0));
  ASSERT_OK(ferry_channel_close(obs));
  ASSERT_OK(ferry_segment_close(ctl));
}

static void run_overrun_live(uint64_t n, const char *len) {
  char name[64], cname[64];
  ferry_channel *obs;
  ferry_segment *ctl;
  const ferry_channel_info *in;
  long s1, s2, tx;
  new_name(name, sizeof name, "bco");
  new_name(cname, sizeof cname, "ctl");
  obs = ch_create(name, K_BCO, 4096, FERRY_OBSERVE);
  ctl = ctl_create(cname);
  s1 = spawn("ovr-live", name, cname, u64s(n), "peek", len, NULL);
  s2 = spawn("ovr-live", name, cname, u64s(n), "recv", len, NULL);
  wait_peers(obs, FERRY_RECEIVER, 2);
  tx = spawn("ovr-send", name, cname, u64s(n), len, NULL);
  REAP_OK(tx);
  REAP_OK(s1);
  REAP_OK(s2);
  in = info_of(obs);
  ASSERT_UEQ(in->sent, n);
  ASSERT_UEQ(in->received + in->lost, 2 * n);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_unlink(cname, 0));
  ASSERT_OK(ferry_channel_close(obs));
  ASSERT_OK(ferry_segment_close(ctl));
}

/* Readers lapped while they read, by stream messages of every size ... */
static void test_overrun_live_reader(void) { run_overrun_live(30000, "0"); }

/* ... and by messages of max_msg bytes: two of them fill the ring, so the
 * sender laps a reader between any two of its loads. */
static void test_overrun_lapped_reader(void) { run_overrun_live(20000, "max"); }

/* In one process: three rings' worth of messages past a subscriber that
 * reads nothing; then it gets exactly the newest ring's worth. */
static void test_overrun_in_process(void) {
  char name[64];
  ferry_channel *tx, *rx;
  uint8_t buf[4096];
  ferry_msg m[64];
  uint64_t i, sent, rcvd = 0, bytes = 0, first = 0, last = 0, max;
  size_t len;
  int n, j, have = 0;

  /* Fixed 64-byte records: exactly 64 survive. */
  new_name(name, sizeof name, "bco");
  tx = ch_create(name, K_BCO, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  for (i = 0; i < 3 * 64; i++) {
    id_msg(buf, 48, i);
    ASSERT_OK(ferry_channel_send(tx, buf, 48, 0));
  }
  ASSERT_UEQ(ferry_channel_lost(rx), 0); /* nothing looked at yet */
  n = ferry_channel_peek(rx, m, 64, 0);
  ASSERT_EQ(n, 64);
  for (j = 0; j < n; j++) {
    ASSERT_UEQ(get_id(m[j].data), 128 + (uint64_t)j);
    ASSERT_UEQ(m[j].seq, 128 + (uint64_t)j);
  }
  ASSERT_OK(ferry_channel_release(rx));
  ASSERT_UEQ(ferry_channel_lost(rx), 128);
  ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, 0), FERRY_EAGAIN);
  ASSERT_UEQ(info_of(rx)->lost, 128);
  ASSERT_UEQ(info_of(rx)->received, 64);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));

  /* Variable sizes (with padding at the ring's end): received + lost is
   * exact, the survivors are the newest, contiguous, and fit in a ring. */
  new_name(name, sizeof name, "bco");
  tx = ch_create(name, K_BCO, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  max = ferry_channel_max_msg(tx);
  for (i = 0, sent = 0; bytes < 3 * 4096; i++) {
    size_t l = stream_len(0, i, max);
    ASSERT_OK(stream_send_one(tx, buf, 0, i, (int)(i % 3), 0));
    bytes += rec_size(l, 16);
    sent++;
  }
  ASSERT_OK(ferry_channel_close_send(tx));
  bytes = 0;
  for (;;) {
    int rc = ferry_channel_recv(rx, buf, sizeof buf, &len, 0);
    struct shdr h;
    if (rc == FERRY_ECLOSED)
      break;
    ASSERT_OK(rc);
    h = stream_check(buf, len, max);
    if (!have)
      first = h.id;
    else
      ASSERT_UEQ(h.id, last + 1);
    ASSERT_UEQ(h.id, rcvd + ferry_channel_lost(rx));
    have = 1;
    last = h.id;
    rcvd++;
    bytes += rec_size(len, 16);
  }
  ASSERT_GT(rcvd, 0);
  ASSERT_UEQ(last, sent - 1);
  ASSERT_UEQ(first, sent - rcvd);
  ASSERT_UEQ(rcvd + ferry_channel_lost(rx), sent);
  ASSERT_LE(bytes, 4096);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
}

/* ---------------------------------------------------------------------- */
/* 8: abort and short commits                                             */

static void run_abort(const struct kind *k) {
  char name[64];
  ferry_channel *tx, *rx, *tx2;
  uint8_t out[4096];
  uint64_t max, it, seed = 12345, commits = 0;
  size_t len;
  void *p;

  new_name(name, sizeof name, k->tag);
  tx = ch_create(name, k, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  max = ferry_channel_max_msg(tx);

  /* Aborted: never seen. */
  ASSERT_OK(ferry_channel_reserve(tx, 100, &p, 0));
  memset(p, 0xee, 100);
  ASSERT_OK(ferry_channel_abort(tx));
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);
  /* The next committed one arrives. */
  fill_pat(out, 20, 1);
  ASSERT_OK(ferry_channel_send(tx, out, 20, 0));
  commits++;
  memset(out, 0, sizeof out);
  ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
  ASSERT_EQ(len, 20);
  ASSERT_PAT(out, 20, 1);
  /* Shorter commits deliver exactly the shorter message. */
  ASSERT_OK(ferry_channel_reserve(tx, 200, &p, 0));
  fill_pat(p, 200, 2);
  ASSERT_OK(ferry_channel_commit(tx, 50));
  commits++;
  ASSERT_OK(ferry_channel_reserve(tx, 300, &p, 0));
  ASSERT_OK(ferry_channel_commit(tx, 0));
  commits++;
  ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
  ASSERT_EQ(len, 50);
  ASSERT_PAT(out, 50, 2);
  ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
  ASSERT_EQ(len, 0);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);

  /* Closing with a reservation open aborts it; the receiver is not stuck
   * behind it. (Early, while the stream is shorter than the ring: see
   * sender_reopen for a restart later on.) */
  if (k->kind == FERRY_CHANNEL_MPSC) {
    tx2 = ch_open(name, FERRY_SENDER, 0);
    ASSERT_OK(ferry_channel_reserve(tx2, 500, &p, 0));
    memset(p, 0xee, 500);
    ASSERT_OK(ferry_channel_close(tx2));
  } else {
    ASSERT_OK(ferry_channel_reserve(tx, 500, &p, 0));
    memset(p, 0xee, 500);
    ASSERT_OK(ferry_channel_close(tx));
    tx = ch_open(name, FERRY_SENDER, 0);
  }
  fill_pat(out, 30, 3);
  ASSERT_OK(ferry_channel_send(tx, out, 30, 0));
  commits++;
  memset(out, 0, sizeof out);
  ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
  ASSERT_EQ(len, 30);
  ASSERT_PAT(out, 30, 3);
  ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);
  /* Many rounds all around the ring: abort, short commit, full commit. */
  for (it = 0; it < 4000; it++) {
    size_t l = 1 + (size_t)(mix64(seed + it) % max), c;
    int action = (int)(mix64(seed ^ it) % 3);
    ASSERT_OK(ferry_channel_reserve(tx, l, &p, 0));
    fill_pat(p, l, it);
    if (action == 0) {
      ASSERT_OK(ferry_channel_abort(tx));
      ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0),
                 FERRY_EAGAIN);
      continue;
    }
    c = action == 1 ? (size_t)(mix64(it) % (l + 1)) : l;
    ASSERT_OK(ferry_channel_commit(tx, c));
    commits++;
    ASSERT_OK(ferry_channel_recv(rx, out, sizeof out, &len, 0));
    ASSERT_EQ(len, c);
    ASSERT_PAT(out, c, it);
    ASSERT_ERR(ferry_channel_recv(rx, out, sizeof out, &len, 0), FERRY_EAGAIN);
  }

  ASSERT_UEQ(ferry_channel_lost(rx), 0);
  ASSERT_UEQ(info_of(rx)->sent, commits);
  ASSERT_UEQ(info_of(rx)->received, commits);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
}

static void test_abort_spsc(void) { run_abort(K_SPSC); }
static void test_abort_mpsc(void) { run_abort(K_MPSC); }
static void test_abort_broadcast(void) { run_abort(K_BC); }
static void test_abort_broadcast_overrun(void) { run_abort(K_BCO); }

/* abort-send NAME N SRC: an MPSC producer that sends stream messages
 * 0..N-1 of SRC, with aborted reservations (filled with a fake header of
 * another source) and short commits in between. */
static int role_abort_send(int argc, char **argv) {
  ferry_channel *ch;
  uint64_t n, id, max;
  uint32_t src;
  uint8_t *buf;
  if (argc < 3)
    return 2;
  ch = ch_open(argv[0], FERRY_SENDER, 0);
  n = arg_u64(argv[1]);
  src = (uint32_t)arg_u64(argv[2]);
  max = ferry_channel_max_msg(ch);
  buf = (uint8_t *)malloc((size_t)max);
  ASSERT_TRUE(buf != NULL);
  for (id = 0; id < n; id++) {
    uint64_t r = mix64(id * 7 + src);
    if (r % 3 == 0) {
      int k, times = 1 + (int)(r % 2);
      for (k = 0; k < times; k++) {
        void *p;
        size_t l = 16 + (size_t)((r >> 8) % (max - 16));
        ASSERT_OK(ferry_channel_reserve(ch, l, &p, tmo_ns(30000)));
        memset(p, 0xee, l);
        /* a plausible header of another source, then junk */
        stream_fill(p, 0xdead, id, l < 116 ? l : 116);
        ASSERT_OK(ferry_channel_abort(ch));
      }
    }
    ASSERT_OK(
        stream_send_one(ch, buf, src, id, (int)((r >> 4) % 3), tmo_ns(30000)));
  }
  ASSERT_OK(ferry_channel_close(ch));
  free(buf);
  return 0;
}

static void test_abort_mpsc_producers(void) {
  const uint64_t n = 20000;
  char name[64];
  ferry_channel *obs, *tx;
  long rx, a, b;
  new_name(name, sizeof name, "mpsc");
  obs = ch_create(name, K_MPSC, 4096, FERRY_OBSERVE);
  rx = spawn("stream-recv", name, u64s(n), "2", "mix", "0", NULL);
  wait_peers(obs, FERRY_RECEIVER, 1);
  a = spawn("abort-send", name, u64s(n), "0", NULL);
  b = spawn("abort-send", name, u64s(n), "1", NULL);
  REAP_OK(a);
  REAP_OK(b);
  tx = ch_open(name, FERRY_SENDER, 0);
  ASSERT_OK(ferry_channel_close_send(tx));
  ASSERT_OK(ferry_channel_close(tx));
  REAP_OK(rx);
  ASSERT_UEQ(info_of(obs)->sent, 2 * n);
  ASSERT_UEQ(info_of(obs)->received, 2 * n);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(obs));
}

/* ---------------------------------------------------------------------- */
/* 9: subscribers joining and leaving mid-stream                          */

/* Control words of the join/leave test. */
enum {
  JL_PROGRESS = 0, /* messages sent */
  JL_B_JOINED = 1,
  JL_C_JOINED = 2,
  JL_C_ANSWER = 3, /* sender's progress when it saw C joined, + 1 */
  JL_D_JOINED = 4
};
#define JL_N 40000u
#define JL_PB (JL_N / 8)
#define JL_PC (JL_N / 2)
#define JL_PD (5 * JL_N / 8)

/* jl-send NAME CTL: streams JL_N messages; before message JL_PB it waits
 * for subscriber B to have joined, before JL_PC for C, before JL_PD for D;
 * it answers C's join with its progress. Every send must complete. */
static int role_jl_send(int argc, char **argv) {
  ferry_channel *ch;
  ferry_segment *ctl;
  uint64_t id;
  int answered = 0;
  uint8_t *buf;
  if (argc < 2)
    return 2;
  ch = ch_open(argv[0], FERRY_SENDER, 0);
  ctl = ctl_open(argv[1]);
  buf = (uint8_t *)malloc((size_t)ferry_channel_max_msg(ch));
  ASSERT_TRUE(buf != NULL);
  for (id = 0; id < JL_N; id++) {
    int rc;
    if (id == JL_PB)
      wait_word(ctl, JL_B_JOINED, 1, "subscriber B");
    if (id == JL_PC)
      wait_word(ctl, JL_C_JOINED, 1, "subscriber C");
    if (id == JL_PD)
      wait_word(ctl, JL_D_JOINED, 1, "subscriber D");
    rc = stream_send_one(ch, buf, 0, id, (int)(id % 3), tmo_ns(30000));
    if (rc != 0)
      TEST_FAIL("send %llu: %s", (unsigned long long)id, ferry_err_name(rc));
    atomic_store(cw(ctl, JL_PROGRESS), id + 1);
    if (!answered && atomic_load(cw(ctl, JL_C_JOINED))) {
      atomic_store(cw(ctl, JL_C_ANSWER), id + 2);
      answered = 1;
    }
  }
  ASSERT_OK(ferry_channel_close_send(ch));
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_segment_close(ctl));
  free(buf);
  return 0;
}

/* Receives up to LIMIT messages (0: until the end) and checks that they
 * form one contiguous run of ids; returns how many, *FIRST the first id. */
static uint64_t jl_read(ferry_channel *ch, uint64_t limit, uint64_t *first,
                        int *closed) {
  uint64_t max = ferry_channel_max_msg(ch), n = 0, last = 0;
  uint8_t *buf = (uint8_t *)malloc((size_t)max);
  ASSERT_TRUE(buf != NULL);
  *closed = 0;
  while (!limit || n < limit) {
    size_t len;
    struct shdr h;
    int rc = ferry_channel_recv(ch, buf, (size_t)max, &len, tmo_ns(30000));
    if (rc == FERRY_ECLOSED) {
      *closed = 1;
      break;
    }
    if (rc != 0)
      TEST_FAIL("recv after %llu messages: %s", (unsigned long long)n,
                ferry_err_name(rc));
    h = stream_check(buf, len, max);
    if (n == 0)
      *first = h.id;
    else if (h.id != last + 1)
      TEST_FAIL("id %llu after id %llu: a gap or a duplicate",
                (unsigned long long)h.id, (unsigned long long)last);
    last = h.id;
    n++;
  }
  ASSERT_UEQ(ferry_channel_lost(ch), 0);
  free(buf);
  return n;
}

/* jl-sub NAME CTL WHO: A reads everything; B joins while the sender waits
 * at JL_PB (so its first id is JL_PB exactly) and leaves after 3000; C
 * joins while the sender streams and leaves after 3000; D joins at JL_PD,
 * reads 10, stops until the sender is stuck on it, then leaves; E joins
 * and leaves 20 times while the stream runs. */
static int role_jl_sub(int argc, char **argv) {
  ferry_segment *ctl;
  ferry_channel *ch;
  char who;
  uint64_t first = 0, n, p0;
  int closed;
  if (argc < 3)
    return 2;
  ctl = ctl_open(argv[1]);
  who = argv[2][0];
  switch (who) {
  case 'A':
    ch = ch_open(argv[0], FERRY_RECEIVER, 0);
    n = jl_read(ch, 0, &first, &closed);
    ASSERT_TRUE(closed);
    ASSERT_UEQ(first, 0);
    ASSERT_UEQ(n, JL_N);
    break;
  case 'B':
  case 'D': {
    uint64_t at = who == 'B' ? JL_PB : JL_PD;
    wait_word(ctl, JL_PROGRESS, at, "the sender to reach the join point");
    ch = ch_open(argv[0], FERRY_RECEIVER, 0);
    atomic_store(cw(ctl, who == 'B' ? JL_B_JOINED : JL_D_JOINED), 1);
    n = jl_read(ch, who == 'B' ? 3000 : 10, &first, &closed);
    ASSERT_UEQ(first, at);
    ASSERT_UEQ(n, who == 'B' ? 3000 : 10);
    if (who == 'D') {
      /* Stop reading until the sender waits for this subscriber: it is
       * asleep on the send queue and every other subscriber has caught
       * up with the tail. */
      struct ferry_chan_hdr *h = hdr_of(ch);
      struct poller pl = poll_start(60000, "the sender to wait for D");
      for (;;) {
        const ferry_channel_info *in = info_of(ch);
        uint64_t t = atomic_load(&h->tail);
        uint32_t i;
        int others_done = 1;
        for (i = 0; i < in->npeers; i++)
          if (in->peers[i].role == FERRY_RECEIVER &&
              in->peers[i].pid != (uint64_t)test_getpid() &&
              in->peers[i].cursor != t)
            others_done = 0;
        if (others_done && atomic_load(&h->tx.sleepers) >= 1 &&
            atomic_load(cw(ctl, JL_PROGRESS)) < JL_N)
          break;
        poll_next(&pl);
      }
    }
    break;
  }
  case 'C': {
    uint64_t answer;
    wait_word(ctl, JL_PROGRESS, JL_N / 4, "the stream to be under way");
    p0 = atomic_load(cw(ctl, JL_PROGRESS));
    ch = ch_open(argv[0], FERRY_RECEIVER, 0);
    atomic_store(cw(ctl, JL_C_JOINED), 1);
    n = jl_read(ch, 3000, &first, &closed);
    ASSERT_UEQ(n, 3000);
    wait_word(ctl, JL_C_ANSWER, 1, "the sender's answer");
    answer = atomic_load(cw(ctl, JL_C_ANSWER)) - 1;
    /* nothing sent before the join began; everything sent after it
     * completed */
    ASSERT_GE(first, p0);
    ASSERT_LE(first, answer);
    break;
  }
  default: { /* E */
    int s;
    uint64_t prev_end = 0;
    wait_word(ctl, JL_PROGRESS, JL_PB, "the stream to be under way");
    ch = NULL;
    for (s = 0; s < 20; s++) {
      p0 = atomic_load(cw(ctl, JL_PROGRESS));
      ch = ch_open(argv[0], FERRY_RECEIVER, 0);
      n = jl_read(ch, 50, &first, &closed);
      if (n > 0) {
        ASSERT_GE(first, p0);
        ASSERT_GE(first, prev_end);
        prev_end = first + n;
      }
      ASSERT_OK(ferry_channel_close(ch));
      ch = NULL;
      if (closed)
        break;
    }
    ASSERT_OK(ferry_segment_close(ctl));
    return 0;
  }
  }
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_segment_close(ctl));
  return 0;
}

static void test_broadcast_join_leave(void) {
  static const char *const who[] = {"A", "B", "C", "D", "E"};
  char name[64], cname[64];
  ferry_channel *obs;
  ferry_segment *ctl;
  long subs[5], tx;
  int i;
  new_name(name, sizeof name, "bc");
  new_name(cname, sizeof cname, "ctl");
  obs = ch_create(name, K_BC, 16 * KIB, FERRY_OBSERVE);
  ctl = ctl_create(cname);
  subs[0] = spawn("jl-sub", name, cname, who[0], NULL);
  wait_peers(obs, FERRY_RECEIVER, 1);
  for (i = 1; i < 5; i++)
    subs[i] = spawn("jl-sub", name, cname, who[i], NULL);
  tx = spawn("jl-send", name, cname, NULL);
  REAP_OK(tx);
  for (i = 0; i < 5; i++)
    REAP_OK(subs[i]);
  ASSERT_UEQ(info_of(obs)->sent, JL_N);
  ASSERT_EQ(info_of(obs)->npeers, 0);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_unlink(cname, 0));
  ASSERT_OK(ferry_channel_close(obs));
  ASSERT_OK(ferry_segment_close(ctl));
}

/* A subscriber that dies without closing must not stop a wait-for-slowest
 * sender for good: its place is a dead process's. */
static void test_broadcast_dead_subscriber(void) {
  char name[64], cname[64];
  ferry_channel *tx, *rx;
  ferry_segment *ctl;
  uint8_t buf[64];
  size_t len;
  long pid;
  int i, rc;
  new_name(name, sizeof name, "bc");
  new_name(cname, sizeof cname, "ctl");
  tx = ch_create(name, K_BC, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  ctl = ctl_create(cname);
  /* a subscriber that reads one message and dies without closing */
  pid = spawn("hold", name, "recv", cname, "1", "0", "die", NULL);
  wait_peers(tx, FERRY_RECEIVER, 2);
  id_msg(buf, 48, 0);
  ASSERT_OK(ferry_channel_send(tx, buf, 48, 0));
  wait_word(ctl, 0, 1, "the subscriber to read");
  atomic_store(cw(ctl, 1), 1);
  REAP_OK(pid);
  ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
  /* Three rings' worth, the live subscriber keeping up. */
  for (i = 1; i < 3 * 64; i++) {
    id_msg(buf, 48, (uint64_t)i);
    rc = ferry_channel_send(tx, buf, 48, tmo_ns(3000));
    if (rc != 0)
      TEST_FAIL("send %d with a dead subscriber attached: %s (the sender "
                "waits for the dead process's cursor)",
                i, ferry_err_name(rc));
    ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
    ASSERT_UEQ(get_id(buf), (uint64_t)i);
  }
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_unlink(cname, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_segment_close(ctl));
}

/* ---------------------------------------------------------------------- */
/* 10: batched receive                                                    */

static void batch_msg(uint8_t *buf, uint64_t id, size_t *len) {
  *len = 8 + (size_t)(id * 13 % 90);
  fill_pat(buf, *len, id);
  put_id(buf, id);
}

static void check_batch_msg(const ferry_msg *m, uint64_t id, int bc) {
  uint8_t ref[128];
  size_t len;
  batch_msg(ref, id, &len);
  if (m->len != len || memcmp(m->data, ref, len) != 0)
    TEST_FAIL("batched message %llu: wrong length or content",
              (unsigned long long)id);
  if (m->seq != (bc ? id : 0))
    TEST_FAIL("batched message %llu has seq %llu", (unsigned long long)id,
              (unsigned long long)m->seq);
}

static void run_batch(const struct kind *k) {
  char name[64];
  ferry_channel *tx, *rx;
  ferry_msg m[64];
  uint8_t buf[256];
  size_t len;
  uint64_t id = 0, next = 0;
  int n, i, rc;

  new_name(name, sizeof name, k->tag);
  tx = ch_create(name, k, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  for (; id < 10; id++) {
    batch_msg(buf, id, &len);
    ASSERT_OK(ferry_channel_send(tx, buf, len, 0));
  }
  n = ferry_channel_peek(rx, m, 64, 0);
  ASSERT_EQ(n, 10);
  for (i = 0; i < n; i++)
    check_batch_msg(&m[i], next + (uint64_t)i, is_bc(k));

  if (!is_ovr(k)) {
    /* Peeked messages stay in place while the sender fills the rest. */
    for (;; id++) {
      batch_msg(buf, id, &len);
      rc = ferry_channel_send(tx, buf, len, 0);
      if (rc == FERRY_EAGAIN)
        break;
      ASSERT_OK(rc);
    }
    for (i = 0; i < n; i++)
      check_batch_msg(&m[i], next + (uint64_t)i, is_bc(k));
    ASSERT_OK(ferry_channel_release(rx));
    next += (uint64_t)n;
    /* Released room is usable at once. */
    batch_msg(buf, id, &len);
    ASSERT_OK(ferry_channel_send(tx, buf, len, 0));
    id++;
    /* A smaller batch, then the rest in batches of 64. */
    n = ferry_channel_peek(rx, m, 3, 0);
    ASSERT_EQ(n, 3);
    for (i = 0; i < n; i++)
      check_batch_msg(&m[i], next + (uint64_t)i, is_bc(k));
    ASSERT_OK(ferry_channel_release(rx));
    next += 3;
    while (next < id) {
      n = ferry_channel_peek(rx, m, 64, 0);
      ASSERT_GT(n, 1);
      for (i = 0; i < n; i++)
        check_batch_msg(&m[i], next + (uint64_t)i, is_bc(k));
      ASSERT_OK(ferry_channel_release(rx));
      next += (uint64_t)n;
    }
    ASSERT_UEQ(next, id);
  } else {
    /* Overrun: the sender writes over the peeked batch; its release says
     * so, and the batch counts as lost. */
    for (; id < 10 + 3 * 64; id++) {
      batch_msg(buf, id, &len);
      ASSERT_OK(ferry_channel_send(tx, buf, len, 0));
    }
    ASSERT_ERR(ferry_channel_release(rx), FERRY_EOVERRUN);
    ASSERT_ERR(ferry_channel_release(rx), FERRY_EINVAL);
    n = ferry_channel_peek(rx, m, 64, 0);
    ASSERT_GT(n, 1);
    next = m[0].seq;
    ASSERT_GT(next, 10);
    for (i = 0; i < n; i++)
      check_batch_msg(&m[i], next + (uint64_t)i, 1);
    ASSERT_OK(ferry_channel_release(rx));
    ASSERT_UEQ(ferry_channel_lost(rx), next);
    next += (uint64_t)n;
    while (next < id) {
      n = ferry_channel_peek(rx, m, 64, 0);
      ASSERT_GT(n, 0);
      for (i = 0; i < n; i++)
        check_batch_msg(&m[i], next + (uint64_t)i, 1);
      ASSERT_OK(ferry_channel_release(rx));
      next += (uint64_t)n;
    }
    ASSERT_UEQ(info_of(rx)->received + ferry_channel_lost(rx), id);
  }
  ASSERT_ERR(ferry_channel_peek(rx, m, 64, 0), FERRY_EAGAIN);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
}

static void test_batch_spsc(void) { run_batch(K_SPSC); }
static void test_batch_mpsc(void) { run_batch(K_MPSC); }
static void test_batch_broadcast(void) { run_batch(K_BC); }
static void test_batch_broadcast_overrun(void) { run_batch(K_BCO); }

/* A sender that closed (or died) is replaced by a new one, which carries on
 * the stream, at any point of it: here after three laps of the ring. */
static void run_sender_reopen(const struct kind *k) {
  char name[64];
  ferry_channel *tx, *rx;
  ferry_msg m;
  uint8_t buf[64];
  uint64_t i;
  int round;
  new_name(name, sizeof name, k->tag);
  rx = ch_create(name, k, 4096, FERRY_RECEIVER);
  for (round = 0, i = 0; round < 2; round++) {
    uint64_t end = i + 3 * 64;
    int rc;
    tx = NULL;
    rc = ferry_channel_open(&tx, name, 0, FERRY_SENDER, NULL);
    if (rc != 0)
      TEST_FAIL("%s: opening a new sender after %llu messages (%llu bytes, "
                "capacity 4096) were sent and received: %s: %s",
                k->tag, (unsigned long long)i, (unsigned long long)(i * 64),
                ferry_err_name(rc), ferry_errmsg());
    for (; i < end; i++) {
      put_id(buf, i);
      ASSERT_OK(ferry_channel_send(tx, buf, 64 - rec_hdr(k), 0));
      ASSERT_EQ(ferry_channel_peek(rx, &m, 1, 0), 1);
      ASSERT_UEQ(get_id(m.data), i);
      ASSERT_UEQ(m.seq, is_bc(k) ? i : 0);
      ASSERT_OK(ferry_channel_release(rx));
    }
    ASSERT_OK(ferry_channel_close(tx));
  }
  ASSERT_UEQ(info_of(rx)->sent, 6 * 64);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
}

static void test_sender_reopen_spsc(void) { run_sender_reopen(K_SPSC); }
static void test_sender_reopen_mpsc(void) { run_sender_reopen(K_MPSC); }
static void test_sender_reopen_broadcast(void) { run_sender_reopen(K_BC); }
static void test_sender_reopen_broadcast_overrun(void) {
  run_sender_reopen(K_BCO);
}

/* ---------------------------------------------------------------------- */
/* 11: roles, and taking over from dead peers                             */

/* hold NAME ROLE CTL COUNT EXTRA END: opens NAME as ROLE (send or recv).
 * A receiver receives COUNT messages (ids 0..COUNT-1), then peeks EXTRA
 * more without releasing them; a sender sends COUNT 48-byte messages (ids
 * 0..COUNT-1), then with EXTRA 1 leaves a reservation open. Then it sets
 * CTL word 0, waits for CTL word 1, and closes (END close) or exits without
 * closing (END die). */
static int role_hold(int argc, char **argv) {
  ferry_channel *ch;
  ferry_segment *ctl;
  uint64_t count, extra, i;
  int sender;
  uint8_t buf[4096];
  size_t len;
  if (argc < 6)
    return 2;
  sender = strcmp(argv[1], "send") == 0;
  ch = ch_open(argv[0], sender ? FERRY_SENDER : FERRY_RECEIVER, 0);
  ctl = ctl_open(argv[2]);
  count = arg_u64(argv[3]);
  extra = arg_u64(argv[4]);
  if (sender) {
    for (i = 0; i < count; i++) {
      id_msg(buf, 48, i);
      ASSERT_OK(ferry_channel_send(ch, buf, 48, tmo_ns(30000)));
    }
    if (extra) {
      void *p;
      ASSERT_OK(ferry_channel_reserve(ch, 48, &p, tmo_ns(30000)));
      memset(p, 0xee, 48);
    }
  } else {
    for (i = 0; i < count; i++) {
      ASSERT_OK(ferry_channel_recv(ch, buf, sizeof buf, &len, tmo_ns(30000)));
      ASSERT_UEQ(get_id(buf), i);
      ASSERT_TRUE(id_msg_ok(buf, len, i));
    }
    if (extra) {
      ferry_msg m[64];
      int n = ferry_channel_peek(ch, m, (size_t)extra, tmo_ns(30000));
      ASSERT_EQ(n, extra);
      ASSERT_UEQ(get_id(m[0].data), count);
    }
  }
  atomic_store(cw(ctl, 0), 1);
  wait_word(ctl, 1, 1, "the parent to let go");
  if (strcmp(argv[5], "die") == 0)
    _Exit(0); /* no close, no detach: a crash as far as ferry can tell */
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_segment_close(ctl));
  return 0;
}

static void ctl_reset(ferry_segment *ctl) {
  atomic_store(cw(ctl, 0), 0);
  atomic_store(cw(ctl, 1), 0);
}

static void test_roles_busy(void) {
  int ki;
  for (ki = 0; ki < NKINDS; ki++) {
    const struct kind *k = &kinds[ki];
    int unique_rx = !is_bc(k), unique_tx = k->kind != FERRY_CHANNEL_MPSC;
    char name[64], cname[64];
    ferry_channel *obs, *a = NULL, *b = NULL;
    ferry_segment *ctl;
    long pid;
    int rc;
    new_name(name, sizeof name, k->tag);
    new_name(cname, sizeof cname, "ctl");
    obs = ch_create(name, k, 4096, FERRY_OBSERVE);
    ctl = ctl_create(cname);

    /* In one process. */
    a = ch_open(name, FERRY_RECEIVER, 0);
    rc = ferry_channel_open(&b, name, 0, FERRY_RECEIVER, NULL);
    if (unique_rx) {
      ASSERT_ERR(rc, FERRY_EBUSY);
      ASSERT_TRUE(b == NULL);
      ASSERT_CONTAINS(ferry_errmsg(), "receiver");
    } else {
      ASSERT_OK(rc);
      ASSERT_OK(ferry_channel_close(b));
    }
    ASSERT_OK(ferry_channel_close(a));
    a = ch_open(name, FERRY_SENDER, 0);
    b = NULL;
    rc = ferry_channel_open(&b, name, 0, FERRY_SENDER, NULL);
    if (unique_tx) {
      ASSERT_ERR(rc, FERRY_EBUSY);
      ASSERT_CONTAINS(ferry_errmsg(), "sender");
    } else {
      ASSERT_OK(rc);
      ASSERT_OK(ferry_channel_close(b));
    }
    ASSERT_OK(ferry_channel_close(a));

    /* Held by another, live process; free again once it closed. */
    pid = spawn("hold", name, "recv", cname, "0", "0", "close", NULL);
    wait_word(ctl, 0, 1, "the holder");
    b = NULL;
    rc = ferry_channel_open(&b, name, 0, FERRY_RECEIVER, NULL);
    if (unique_rx) {
      ASSERT_ERR(rc, FERRY_EBUSY);
      ASSERT_CONTAINS(ferry_errmsg(), u64s((uint64_t)pid));
    } else {
      ASSERT_OK(rc);
      ASSERT_OK(ferry_channel_close(b));
    }
    atomic_store(cw(ctl, 1), 1);
    REAP_OK(pid);
    ctl_reset(ctl);
    a = ch_open(name, FERRY_RECEIVER, 0);
    ASSERT_OK(ferry_channel_close(a));

    pid = spawn("hold", name, "send", cname, "0", "0", "close", NULL);
    wait_word(ctl, 0, 1, "the holder");
    b = NULL;
    rc = ferry_channel_open(&b, name, 0, FERRY_SENDER, NULL);
    if (unique_tx) {
      ASSERT_ERR(rc, FERRY_EBUSY);
    } else {
      ASSERT_OK(rc);
      ASSERT_OK(ferry_channel_close(b));
    }
    /* observers are never in the way */
    a = ch_open(name, FERRY_OBSERVE, 0);
    ASSERT_OK(ferry_channel_close(a));
    atomic_store(cw(ctl, 1), 1);
    REAP_OK(pid);
    ctl_reset(ctl);
    a = ch_open(name, FERRY_SENDER, 0);
    ASSERT_OK(ferry_channel_close(a));

    ASSERT_EQ(info_of(obs)->npeers, 0);
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_segment_unlink(cname, 0));
    ASSERT_OK(ferry_channel_close(obs));
    ASSERT_OK(ferry_segment_close(ctl));
  }
}

/* A receiver dies after receiving 4 of 10 (and, with PEEK, peeking 3 more
 * without releasing them): a new receiver gets exactly 4..9. */
static void run_dead_receiver(const struct kind *k, const char *peek) {
  char name[64], cname[64];
  ferry_channel *tx, *rx = NULL;
  ferry_segment *ctl;
  const ferry_channel_info *in;
  const ferry_channel_peer *pr;
  uint8_t buf[64];
  size_t len;
  uint64_t i;
  long pid;
  new_name(name, sizeof name, k->tag);
  new_name(cname, sizeof cname, "ctl");
  tx = ch_create(name, k, 4096, FERRY_SENDER);
  ctl = ctl_create(cname);
  for (i = 0; i < 10; i++) {
    id_msg(buf, 48, i);
    ASSERT_OK(ferry_channel_send(tx, buf, 48, 0));
  }
  pid = spawn("hold", name, "recv", cname, "4", peek, "die", NULL);
  wait_word(ctl, 0, 1, "the receiver to read");
  ASSERT_ERR(ferry_channel_open(&rx, name, 0, FERRY_RECEIVER, NULL),
             FERRY_EBUSY);
  atomic_store(cw(ctl, 1), 1);
  REAP_OK(pid);
  in = info_of(tx);
  pr = peer_by_pid(in, (uint64_t)pid, FERRY_RECEIVER);
  ASSERT_TRUE(pr != NULL);
  ASSERT_EQ(pr->alive, 0);
  ASSERT_UEQ(pr->msgs, 4);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  for (i = 4; i < 10; i++) {
    ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
    ASSERT_EQ(len, 48);
    ASSERT_UEQ(get_id(buf), i);
    ASSERT_TRUE(id_msg_ok(buf, len, i));
  }
  ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, 0), FERRY_EAGAIN);
  in = info_of(tx);
  ASSERT_UEQ(in->received, 10);
  ASSERT_TRUE(peer_by_pid(in, (uint64_t)pid, FERRY_RECEIVER) == NULL);
  /* and the channel goes on working */
  put_id(buf, 10);
  ASSERT_OK(ferry_channel_send(tx, buf, 48, 0));
  ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
  ASSERT_UEQ(get_id(buf), 10);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_unlink(cname, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_segment_close(ctl));
}

static void test_dead_receiver_spsc(void) {
  run_dead_receiver(K_SPSC, "0");
  run_dead_receiver(K_SPSC, "3");
}
static void test_dead_receiver_mpsc(void) {
  run_dead_receiver(K_MPSC, "0");
  run_dead_receiver(K_MPSC, "3");
}

/* A sender dies after 5 messages with a reservation open: a new sender
 * takes over and continues; the receiver gets 0..9 exactly (broadcast:
 * numbered 0..9). */
static void run_dead_sender(const struct kind *k) {
  char name[64], cname[64];
  ferry_channel *tx = NULL, *rx;
  ferry_segment *ctl;
  ferry_msg m;
  uint8_t buf[64];
  uint64_t i;
  long pid;
  int unique = k->kind != FERRY_CHANNEL_MPSC;
  new_name(name, sizeof name, k->tag);
  new_name(cname, sizeof cname, "ctl");
  rx = ch_create(name, k, 4096, FERRY_RECEIVER);
  ctl = ctl_create(cname);
  /* an MPSC claim that is never committed would block the receiver: the
   * MPSC sender dies without one */
  pid =
      spawn("hold", name, "send", cname, "5", unique ? "1" : "0", "die", NULL);
  wait_word(ctl, 0, 1, "the sender to send");
  if (unique)
    ASSERT_ERR(ferry_channel_open(&tx, name, 0, FERRY_SENDER, NULL),
               FERRY_EBUSY);
  atomic_store(cw(ctl, 1), 1);
  REAP_OK(pid);
  tx = ch_open(name, FERRY_SENDER, 0);
  for (i = 5; i < 10; i++) {
    id_msg(buf, 48, i);
    ASSERT_OK(ferry_channel_send(tx, buf, 48, 0));
  }
  for (i = 0; i < 10; i++) {
    ASSERT_EQ(ferry_channel_peek(rx, &m, 1, 0), 1);
    ASSERT_EQ(m.len, 48);
    ASSERT_UEQ(get_id(m.data), i);
    ASSERT_TRUE(id_msg_ok(m.data, m.len, i));
    ASSERT_UEQ(m.seq, is_bc(k) ? i : 0);
    ASSERT_OK(ferry_channel_release(rx));
  }
  ASSERT_ERR(ferry_channel_peek(rx, &m, 1, 0), FERRY_EAGAIN);
  ASSERT_UEQ(info_of(rx)->sent, 10);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_unlink(cname, 0));
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_segment_close(ctl));
}

static void test_dead_sender(void) {
  int ki;
  for (ki = 0; ki < NKINDS; ki++)
    run_dead_sender(&kinds[ki]);
}

/* ---------------------------------------------------------------------- */
/* 12: end of stream                                                      */

static void run_close(const struct kind *k) {
  static const char *const modes[] = {"recv", "peek", "mix"};
  char name[64];
  ferry_channel *tx, *rx, *late;
  ferry_msg m;
  uint8_t buf[64];
  size_t len;
  int i;

  /* Across processes: all N, then FERRY_ECLOSED (every subscriber). */
  run_stream(k, 4096, 2000, "copy", modes, is_bc(k) ? 3 : 1);

  /* In one process: messages sent before the close are all delivered,
   * also when received after it; then the end is sticky. */
  new_name(name, sizeof name, k->tag);
  tx = ch_create(name, k, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  for (i = 0; i < 3; i++) {
    put_id(buf, (uint64_t)i);
    ASSERT_OK(ferry_channel_send(tx, buf, 8, 0));
  }
  ASSERT_EQ(info_of(tx)->closed, 0);
  ASSERT_OK(ferry_channel_close_send(tx));
  ASSERT_EQ(info_of(tx)->closed, 1);
  for (i = 0; i < 3; i++) {
    ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
    ASSERT_UEQ(get_id(buf), (uint64_t)i);
  }
  ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, 0), FERRY_ECLOSED);
  ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, tmo_ns(1000)),
             FERRY_ECLOSED);
  ASSERT_ERR(ferry_channel_peek(rx, &m, 1, 0), FERRY_ECLOSED);
  if (is_bc(k)) {
    /* a subscriber joining after the end has nothing to wait for */
    late = ch_open(name, FERRY_RECEIVER, 0);
    ASSERT_ERR(ferry_channel_recv(late, buf, sizeof buf, &len, tmo_ns(1000)),
               FERRY_ECLOSED);
    ASSERT_OK(ferry_channel_close(late));
  }
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
}

static void test_close_spsc(void) { run_close(K_SPSC); }
static void test_close_mpsc(void) { run_close(K_MPSC); }
static void test_close_broadcast(void) { run_close(K_BC); }
static void test_close_broadcast_overrun(void) { run_close(K_BCO); }

/* ---------------------------------------------------------------------- */
/* 13: ferry_channel_get_info                                             */

static void test_info(void) {
  static const uint64_t req[] = {0, 1, 4096, 5000, 65537};
  static const uint64_t want[] = {MIB, 4096, 4096, 8192, 131072};
  int ki, c;
  for (ki = 0; ki < NKINDS; ki++) {
    const struct kind *k = &kinds[ki];
    uint32_t rh = rec_hdr(k);
    char name[64], cname[64];
    ferry_channel *obs, *tx;
    ferry_segment *ctl;
    const ferry_channel_info *in;
    const ferry_channel_peer *ps, *pr;
    uint8_t buf[64];
    long pid;
    int i;

    for (c = 0; c < 5; c++) {
      new_name(name, sizeof name, k->tag);
      obs = ch_create(name, k, req[c], FERRY_OBSERVE);
      in = info_of(obs);
      ASSERT_EQ(in->kind, k->kind);
      ASSERT_EQ(in->flags, k->flags);
      ASSERT_UEQ(in->capacity, want[c]);
      ASSERT_UEQ(in->max_msg, want[c] / 2 - rh);
      ASSERT_UEQ(ferry_channel_max_msg(obs), want[c] / 2 - rh);
      ASSERT_UEQ(in->used, 0);
      ASSERT_UEQ(in->sent, 0);
      ASSERT_UEQ(in->received, 0);
      ASSERT_UEQ(in->lost, 0);
      ASSERT_EQ(in->closed, 0);
      ASSERT_EQ(in->npeers, 0);
      ASSERT_GE(ferry_segment_data_size(ferry_channel_segment(obs)),
                ferry__chan_ring_offset(64) + want[c]);
      ASSERT_OK(ferry_segment_unlink(name, 0));
      ASSERT_OK(ferry_channel_close(obs));
    }

    /* Peers and counters with a live receiver process. */
    new_name(name, sizeof name, k->tag);
    new_name(cname, sizeof cname, "ctl");
    tx = ch_create(name, k, 4096, FERRY_SENDER);
    ctl = ctl_create(cname);
    obs = ch_open(name, FERRY_OBSERVE, 0);
    pid = spawn("hold", name, "recv", cname, "30", "0", "close", NULL);
    wait_peers(obs, FERRY_RECEIVER, 1);
    for (i = 0; i < 50; i++) {
      id_msg(buf, 24, (uint64_t)i);
      ASSERT_OK(ferry_channel_send(tx, buf, 24, 0));
    }
    wait_word(ctl, 0, 1, "the receiver to read 30");
    in = info_of(obs);
    ASSERT_EQ(in->npeers, 2); /* the observer is not a peer */
    ASSERT_UEQ(in->sent, 50);
    ASSERT_UEQ(in->received, 30);
    ASSERT_UEQ(in->lost, 0);
    ASSERT_UEQ(in->used, 20 * rec_size(24, rh));
    ps = peer_by_pid(in, (uint64_t)test_getpid(), FERRY_SENDER);
    pr = peer_by_pid(in, (uint64_t)pid, FERRY_RECEIVER);
    ASSERT_TRUE(ps != NULL && pr != NULL);
    ASSERT_EQ(ps->alive, 1);
    ASSERT_EQ(pr->alive, 1);
    ASSERT_UEQ(ps->msgs, 50);
    ASSERT_UEQ(pr->msgs, 30);
    ASSERT_UEQ(pr->lost, 0);
    if (is_bc(k))
      ASSERT_UEQ(pr->cursor, 30 * rec_size(24, rh));
    atomic_store(cw(ctl, 1), 1);
    REAP_OK(pid);
    in = info_of(obs);
    ASSERT_EQ(in->npeers, 1);
    ASSERT_UEQ(in->received, 30); /* kept after it left */
    ASSERT_UEQ(in->sent, 50);
    ASSERT_OK(ferry_channel_close_send(tx));
    ASSERT_EQ(info_of(obs)->closed, 1);
    ASSERT_OK(ferry_channel_close(tx));
    in = info_of(obs);
    ASSERT_EQ(in->npeers, 0);
    ASSERT_UEQ(in->sent, 50);

    /* A peer that died without closing shows as not alive. */
    ctl_reset(ctl);
    pid = spawn("hold", name, "recv", cname, "0", "0", "die", NULL);
    wait_word(ctl, 0, 1, "the receiver");
    in = info_of(obs);
    pr = peer_by_pid(in, (uint64_t)pid, FERRY_RECEIVER);
    ASSERT_TRUE(pr != NULL);
    ASSERT_EQ(pr->alive, 1);
    atomic_store(cw(ctl, 1), 1);
    REAP_OK(pid);
    in = info_of(obs);
    pr = peer_by_pid(in, (uint64_t)pid, FERRY_RECEIVER);
    ASSERT_TRUE(pr != NULL);
    ASSERT_EQ(pr->alive, 0);
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_segment_unlink(cname, 0));
    ASSERT_OK(ferry_channel_close(obs));
    ASSERT_OK(ferry_segment_close(ctl));
  }
}

/* ---------------------------------------------------------------------- */
/* 14: open validation and corrupt shared state                           */

static void test_open_validation(void) {
  char name[64];
  ferry_channel *ch = NULL, *a;
  ferry_segment *seg;
  ferry_channel_opts o;
  unsigned role;

  /* A plain segment is not a channel. */
  new_name(name, sizeof name, "raw");
  ASSERT_OK(
      ferry_segment_open(&seg, name, FERRY_CREATE | FERRY_EXCL, 65536, NULL));
  for (role = FERRY_OBSERVE; role <= FERRY_RECEIVER; role++) {
    ASSERT_ERR(ferry_channel_open(&ch, name, 0, role, NULL), FERRY_EINVAL);
    ASSERT_TRUE(ch == NULL);
    ASSERT_CONTAINS(ferry_errmsg(), "not a channel");
    ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, role, NULL),
               FERRY_EINVAL);
  }
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_close(seg));

  /* Open-or-create of an existing channel: the kind must agree. */
  new_name(name, sizeof name, "mpsc");
  a = ch_create(name, K_MPSC, 4096, FERRY_OBSERVE);
  o = chan_opts(K_SPSC, 4096, 0);
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_RECEIVER, &o),
             FERRY_EINVAL);
  o = chan_opts(K_BC, 4096, 0);
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  o = chan_opts(K_MPSC, 4096, 0);
  ASSERT_OK(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_RECEIVER, &o));
  ASSERT_OK(ferry_channel_close(ch));
  o = chan_opts(NULL, 0, 0); /* kind 0: whatever it is */
  ASSERT_OK(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o));
  ASSERT_EQ(info_of(ch)->kind, FERRY_CHANNEL_MPSC);
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_EXCL,
                                FERRY_SENDER, NULL),
             FERRY_EEXIST);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(a));
  /* overrun or not must agree too */
  new_name(name, sizeof name, "bco");
  a = ch_create(name, K_BCO, 4096, FERRY_OBSERVE);
  o = chan_opts(K_BC, 4096, 0);
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_RECEIVER, &o),
             FERRY_EINVAL);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(a));

  /* Capacity is rounded up to a power of two. */
  new_name(name, sizeof name, "spsc");
  a = ch_create(name, K_SPSC, 5000, FERRY_SENDER);
  ASSERT_UEQ(info_of(a)->capacity, 8192);
  ASSERT_UEQ(ferry_channel_max_msg(a), 4096 - 8);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(a));

  /* Bad options and arguments; nothing is created. */
  new_name(name, sizeof name, "bad");
  o = chan_opts(K_SPSC, 4096, 0);
  o.struct_size = 0;
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "struct_size");
  o.struct_size = 2;
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  o = chan_opts(NULL, 4096, 0);
  o.kind = 4;
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  o = chan_opts(K_SPSC, 4096, 0);
  o.flags = FERRY_CHANNEL_OVERRUN;
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  o = chan_opts(K_BC, 4096, 0);
  o.flags = 1u << 7;
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  o = chan_opts(K_BC, 4096, 0);
  o.max_peers = 1;
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  o.max_peers = FERRY_CHANNEL_PEERS_MAX + 1;
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  o = chan_opts(K_SPSC, (1ull << 32) + 1, 0);
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, FERRY_SENDER, &o),
             FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE, 3, NULL),
             FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_RDONLY,
                                FERRY_SENDER, NULL),
             FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_open(NULL, name, FERRY_CREATE, FERRY_SENDER, NULL),
             FERRY_EINVAL);
  ASSERT_ERR(
      ferry_channel_open(&ch, "bad/name", FERRY_CREATE, FERRY_SENDER, NULL),
      FERRY_EINVAL);
  ASSERT_ERR(ferry_channel_open(&ch, name, 0, FERRY_SENDER, NULL),
             FERRY_ENOENT);
  ASSERT_ERR(ferry_segment_unlink(name, 0), FERRY_ENOENT);

  /* An older, shorter options struct (kind and capacity only) works. */
  o = chan_opts(K_MPSC, 4096, 0);
  o.struct_size = (uint32_t)offsetof(ferry_channel_opts, flags);
  o.flags = FERRY_CHANNEL_OVERRUN; /* beyond struct_size: ignored */
  ASSERT_OK(ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_EXCL,
                               FERRY_SENDER, &o));
  ASSERT_EQ(info_of(ch)->kind, FERRY_CHANNEL_MPSC);
  ASSERT_UEQ(info_of(ch)->capacity, 4096);
  ASSERT_EQ(info_of(ch)->flags, 0);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(ch));

  /* A full peer table. */
  new_name(name, sizeof name, "bc");
  o = chan_opts(K_BC, 4096, 0);
  o.max_peers = 2;
  ASSERT_OK(ferry_channel_open(&a, name, FERRY_CREATE | FERRY_EXCL,
                               FERRY_SENDER, &o));
  ch = ch_open(name, FERRY_RECEIVER, 0);
  {
    ferry_channel *third = NULL;
    ASSERT_ERR(ferry_channel_open(&third, name, 0, FERRY_RECEIVER, NULL),
               FERRY_EBUSY);
  }
  ASSERT_OK(ferry_channel_close(ch));
  ch = ch_open(name, FERRY_RECEIVER, 0); /* the slot is free again */
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(ch));
  ASSERT_OK(ferry_channel_close(a));
}

/* The channel header's immutable line: every field is checked. */
static void test_validate_fields(void) {
  char name[64];
  ferry_channel *ch;
  struct ferry_chan_hdr good, h;
  uint64_t ds;
  new_name(name, sizeof name, "bc");
  ch = ch_create(name, K_BC, 4096, FERRY_OBSERVE);
  memcpy(&good, hdr_of(ch), 64);
  ds = ferry_segment_data_size(ferry_channel_segment(ch));
  ASSERT_OK(ferry__chan_validate(&good, ds));

#define FIELD_CASE(edit, code)                                                 \
  do {                                                                         \
    memcpy(&h, &good, 64);                                                     \
    edit;                                                                      \
    h.crc = ferry__chan_crc(&h);                                               \
    ASSERT_ERR(ferry__chan_validate(&h, ds), code);                            \
  } while (0)
  FIELD_CASE(h.magic[0] = 'X', FERRY_EBADHDR);
  FIELD_CASE(h.version = 2, FERRY_EVERSION);
  FIELD_CASE(h.kind = 0, FERRY_EBADHDR);
  FIELD_CASE(h.kind = 4, FERRY_EBADHDR);
  FIELD_CASE(h.kind = FERRY_CHANNEL_SPSC, FERRY_EBADHDR); /* rec_hdr 16 */
  FIELD_CASE(h.capacity = 5000, FERRY_EBADHDR);
  FIELD_CASE(h.capacity = 2048, FERRY_EBADHDR);
  FIELD_CASE(h.capacity = 8192, FERRY_EBADHDR); /* max_msg disagrees */
  FIELD_CASE((h.capacity = 1ull << 40, h.max_msg = FERRY_REC_LEN_MASK),
             FERRY_EBADHDR);
  FIELD_CASE(h.max_msg = 2040, FERRY_EBADHDR);
  FIELD_CASE(h.flags = 2, FERRY_EBADHDR);
  FIELD_CASE(h.rec_hdr = 8, FERRY_EBADHDR);
  FIELD_CASE(h.max_peers = 1, FERRY_EBADHDR);
  FIELD_CASE(h.max_peers = 257, FERRY_EBADHDR);
  FIELD_CASE(h.peers_offset = 0, FERRY_EBADHDR);
  FIELD_CASE(h.ring_offset = 4096, FERRY_EBADHDR);
  FIELD_CASE((h.capacity = 1u << 20, h.max_msg = (1u << 19) - 16), FERRY_ESIZE);
#undef FIELD_CASE
  /* with the checksum left alone */
  memcpy(&h, &good, 64);
  h.capacity = 8192;
  ASSERT_ERR(ferry__chan_validate(&h, ds), FERRY_EBADHDR);
  ASSERT_ERR(ferry__chan_validate(&good, ferry__chan_ring_offset(64) + 4095),
             FERRY_ESIZE);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(ch));
}

/* Corrupt header fields in shared memory: every role is refused. */
static void test_corrupt_header(void) {
  static const struct {
    uint64_t off; /* in the channel header */
    uint32_t val;
  } edits[] = {{16, 12345},     /* capacity */
               {16 + 4, 1},     /* capacity, high half */
               {0, 0x58585858}, /* magic */
               {12, 2},         /* kind */
               {24, 100},       /* max_msg */
               {48, 12288},     /* ring_offset */
               {52, 0}};        /* crc */
  size_t e;
  for (e = 0; e < sizeof edits / sizeof edits[0]; e++) {
    char name[64];
    ferry_channel *ch = NULL, *held;
    unsigned role;
    uint8_t buf[16];
    size_t len;
    new_name(name, sizeof name, "spsc");
    held = ch_create(name, K_SPSC, 4096, FERRY_RECEIVER);
    ch = ch_open(name, FERRY_SENDER, 0);
    ASSERT_OK(ferry_channel_send(ch, "x", 1, 0));
    ASSERT_OK(ferry_channel_close(ch));
    seg_poke_u32(name, edits[e].off, edits[e].val);
    for (role = FERRY_OBSERVE; role <= FERRY_RECEIVER; role++) {
      ch = NULL;
      ASSERT_ERR(ferry_channel_open(&ch, name, 0, role, NULL), FERRY_EBADHDR);
      ASSERT_TRUE(ch == NULL);
    }
    /* a handle opened before keeps its copy of the immutable line */
    ASSERT_OK(ferry_channel_recv(held, buf, sizeof buf, &len, 0));
    ASSERT_EQ(len, 1);
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_channel_close(held));
  }
  {
    /* the layout version has its own code (the sender's handle keeps the
     * channel in existence, as Windows needs) */
    char name[64];
    ferry_channel *ch = NULL, *held;
    new_name(name, sizeof name, "spsc");
    held = ch_create(name, K_SPSC, 4096, FERRY_SENDER);
    seg_poke_u32(name, 8, 2);
    ASSERT_ERR(ferry_channel_open(&ch, name, 0, FERRY_RECEIVER, NULL),
               FERRY_EVERSION);
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_channel_close(held));
  }
}

/* Ring positions and owners gone bad while peers are attached: the one who
 * reads them reports FERRY_ECORRUPT, promptly, even with a long timeout. */
static void run_corrupt_tail(const struct kind *k) {
  char name[64];
  ferry_channel *tx, *rx;
  ferry_msg m;
  uint8_t buf[256];
  size_t len;
  uint64_t i, head;
  int rc;
  new_name(name, sizeof name, k->tag);
  tx = ch_create(name, k, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  /* Three laps of 64-byte records, each received: the ring is full of
   * consumed records and the receiver is caught up. */
  for (i = 0; i < 3 * 64; i++) {
    put_id(buf, i);
    ASSERT_OK(ferry_channel_send(tx, buf, 64 - rec_hdr(k), 0));
    ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
    ASSERT_UEQ(get_id(buf), i);
  }
  head = 3 * 4096;
  /* A tail far beyond anything the sender could have written. */
  seg_poke_u64(name, 64, 1ull << 60);
  if (k->kind == FERRY_CHANNEL_MPSC) {
    /* The MPSC receiver reads committed records in-band, not the tail;
     * the senders claim space through it and must refuse it. */
    rc = ferry_channel_recv(rx, buf, sizeof buf, &len, 0);
    if (rc != FERRY_EAGAIN && rc != FERRY_ECORRUPT)
      TEST_FAIL("MPSC recv with a corrupt tail: %s", ferry_err_name(rc));
    ASSERT_ERR(ferry_channel_send(tx, buf, 8, 0), FERRY_ECORRUPT);
    ASSERT_ERR(ferry_channel_send(tx, buf, 8, tmo_ns(10000)), FERRY_ECORRUPT);
  } else {
    rc = ferry_channel_recv(rx, buf, sizeof buf, &len, 0);
    if (rc == 0)
      TEST_FAIL("recv with tail 2^60 (head %llu, capacity 4096) delivered a "
                "%zu-byte message with id %llu, already received before",
                (unsigned long long)head, len, (unsigned long long)get_id(buf));
    ASSERT_ERR(rc, FERRY_ECORRUPT);
    ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, tmo_ns(10000)),
               FERRY_ECORRUPT);
    ASSERT_ERR(ferry_channel_peek(rx, &m, 1, tmo_ns(10000)), FERRY_ECORRUPT);
  }
  /* A tail behind the head. */
  seg_poke_u64(name, 64, head - 64);
  if (k->kind == FERRY_CHANNEL_MPSC) {
    put_id(buf, 999);
    rc = ferry_channel_send(tx, buf, 8, tmo_ns(10000));
    if (rc == 0) {
      int rc2 = ferry_channel_recv(rx, buf, sizeof buf, &len, tmo_ns(200));
      TEST_FAIL("MPSC send with the tail 64 bytes behind the head (%llu) "
                "returned OK; the receiver's recv then gives %s: the message "
                "was written behind the head and is lost",
                (unsigned long long)head, ferry_err_name(rc2));
    }
    ASSERT_ERR(rc, FERRY_ECORRUPT);
  } else
    ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, tmo_ns(10000)),
               FERRY_ECORRUPT);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));
}

static void test_corrupt_tail_spsc(void) { run_corrupt_tail(K_SPSC); }
static void test_corrupt_tail_mpsc(void) { run_corrupt_tail(K_MPSC); }
static void test_corrupt_tail_broadcast(void) { run_corrupt_tail(K_BC); }
static void test_corrupt_tail_broadcast_overrun(void) {
  run_corrupt_tail(K_BCO);
}

/* Other shared positions: head, owner index, cursor, oldest. */
static void test_corrupt_positions(void) {
  char name[64];
  ferry_channel *tx, *rx, *ch = NULL;
  uint8_t buf[64];
  size_t len;

  /* SPSC head beyond the tail: the sender and a new receiver refuse. */
  new_name(name, sizeof name, "spsc");
  tx = ch_create(name, K_SPSC, 4096, FERRY_SENDER);
  seg_poke_u64(name, 128, 1ull << 40);
  ASSERT_ERR(ferry_channel_send(tx, buf, 8, tmo_ns(10000)), FERRY_ECORRUPT);
  ASSERT_ERR(ferry_channel_open(&ch, name, 0, FERRY_RECEIVER, NULL),
             FERRY_ECORRUPT);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(tx));

  /* A role owner index outside the peer table. */
  new_name(name, sizeof name, "mpsc");
  tx = ch_create(name, K_MPSC, 4096, FERRY_SENDER);
  seg_poke_u32(name, 348, 1000);
  ASSERT_ERR(ferry_channel_open(&ch, name, 0, FERRY_RECEIVER, NULL),
             FERRY_ECORRUPT);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(tx));

  /* A subscriber cursor beyond the tail: the waiting sender refuses. */
  new_name(name, sizeof name, "bc");
  tx = ch_create(name, K_BC, 4096, FERRY_SENDER); /* peer slot 0 */
  rx = ch_open(name, FERRY_RECEIVER, 0);          /* peer slot 1 */
  seg_poke_u64(name, 384 + 64 + 32, 1ull << 40);
  ASSERT_ERR(ferry_channel_send(tx, buf, 8, tmo_ns(10000)), FERRY_ECORRUPT);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
  ASSERT_OK(ferry_channel_close(tx));

  /* Overrun: the oldest intact record beyond the tail. */
  new_name(name, sizeof name, "bco");
  tx = ch_create(name, K_BCO, 4096, FERRY_SENDER);
  rx = ch_open(name, FERRY_RECEIVER, 0);
  ASSERT_OK(ferry_channel_send(tx, buf, 8, 0));
  seg_poke_u64(name, 72, 1ull << 40);
  ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, tmo_ns(10000)),
             FERRY_ECORRUPT);
  ASSERT_OK(ferry_channel_close(tx));
  ASSERT_ERR(ferry_channel_open(&ch, name, 0, FERRY_SENDER, NULL),
             FERRY_ECORRUPT);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_channel_close(rx));
}

/* Record headers gone bad in the ring (ring at data offset 8192 for the
 * default 64 peers): FERRY_ECORRUPT, and it stays. */
static void run_corrupt_record(const struct kind *k) {
  const uint64_t ring = ferry__chan_ring_offset(64);
  uint32_t rh = rec_hdr(k);
  uint64_t r40 = rec_size(40, rh);
  int c;
  ASSERT_EQ(ferry__chan_ring_offset(64), 8192);
  for (c = 0; c < 4; c++) {
    char name[64];
    ferry_channel *tx, *rx;
    ferry_msg m;
    uint8_t buf[4096];
    size_t len;
    uint64_t max, i;
    uint64_t at;
    uint32_t word;
    int good;
    if (c == 1 && k->kind == FERRY_CHANNEL_MPSC)
      continue; /* MPSC records are bounded by the ring, not by a tail */
    new_name(name, sizeof name, k->tag);
    tx = ch_create(name, k, 4096, FERRY_SENDER);
    rx = ch_open(name, FERRY_RECEIVER, 0);
    max = ferry_channel_max_msg(tx);
    if (c < 3) {
      for (i = 0; i < 3; i++) {
        fill_pat(buf, 40, i);
        ASSERT_OK(ferry_channel_send(tx, buf, 40, 0));
      }
      if (c == 0) { /* longer than any message */
        at = ring + (uint64_t)r40;
        word = FERRY_REC_COMMIT | (uint32_t)(max + 1);
        good = 1;
      } else if (c == 1) { /* plausible, but past the published tail */
        at = ring + (uint64_t)(2 * r40);
        word = FERRY_REC_COMMIT | 1000u;
        good = 2;
      } else { /* padding of a length no record can have */
        at = ring + (uint64_t)r40;
        word = FERRY_REC_COMMIT | FERRY_REC_PAD | 5u;
        good = 1;
      }
    } else {
      /* a record near the ring's end whose length runs past it */
      for (i = 0; i < 63; i++) {
        ASSERT_OK(ferry_channel_send(tx, buf, 64 - rh, 0));
        ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
      }
      ASSERT_OK(ferry_channel_send(tx, buf, 40, 0));
      at = ring + 63 * 64;
      word = FERRY_REC_COMMIT | 1000u;
      good = 0;
    }
    seg_poke_u32(name, at, word);
    for (i = 0; i < (uint64_t)good; i++) {
      ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 0));
      ASSERT_EQ(len, 40);
      ASSERT_PAT(buf, 40, i);
    }
    ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, 0),
               FERRY_ECORRUPT);
    ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, tmo_ns(10000)),
               FERRY_ECORRUPT);
    ASSERT_ERR(ferry_channel_peek(rx, &m, 1, tmo_ns(10000)), FERRY_ECORRUPT);
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_channel_close(rx));
    ASSERT_OK(ferry_channel_close(tx));
  }
}

static void test_corrupt_record(void) {
  int ki;
  for (ki = 0; ki < NKINDS; ki++)
    run_corrupt_record(&kinds[ki]);
}

/* ---------------------------------------------------------------------- */

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"order_spsc", test_order_spsc},
      {"order_mpsc", test_order_mpsc},
      {"order_broadcast", test_order_broadcast},
      {"order_broadcast_overrun", test_order_broadcast_overrun},
      {"wrap_spsc", test_wrap_spsc},
      {"wrap_mpsc", test_wrap_mpsc},
      {"wrap_broadcast", test_wrap_broadcast},
      {"wrap_broadcast_overrun", test_wrap_broadcast_overrun},
      {"edges_spsc", test_edges_spsc},
      {"edges_mpsc", test_edges_mpsc},
      {"edges_broadcast", test_edges_broadcast},
      {"edges_broadcast_overrun", test_edges_broadcast_overrun},
      {"wake_spsc", test_wake_spsc},
      {"wake_mpsc", test_wake_mpsc},
      {"wake_broadcast", test_wake_broadcast},
      {"wake_broadcast_overrun", test_wake_broadcast_overrun},
      {"mpsc_producers", test_mpsc_producers},
      {"broadcast_three_subscribers", test_broadcast_three_subscribers},
      {"overrun_exact_loss", test_overrun_exact_loss},
      {"overrun_live_reader", test_overrun_live_reader},
      {"overrun_lapped_reader", test_overrun_lapped_reader},
      {"overrun_in_process", test_overrun_in_process},
      {"abort_spsc", test_abort_spsc},
      {"abort_mpsc", test_abort_mpsc},
      {"abort_broadcast", test_abort_broadcast},
      {"abort_broadcast_overrun", test_abort_broadcast_overrun},
      {"abort_mpsc_producers", test_abort_mpsc_producers},
      {"broadcast_join_leave", test_broadcast_join_leave},
      {"broadcast_dead_subscriber", test_broadcast_dead_subscriber},
      {"batch_spsc", test_batch_spsc},
      {"batch_mpsc", test_batch_mpsc},
      {"batch_broadcast", test_batch_broadcast},
      {"batch_broadcast_overrun", test_batch_broadcast_overrun},
      {"roles_busy", test_roles_busy},
      {"dead_receiver_spsc", test_dead_receiver_spsc},
      {"dead_receiver_mpsc", test_dead_receiver_mpsc},
      {"dead_sender", test_dead_sender},
      {"sender_reopen_spsc", test_sender_reopen_spsc},
      {"sender_reopen_mpsc", test_sender_reopen_mpsc},
      {"sender_reopen_broadcast", test_sender_reopen_broadcast},
      {"sender_reopen_broadcast_overrun", test_sender_reopen_broadcast_overrun},
      {"close_spsc", test_close_spsc},
      {"close_mpsc", test_close_mpsc},
      {"close_broadcast", test_close_broadcast},
      {"close_broadcast_overrun", test_close_broadcast_overrun},
      {"info", test_info},
      {"open_validation", test_open_validation},
      {"validate_fields", test_validate_fields},
      {"corrupt_header", test_corrupt_header},
      {"corrupt_tail_spsc", test_corrupt_tail_spsc},
      {"corrupt_tail_mpsc", test_corrupt_tail_mpsc},
      {"corrupt_tail_broadcast", test_corrupt_tail_broadcast},
      {"corrupt_tail_broadcast_overrun", test_corrupt_tail_broadcast_overrun},
      {"corrupt_positions", test_corrupt_positions},
      {"corrupt_record", test_corrupt_record},
      {NULL, NULL}};
  static const struct test_role roles[] = {{"stream-send", role_stream_send},
                                           {"stream-recv", role_stream_recv},
                                           {"wrap-send", role_wrap_send},
                                           {"wrap-recv", role_wrap_recv},
                                           {"wake-recv", role_wake_recv},
                                           {"wake-send", role_wake_send},
                                           {"ovr-send", role_ovr_send},
                                           {"ovr-late", role_ovr_late},
                                           {"ovr-live", role_ovr_live},
                                           {"abort-send", role_abort_send},
                                           {"jl-send", role_jl_send},
                                           {"jl-sub", role_jl_sub},
                                           {"hold", role_hold},
                                           {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
