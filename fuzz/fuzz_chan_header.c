/*
 * libFuzzer target: channel header validation (ferry__chan_validate).
 *
 * Input: LINE [DATA_SIZE [FLAGS]]. LINE is the channel header's immutable
 * first cache line (64 bytes; a shorter input is zero-padded), DATA_SIZE the
 * segment's user-data size (u64, little-endian; when absent, the size the
 * line asks for, ring_offset + capacity), FLAGS bit 0: recompute the line's
 * CRC first, so mutated lines get past the checksum.
 *
 * channel.c copies only line 0 out of shared memory before validating (the
 * rest of its copy is uninitialised), so the header is passed in a heap
 * buffer whose bytes after line 0 are poisoned: AddressSanitizer reports a
 * read of any other field. An accepted header is checked against the layout
 * rules of channel.h (abort on violation: a validator bug).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "channel.h"
#include "error.h"
#include "ferry.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ferry_chan_hdr *h;
  uint8_t *line;
  uint64_t data_size, cap, rec_max, rh, len, rsize;
  uint32_t u32;
  unsigned flags = size > 72 ? data[72] : 0;
  int rc, pad;

  h = (struct ferry_chan_hdr *)calloc(1, sizeof *h);
  if (!h)
    return 0;
  line = (uint8_t *)h;
  memcpy(line, data, size < 64 ? size : 64);
  ASAN_POISON_MEMORY_REGION(line + 64, sizeof *h - 64);
  if (flags & 1u) {
    uint32_t crc = ferry__chan_crc(h); /* reads line 0 only */
    memcpy(line + 52, &crc, 4);
  }
  if (size >= 72) {
    data_size = get_le(data + 64, 8);
  } else {
    uint64_t c;
    memcpy(&c, line + 16, 8);
    memcpy(&u32, line + 48, 4);
    data_size = c + u32; /* may wrap: then it is just another size */
  }

  ferry__err_clear();
  rc = ferry__chan_validate(h, data_size);
  CHECK(rc == 0 || rc == FERRY_EBADHDR || rc == FERRY_EVERSION ||
        rc == FERRY_ESIZE);
  if (rc != 0) {
    CHECK(ferry_errmsg()[0] != '\0');
    goto out;
  }

  /* Accepted: everything a channel handle derives from line 0 is sane. */
  CHECK(memcmp(h->magic, FERRY_CHAN_MAGIC, 8) == 0);
  CHECK(h->version == FERRY_CHAN_VERSION);
  CHECK(ferry__chan_crc(h) == h->crc);
  CHECK(h->kind >= FERRY_CHANNEL_SPSC && h->kind <= FERRY_CHANNEL_BROADCAST);
  CHECK((h->flags & ~(uint32_t)FERRY_CHANNEL_OVERRUN) == 0);
  if (h->flags & FERRY_CHANNEL_OVERRUN)
    CHECK(h->kind == FERRY_CHANNEL_BROADCAST);
  cap = h->capacity;
  CHECK(cap >= FERRY_CHAN_CAP_MIN && cap <= FERRY_CHAN_CAP_MAX);
  CHECK((cap & (cap - 1)) == 0);
  rh = h->rec_hdr;
  CHECK(rh == (h->kind == FERRY_CHANNEL_BROADCAST ? 16u : 8u));
  CHECK(h->max_msg == (cap / 2 - rh < FERRY_REC_LEN_MASK ? cap / 2 - rh
                                                         : FERRY_REC_LEN_MASK));
  CHECK(h->max_msg <= FERRY_REC_LEN_MASK);
  /* The largest record, plus the padding that may precede it, fits in an
   * empty ring, and that padding's length fits in a record word. */
  rec_max = (rh + h->max_msg + rh - 1) & ~(rh - 1);
  CHECK(rec_max <= cap / 2);
  CHECK(rec_max - 2 * rh <= FERRY_REC_LEN_MASK);
  CHECK(h->max_peers >= 2 && h->max_peers <= FERRY_CHANNEL_PEERS_MAX);
  CHECK(h->peers_offset == FERRY_CHAN_HDR_SIZE);
  CHECK(h->ring_offset % FERRY_CHAN_RING_ALIGN == 0);
  CHECK((uint64_t)h->ring_offset >=
        (uint64_t)h->peers_offset +
            (uint64_t)h->max_peers * FERRY_CHAN_PEER_SIZE);
  CHECK((uint64_t)h->ring_offset + cap <= data_size);

  /* The record parser agrees: the largest message at the ring's start, and
   * the largest padding at its end, are both well-formed. */
  CHECK(ferry__rec_parse(FERRY_REC_COMMIT | (uint32_t)h->max_msg, 0, cap, cap,
                         (uint32_t)rh, h->max_msg, &len, &rsize, &pad) == 1);
  CHECK(!pad && len == h->max_msg && rsize == rec_max);
  CHECK(ferry__rec_parse(FERRY_REC_COMMIT | FERRY_REC_PAD |
                             (uint32_t)(rec_max - 2 * rh),
                         cap - (rec_max - rh), rec_max - rh, cap, (uint32_t)rh,
                         h->max_msg, &len, &rsize, &pad) == 1);
  CHECK(pad && rsize == rec_max - rh);

out:
  ASAN_UNPOISON_MEMORY_REGION(line + 64, sizeof *h - 64);
  free(h);
  return 0;
}
