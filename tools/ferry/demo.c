/*
 * ferry demo: the project's main job (`make run`). Two processes, a camera
 * and a vision stage in miniature:
 *
 *   process 1 (this one)                         process 2 (this program
 *   creates two SPSC channels, starts process 2    again: demo --role
 *   frames: reserve, fill, checksum, commit  -->   receiver ...)
 *                                                  peek, verify every
 *                                                  byte, release
 *   latency = ack.done - frame.sent          <--   acks: (number, done)
 *
 * Each frame is a 64-byte header (magic, number, payload size, send time,
 * checksum) and SIZE payload bytes written in place in the ring (zero
 * copy). The payload is a cheap pattern with the frame number mixed into
 * every 8-byte word, and the checksum is computed while it is written, so
 * generating a frame costs one pass over it. The receiver reads every byte
 * to recompute the checksum, checks number (in order, none missing) and
 * size, and acknowledges each frame with the time it finished, on the same
 * monotonic clock (proc_now_ns, CLOCK_MONOTONIC: comparable between
 * processes on one machine).
 *
 * Process 2 first sends a "ready" message once it is attached to both
 * channels; the clock starts then, so its start-up is not measured.
 *
 * Every blocking call has a timeout; process 1 waits in short slices and
 * checks in between whether process 2 still runs, reaps it with proc_wait,
 * kills it on a timeout, and removes both channels on every path.
 *
 * --zero-copy: the frames live in a pool (ferry_pool_*) of --blocks blocks
 * instead of the ring; process 1 allocates a block, writes the frame in
 * place and sends its handle (8 bytes) through the frames channel with
 * ferry_pool_send; process 2 turns it back into a pointer with
 * ferry_pool_recv, verifies the frame in place and releases the block.
 * --headers-only: neither side touches the payload (the sender writes the
 * 64-byte header, the receiver checks it), so what is measured is the
 * hand-off itself, whose cost does not depend on the frame size.
 */
#if defined(_WIN32)
#ifndef __USE_MINGW_ANSI_STDIO
#define __USE_MINGW_ANSI_STDIO 1
#endif
#endif

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ferry.h"
#include "proc.h"

#define DEMO_FRAMES_DEFAULT 100
#define DEMO_FRAMES_MAX 100000000ull
#define DEMO_SIZE_DEFAULT ((uint64_t)3 << 20)
#define DEMO_SIZE_MAX ((uint64_t)1 << 30)
#define DEMO_TIMEOUT_DEFAULT_NS (INT64_C(10) * 1000000000)
#define DEMO_ACK_CAPACITY (64u << 10)
/* Process 1 waits in slices this long, checking process 2 in between. */
#define DEMO_SLICE_NS (INT64_C(50) * 1000000)
#define DEMO_MAGIC UINT64_C(0x454d415246595246) /* "FRYFRAME" */
#define DEMO_BLOCKS_DEFAULT 4
#define DEMO_HANDLE_CAPACITY (64u << 10) /* frames channel with --zero-copy */

/* The frame header, at the start of every frame message. */
struct frame_hdr {
  uint64_t magic;
  uint64_t number;   /* 0, 1, 2, ... */
  uint64_t size;     /* payload bytes after this header */
  int64_t send_ns;   /* proc_now_ns() just before the commit */
  uint64_t checksum; /* frame_sum() of the payload */
  uint64_t reserved[3];
};
#define FRAME_HDR 64
_Static_assert(sizeof(struct frame_hdr) == FRAME_HDR, "frame header size");

enum ack_status {
  ACK_OK = 0,
  ACK_BAD_HEADER = 1, /* too short, or no frame magic */
  ACK_ORDER = 2,      /* not the frame number expected */
  ACK_SIZE = 3,       /* message or payload size wrong */
  ACK_CHECKSUM = 4,   /* payload does not match its checksum */
  ACK_READY = 100     /* process 2 is attached: start the clock */
};

/* An acknowledgement, one per frame, process 2 to process 1. */
struct ack {
  uint64_t number; /* the frame expected (in order); READY: 0 */
  uint64_t got;    /* the number the frame header carried */
  int64_t done_ns; /* proc_now_ns() once the frame was verified */
  uint32_t status; /* enum ack_status */
  uint32_t reserved;
};

/* ------------------------------------------------------------------------ */
/* Payload pattern and checksum                                             */

/* Four independent lanes of h = rotl(h ^ w, 27) * K over the 8-byte words
 * (independent, so the multiplies overlap), then the tail, then a mix of
 * the lanes. Every step is a bijection of the lane, so changing any one
 * word always changes the result; other corruption goes undetected with a
 * probability of about 2^-64. */
#define K1 UINT64_C(0x9e3779b97f4a7c15)
#define K2 UINT64_C(0xff51afd7ed558ccd)
#define K3 UINT64_C(0xc4ceb9fe1a85ec53)

struct lanes {
  uint64_t a, b, c, d;
};

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

