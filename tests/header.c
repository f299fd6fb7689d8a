/* Description: the segment header is validated before use: every field's
 * corruption, truncation, foreign objects and random bytes give
 * FERRY_EBADHDR / FERRY_EVERSION / FERRY_ESIZE with a message, never a crash,
 * both through ferry__hdr_validate() and through a real open of a corrupted
 * object in /dev/shm. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "header.h"

#define SEG_DATA 1000u

/* Deterministic PRNG: the same seed gives the same run, so a failure is
 * reproducible and the loops below cannot be flaky. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
  uint64_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return rng_state = x;
}

static int is_header_error(int rc) {
  return rc == FERRY_EBADHDR || rc == FERRY_EVERSION || rc == FERRY_ESIZE;
}

/* A valid image of a whole (small) segment, made by the library itself. */
static uint8_t *valid_image(const char *name, uint64_t *size) {
  ferry_segment *s;
  ferry_segment_info info;
  uint8_t *img;
  ASSERT_OK(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, SEG_DATA, NULL));
  ASSERT_OK(ferry_segment_get_info(s, &info, sizeof info));
  img = (uint8_t *)malloc(info.total_size);
  ASSERT_TRUE(img != NULL);
  memcpy(img, (uint8_t *)ferry_segment_data(s) - info.data_offset,
         info.total_size);
  *size = info.total_size;
  ASSERT_OK(ferry_segment_close(s));
  return img;
}

/* Recomputes the CRC after a deliberate edit, so that the check behind it
 * (not the checksum) is what rejects the header. */
static void reseal(uint8_t *img) {
  struct ferry_hdr *h = (struct ferry_hdr *)img;
  h->header_crc = ferry__hdr_crc(
      img, h->header_size <= FERRY_HDR_MAX ? h->header_size : FERRY_HDR_SIZE);
}

static int validate_in(const uint8_t *img, uint64_t avail, uint64_t size,
                       const char *name) {
  struct ferry_hdr out;
  ferry__err_clear();
  return ferry__hdr_validate(img, avail, size, name, &out);
}

static int validate(const uint8_t *img, uint64_t size, const char *name) {
  return validate_in(img, size, size, name);
}

static void test_valid_header_passes(void) {
  char name[64];
  uint64_t size;
  uint8_t *img = valid_image(test_name(name, sizeof name, "ok"), &size);
  struct ferry_hdr h;
  ASSERT_OK(ferry__hdr_validate(img, size, size, name, &h));
  ASSERT_EQ(h.version_major, FERRY_LAYOUT_MAJOR);
  ASSERT_EQ(h.data_size, SEG_DATA);
  ASSERT_EQ(h.data_offset, FERRY_HDR_REGION);
  ASSERT_STREQ(h.name, name);
  ASSERT_OK(ferry__hdr_validate(img, size, size, NULL, &h));
  ASSERT_OK(ferry_segment_unlink(name, 0));
  free(img);
}

/* Every single byte of the header, changed in several ways, is caught. */
static void test_every_byte_of_every_field_is_checked(void) {
  static const uint8_t flips[] = {0x01, 0x80, 0xff, 0x5a};
  char name[64];
  uint64_t size;
  uint8_t *img = valid_image(test_name(name, sizeof name, "flip"), &size);
  size_t off, f;
  for (off = 0; off < FERRY_HDR_SIZE; off++)
    for (f = 0; f < sizeof flips; f++) {
      int rc;
      img[off] ^= flips[f];
      rc = validate(img, size, name);
      if (off >= 8 && off < 12 && rc == FERRY_EAGAIN)
        rc = FERRY_EBADHDR; /* state turned 0: "initialising" (cannot be
                               reached by one xor of READY, but be exact) */
      if (!is_header_error(rc))
        TEST_FAIL("byte %zu ^ 0x%02x: validate gave %s (%s)", off, flips[f],
                  ferry_err_name(rc), ferry_errmsg());
      ASSERT_TRUE(ferry_errmsg()[0] != '\0');
      img[off] ^= flips[f];
    }
  ASSERT_OK(validate(img, size, name));
  ASSERT_OK(ferry_segment_unlink(name, 0));
  free(img);
}

/* Field by field, with the checksum recomputed, the specific check behind
 * the checksum still rejects each bad value with the right code. */
