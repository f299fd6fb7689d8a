/*
 * The segment header: layout version 1.0. This is a file format (file-backed
 * segments persist, and 32-bit and 64-bit processes share segments), so every
 * field has a fixed width and offset, checked below. docs/design.md has the
 * same table; change both together, and bump FERRY_LAYOUT_MINOR for fields
 * added in the reserved tail, FERRY_LAYOUT_MAJOR for anything else.
 *
 * Publication protocol: the creator makes the object (zero-filled), writes
 * creator_pid/start/boot first (so a waiter can tell a crashed creator), then
 * every other field and header_crc, and finally stores state = FERRY_HDR_READY
 * with release ordering. An opener loads state with acquire ordering; while it
 * is 0 the segment is initialising and the opener waits (bounded). Every field
 * is immutable once state is READY: the CRC covers them all.
 */
#ifndef FERRY_HEADER_H
#define FERRY_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "ferry.h"

#define FERRY_LAYOUT_MAJOR 1
#define FERRY_LAYOUT_MINOR 0

#define FERRY_HDR_MAGIC "FERRYSEG"  /* 8 bytes, no NUL stored */
#define FERRY_HDR_READY 0x59444552u /* "REDY" little-endian */
#define FERRY_HDR_SIZE 256u         /* sizeof(struct ferry_hdr), v1.0 */
#define FERRY_HDR_REGION 4096u      /* user data starts here in v1.x */
#define FERRY_HDR_MAX 4096u         /* largest header_size accepted */

struct ferry_hdr {
  uint8_t magic[8];       /*   0  "FERRYSEG" */
  _Atomic uint32_t state; /*   8  0 = initialising, FERRY_HDR_READY */
  uint16_t version_major; /*  12  FERRY_LAYOUT_MAJOR */
  uint16_t version_minor; /*  14  FERRY_LAYOUT_MINOR */
  uint32_t header_size;   /*  16  bytes the CRC covers: 256 in v1.0 */
  uint32_t header_crc;    /*  20  CRC-32C of [0, header_size), state and
                                  header_crc taken as 0 */
  uint64_t total_size;    /*  24  size of the OS object */
  uint64_t data_offset;   /*  32  user data offset (multiple of 64) */
  uint64_t data_size;     /*  40  user data bytes */
  uint32_t kind;          /*  48  FERRY_KIND_* */
  uint32_t payload;       /*  52  FERRY_PAYLOAD_* */
  uint32_t seg_flags;     /*  56  FERRY_SEG_HUGEPAGES, FERRY_SEG_SPARSE */
  uint32_t mode;          /*  60  permission bits asked for */
  uint64_t creator_pid;   /*  64 */
  uint64_t creator_start; /*  72  creator's start time (OS ticks) */
  uint64_t creator_boot;  /*  80  boot id of the creator's boot */
  int64_t created_ns;     /*  88  wall clock, ns since the Unix epoch */
  uint32_t name_len;      /*  96  bytes of name, <= FERRY_NAME_MAX */
  uint32_t reserved0;     /* 100  0 */
  char name[64];          /* 104  NUL-padded ferry name */
  uint8_t reserved[88];   /* 168  0: room for minor versions */
};                        /* 256 */

#define FERRY_HDR_CHECK_(field, off)                                           \
  _Static_assert(offsetof(struct ferry_hdr, field) == (off),                   \
                 "ferry_hdr." #field " must be at offset " #off)
FERRY_HDR_CHECK_(magic, 0);
FERRY_HDR_CHECK_(state, 8);
FERRY_HDR_CHECK_(version_major, 12);
FERRY_HDR_CHECK_(version_minor, 14);
FERRY_HDR_CHECK_(header_size, 16);
FERRY_HDR_CHECK_(header_crc, 20);
FERRY_HDR_CHECK_(total_size, 24);
FERRY_HDR_CHECK_(data_offset, 32);
FERRY_HDR_CHECK_(data_size, 40);
FERRY_HDR_CHECK_(kind, 48);
FERRY_HDR_CHECK_(payload, 52);
FERRY_HDR_CHECK_(seg_flags, 56);
FERRY_HDR_CHECK_(mode, 60);
FERRY_HDR_CHECK_(creator_pid, 64);
FERRY_HDR_CHECK_(creator_start, 72);
FERRY_HDR_CHECK_(creator_boot, 80);
FERRY_HDR_CHECK_(created_ns, 88);
FERRY_HDR_CHECK_(name_len, 96);
FERRY_HDR_CHECK_(reserved0, 100);
FERRY_HDR_CHECK_(name, 104);
FERRY_HDR_CHECK_(reserved, 168);
_Static_assert(sizeof(struct ferry_hdr) == FERRY_HDR_SIZE,
               "ferry_hdr must be 256 bytes");
_Static_assert(FERRY_NAME_MAX < 64, "name field holds FERRY_NAME_MAX + NUL");

/* CRC-32C (Castagnoli) of LEN bytes. */
uint32_t ferry__crc32c(const void *data, size_t len);

/* CRC-32C (Castagnoli) of a header image: bytes [0, len) with the state and
 * header_crc fields taken as zero. */
uint32_t ferry__hdr_crc(const void *hdr, size_t len);

/*
 * Validates a header image. BASE points at AVAIL readable bytes at the start
 * of an object whose real size is OBJ_SIZE. EXPECT_NAME, when not NULL, must
 * equal the header's name. Reads each byte of BASE once (it copies first), so
 * a peer changing the memory meanwhile cannot make it read out of bounds.
 * On success copies the header into *OUT.
 * Returns 0, FERRY_EAGAIN (state is 0: still initialising; *OUT holds the
 * copy so the caller can look at creator_pid), FERRY_EBADHDR, FERRY_EVERSION
 * or FERRY_ESIZE, with a detail message. Pure: no OS calls, fuzzable.
 */
int ferry__hdr_validate(const void *base, uint64_t avail, uint64_t obj_size,
                        const char *expect_name, struct ferry_hdr *out);

#endif
