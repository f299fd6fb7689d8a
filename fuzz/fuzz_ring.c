/*
 * libFuzzer target: ring record parsing (ferry__rec_parse), driven the way a
 * receiver walks a ring (collect() in src/channel.c), round after round.
 *
 * Input (little-endian):
 *   0      capacity exponent: capacity = 2^(12 + b % 5), 4 KiB .. 64 KiB
 *   1      bit 0: 16-byte record headers (broadcast) instead of 8
 *          bit 1: MPSC walk (limit = position + capacity, consumed bytes are
 *                 zeroed, as advance() does), else single-producer (limit =
 *                 the tail)
 *          bits 2-7: messages per collect, minus 1 (1 .. 64)
 *   2..9   head position (u64)
 *   10..13 tail - head (u32, taken modulo 2 * capacity + 1)
 *   14..29 one more direct parse: word (u32), index (u32, modulo capacity,
 *          any alignment), avail (u64)
 *   30..   the ring's bytes, from index 0; the rest of the ring is zero
 *
 * The ring lives in a heap buffer of exactly `capacity` bytes, so
 * AddressSanitizer reports any read of a record header or payload outside it.
 * Every accepted record is checked to lie inside the ring and inside
 * [position, limit], every result is compared with an independent reading of
 * the record format in channel.h, and the walk must end within a bound.
 *
 * Heads are fed as they come, aligned or not: the receiver refuses an
 * unaligned position (FERRY_ECORRUPT) before reading at it, as this walk does.
 * (An earlier library read a record header at an unaligned head, past the
 * ring's end; FERRY_FUZZ_RING_ALIGNED=1 rounds heads down, for comparison.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "ferry.h"
#include "fuzz.h"

#define RING_DATA 30

struct ring {
  uint8_t *mem;
  uint64_t cap, mask, max_msg;
  uint32_t rh;
  int mpsc;
  uint64_t head, tail;
  uint64_t steps, max_steps;
  volatile uint64_t sink; /* payload bytes read, so the reads stay */
};

/* The record format of channel.h, written out independently: a committed
 * word; padding is a header and a multiple of rh bytes; a message is at most
 * max_msg bytes, header and payload rounded up to rh; the record lies in the
 * ring from idx and within the avail bytes published. */
static int ref_parse(uint32_t word, uint64_t idx, uint64_t avail, uint64_t cap,
                     uint32_t rh, uint64_t max_msg, uint64_t *len,
                     uint64_t *size, int *pad) {
  uint64_t l = word & 0x3fffffffu, sz;
  int p = (word >> 30) & 1;
  if (!(word >> 31))
    return 0;
  if (p) {
    if (l % rh != 0)
      return FERRY_ECORRUPT;
    sz = rh + l;
  } else {
    if (l > max_msg)
      return FERRY_ECORRUPT;
    sz = (rh + l + rh - 1) / rh * rh;
  }
  if (idx >= cap || idx + sz > cap || sz > avail) /* no overflow: < 2^34 */
    return FERRY_ECORRUPT;
  *len = l;
  *size = sz;
  *pad = p;
  return 1;
}

/* ferry__rec_parse, checked against ref_parse and the receiver's needs. */
static int parse(struct ring *r, uint32_t word, uint64_t idx, uint64_t avail,
                 uint64_t *len, uint64_t *size, int *pad) {
  uint64_t rlen = 0, rsize = 0;
  int rpad = 0;
  int rc = ferry__rec_parse(word, idx, avail, r->cap, r->rh, r->max_msg, len,
                            size, pad);
  int ref = ref_parse(word, idx, avail, r->cap, r->rh, r->max_msg, &rlen,
                      &rsize, &rpad);
  CHECK(rc == ref);
  CHECK(rc == 0 || rc == 1 || rc == FERRY_ECORRUPT);
  if (rc == 0)
    CHECK(!(word & FERRY_REC_COMMIT));
  if (rc != 1)
    return rc;
  CHECK(*len == rlen && *size == rsize && *pad == rpad);
  /* what the receiver relies on: progress, and a record inside the ring and
   * inside what was published */
  CHECK(*size >= r->rh);
  CHECK(*size % r->rh == 0);
  CHECK(idx < r->cap && *size <= r->cap - idx);
  CHECK(*size <= avail);
  if (*pad) {
    CHECK(*len + r->rh == *size);
  } else {
    CHECK(*len <= r->max_msg);
    CHECK(r->rh + *len <= *size && *size - r->rh - *len < r->rh);
  }
  return rc;
}