#define STEP(h, w) ((h) = rotl64((h) ^ (w), 27) * K2)

static uint64_t ld64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

static void st64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }

static void lanes_init(struct lanes *l, uint64_t number, uint64_t size) {
  uint64_t s = (number + 1) * K1 ^ size * K3;
  l->a = s ^ 1;
  l->b = s ^ 2;
  l->c = s ^ 3;
  l->d = s ^ 4;
}

/* The words and bytes after the last 32-byte block, and the final mix. */
static uint64_t lanes_finish(struct lanes *l, const unsigned char *p,
                             size_t n) {
  uint64_t last = 0, h;
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    STEP(l->a, ld64(p + i));
  memcpy(&last, p + i, n - i);
  STEP(l->b, last ^ ((uint64_t)(n - i) << 59));
  h = l->a;
  STEP(h, l->b);
  STEP(h, l->c);
  STEP(h, l->d);
  h ^= h >> 33;
  h *= K3;
  h ^= h >> 29;
  return h;
}

/* The checksum of frame NUMBER's payload P (N bytes). */
static uint64_t frame_sum(const unsigned char *p, uint64_t n, uint64_t number) {
  struct lanes l;
  uint64_t i = 0;
  lanes_init(&l, number, n);
  for (; i + 32 <= n; i += 32) {
    STEP(l.a, ld64(p + i));
    STEP(l.b, ld64(p + i + 8));
    STEP(l.c, ld64(p + i + 16));
    STEP(l.d, ld64(p + i + 24));
  }
  return lanes_finish(&l, p + i, (size_t)(n - i));
}

/* Writes frame NUMBER's payload (word k = base ^ k, base from the number)
 * into P and returns its checksum, the same as frame_sum() of it, in one
 * pass. */
static uint64_t frame_fill(unsigned char *p, uint64_t n, uint64_t number) {
  struct lanes l;
  uint64_t base = (number + 1) * K1, i = 0, w;
  lanes_init(&l, number, n);
  for (; i + 32 <= n; i += 32) {
    uint64_t k = i >> 3;
    w = base ^ k;
    st64(p + i, w);
    STEP(l.a, w);
    w = base ^ (k + 1);
    st64(p + i + 8, w);
    STEP(l.b, w);
    w = base ^ (k + 2);
    st64(p + i + 16, w);
    STEP(l.c, w);
    w = base ^ (k + 3);
    st64(p + i + 24, w);
    STEP(l.d, w);
  }
  {
    uint64_t j;
    for (j = i; j < n; j++)
      p[j] = (unsigned char)((base ^ (j >> 3)) >> ((j & 7) * 8));
  }
  return lanes_finish(&l, p + i, (size_t)(n - i));
}

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */

