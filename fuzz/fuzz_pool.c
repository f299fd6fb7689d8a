/*
 * libFuzzer target: pool header validation (ferry__pool_validate) and
 * handle parsing (ferry__pool_handle_parse).
 *
 * Input: LINE [DATA_SIZE [FLAGS [HANDLE...]]]. LINE is the pool header's
 * immutable first cache line (64 bytes; shorter input is zero-padded),
 * DATA_SIZE the segment's user-data size (u64, little-endian; when absent,
 * the size the line asks for), FLAGS bit 0: recompute the line's CRC first,
 * so mutated lines get past the checksum. The HANDLEs (u64 each) are parsed
 * against the line's tag and block count, accepted or not.
 *
 * pool.c copies only line 0 out of shared memory before validating, so the
 * header is passed in a heap buffer whose bytes after line 0 are poisoned:
 * AddressSanitizer reports a read of any other field. An accepted header
 * is checked against the layout rules of pool.h, an accepted handle against
 * the handle format (abort on violation: a validator bug).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "error.h"
#include "ferry.h"
#include "fuzz.h"
#include "pool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct ferry_pool_hdr *h;
  uint8_t *line;
  uint64_t data_size, end;
  unsigned flags = size > 72 ? data[72] : 0;
  size_t off;
  int rc;

  h = (struct ferry_pool_hdr *)calloc(1, sizeof *h);
  if (!h)
    return 0;
  line = (uint8_t *)h;
  memcpy(line, data, size < 64 ? size : 64);
  ASAN_POISON_MEMORY_REGION(line + 64, sizeof *h - 64);
  if (flags & 1u) {
    uint32_t crc = ferry__pool_crc(h); /* reads line 0 only */
    memcpy(line + 60, &crc, 4);
  }
  if (size >= 72) {
    data_size = get_le(data + 64, 8);
  } else {
    uint64_t stride, blocks;
    uint32_t count;
    memcpy(&stride, line + 24, 8);
    memcpy(&count, line + 32, 4);
    memcpy(&blocks, line + 48, 8);
    data_size = blocks + stride * count; /* may wrap: just another size */
  }

  ferry__err_clear();
  rc = ferry__pool_validate(h, data_size);
  CHECK(rc == 0 || rc == FERRY_EBADHDR || rc == FERRY_EVERSION ||
        rc == FERRY_ESIZE);
  if (rc != 0) {
    CHECK(ferry_errmsg()[0] != '\0');
  } else {
    /* Accepted: everything a pool handle derives from line 0 is sane. */
    CHECK(memcmp(h->magic, FERRY_POOL_MAGIC, 8) == 0);
    CHECK(h->version == FERRY_POOL_VERSION);
    CHECK(ferry__pool_crc(h) == h->crc);
    CHECK(h->max_peers >= 1 && h->max_peers <= FERRY_POOL_PEERS_MAX);
    CHECK(h->block_count >= 1 && h->block_count <= FERRY_POOL_BLOCKS_MAX);
    CHECK(h->tag >= 1 && h->tag <= FERRY_POOL_TAG_MAX);
    CHECK(h->block_size >= 1 && h->block_stride >= h->block_size);
    CHECK(h->block_stride % 64 == 0);
    CHECK(h->peers_offset == FERRY_POOL_HDR_SIZE);
    CHECK(h->words_offset >=
          h->peers_offset + h->max_peers * FERRY_POOL_PEER_SIZE);
    CHECK(h->words_offset % 8 == 0);
    CHECK(h->blocks_offset >= h->words_offset + (uint64_t)h->block_count * 8);
    CHECK(h->blocks_offset % FERRY_POOL_BLOCK_ALIGN == 0);
    end = h->blocks_offset + h->block_stride * h->block_count;
    CHECK(end >= h->blocks_offset && end <= data_size);
  }

  /* Handles, against this line's tag and count whatever the verdict. */
  for (off = 73; off + 8 <= size; off += 8) {
    uint64_t hv = get_le(data + off, 8);
    uint32_t index = 0, gen = 0;
    rc = ferry__pool_handle_parse(hv, h->tag, h->block_count, &index, &gen);
    CHECK(rc == 0 || rc == FERRY_ECORRUPT);
    if (rc != 0)
      continue;
    CHECK(index < h->block_count);
    CHECK(gen >= 1 && gen <= FERRY_POOL_GEN_MAX);
    CHECK((hv >> 48) == h->tag);
    CHECK(ferry__pool_handle(h->tag, gen, index) == hv);
  }
  ASAN_UNPOISON_MEMORY_REGION(line + 64, sizeof *h - 64);
  free(h);
  return 0;
}