/* advance(): MPSC receivers zero what they consumed (the range may wrap). */
static void consume(struct ring *r, uint64_t to) {
  if (r->mpsc && to > r->head) {
    uint64_t a = r->head & r->mask, n = to - r->head;
    CHECK(n <= r->cap);
    if (a + n <= r->cap) {
      memset(r->mem + a, 0, (size_t)n);
    } else {
      memset(r->mem + a, 0, (size_t)(r->cap - a));
      memset(r->mem, 0, (size_t)(n - (r->cap - a)));
    }
  }
  r->head = to;
}

/* One collect(): up to MAX messages from the head; leading padding is
 * consumed. Returns the count or FERRY_ECORRUPT; *END is where it stopped. */
static int collect(struct ring *r, unsigned max, uint64_t *end) {
  uint64_t pos = r->head;
  uint64_t limit = r->mpsc ? pos + r->cap : r->tail;
  unsigned n = 0;
  while (n < max && pos < limit) {
    uint64_t idx = pos & r->mask, len, size;
    uint32_t word;
    int pad, rc;
    CHECK(++r->steps <= r->max_steps); /* the walk terminates */
    if (pos & (r->rh - 1))
      return FERRY_ECORRUPT; /* rec_inspect: checked before reading */
    memcpy(&word, r->mem + idx, sizeof word); /* the record's first word */
    rc = parse(r, word, idx, limit - pos, &len, &size, &pad);
    if (rc == 0) {
      if (n == 0 && r->mpsc && (r->tail < pos || r->tail - pos > r->cap))
        return FERRY_ECORRUPT;
      break;
    }
    if (rc < 0)
      return rc;
    CHECK(pos + size <= limit); /* inside [pos, tail] (MPSC: one ring) */
    if (pad) {
      if (n == 0) {
        consume(r, pos + size);
        pos = r->head;
        if (r->mpsc)
          limit = pos + r->cap;
        continue;
      }
    } else {
      const uint8_t *rec = r->mem + idx;
      uint64_t seq = 0;
      if (r->rh == 16)
        memcpy(&seq, rec + 8, sizeof seq);
      if (len > 0) /* first and last payload byte: ASan checks the span */
        r->sink += seq + rec[r->rh] + rec[r->rh + len - 1];
      n++;
    }
    pos += size;
  }
  CHECK(pos >= r->head);
  if (!r->mpsc)
    CHECK(pos <= r->tail);
  *end = pos;
  return (int)n;
}

static int unaligned_heads(void) {
  static int v = -1;
  if (v < 0) {
    const char *e = getenv("FERRY_FUZZ_RING_ALIGNED");
    v = !(e && *e && *e != '0');
  }
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t hdr[RING_DATA] = {0};
  struct ring r;
  unsigned max, round;
  uint64_t delta;

  memcpy(hdr, data, size < RING_DATA ? size : RING_DATA);
  memset(&r, 0, sizeof r);
  r.cap = 1ull << (12 + hdr[0] % 5);
  r.mask = r.cap - 1;
  r.rh = (hdr[1] & 1u) ? 16u : 8u;
  r.mpsc = (hdr[1] & 2u) != 0;
  max = (hdr[1] >> 2) + 1u;
  r.max_msg = r.cap / 2 - r.rh; /* < 2^30 here */
  r.head = get_le(hdr + 2, 8);
  delta = get_le(hdr + 10, 4) % (2 * r.cap + 1);
  if (r.head > UINT64_MAX - delta)
    r.head -= delta; /* collect() never sees a tail behind the head */
  if (!unaligned_heads())
    r.head &= ~(uint64_t)(r.rh - 1);
  r.tail = r.head + delta;

  /* A direct call, any index and avail: safe whatever the arguments. */
  {
    uint64_t len, sz;
    int pad;
    (void)parse(&r, (uint32_t)get_le(hdr + 14, 4), get_le(hdr + 18, 4) & r.mask,
                get_le(hdr + 22, 8), &len, &sz, &pad);
  }

  r.mem = (uint8_t *)calloc(1, (size_t)r.cap);
  if (!r.mem)
    return 0;
  if (size > RING_DATA)
    memcpy(r.mem, data + RING_DATA,
           size - RING_DATA < r.cap ? size - RING_DATA : (size_t)r.cap);

  /* Records are at least rh bytes: a walk covers at most tail - head bytes
   * (MPSC: a ring, then it meets zeroed bytes), plus one step per round. */
  r.max_steps = (delta > r.cap ? delta : r.cap) / r.rh + 2 * 64 + 2;
  for (round = 0; round < 64; round++) {
    uint64_t end;
    int n = collect(&r, max, &end);
    if (n <= 0)
      break;
    consume(&r, end); /* release */
  }
  free(r.mem);
  return 0;
}