/* "ferry: demo: detail" for failures that have no ferry code. */
static int demo_error(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

static int demo_error(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fputs("ferry: demo: ", stderr);
  cli_put_clean(stderr, buf);
  fputc('\n', stderr);
  return EXIT_FAIL;
}

static const char *ack_status_str(uint32_t status) {
  switch (status) {
  case ACK_OK:
    return "ok";
  case ACK_BAD_HEADER:
    return "has no valid frame header";
  case ACK_ORDER:
    return "arrived out of order";
  case ACK_SIZE:
    return "has the wrong size";
  case ACK_CHECKSUM:
    return "is corrupt: its checksum does not match its bytes";
  default:
    return "was rejected for an unknown reason";
  }
}

/* ------------------------------------------------------------------------ */
/* Usage and options                                                        */

const char cli_demo_usage[] =
    "usage: ferry demo [--frames N] [--size BYTES] [--zero-copy [--blocks N]]\n"
    "                  [--headers-only] [--json]\n"
    "\n"
    "The main job: streams N frames of BYTES bytes from this process to a\n"
    "second one (this program again) through an SPSC channel, zero-copy on\n"
    "both sides, and back comes an acknowledgement per frame through a\n"
    "second channel. Each frame carries its number, its send time and a\n"
    "checksum; the receiver reads every byte, checks number (in order,\n"
    "none missing), size and checksum, and stamps the time it finished.\n"
    "Prints frames, frame size, elapsed time, frames/s, MB/s (10^6\n"
    "bytes), latency p50 and p99 (send to verified, in microseconds) and\n"
    "\"verified: N/N frames, 0 lost, 0 corrupt\". Exits 0 only if every\n"
    "frame was verified; 1 if a frame was bad or missing, or the receiver\n"
    "failed. The two channels (demo-*-frames, demo-*-acks) are removed at\n"
    "the end.\n"
    "\n"
    "options:\n"
    "  --frames N         frames to send (default 100)\n"
    "  --size BYTES       payload bytes per frame, suffixes K, M, G as for\n"
    "                     create (default 3M, at most 1G); the ring holds at\n"
    "                     least two frames\n"
    "  --frame-size BYTES the same as --size\n"
    "  --zero-copy        the frames live in a pool of blocks (a segment\n"
    "                     demo-*-pool); the frames channel carries only\n"
    "                     their 8-byte handles (ferry_pool_send/recv)\n"
    "  --blocks N         with --zero-copy: blocks in the pool (default 4)\n"
    "  --headers-only     the sender writes only each frame's 64-byte\n"
    "                     header and the receiver checks only that: the\n"
    "                     payload is neither written nor read, so frames/s\n"
    "                     shows the cost of the hand-off alone (with\n"
    "                     --zero-copy it does not depend on the frame size)\n"
    "  --json             one JSON object instead of the text\n"
    "  --timeout SECONDS  bound on every wait, in both processes (default\n"
    "                     10; decimals allowed)\n"
    "  --corrupt-frame K  flip one payload bit of frame K (from 0) after its\n"
    "                     checksum was computed, to show that the receiver\n"
    "                     catches it (the demo then fails)\n";

struct demo {
  uint64_t frames, size;
  int64_t timeout_ns;
  int json;
  int zero_copy;    /* --zero-copy */
  int headers_only; /* --headers-only */
  uint64_t blocks;  /* --blocks */
  char pname[FERRY_NAME_MAX + 1];
  ferry_pool *pool;
  int corrupt; /* --corrupt-frame given */
  uint64_t corrupt_frame;
  char fname[FERRY_NAME_MAX + 1], aname[FERRY_NAME_MAX + 1];
  ferry_channel *ch_frames, *ch_acks;
  int created;    /* the channels exist (unlink them) */
  uint64_t cap;   /* frames ring */
  long pid;       /* process 2, or -1 */
  int reaped;     /* process 2 was waited for */
  int status;     /* its exit code, once reaped */
  int64_t *sent;  /* send time of each frame */
  int64_t *lat;   /* latency of each acknowledged frame */
  int ready;      /* process 2 said it is attached */
  uint64_t acked; /* frames acknowledged as good, in order */
  uint64_t corrupt_seen;
  int64_t last_done_ns;
};

/* ------------------------------------------------------------------------ */
/* Process 2: the receiver                                                  */

static int recv_fail(const char *what, int rc) {
  fprintf(stderr, "ferry: demo: receiver: %s: %s: %s\n", what,
          ferry_err_name(rc), ferry_strerror(rc));
  return EXIT_FAIL;
}

/* Checks one frame against the number and size expected. */
static uint32_t frame_check(const ferry_msg *m, uint64_t expect, uint64_t size,
                            int headers_only, uint64_t *got) {
  struct frame_hdr h;
  const unsigned char *p = (const unsigned char *)m->data;
  *got = UINT64_MAX;
  if (m->len < FRAME_HDR)
    return ACK_BAD_HEADER;
  memcpy(&h, p, sizeof h);
  if (h.magic != DEMO_MAGIC)
    return ACK_BAD_HEADER;
  *got = h.number;
  if (h.number != expect)
    return ACK_ORDER;
  if (h.size != size || m->len - FRAME_HDR != size)
    return ACK_SIZE;
  if (!headers_only && frame_sum(p + FRAME_HDR, size, h.number) != h.checksum)
    return ACK_CHECKSUM;
  return ACK_OK;
}

/* Receives one frame's block from the pool: *M points at it in place. */
static int recv_block(ferry_pool *pool, ferry_channel *in, ferry_msg *m,
                      uint64_t *handle, uint64_t size, int64_t timeout_ns) {
  void *data;
  int rc = ferry_pool_recv(pool, in, handle, &data, NULL, 0, NULL, timeout_ns);
  if (rc != 0)
    return rc;
  m->data = data;
  m->len = (size_t)(FRAME_HDR + size);
  m->seq = 0;
  return 1;
}

static int demo_receiver(const char *fname, const char *aname, uint64_t frames,
                         uint64_t size, const char *pname, int headers_only,
                         int64_t timeout_ns) {
  ferry_channel_opts fo = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel *in = NULL, *out = NULL;
  ferry_pool *pool = NULL;
  ferry_msg msgs[64];
  uint64_t next = 0, per_batch, handle = 0;
  int rc, status = EXIT_FAIL;

  if (pname) {
    rc = ferry_pool_open(&pool, pname, 0, NULL);
    if (rc != 0) {
      cli_fail_line("demo: receiver", pname, rc);
      return EXIT_FAIL;
    }
  }

  fo.seg_flags = FERRY_SEG_PREFAULT;
  rc = ferry_channel_open(&in, fname, 0, FERRY_RECEIVER, &fo);
  if (rc != 0) {
    cli_fail_line("demo: receiver", fname, rc);
    ferry_pool_close(pool);
    return EXIT_FAIL;
  }
  rc = ferry_channel_open(&out, aname, 0, FERRY_SENDER, NULL);
  if (rc != 0) {
    cli_fail_line("demo: receiver", aname, rc);
    ferry_channel_close(in);
    ferry_pool_close(pool);
    return EXIT_FAIL;
  }
  {
    /* Attached to both: tell process 1 to start the clock. */
    struct ack a;
    memset(&a, 0, sizeof a);
    a.status = ACK_READY;
    a.done_ns = proc_now_ns();
    rc = ferry_channel_send(out, &a, sizeof a, timeout_ns);
    if (rc != 0) {
      recv_fail("sending the ready message", rc);
      goto out;
    }
  }
  /* Take at most a quarter of the ring per batch: released space lets
   * process 1 write the next frames while we verify these. */
  per_batch = (ferry_channel_max_msg(in) / 2) / (FRAME_HDR + size + 16);
  if (per_batch < 1)
    per_batch = 1;
  if (per_batch > sizeof msgs / sizeof msgs[0])
    per_batch = sizeof msgs / sizeof msgs[0];

  while (next < frames) {
    int n = pool ? recv_block(pool, in, msgs, &handle, size, timeout_ns)
                 : ferry_channel_peek(in, msgs, (size_t)per_batch, timeout_ns),
        i;
    if (n == FERRY_ECLOSED) {
      fprintf(stderr,
              "ferry: demo: receiver: the stream ended after %llu of %llu "
              "frames\n",
              (unsigned long long)next, (unsigned long long)frames);
      goto out;
    }
    if (n < 0) {
      recv_fail("waiting for a frame", n);
      goto out;
    }
    for (i = 0; i < n; i++, next++) {
      struct ack a;
      memset(&a, 0, sizeof a);
      a.number = next;
      a.status = frame_check(&msgs[i], next, size, headers_only, &a.got);
      a.done_ns = proc_now_ns();
      rc = ferry_channel_send(out, &a, sizeof a, timeout_ns);
      if (rc != 0) {
        recv_fail("sending an acknowledgement", rc);
        goto out;
      }
      if (a.status != ACK_OK)
        goto out; /* process 1 reports it */
    }
    rc = pool ? ferry_pool_release(pool, handle) : ferry_channel_release(in);
    if (rc != 0) {
      recv_fail("releasing frames", rc);
      goto out;
    }
  }
  /* Every frame is in: the stream must end now, with nothing more. */
  rc = pool ? recv_block(pool, in, msgs, &handle, size, timeout_ns)
            : ferry_channel_peek(in, msgs, 1, timeout_ns);
  if (rc >= 0) {
    fprintf(stderr, "ferry: demo: receiver: a frame after the last one\n");
    goto out;
  }
  if (rc != FERRY_ECLOSED) {
    recv_fail("waiting for the end of the stream", rc);
    goto out;
  }
  status = EXIT_OK;
out:
  ferry_channel_close(out);
  ferry_channel_close(in);
  ferry_pool_close(pool);
  return status;
}

/* ------------------------------------------------------------------------ */
/* Process 1: the sender                                                    */

/* Has process 2 exited? Reaps it if so. */
static int child_gone(struct demo *d) {
  if (d->pid > 0 && !d->reaped) {
    int st = proc_wait(d->pid, 0);
    if (st >= 0) {
      d->reaped = 1;
      d->status = st;
    }
  }
  return d->pid <= 0 || d->reaped;
}

static int child_died(struct demo *d) {
  return demo_error("the receiver (process %ld) ended with status %d after "
                    "%llu of %llu frames",
                    d->pid, d->status, (unsigned long long)d->acked,
                    (unsigned long long)d->frames);
}

static int timed_out(struct demo *d, const char *what) {
  char t[64];
  return cli_fail("demo", d->fname, FERRY_ETIMEDOUT,
                  "%s within %s s (%llu of %llu frames acknowledged)", what,
                  cli_fmt_seconds(d->timeout_ns, t, sizeof t),
                  (unsigned long long)d->acked, (unsigned long long)d->frames);
}

static int handle_ack(struct demo *d, const ferry_msg *m) {
  struct ack a;
  if (m->len != sizeof a)
    return demo_error("a malformed acknowledgement (%llu bytes)",
                      (unsigned long long)m->len);
  memcpy(&a, m->data, sizeof a);
  if (a.status == ACK_READY && !d->ready) {
    d->ready = 1;
    return 0;
  }
  if (a.status != ACK_OK) {
    d->corrupt_seen++;
    if (a.status == ACK_ORDER)
      return demo_error("frame %llu %s: the receiver got frame %llu instead",
                        (unsigned long long)a.number, ack_status_str(a.status),
                        (unsigned long long)a.got);
    return demo_error("frame %llu %s (found by the receiver; %llu of %llu "
                      "frames verified)",
                      (unsigned long long)a.number, ack_status_str(a.status),
                      (unsigned long long)d->acked,
                      (unsigned long long)d->frames);
  }
  if (a.number != d->acked || a.number >= d->frames)
    return demo_error("an acknowledgement for frame %llu, expected frame %llu",
                      (unsigned long long)a.number,
                      (unsigned long long)d->acked);
  d->lat[a.number] = a.done_ns - d->sent[a.number];
  d->last_done_ns = a.done_ns;
  d->acked++;
  return 0;
}

/* Handles the acknowledgements that are there; with WAIT, waits (in
 * slices, watching process 2) for at least one. */
static int take_acks(struct demo *d, int wait) {
  int64_t deadline = proc_now_ns() + d->timeout_ns;
  for (;;) {
    ferry_msg msgs[64];
    int n = ferry_channel_peek(d->ch_acks, msgs, 64, wait ? DEMO_SLICE_NS : 0),
        i, rc = 0;
    if (n > 0) {
      for (i = 0; i < n && rc == 0; i++)
        rc = handle_ack(d, &msgs[i]);
      if (rc == 0) {
        rc = ferry_channel_release(d->ch_acks);
        if (rc != 0)
          return cli_fail("demo", d->aname, rc,
                          "cannot release acknowledgements: %s",
                          ferry_strerror(rc));
      }
      return rc;
    }
    if (!wait && n == FERRY_EAGAIN)
      return 0;
    if (n != FERRY_ETIMEDOUT)
      return cli_fail("demo", d->aname, n,
                      "cannot receive acknowledgements: %s", ferry_strerror(n));
    if (child_gone(d)) {
      /* Its last words may be an acknowledgement that says why. */
      n = ferry_channel_peek(d->ch_acks, msgs, 64, 0);
      for (i = 0; i < n; i++) {
        rc = handle_ack(d, &msgs[i]);
        if (rc != 0)
          return rc;
      }
      return child_died(d);
    }
    if (proc_now_ns() >= deadline)
      return timed_out(d, "no acknowledgement");
  }
}

/* Gets room for the next frame: in the ring (reserve) or, with
 * --zero-copy, a block of the pool (*HANDLE); waits in slices, watching
 * process 2 and taking acknowledgements meanwhile. */
static int frame_room(struct demo *d, size_t len, uint64_t *handle,
                      void **buf) {
  int64_t deadline = proc_now_ns() + d->timeout_ns;
  for (;;) {
    int rc = d->zero_copy
                 ? ferry_pool_alloc(d->pool, handle, buf, DEMO_SLICE_NS)
                 : ferry_channel_reserve(d->ch_frames, len, buf, DEMO_SLICE_NS);
    if (rc == 0)
      return 0;
    if (rc != FERRY_ETIMEDOUT)
      return cli_fail("demo", d->zero_copy ? d->pname : d->fname, rc,
                      "cannot %s: %s",
                      d->zero_copy ? "allocate a block" : "reserve a frame",
                      ferry_strerror(rc));
    rc = take_acks(d, 0);
    if (rc != 0)
      return rc;
    if (child_gone(d))
      return child_died(d);
    if (proc_now_ns() >= deadline)
      return timed_out(d,
                       d->zero_copy ? "no free block" : "no room for a frame");
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* The nearest-rank percentile P of the N sorted values V, in us. */
static double pct_us(const int64_t *v, uint64_t n, unsigned p) {
  uint64_t rank = (n * p + 99) / 100;
  if (rank < 1)
    rank = 1;
  return (double)v[rank - 1] / 1000.0;
}

static void report(const struct demo *d, int64_t start_ns) {
  double secs = (double)(d->last_done_ns - start_ns) / 1e9;
  double fps, mbs, p50, p99, pmax;
  char b[32], c[32];
  if (secs <= 0)
    secs = 1e-9;
  fps = (double)d->frames / secs;
  mbs = (double)d->frames * (double)d->size / secs / 1e6;
  qsort(d->lat, (size_t)d->frames, sizeof *d->lat, cmp_i64);
  p50 = pct_us(d->lat, d->frames, 50);
  p99 = pct_us(d->lat, d->frames, 99);
  pmax = (double)d->lat[d->frames - 1] / 1000.0;
  if (d->json) {
    printf("{\"zero_copy\":%s,\"headers_only\":%s,\"pool_blocks\":%llu,",
           d->zero_copy ? "true" : "false", d->headers_only ? "true" : "false",
           (unsigned long long)(d->zero_copy ? d->blocks : 0));
    printf("\"frames\":%llu,\"frame_size\":%llu,\"channel_capacity\":%llu,"
           "\"elapsed_s\":%.6f,\"frames_per_s\":%.1f,\"mb_per_s\":%.1f,"
           "\"latency_p50_us\":%.1f,\"latency_p99_us\":%.1f,"
           "\"latency_max_us\":%.1f,\"verified\":%llu,\"lost\":%llu,"
           "\"corrupt\":%llu}\n",
           (unsigned long long)d->frames, (unsigned long long)d->size,
           (unsigned long long)d->cap, secs, fps, mbs, p50, p99, pmax,
           (unsigned long long)d->acked,
           (unsigned long long)(d->frames - d->acked),
           (unsigned long long)d->corrupt_seen);
    return;
  }
  if (d->zero_copy)
    printf("ferry demo: %llu frames of %s in the pool %s (%llu blocks), "
           "handles through the SPSC channel %s, to a second process%s; "
           "acknowledgements through %s\n",
           (unsigned long long)d->frames, cli_fmt_size(d->size, b, sizeof b),
           d->pname, (unsigned long long)d->blocks, d->fname,
           d->headers_only ? " (headers only)" : "", d->aname);
  else
    printf("ferry demo: %llu frames of %s through the SPSC channel %s (%s "
           "ring) to a second process%s; acknowledgements through %s\n",
           (unsigned long long)d->frames, cli_fmt_size(d->size, b, sizeof b),
           d->fname, cli_fmt_size(d->cap, c, sizeof c),
           d->headers_only ? " (headers only)" : "", d->aname);
  printf("frames:       %llu\n", (unsigned long long)d->frames);
  printf("frame size:   %llu bytes (%s)\n", (unsigned long long)d->size,
         cli_fmt_size(d->size, b, sizeof b));
  if (secs >= 1.0)
    printf("elapsed:      %.3f s\n", secs);
  else
    printf("elapsed:      %.3f ms\n", secs * 1e3);
  printf("frames/s:     %.1f\n", fps);
  printf("MB/s:         %.1f\n", mbs);
  printf("latency p50:  %.1f us\n", p50);
  printf("latency p99:  %.1f us\n", p99);
  printf("verified: %llu/%llu frames%s, %llu lost, %llu corrupt\n",
         (unsigned long long)d->acked, (unsigned long long)d->frames,
         d->headers_only ? " (headers)" : "",
         (unsigned long long)(d->frames - d->acked),
         (unsigned long long)d->corrupt_seen);
}

/* Creates the two channels under fresh names. */
static int create_channels(struct demo *d) {
  ferry_channel_opts fo = FERRY_CHANNEL_OPTS_INIT;
  ferry_channel_opts ao = FERRY_CHANNEL_OPTS_INIT;
  uint64_t need =
      d->zero_copy ? DEMO_HANDLE_CAPACITY : 2 * (FRAME_HDR + d->size + 16);
  int tries, rc = FERRY_EEXIST;
  d->cap = 4096;
  while (d->cap < need)
    d->cap <<= 1;
  fo.kind = FERRY_CHANNEL_SPSC;
  fo.capacity = d->cap;
  fo.max_peers = 2;
  fo.seg_flags = FERRY_SEG_PREFAULT; /* no page faults in the timed run */
  ao.kind = FERRY_CHANNEL_SPSC;
  ao.capacity = DEMO_ACK_CAPACITY;
  ao.max_peers = 2;
  for (tries = 0; tries < 16 && rc == FERRY_EEXIST; tries++) {
    unsigned long long tag =
        ((unsigned long long)proc_now_ns() + (unsigned long long)tries * 7919) &
        0xffffffffffffull;
    snprintf(d->fname, sizeof d->fname, "demo-%llx-frames", tag);
    snprintf(d->aname, sizeof d->aname, "demo-%llx-acks", tag);
    rc = ferry_channel_open(&d->ch_frames, d->fname, FERRY_CREATE | FERRY_EXCL,
                            FERRY_SENDER, &fo);
    if (rc != 0) {
      if (rc != FERRY_EEXIST)
        cli_fail_line("demo", d->fname, rc);
      continue;
    }
    rc = ferry_channel_open(&d->ch_acks, d->aname, FERRY_CREATE | FERRY_EXCL,
                            FERRY_RECEIVER, &ao);
    if (rc == 0 && d->zero_copy) {
      ferry_pool_opts po = FERRY_POOL_OPTS_INIT;
      po.block_size = FRAME_HDR + d->size;
      po.block_count = (uint32_t)d->blocks;
      po.max_peers = 2;
      po.seg_flags = FERRY_SEG_PREFAULT; /* no page faults in the timed run */
      snprintf(d->pname, sizeof d->pname, "demo-%llx-pool", tag);
      rc = ferry_pool_open(&d->pool, d->pname, FERRY_CREATE | FERRY_EXCL, &po);
      if (rc != 0) {
        if (rc != FERRY_EEXIST)
          cli_fail_line("demo", d->pname, rc);
        ferry_channel_close(d->ch_acks);
        d->ch_acks = NULL;
        ferry_segment_unlink(d->aname, 0);
      }
    } else if (rc != 0 && rc != FERRY_EEXIST) {
      cli_fail_line("demo", d->aname, rc);
    }
    if (rc != 0) {
      ferry_channel_close(d->ch_frames);
      d->ch_frames = NULL;
      ferry_segment_unlink(d->fname, 0);
    }
  }
  if (rc == FERRY_EEXIST)
    return demo_error("no free channel name after %d tries (last: %s)", tries,
                      d->fname);
  if (rc != 0)
    return EXIT_FAIL;
  d->created = 1;
  if (!d->zero_copy &&
      ferry_channel_max_msg(d->ch_frames) < FRAME_HDR + d->size)
    return cli_fail("demo", d->fname, FERRY_EMSGSIZE,
                    "a %llu-byte frame does not fit the channel",
                    (unsigned long long)(FRAME_HDR + d->size));
  return 0;
}

static int demo_sender(struct demo *d) {
  char nbuf[32], sbuf[32], tbuf[64];
  const char *args[16];
  int64_t start_ns;
  uint64_t i;
  int rc, k = 0;

  d->pid = -1;
  d->sent = (int64_t *)calloc((size_t)d->frames, sizeof *d->sent);
  d->lat = (int64_t *)calloc((size_t)d->frames, sizeof *d->lat);
  if (!d->sent || !d->lat) {
    rc = demo_error("out of memory");
    goto out;
  }
  rc = create_channels(d);
  if (rc != 0)
    goto out;

  snprintf(nbuf, sizeof nbuf, "%llu", (unsigned long long)d->frames);
  snprintf(sbuf, sizeof sbuf, "%llu", (unsigned long long)d->size);
  cli_fmt_seconds(d->timeout_ns, tbuf, sizeof tbuf);
  args[k++] = "demo";
  args[k++] = "--role";
  args[k++] = "receiver";
  args[k++] = d->fname;
  args[k++] = d->aname;
  args[k++] = nbuf;
  args[k++] = sbuf;
  args[k++] = "--timeout";
  args[k++] = tbuf;
  if (d->zero_copy) {
    args[k++] = "--pool";
    args[k++] = d->pname;
  }
  if (d->headers_only)
    args[k++] = "--headers-only";
  args[k] = NULL;
  d->pid = proc_spawn_self(args);
  if (d->pid <= 0) {
    rc = EXIT_FAIL; /* proc_spawn_self said why */
    goto out;
  }

  /* The clock starts once process 2 is attached and waiting. */
  while (!d->ready) {
    rc = take_acks(d, 1);
    if (rc != 0)
      goto out;
  }
  start_ns = proc_now_ns();
  for (i = 0; i < d->frames; i++) {
    struct frame_hdr h;
    unsigned char *p;
    uint64_t handle = 0;
    void *buf;
    rc = frame_room(d, (size_t)(FRAME_HDR + d->size), &handle, &buf);
    if (rc != 0)
      goto out;
    p = (unsigned char *)buf;
    memset(&h, 0, sizeof h);
    h.magic = DEMO_MAGIC;
    h.number = i;
    h.size = d->size;
    h.checksum = d->headers_only ? 0 : frame_fill(p + FRAME_HDR, d->size, i);
    if (d->corrupt && i == d->corrupt_frame)
      p[FRAME_HDR + d->size / 2] ^= 0x10;
    h.send_ns = proc_now_ns();
    memcpy(p, &h, sizeof h);
    d->sent[i] = h.send_ns;
    if (d->zero_copy) /* the ring has room: acks keep blocks below it */
      rc = ferry_pool_send(d->pool, d->ch_frames, handle, NULL, 0,
                           d->timeout_ns);
    else
      rc = ferry_channel_commit(d->ch_frames, (size_t)(FRAME_HDR + d->size));
    if (rc != 0) {
      rc = cli_fail("demo", d->fname, rc, "cannot commit frame %llu: %s",
                    (unsigned long long)i, ferry_strerror(rc));
      goto out;
    }
    rc = take_acks(d, 0);
    if (rc != 0)
      goto out;
  }
  while (d->acked < d->frames) {
    rc = take_acks(d, 1);
    if (rc != 0)
      goto out;
  }
  /* Every frame verified. End the stream; process 2 then exits 0. */
  rc = ferry_channel_close_send(d->ch_frames);
  if (rc != 0) {
    rc = cli_fail("demo", d->fname, rc, "cannot end the stream: %s",
                  ferry_strerror(rc));
    goto out;
  }
  d->status = proc_wait(d->pid, (d->timeout_ns + 999999) / 1000000);
  if (d->status < 0) {
    rc = timed_out(d, "the receiver did not exit");
    goto out;
  }
  d->reaped = 1;
  if (d->status != 0) {
    rc = demo_error("the receiver (process %ld) exited with status %d", d->pid,
                    d->status);
    goto out;
  }
  report(d, start_ns);
  rc = EXIT_OK;
out:
  if (d->pid > 0 && !d->reaped)
    proc_kill(d->pid);
  if (d->pool)
    ferry_pool_forget(d->pool, d->ch_frames);
  ferry_pool_close(d->pool);
  ferry_channel_close(d->ch_frames);
  ferry_channel_close(d->ch_acks);
  if (d->created) {
    ferry_segment_unlink(d->fname, 0);
    ferry_segment_unlink(d->aname, 0);
    if (d->zero_copy)
      ferry_segment_unlink(d->pname, 0);
  }
  free(d->sent);
  free(d->lat);
  return rc;
}

/* ------------------------------------------------------------------------ */
/* ferry demo                                                               */

int cli_cmd_demo(int argc, char **argv) {
  enum {
    O_FRAMES,
    O_SIZE,
    O_JSON,
    O_TIMEOUT,
    O_CORRUPT,
    O_ROLE,
    O_FRAME_SIZE,
    O_ZERO_COPY,
    O_BLOCKS,
    O_HEADERS_ONLY,
    O_POOL
  };
  static const struct optspec specs[] = {
      {"frames", 1},       {"size", 1},          {"json", 0},
      {"timeout", 1},      {"corrupt-frame", 1}, {"role", 1},
      {"frame-size", 1},   {"zero-copy", 0},     {"blocks", 1},
      {"headers-only", 0}, {"pool", 1},          {NULL, 0}};
  struct demo d;
  struct args a;
  int rc;

  rc = cli_parse_args(argv[0], argc, argv, specs, &a);
  if (rc != 0)
    return rc;
  if (a.help) {
    fputs(cli_demo_usage, stdout);
    return EXIT_OK;
  }
  memset(&d, 0, sizeof d);
  d.timeout_ns = DEMO_TIMEOUT_DEFAULT_NS;
  if (a.value[O_TIMEOUT] &&
      (cli_parse_seconds(a.value[O_TIMEOUT], &d.timeout_ns) != 0 ||
       d.timeout_ns == 0))
    return cli_usage_error(argv[0],
                           "bad timeout '%s': expected seconds above 0, "
                           "e.g. 10 or 0.5",
                           a.value[O_TIMEOUT]);

  /* Process 2: demo --role receiver FRAMES ACKS N SIZE */
  if (a.value[O_ROLE]) {
    uint64_t n, size;
    if (strcmp(a.value[O_ROLE], "receiver") != 0)
      return cli_usage_error(argv[0], "unknown role '%s'", a.value[O_ROLE]);
    if (a.npos != 4 || cli_parse_count(a.pos[2], DEMO_FRAMES_MAX, &n) != 0 ||
        cli_parse_count(a.pos[3], DEMO_SIZE_MAX, &size) != 0)
      return cli_usage_error(argv[0], "the receiver role takes FRAMES ACKS N "
                                      "SIZE");
    return demo_receiver(a.pos[0], a.pos[1], n, size, a.value[O_POOL],
                         a.value[O_HEADERS_ONLY] != NULL, d.timeout_ns);
  }

  if (a.npos > 0)
    return cli_usage_error(argv[0], "unexpected argument '%s'", a.pos[0]);
  d.frames = DEMO_FRAMES_DEFAULT;
  if (a.value[O_FRAMES] &&
      cli_parse_count(a.value[O_FRAMES], DEMO_FRAMES_MAX, &d.frames) != 0)
    return cli_usage_error(argv[0], "bad frame count '%s': expected 1 to %llu",
                           a.value[O_FRAMES], DEMO_FRAMES_MAX);
  d.size = DEMO_SIZE_DEFAULT;
  if (a.value[O_SIZE] && a.value[O_FRAME_SIZE])
    return cli_usage_error(argv[0], "--size and --frame-size are the same");
  if (a.value[O_FRAME_SIZE])
    a.value[O_SIZE] = a.value[O_FRAME_SIZE];
  if (a.value[O_SIZE] &&
      (cli_parse_size(a.value[O_SIZE], &d.size) != 0 || d.size > DEMO_SIZE_MAX))
    return cli_usage_error(argv[0],
                           "bad frame size '%s': expected 1 to 1G bytes, "
                           "with an optional suffix K, M or G",
                           a.value[O_SIZE]);
  if (a.value[O_CORRUPT]) {
    char *end;
    if (a.value[O_CORRUPT][0] < '0' || a.value[O_CORRUPT][0] > '9')
      return cli_usage_error(argv[0], "bad frame number '%s'",
                             a.value[O_CORRUPT]);
    d.corrupt_frame = strtoull(a.value[O_CORRUPT], &end, 10);
    if (*end || d.corrupt_frame >= d.frames)
      return cli_usage_error(
          argv[0], "bad frame number '%s': expected 0 to %llu",
          a.value[O_CORRUPT], (unsigned long long)(d.frames - 1));
    d.corrupt = 1;
  }
  d.zero_copy = a.value[O_ZERO_COPY] != NULL;
  d.headers_only = a.value[O_HEADERS_ONLY] != NULL;
  d.blocks = DEMO_BLOCKS_DEFAULT;
  if (a.value[O_BLOCKS] && !d.zero_copy)
    return cli_usage_error(argv[0], "--blocks needs --zero-copy");
  if (a.value[O_BLOCKS] &&
      cli_parse_count(a.value[O_BLOCKS], 4096, &d.blocks) != 0)
    return cli_usage_error(argv[0], "bad block count '%s': expected 1 to 4096",
                           a.value[O_BLOCKS]);
  if (d.corrupt && d.headers_only)
    return cli_usage_error(argv[0], "--corrupt-frame needs the payload: not "
                                    "with --headers-only");
  d.json = a.value[O_JSON] != NULL;
  return demo_sender(&d);
}