static void test_each_field_has_its_own_check(void) {
  char name[64];
  uint64_t size;
  uint8_t *img = valid_image(test_name(name, sizeof name, "field"), &size);
  uint8_t *orig = (uint8_t *)malloc(size);
  struct ferry_hdr *h = (struct ferry_hdr *)img;
  ASSERT_TRUE(orig != NULL);
  memcpy(orig, img, size);

#define CASE(edit, code, text)                                                 \
  do {                                                                         \
    memcpy(img, orig, size);                                                   \
    edit;                                                                      \
    reseal(img);                                                               \
    ASSERT_ERR(validate(img, size, name), code);                               \
    ASSERT_CONTAINS(ferry_errmsg(), text);                                     \
  } while (0)

  CASE(memcpy(h->magic, "FERRYSEH", 8), FERRY_EBADHDR, "magic");
  CASE(atomic_store(&h->state, 0x12345678u), FERRY_EBADHDR, "state");
  CASE(h->version_major = 2, FERRY_EVERSION, "2.0");
  CASE(h->version_major = 0, FERRY_EVERSION, "0.0");
  CASE(h->header_size = 8, FERRY_EBADHDR, "header size");
  CASE(h->header_size = 255, FERRY_EBADHDR, "header size");
  CASE(h->header_size = 1u << 20, FERRY_EBADHDR, "header size");
  CASE(h->total_size = size + 4096, FERRY_ESIZE, "header says");
  CASE(h->total_size = 0, FERRY_ESIZE, "header says");
  CASE(h->data_offset = 100, FERRY_EBADHDR, "offset");
  CASE(h->data_offset = 64, FERRY_EBADHDR, "offset");
  CASE(h->data_offset = size + 64, FERRY_EBADHDR, "offset");
  CASE(h->data_size = size, FERRY_ESIZE, "overruns");
  CASE(h->data_size = UINT64_MAX, FERRY_ESIZE, "overruns");
  CASE(h->kind = 0, FERRY_EBADHDR, "kind");
  CASE(h->kind = 99, FERRY_EBADHDR, "kind");
  CASE(h->payload = 7, FERRY_EBADHDR, "payload");
  CASE(h->name_len = 64, FERRY_EBADHDR, "name length");
  CASE(h->name_len = 0xffffffffu, FERRY_EBADHDR, "name length");
  CASE(h->name_len = 2, FERRY_EBADHDR, "name");
  CASE(h->name[0] = '/', FERRY_EBADHDR, "name");
  CASE(memset(h->name, 'x', 64), FERRY_EBADHDR, "name");
  CASE(h->name[1] ^= 1, FERRY_EBADHDR, "expected");
  /* The checksum itself, left unsealed. */
  memcpy(img, orig, size);
  h->header_crc ^= 1;
  ASSERT_ERR(validate(img, size, name), FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "checksum");
  /* A field the structural checks ignore is still covered by the CRC. */
  memcpy(img, orig, size);
  h->created_ns ^= 1;
  ASSERT_ERR(validate(img, size, name), FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "checksum");

  /* Forward compatibility: a newer minor version with a bigger header is
   * accepted; its extra bytes are covered by the CRC too. */
  memcpy(img, orig, size);
  h->version_minor = 7;
  h->header_size = 512;
  img[400] = 0xab;
  reseal(img);
  ASSERT_OK(validate(img, size, name));
  img[400] = 0xac;
  ASSERT_ERR(validate(img, size, name), FERRY_EBADHDR);
#undef CASE
  ASSERT_OK(ferry_segment_unlink(name, 0));
  free(orig);
  free(img);
}

static void test_truncated_images(void) {
  char name[64];
  uint64_t size, n;
  uint8_t *img = valid_image(test_name(name, sizeof name, "trunc"), &size);
  struct ferry_hdr out;
  for (n = 0; n < FERRY_HDR_SIZE; n++)
    ASSERT_ERR(ferry__hdr_validate(img, n, n, name, &out), FERRY_ESIZE);
  /* The header is whole but the object is shorter or longer than it says. */
  ASSERT_ERR(ferry__hdr_validate(img, size, size - 4096, name, &out),
             FERRY_ESIZE);
  ASSERT_ERR(ferry__hdr_validate(img, size, size + 1, name, &out), FERRY_ESIZE);
  ASSERT_ERR(
      ferry__hdr_validate(img, FERRY_HDR_SIZE, FERRY_HDR_SIZE, name, &out),
      FERRY_ESIZE);
  ASSERT_OK(ferry_segment_unlink(name, 0));
  free(img);
}

