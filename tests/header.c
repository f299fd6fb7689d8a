/* Description: the segment header is validated before use: every field's
 * corruption, truncation, foreign objects and random bytes give
 * FERRY_EBADHDR / FERRY_EVERSION / FERRY_ESIZE with a message, never a crash,
 * both through ferry__hdr_validate() and through a real open of a corrupted
 * named object (/dev/shm, a Windows section) or file. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#ifdef _WIN32
#include <io.h>
#include <share.h>
#else
#include <unistd.h>
#endif

#include "error.h"
#include "header.h"
#include "os/os.h"

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

/* A valid image of a whole (small) segment, made by the library itself.
 * The segment is removed again (unlinked while still open: a Windows section
 * has no name to remove and goes with its last handle). */
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
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
        /* a change, also against the original: a byte picked twice must
         * not be put back (that would leave a valid header) */
        v = (uint8_t)rng();
        while (v == img[at] || v == orig[at])
          v = (uint8_t)(v + 0x3b);
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
  free(orig);
  free(img);
}

/* ---- through a real open of a corrupted named object or file ---- */

/* An object made without ferry (through the OS layer) under the segment
 * name NAME, SIZE bytes (a multiple of the page size), mapped read-write:
 * what another program (Python's SharedMemory, say) would leave there. */
struct raw {
  ferry_os_shm os;
  uint8_t *map;
  uint64_t size;
};

static void raw_create(struct raw *r, const char *name, uint64_t size) {
  char osname[FERRY_PATH_MAX];
  void *p = NULL;
  ASSERT_OK(ferry_os_object_name(FERRY_OS_NAME_SEGMENT, name, 0, osname,
                                 sizeof osname));
  ASSERT_OK(ferry_os_shm_create(&r->os, osname, size, 0600, 0));
  ASSERT_OK(ferry_os_map(&r->os, 0, size, FERRY_OS_MAP_WRITE, &p));
  r->map = (uint8_t *)p;
  r->size = size;
}

/* Removes NAME and closes R: unlink first, while the object is still open
 * (on Windows it goes with its last handle; unlink then finds nothing). */
static void raw_remove(struct raw *r, const char *name) {
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_os_unmap(r->map, r->size));
  ferry_os_shm_close(&r->os);
}

/* Opens NAME (FLAGS: 0 or FERRY_FILE) read-only; the result. */
static int open_rc(const char *name, unsigned flags) {
  ferry_segment *s = NULL;
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  int rc;
  o.timeout_ms = 100;
  rc = ferry_segment_open(&s, name, flags | FERRY_RDONLY, 0, &o);
  if (rc == 0)
    ferry_segment_close(s);
  return rc;
}

/* A segment made by ferry (FLAGS: 0 or FERRY_FILE), returned open: a Windows
 * section lives only while a handle is open, and the creator's read-write
 * mapping is where poke() writes. */
static ferry_segment *make_segment(const char *name, unsigned flags) {
  ferry_segment *s;
  ASSERT_OK(ferry_segment_open(&s, name, flags | FERRY_CREATE | FERRY_EXCL,
                               SEG_DATA, NULL));
  return s;
}

/* Writes N bytes at offset OFF of S's object. */
static void poke(ferry_segment *s, size_t off, const void *bytes, size_t n) {
  ferry_segment_info info;
  ASSERT_OK(ferry_segment_get_info(s, &info, sizeof info));
  ASSERT_TRUE(off + n <= info.total_size);
  memcpy((uint8_t *)ferry_segment_data(s) - info.data_offset + off, bytes, n);
}

