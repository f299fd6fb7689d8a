/*
 * libFuzzer target: segment header validation (ferry__hdr_validate).
 *
 * Input: IMAGE [FLAGS OBJ_SIZE]. With 9 or more bytes, the last 9 are a
 * control trailer: FLAGS (1 byte) and OBJ_SIZE (u64, little-endian); IMAGE is
 * the rest. Shorter inputs are all image. IMAGE is copied into a heap buffer
 * of exactly its size and passed with avail = its size, so AddressSanitizer
 * reports any read past what the caller said is readable.
 *
 *   FLAGS bit 0     obj_size = OBJ_SIZE (else obj_size = avail, as
 *                   segment.c calls it: the whole object is mapped)
 *   FLAGS bits 1-2  expect_name: 0 NULL, 1 the header's own name (read
 *                   bounded from the image), 2 "cam", 3 "" (empty)
 *   FLAGS bit 3     recompute header_crc before the call (when header_size is
 *                   readable), so mutated headers get past the checksum
 *
 * Besides "no crash, no overread", every result is checked against what the
 * function promises: an accepted header is internally consistent, and the
 * copy in *out is byte for byte the image. A violation aborts: that is a bug
 * in the validator.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ferry.h"
#include "fuzz.h"
#include "header.h"

static int name_char_ok(char c, int first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return !first && (c == '.' || c == '_' || c == '-');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t img_len = size;
  unsigned flags = 0;
  uint64_t obj_size, avail;
  uint8_t *img;
  char own_name[64];
  const char *expect = NULL;
  struct ferry_hdr out;
  int rc;

  if (size >= 9) {
    img_len = size - 9;
    flags = data[img_len];
    obj_size = get_le(data + img_len + 1, 8);
  }
  avail = img_len;
  if (!(flags & 1u))
    obj_size = avail;

  img = (uint8_t *)malloc(img_len ? img_len : 1);
  if (!img)
    return 0;
  memcpy(img, data, img_len);

  if ((flags & 8u) && img_len >= 24) {
    uint32_t hs;
    memcpy(&hs, img + 16, 4);
    if (hs <= img_len && hs <= FERRY_HDR_MAX) {
      uint32_t crc = ferry__hdr_crc(img, hs);
      memcpy(img + 20, &crc, 4);
    }
  }

  switch ((flags >> 1) & 3u) {
  case 1: { /* the header's own name, however long, bounded to the field */
    size_t i = 0;
    if (img_len >= 168)
      for (; i < 63 && img[104 + i]; i++)
        own_name[i] = (char)img[104 + i];
    own_name[i] = '\0';
    expect = own_name;
    break;
  }
  case 2:
    expect = "cam";
    break;
  case 3:
    expect = "";
    break;
  default:
    break;
  }

  memset(&out, 0xa5, sizeof out);
  ferry__err_clear();
  rc = ferry__hdr_validate(img, avail, obj_size, expect, &out);

  CHECK(rc == 0 || rc == FERRY_EAGAIN || rc == FERRY_EBADHDR ||
        rc == FERRY_EVERSION || rc == FERRY_ESIZE);
  if (avail < FERRY_HDR_SIZE || obj_size < FERRY_HDR_SIZE)
    CHECK(rc == FERRY_ESIZE);
  if (avail >= FERRY_HDR_SIZE && obj_size >= FERRY_HDR_SIZE) {
    /* every outcome past the size check copied the header out */
    CHECK(memcmp(&out, img, sizeof out) == 0);
  }
  if (rc == FERRY_EAGAIN) {
    uint32_t state;
    memcpy(&state, img + 8, 4);
    CHECK(state == 0);
  }
  if (rc == 0) {
    size_t i, n;
    CHECK(memcmp(out.magic, FERRY_HDR_MAGIC, 8) == 0);
    CHECK(out.state == FERRY_HDR_READY);
    CHECK(out.version_major == FERRY_LAYOUT_MAJOR);
    CHECK(out.header_size >= FERRY_HDR_SIZE);
    CHECK(out.header_size <= FERRY_HDR_MAX);
    CHECK(out.header_size % 8 == 0);
    CHECK(out.header_size <= avail);
    CHECK(out.header_size <= obj_size);
    CHECK(ferry__hdr_crc(img, out.header_size) == out.header_crc);
    CHECK(out.kind >= FERRY_KIND_NAMED && out.kind <= FERRY_KIND_FILE);
    CHECK(out.payload <= FERRY_PAYLOAD_POOL);
    CHECK(out.total_size == obj_size);
    CHECK(out.data_offset >= out.header_size);
    CHECK(out.data_offset % 64 == 0);
    CHECK(out.data_offset <= out.total_size);
    CHECK(out.data_size <= out.total_size - out.data_offset);
    CHECK(out.data_offset + out.data_size <= out.total_size); /* no wrap */
    CHECK(out.name_len <= FERRY_NAME_MAX);
    CHECK(out.name[out.name_len] == '\0');
    n = strlen(out.name);
    CHECK(n == out.name_len);
    for (i = 0; i < n; i++)
      CHECK(name_char_ok(out.name[i], i == 0));
    if (n > 0)
      CHECK(ferry_name_check(out.name) == 0); /* agrees with the public check */
    if (out.kind == FERRY_KIND_NAMED)
      CHECK(n > 0);
    if (expect)
      CHECK(strcmp(expect, out.name) == 0);
  }
  if (rc != 0 && rc != FERRY_EAGAIN)
    CHECK(ferry_errmsg()[0] != '\0'); /* every refusal says why */

  free(img);
  return 0;
}