/* Random images, from pure noise to a valid header with a few random bytes
 * changed: all rejected, none crash or read out of bounds (ASan watches). */
static void test_random_bytes(void) {
  char name[64];
  uint64_t size;
  uint8_t *img = valid_image(test_name(name, sizeof name, "rand"), &size);
  uint8_t *orig = (uint8_t *)malloc(size);
  int i;
  ASSERT_TRUE(orig != NULL);
  memcpy(orig, img, size);
  for (i = 0; i < 20000; i++) {
    size_t j, avail;
    uint8_t *buf;
    int rc, mode = i % 3;
    memcpy(img, orig, size);
    if (mode == 0) { /* noise, keeping magic half the time */
      for (j = 0; j < FERRY_HDR_SIZE; j++)
        img[j] = (uint8_t)rng();
      if (i & 1)
        memcpy(img, FERRY_HDR_MAGIC, 8);
    } else { /* a valid header with 1-4 random byte changes */
      int k, changes = 1 + (int)(rng() % 4);
      for (k = 0; k < changes; k++) {
        size_t at = (size_t)(rng() % FERRY_HDR_SIZE);
        uint8_t v;
        if (mode == 2 && at >= 8 && at < 12)
          at += 4; /* the state word is restored below: change another */
        v = (uint8_t)rng();
        if (v == img[at])
          v ^= 0x20;
        img[at] = v;
      }
    }
    if (mode == 2) /* and keep the state word valid, to reach deeper */
      atomic_store(&((struct ferry_hdr *)img)->state, FERRY_HDR_READY);
    /* Validate an exact-size heap copy so any overread is an ASan error. */
    avail = (size_t)(FERRY_HDR_SIZE + rng() % (FERRY_HDR_MAX - FERRY_HDR_SIZE));
    buf = (uint8_t *)malloc(avail);
    ASSERT_TRUE(buf != NULL);
    memcpy(buf, img, avail);
    rc = validate_in(buf, avail, size, (i & 2) ? name : NULL);
    free(buf);
    if (rc == 0)
      TEST_FAIL("iteration %d: a corrupted header was accepted", i);
    ASSERT_TRUE(is_header_error(rc) || rc == FERRY_EAGAIN);
  }
  ASSERT_OK(ferry_segment_unlink(name, 0));
  free(orig);
  free(img);
}

/* ---- through a real open of a corrupted object in /dev/shm ---- */

static int shm_fd(const char *name, int flags) {
  char path[128];
  int fd;
  snprintf(path, sizeof path, "/dev/shm/ferry.%s", name);
  fd = open(path, flags, 0600);
  if (fd < 0)
    TEST_FAIL("open %s: %s", path, strerror(errno));
  return fd;
}

static void poke(const char *name, off_t off, const void *bytes, size_t n) {
  int fd = shm_fd(name, O_RDWR);
  ASSERT_EQ(pwrite(fd, bytes, n, off), (long long)n);
  close(fd);
}

static int open_rc(const char *name) {
  ferry_segment *s = NULL;
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  int rc;
  o.timeout_ms = 100;
  rc = ferry_segment_open(&s, name, FERRY_RDONLY, 0, &o);
  if (rc == 0)
    ferry_segment_close(s);
  return rc;
}

static void make_segment(const char *name) {
  ferry_segment *s;
  ASSERT_OK(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, SEG_DATA, NULL));
  ASSERT_OK(ferry_segment_close(s));
}

