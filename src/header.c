/* Segment header: checksum and validation (pure functions, fuzzable). */
#include "header.h"

#include <string.h>

#include "error.h"

uint32_t ferry__crc32c(const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  uint32_t crc = 0xffffffffu;
  size_t i;
  for (i = 0; i < len; i++) {
    int k;
    crc ^= p[i];
    for (k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

uint32_t ferry__hdr_crc(const void *hdr, size_t len) {
  uint8_t img[FERRY_HDR_MAX];
  if (len > sizeof img)
    len = sizeof img;
  memcpy(img, hdr, len);
  /* state (8..11) and header_crc (20..23) count as zero */
  if (len >= 12)
    memset(img + 8, 0, 4);
  if (len >= 24)
    memset(img + 20, 0, 4);
  return ferry__crc32c(img, len);
}

static int name_char_ok(char c, int first) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9'))
    return 1;
  return !first && (c == '.' || c == '_' || c == '-');
}

/* 0 if S (N bytes, no NUL needed) is a valid name, else the bad index + 1. */
static size_t name_bad_at(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!name_char_ok(s[i], i == 0))
      return i + 1;
  return 0;
}

int ferry_name_check(const char *name) {
  size_t n, bad;
  if (name == NULL)
    return ferry__err(FERRY_EINVAL, "segment name is NULL");
  n = strlen(name);
  if (n == 0)
    return ferry__err(FERRY_EINVAL, "segment name is empty");
  if (n > FERRY_NAME_MAX)
    return ferry__err(FERRY_EINVAL,
                      "segment name is %zu characters long; the limit is %d", n,
                      FERRY_NAME_MAX);
  bad = name_bad_at(name, n);
  if (bad)
    return ferry__err(
        FERRY_EINVAL,
        "segment name '%s': character %zu ('%c') is not allowed; "
        "use letters, digits, '.', '_' and '-', starting with a "
        "letter or digit (a path needs FERRY_FILE)",
        name, bad,
        (name[bad - 1] >= 32 && name[bad - 1] < 127) ? name[bad - 1] : '?');
  return 0;
}

int ferry__hdr_validate(const void *base, uint64_t avail, uint64_t obj_size,
                        const char *expect_name, struct ferry_hdr *out) {
  uint8_t img[FERRY_HDR_MAX];
  struct ferry_hdr h;
  uint32_t crc;
  size_t nlen;

  if (avail < FERRY_HDR_SIZE || obj_size < FERRY_HDR_SIZE)
    return ferry__err(FERRY_ESIZE,
                      "object is %llu bytes, smaller than a ferry header (%u)",
                      (unsigned long long)obj_size, FERRY_HDR_SIZE);
  /* One copy of the shared bytes; everything below reads the copy. */
  memcpy(&h, base, sizeof h);
  *out = h;
  if (memcmp(h.magic, FERRY_HDR_MAGIC, 8) != 0) {
    if (h.state == 0 && memcmp(h.magic, "\0\0\0\0\0\0\0\0", 8) == 0)
      return FERRY_EAGAIN; /* zero-filled: not yet initialised */
    return ferry__err(FERRY_EBADHDR,
                      "not a ferry segment: the magic number is wrong");
  }
  if (h.state == 0)
    return FERRY_EAGAIN;
  if (h.state != FERRY_HDR_READY)
    return ferry__err(FERRY_EBADHDR, "header state word is 0x%08x, not ready",
                      (unsigned)h.state);
  if (h.version_major != FERRY_LAYOUT_MAJOR)
    return ferry__err(FERRY_EVERSION,
                      "segment layout version %u.%u; this library (%s) reads "
                      "%u.x",
                      (unsigned)h.version_major, (unsigned)h.version_minor,
                      FERRY_VERSION_STRING, (unsigned)FERRY_LAYOUT_MAJOR);
  if (h.header_size < FERRY_HDR_SIZE || h.header_size > FERRY_HDR_MAX ||
      h.header_size % 8 != 0)
    return ferry__err(FERRY_EBADHDR, "header size %u is out of range",
                      (unsigned)h.header_size);
  if (h.header_size > avail || h.header_size > obj_size)
    return ferry__err(FERRY_ESIZE,
                      "header size %u exceeds the object (%llu bytes)",
                      (unsigned)h.header_size, (unsigned long long)obj_size);
  memcpy(img, base, h.header_size);
  memcpy(img, &h, sizeof h); /* checksum the same bytes we validate */
  crc = ferry__hdr_crc(img, h.header_size);
  if (crc != h.header_crc)
    return ferry__err(FERRY_EBADHDR,
                      "header checksum mismatch (stored 0x%08x, computed "
                      "0x%08x): the header is corrupt",
                      (unsigned)h.header_crc, (unsigned)crc);
  if (h.kind < FERRY_KIND_NAMED || h.kind > FERRY_KIND_FILE)
    return ferry__err(FERRY_EBADHDR, "unknown segment kind %u",
                      (unsigned)h.kind);
  if (h.payload > FERRY_PAYLOAD_POOL)
    return ferry__err(FERRY_EBADHDR, "unknown payload kind %u",
                      (unsigned)h.payload);
  if (h.total_size != obj_size)
    return ferry__err(FERRY_ESIZE,
                      "the header says %llu bytes but the object is %llu bytes "
                      "(truncated or grown by someone else?)",
                      (unsigned long long)h.total_size,
                      (unsigned long long)obj_size);
  if (h.data_offset < h.header_size || h.data_offset % 64 != 0 ||
      h.data_offset > h.total_size)
    return ferry__err(FERRY_EBADHDR, "user-data offset %llu is out of range",
                      (unsigned long long)h.data_offset);
  if (h.data_size > h.total_size - h.data_offset)
    return ferry__err(FERRY_ESIZE,
                      "user data (%llu bytes at %llu) overruns the %llu-byte "
                      "object",
                      (unsigned long long)h.data_size,
                      (unsigned long long)h.data_offset,
                      (unsigned long long)h.total_size);
  if (h.name_len > FERRY_NAME_MAX || h.name[h.name_len] != '\0')
    return ferry__err(FERRY_EBADHDR, "header name length %u is invalid",
                      (unsigned)h.name_len);
  nlen = strlen(h.name);
  if (nlen != h.name_len || (nlen > 0 && name_bad_at(h.name, nlen)))
    return ferry__err(FERRY_EBADHDR, "header name is not a valid ferry name");
  if (h.kind == FERRY_KIND_NAMED && nlen == 0)
    return ferry__err(FERRY_EBADHDR, "named segment without a name");
  if (expect_name && strcmp(expect_name, h.name) != 0)
    return ferry__err(FERRY_EBADHDR,
                      "header names the segment '%s', expected '%s'", h.name,
                      expect_name);
  return 0;
}
