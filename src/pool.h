/*
 * Pool layout, version 1. It sits at the segment's user-data offset
 * (payload FERRY_PAYLOAD_POOL). Like the segment header it is a file format:
 * fixed widths, asserted offsets, the same for 32- and 64-bit processes;
 * docs/design.md has the same table.
 *
 *   [pool header: 4 cache lines] [peer table: max_peers x 64]
 *   [block words: block_count x 8, from a 64-byte boundary]
 *   [blocks: block_count x block_stride, from a 4096-byte boundary]
 *
 * One 64-bit word per block holds everything that decides who may use it:
 *
 *   bits 40..63  generation (24 bits): bumped by every allocation, never 0
 *                once the block has been allocated
 *   bits  0..39  holder mask: bit i set = peer slot i holds at least one
 *                reference to the block (a process counts its own references
 *                privately; the bit stands for all of them)
 *
 * A block is free when its mask is 0. Every transition is one CAS on that
 * word: allocate (mask 0 -> my bit, generation + 1), take a reference
 * (generation unchanged and mask != 0 -> mask | my bit), drop the last
 * reference (mask & ~my bit), reclaim a dead peer's (mask & ~its bit). So a
 * process that dies between any two instructions leaves every word either
 * before or after its step: a block is never half-allocated, never handed
 * out twice, and what a dead peer held is exactly its bit.
 *
 * Handles are 64-bit: tag (16, the pool's, from its header) << 48 |
 * generation (24) << 24 | block index (24).
 */
#ifndef FERRY_POOL_H
#define FERRY_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "ferry.h"
#include "sync.h"

#define FERRY_POOL_MAGIC "FERRYPOL"
#define FERRY_POOL_VERSION 1u
#define FERRY_POOL_HDR_SIZE 256u
#define FERRY_POOL_PEER_SIZE 64u
#define FERRY_POOL_BLOCK_ALIGN                                                 \
  4096u                            /* blocks of 4 KiB or more: page-aligned    \
                                    */
#define FERRY_POOL_SMALL_ALIGN 64u /* smaller blocks: cache-line aligned */
#define FERRY_POOL_PEERS_DEFAULT 16u
/* The largest pool, in bytes of blocks: far beyond any real use, small
 * enough that offsets never overflow. */
#define FERRY_POOL_BYTES_MAX (UINT64_C(1) << 46)

/* Block word and handle fields. */
#define FERRY_POOL_MASK_BITS 40
#define FERRY_POOL_MASK ((UINT64_C(1) << FERRY_POOL_MASK_BITS) - 1)
#define FERRY_POOL_GEN_MAX 0xffffffu
#define FERRY_POOL_INDEX_BITS 24
#define FERRY_POOL_TAG_MAX 0xffffu

_Static_assert(FERRY_POOL_PEERS_MAX <= FERRY_POOL_MASK_BITS,
               "one mask bit per peer slot");
_Static_assert(FERRY_POOL_BLOCKS_MAX == (1u << FERRY_POOL_INDEX_BITS),
               "index field width");

static inline uint32_t ferry__pool_word_gen(uint64_t w) {
  return (uint32_t)(w >> FERRY_POOL_MASK_BITS);
}
static inline uint64_t ferry__pool_word(uint32_t gen, uint64_t mask) {
  return (uint64_t)gen << FERRY_POOL_MASK_BITS | (mask & FERRY_POOL_MASK);
}
static inline uint64_t ferry__pool_handle(uint32_t tag, uint32_t gen,
                                          uint32_t index) {
  return (uint64_t)tag << 48 | (uint64_t)gen << FERRY_POOL_INDEX_BITS | index;
}

struct ferry_pool_hdr {
  /* line 0: immutable after creation, covered by crc */
  uint8_t magic[8];       /*   0 "FERRYPOL" */
  uint32_t version;       /*   8 FERRY_POOL_VERSION */
  uint32_t max_peers;     /*  12 1..FERRY_POOL_PEERS_MAX */
  uint64_t block_size;    /*  16 bytes a block holds, >= 1 */
  uint64_t block_stride;  /*  24 block_size rounded up (see pool_stride) */
  uint32_t block_count;   /*  32 1..FERRY_POOL_BLOCKS_MAX */
  uint32_t tag;           /*  36 handle tag, 1..0xffff */
  uint32_t peers_offset;  /*  40 FERRY_POOL_HDR_SIZE */
  uint32_t words_offset;  /*  44 after the peer table, 64-aligned */
  uint64_t blocks_offset; /*  48 after the words, 4096-aligned */
  uint32_t reserved0;     /*  56 0 */
  uint32_t crc;           /*  60 CRC-32C of bytes 0..63, this field as 0 */
  /* line 1: totals */
  _Atomic uint32_t next;      /*  64 allocation hint: where to look first */
  uint32_t reserved1a;        /*  68 */
  _Atomic uint64_t allocs;    /*  72 allocations by departed peers */
  _Atomic uint64_t reclaimed; /*  80 references dropped for dead peers */
  _Atomic uint64_t retired;   /*  88 dead peers whose slots were freed */
  uint8_t reserved1[32];      /*  96 */
  /* line 2: allocators wait here for a free block */
  struct ferry__waitq wq; /* 128 */
  uint8_t reserved2[56];  /* 136 */
  uint8_t reserved3[64];  /* 192 */
};                        /* 256 */