/* Cuts or extends the file PATH to SIZE bytes. */
static void file_truncate(const char *path, uint64_t size) {
#ifdef _WIN32
  int fd = -1;
  errno_t e = _sopen_s(&fd, path, _O_RDWR | _O_BINARY, _SH_DENYNO, 0);
  if (e != 0)
    TEST_FAIL("open %s: %s", path, strerror(e));
  e = _chsize_s(fd, (__int64)size);
  _close(fd);
  if (e != 0)
    TEST_FAIL("_chsize_s %s to %llu: %s", path, (unsigned long long)size,
              strerror(e));
#else
  if (truncate(path, (off_t)size) != 0)
    TEST_FAIL("truncate %s to %llu: %s", path, (unsigned long long)size,
              strerror(errno));
#endif
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
    ferry_segment *s;
    int rc;
    size_t j;
    test_name(name, sizeof name, "open");
    s = make_segment(name, 0);
    ASSERT_OK(open_rc(name, 0));
    for (j = 0; j < fields[i].len; j++)
      junk[j] = (uint8_t)(0xa5 ^ j);
    poke(s, fields[i].off, junk, fields[i].len);
    rc = open_rc(name, 0);
    if (!is_header_error(rc))
      TEST_FAIL("corrupt %s: open gave %s (%s)", fields[i].field,
                ferry_err_name(rc), ferry_errmsg());
    /* The message names the object. */
    ASSERT_CONTAINS(ferry_errmsg(), name);
    ASSERT_OK(ferry_segment_unlink(name, 0));
    ASSERT_OK(ferry_segment_close(s));
  }
}

/* The same through file-backed segments, whose header is in a plain file:
 * one byte of each field changed with stdio, as any program could. */
static void test_open_rejects_each_corrupt_field_file(void) {
  static const size_t offs[] = {0,  8,  12, 16, 20, 24,  32,  40,  48,
                                52, 56, 60, 88, 96, 100, 104, 168, 255};
  size_t i;
  for (i = 0; i < sizeof offs / sizeof offs[0]; i++) {
    char path[4200];
    uint8_t b = 0;
    FILE *f;
    int rc;
    snprintf(path, sizeof path, "%s/corrupt%u.seg", test_tmpdir(), (unsigned)i);
    ASSERT_OK(ferry_segment_close(make_segment(path, FERRY_FILE)));
    ASSERT_OK(open_rc(path, FERRY_FILE));
    f = fopen(path, "r+b");
    ASSERT_TRUE(f != NULL);
    ASSERT_EQ(fseek(f, (long)offs[i], SEEK_SET), 0);
    ASSERT_EQ(fread(&b, 1, 1, f), 1);
    b ^= 0x5a;
    ASSERT_EQ(fseek(f, (long)offs[i], SEEK_SET), 0);
    ASSERT_EQ(fwrite(&b, 1, 1, f), 1);
    ASSERT_EQ(fclose(f), 0);
    rc = open_rc(path, FERRY_FILE);
    if (!is_header_error(rc))
      TEST_FAIL("byte %zu of %s changed: open gave %s (%s)", offs[i], path,
                ferry_err_name(rc), ferry_errmsg());
    ASSERT_CONTAINS(ferry_errmsg(), path);
    ASSERT_EQ(remove(path), 0);
  }
}

/* Sizes an object is cut to (a segment with SEG_DATA bytes is 8192). */
static const uint64_t cut_sizes[] = {1,    8,    100,  255, 256,
                                     4095, 4096, 4097, 8191};

static void expect_truncated(int rc, uint64_t size) {
  if (rc != FERRY_ESIZE)
    TEST_FAIL("truncated to %llu: open gave %s (%s)", (unsigned long long)size,
              ferry_err_name(rc), ferry_errmsg());
}