static void test_open_rejects_each_corrupt_field(void) {
  static const struct {
    const char *field;
    size_t off, len;
  } fields[] = {
#define F(x)                                                                   \
  {#x, offsetof(struct ferry_hdr, x), sizeof(((struct ferry_hdr *)0)->x)}
      F(magic),       F(state),       F(version_major), F(version_minor),
      F(header_size), F(header_crc),  F(total_size),    F(data_offset),
      F(data_size),   F(kind),        F(payload),       F(seg_flags),
      F(mode),        F(creator_pid), F(creator_start), F(creator_boot),
      F(created_ns),  F(name_len),    F(reserved0),     F(name),
      F(reserved),
#undef F
  };
  size_t i;
  for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char name[64];
    uint8_t junk[128];
    int rc;
    size_t j;
    test_name(name, sizeof name, "open");
    make_segment(name);
    ASSERT_OK(open_rc(name));
    for (j = 0; j < fields[i].len; j++)
      junk[j] = (uint8_t)(0xa5 ^ j);
    poke(name, (off_t)fields[i].off, junk, fields[i].len);
    rc = open_rc(name);
    if (!is_header_error(rc))
      TEST_FAIL("corrupt %s: open gave %s (%s)", fields[i].field,
                ferry_err_name(rc), ferry_errmsg());
    /* The message names the object. */
    ASSERT_CONTAINS(ferry_errmsg(), name);
    ASSERT_OK(ferry_segment_unlink(name, 0));
  }
}

static void test_open_rejects_truncated_and_grown_objects(void) {
  static const off_t sizes[] = {1, 8, 100, 255, 256, 4095, 4096, 4097, 8191};
  size_t i;
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    char name[64];
    int fd, rc;
    test_name(name, sizeof name, "tr");
    make_segment(name);
    fd = shm_fd(name, O_RDWR);
    ASSERT_EQ(ftruncate(fd, sizes[i]), 0);
    close(fd);
    rc = open_rc(name);
    if (rc != FERRY_ESIZE)
      TEST_FAIL("truncated to %lld: open gave %s (%s)", (long long)sizes[i],
                ferry_err_name(rc), ferry_errmsg());
    ASSERT_OK(ferry_segment_unlink(name, 0));
  }
  { /* grown by someone else */
    char name[64];
    int fd;
    test_name(name, sizeof name, "grow");
    make_segment(name);
    fd = shm_fd(name, O_RDWR);
    ASSERT_EQ(ftruncate(fd, 1 << 20), 0);
    close(fd);
    ASSERT_ERR(open_rc(name), FERRY_ESIZE);
    ASSERT_CONTAINS(ferry_errmsg(), "header says");
    ASSERT_OK(ferry_segment_unlink(name, 0));
  }
}

/* A foreign object under a ferry name (Python's SharedMemory, say): random
 * content of several sizes. */
static void test_open_rejects_foreign_objects(void) {
  int round;
  for (round = 0; round < 40; round++) {
    char name[64];
    size_t size = 4096u * (1 + (size_t)(rng() % 4)), j;
    uint8_t *buf = (uint8_t *)malloc(size);
    int fd, rc;
    ASSERT_TRUE(buf != NULL);
    for (j = 0; j < size; j++)
      buf[j] = (uint8_t)rng();
    if (round % 4 == 1)
      memcpy(buf, FERRY_HDR_MAGIC, 8);
    if (round % 4 == 2) {
      memcpy(buf, FERRY_HDR_MAGIC, 8);
      memcpy(buf + 8, "REDY", 4);
    }
    test_name(name, sizeof name, "foreign");
    fd = shm_fd(name, O_RDWR | O_CREAT | O_EXCL);
    ASSERT_EQ(write(fd, buf, size), (long long)size);
    close(fd);
    rc = open_rc(name);
    if (!is_header_error(rc))
      TEST_FAIL("foreign object round %d: open gave %s (%s)", round,
                ferry_err_name(rc), ferry_errmsg());
    ASSERT_OK(ferry_segment_unlink(name, 0));
    free(buf);
  }
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"valid_header_passes", test_valid_header_passes},
      {"every_byte_of_every_field_is_checked",
       test_every_byte_of_every_field_is_checked},
      {"each_field_has_its_own_check", test_each_field_has_its_own_check},
      {"truncated_images", test_truncated_images},
      {"random_bytes", test_random_bytes},
      {"open_rejects_each_corrupt_field", test_open_rejects_each_corrupt_field},
      {"open_rejects_truncated_and_grown_objects",
       test_open_rejects_truncated_and_grown_objects},
      {"open_rejects_foreign_objects", test_open_rejects_foreign_objects},
      {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