/* Peer slot state word: FERRY_PEER_* (src/channel.h) in bits 0..7; while
 * RETIRING, bits 8..31 count the processes sweeping the slot's references. */
#define FERRY_POOL_ST_MASK 0xffu
#define FERRY_POOL_SWEEPER (1u << 8)

struct ferry_pool_slot {
  _Atomic uint32_t state;  /*  0 FERRY_PEER_* | sweepers << 8 */
  uint32_t reserved0;      /*  4 */
  _Atomic uint64_t pid;    /*  8 */
  _Atomic uint64_t start;  /* 16 process start time (liveness) */
  _Atomic uint64_t boot;   /* 24 */
  _Atomic uint64_t allocs; /* 32 allocations through this slot */
  uint8_t reserved[24];    /* 40 */
};                         /* 64 */

#define FERRY_POOL_CHECK_(field, off)                                          \
  _Static_assert(offsetof(struct ferry_pool_hdr, field) == (off),              \
                 "ferry_pool_hdr." #field " must be at offset " #off)
FERRY_POOL_CHECK_(version, 8);
FERRY_POOL_CHECK_(max_peers, 12);
FERRY_POOL_CHECK_(block_size, 16);
FERRY_POOL_CHECK_(block_stride, 24);
FERRY_POOL_CHECK_(block_count, 32);
FERRY_POOL_CHECK_(tag, 36);
FERRY_POOL_CHECK_(peers_offset, 40);
FERRY_POOL_CHECK_(words_offset, 44);
FERRY_POOL_CHECK_(blocks_offset, 48);
FERRY_POOL_CHECK_(crc, 60);
FERRY_POOL_CHECK_(next, 64);
FERRY_POOL_CHECK_(allocs, 72);
FERRY_POOL_CHECK_(reclaimed, 80);
FERRY_POOL_CHECK_(retired, 88);
FERRY_POOL_CHECK_(wq, 128);
_Static_assert(sizeof(struct ferry_pool_hdr) == FERRY_POOL_HDR_SIZE,
               "pool header is 256 bytes");
_Static_assert(sizeof(struct ferry_pool_slot) == FERRY_POOL_PEER_SIZE,
               "pool peer slot is 64 bytes");
_Static_assert(offsetof(struct ferry_pool_slot, pid) == 8 &&
                   offsetof(struct ferry_pool_slot, start) == 16 &&
                   offsetof(struct ferry_pool_slot, boot) == 24 &&
                   offsetof(struct ferry_pool_slot, allocs) == 32,
               "pool peer slot offsets");

/* The stride between blocks of BLOCK_SIZE bytes. */
static inline uint64_t ferry__pool_stride(uint64_t block_size) {
  uint64_t a = block_size >= FERRY_POOL_BLOCK_ALIGN ? FERRY_POOL_BLOCK_ALIGN
                                                    : FERRY_POOL_SMALL_ALIGN;
  return (block_size + a - 1) / a * a;
}

/* Where the block words and the blocks start. */
static inline uint32_t ferry__pool_words_offset(uint32_t max_peers) {
  return FERRY_POOL_HDR_SIZE + max_peers * FERRY_POOL_PEER_SIZE;
}
static inline uint64_t ferry__pool_blocks_offset(uint32_t max_peers,
                                                 uint32_t count) {
  uint64_t end = ferry__pool_words_offset(max_peers) + (uint64_t)count * 8;
  return (end + FERRY_POOL_BLOCK_ALIGN - 1) / FERRY_POOL_BLOCK_ALIGN *
         FERRY_POOL_BLOCK_ALIGN;
}

/* CRC of the immutable line. */
uint32_t ferry__pool_crc(const struct ferry_pool_hdr *h);

/* Validates the immutable line of a pool header copied out of shared memory,
 * against the segment's user-data size. FERRY_EBADHDR / FERRY_EVERSION /
 * FERRY_ESIZE with a message when anything is off. Pure: fuzzable. */
int ferry__pool_validate(const struct ferry_pool_hdr *h, uint64_t data_size);

/* Splits handle H of a pool with handle tag TAG and COUNT blocks into its
 * block *INDEX and *GEN. FERRY_ECORRUPT when it cannot name a block of this
 * pool (wrong tag, generation 0, index out of range). Pure: fuzzable. */
int ferry__pool_handle_parse(uint64_t h, uint32_t tag, uint32_t count,
                             uint32_t *index, uint32_t *gen);

#endif