static void test_open_rejects_truncated_and_grown_objects(void) {
  size_t i;
  for (i = 0; i < sizeof cut_sizes / sizeof cut_sizes[0]; i++) {
    char name[64];
#ifdef _WIN32
    /* A section's size is fixed at creation, in whole pages: the cut object
     * is a new section holding the first bytes of a segment's image. Only
     * whole-page sizes exist (the sub-page cuts are tested on files, in
     * open_rejects_truncated_and_grown_files). */
    uint64_t size;
    uint8_t *img;
    struct raw r;
    if (cut_sizes[i] % ferry_os_caps_get()->page_size != 0)
      continue;
    test_name(name, sizeof name, "tr");
    img = valid_image(name, &size);
    ASSERT_TRUE(cut_sizes[i] < size);
    raw_create(&r, name, cut_sizes[i]);
    memcpy(r.map, img, (size_t)cut_sizes[i]);
    expect_truncated(open_rc(name, 0), cut_sizes[i]);
    raw_remove(&r, name);
    free(img);
#else
    char path[128];
    test_name(name, sizeof name, "tr");
    ASSERT_OK(ferry_segment_close(make_segment(name, 0)));
    snprintf(path, sizeof path, "/dev/shm/ferry.%s", name);
    file_truncate(path, cut_sizes[i]);
    expect_truncated(open_rc(name, 0), cut_sizes[i]);
    ASSERT_OK(ferry_segment_unlink(name, 0));
#endif
  }
  { /* grown by someone else */
    char name[64];
#ifdef _WIN32
    uint64_t size;
    uint8_t *img;
    struct raw r;
    test_name(name, sizeof name, "grow");
    img = valid_image(name, &size);
    raw_create(&r, name, 1 << 20);
    memcpy(r.map, img, (size_t)size);
    ASSERT_ERR(open_rc(name, 0), FERRY_ESIZE);
    ASSERT_CONTAINS(ferry_errmsg(), "header says");
    raw_remove(&r, name);
    free(img);
#else
    char path[128];
    test_name(name, sizeof name, "grow");
    ASSERT_OK(ferry_segment_close(make_segment(name, 0)));
    snprintf(path, sizeof path, "/dev/shm/ferry.%s", name);
    file_truncate(path, 1 << 20);
    ASSERT_ERR(open_rc(name, 0), FERRY_ESIZE);
    ASSERT_CONTAINS(ferry_errmsg(), "header says");
    ASSERT_OK(ferry_segment_unlink(name, 0));
#endif
  }
}

/* The same with file-backed segments, cut and grown behind ferry's back:
 * every size, on every system. */
static void test_open_rejects_truncated_and_grown_files(void) {
  char path[4200];
  size_t i;
  for (i = 0; i < sizeof cut_sizes / sizeof cut_sizes[0]; i++) {
    snprintf(path, sizeof path, "%s/cut%u.seg", test_tmpdir(), (unsigned)i);
    ASSERT_OK(ferry_segment_close(make_segment(path, FERRY_FILE)));
    file_truncate(path, cut_sizes[i]);
    expect_truncated(open_rc(path, FERRY_FILE), cut_sizes[i]);
    ASSERT_CONTAINS(ferry_errmsg(), path);
    ASSERT_EQ(remove(path), 0);
  }
  snprintf(path, sizeof path, "%s/grown.seg", test_tmpdir());
  ASSERT_OK(ferry_segment_close(make_segment(path, FERRY_FILE)));
  file_truncate(path, 1 << 20);
  ASSERT_ERR(open_rc(path, FERRY_FILE), FERRY_ESIZE);
  ASSERT_CONTAINS(ferry_errmsg(), "header says");
  ASSERT_EQ(remove(path), 0);
}

/* A foreign object under a ferry name (Python's SharedMemory, say): random
 * content of several sizes. */
static void test_open_rejects_foreign_objects(void) {
  int round;
  for (round = 0; round < 40; round++) {
    char name[64];
    size_t size = 4096u * (1 + (size_t)(rng() % 4)), j;
    struct raw r;
    int rc;
    test_name(name, sizeof name, "foreign");
    raw_create(&r, name, size);
    for (j = 0; j < size; j++)
      r.map[j] = (uint8_t)rng();
    if (round % 4 == 1)
      memcpy(r.map, FERRY_HDR_MAGIC, 8);
    if (round % 4 == 2) {
      memcpy(r.map, FERRY_HDR_MAGIC, 8);
      memcpy(r.map + 8, "REDY", 4);
    }
    rc = open_rc(name, 0);
    if (!is_header_error(rc))
      TEST_FAIL("foreign object round %d: open gave %s (%s)", round,
                ferry_err_name(rc), ferry_errmsg());
    raw_remove(&r, name);
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
      {"open_rejects_each_corrupt_field_file",
       test_open_rejects_each_corrupt_field_file},
      {"open_rejects_truncated_and_grown_objects",
       test_open_rejects_truncated_and_grown_objects},
      {"open_rejects_truncated_and_grown_files",
       test_open_rejects_truncated_and_grown_files},
      {"open_rejects_foreign_objects", test_open_rejects_foreign_objects},
      {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
