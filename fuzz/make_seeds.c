/*
 * Writes the fuzzers' seed corpora from real segments and channels made with
 * the library: `make fuzz-seeds` (fuzz_make_seeds OUTDIR, normally
 * fuzz/corpus). The files are committed; run this again after a layout
 * change. Input formats: the comments at the top of each fuzz_*.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "channel.h"
#include "ferry.h"
#include "header.h"

static const char *outdir;

static void die(const char *what, int rc) {
  fprintf(stderr, "make_seeds: %s: %s (%s)\n", what, ferry_strerror(rc),
          ferry_errmsg());
  exit(1);
}

static void mkdir_p(const char *path) {
  if (mkdir(path, 0755) != 0 && errno != EEXIST) {
    perror(path);
    exit(1);
  }
}

/* Writes the parts (pointer, size_t length pairs, then NULL) to
 * OUTDIR/DIR/FILE. */
static void put(const char *dir, const char *file, ...) {
  char path[4096];
  FILE *f;
  va_list ap;
  const void *p;
  snprintf(path, sizeof path, "%s/%s", outdir, dir);
  mkdir_p(path);
  snprintf(path, sizeof path, "%s/%s/%s", outdir, dir, file);
  f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(1);
  }
  va_start(ap, file);
  while ((p = va_arg(ap, const void *)) != NULL) {
    size_t n = va_arg(ap, size_t);
    if (fwrite(p, 1, n, f) != n) {
      perror(path);
      exit(1);
    }
  }
  va_end(ap);
  if (fclose(f) != 0) {
    perror(path);
    exit(1);
  }
  printf("  %s\n", path);
}

static void le64(uint8_t *p, uint64_t v) {
  int i;
  for (i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

static void le32(uint8_t *p, uint32_t v) {
  int i;
  for (i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* fuzz_header trailer: FLAGS, OBJ_SIZE. */
static uint8_t trailer[9];
static const uint8_t *hdr_trailer(unsigned flags, uint64_t obj_size) {
  trailer[0] = (uint8_t)flags;
  le64(trailer + 1, obj_size);
  return trailer;
}

static const uint8_t *seg_base(const ferry_segment *seg,
                               ferry_segment_info *info) {
  int rc = ferry_segment_get_info(seg, info, sizeof *info);
  if (rc != 0)
    die("get_info", rc);
  return (const uint8_t *)ferry_segment_data(seg) - info->data_offset;
}

static void header_seeds(void) {
  char name[64], path[256];
  ferry_segment *seg;
  ferry_segment_info info;
  ferry_segment_opts so = FERRY_SEGMENT_OPTS_INIT;
  const uint8_t *base;
  static const uint8_t zero[FERRY_HDR_SIZE];
  int rc;

  /* A named segment: its whole image (avail = obj_size), and its header
   * region with the object size in the trailer, with and without names. */
  snprintf(name, sizeof name, "fuzz-seed-%ld", (long)getpid());
  rc = ferry_segment_open(&seg, name, FERRY_CREATE | FERRY_EXCL, 100, NULL);
  if (rc != 0)
    die("create segment", rc);
  base = seg_base(seg, &info);
  put("fuzz_header", "named-whole", base, (size_t)info.total_size,
      hdr_trailer(2, 0), (size_t)9, NULL);
  put("fuzz_header", "named-region", base, (size_t)FERRY_HDR_REGION,
      hdr_trailer(1 | 2, info.total_size), (size_t)9, NULL);
  put("fuzz_header", "named-noexpect", base, (size_t)FERRY_HDR_SIZE,
      hdr_trailer(1, info.total_size), (size_t)9, NULL);
  put("fuzz_header", "named-wrongname", base, (size_t)FERRY_HDR_SIZE,
      hdr_trailer(1 | 4, info.total_size), (size_t)9, NULL);
  put("fuzz_header", "named-fixcrc", base, (size_t)FERRY_HDR_SIZE,
      hdr_trailer(1 | 8, info.total_size), (size_t)9, NULL);
  ferry_segment_close(seg);
  ferry_segment_unlink(name, 0);

  /* A channel's segment (payload CHANNEL). */
  {
    ferry_channel *ch;
    ferry_channel_opts co = FERRY_CHANNEL_OPTS_INIT;
    co.capacity = 4096;
    co.max_peers = 2;
    rc = ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_EXCL, FERRY_OBSERVE,
                            &co);
    if (rc != 0)
      die("create channel", rc);
    base = seg_base(ferry_channel_segment(ch), &info);
    put("fuzz_header", "channel-region", base, (size_t)FERRY_HDR_SIZE,
        hdr_trailer(1 | 2, info.total_size), (size_t)9, NULL);
    ferry_channel_close(ch);
    ferry_segment_unlink(name, 0);
  }

  /* Anonymous (no name) and file-backed (kind FILE) segments. */
  rc = ferry_segment_create_anon(&seg, 1, &so);
  if (rc != 0)
    die("create anonymous segment", rc);
  base = seg_base(seg, &info);
  put("fuzz_header", "anon-region", base, (size_t)FERRY_HDR_SIZE,
      hdr_trailer(1, info.total_size), (size_t)9, NULL);
  ferry_segment_close(seg);

  snprintf(path, sizeof path, "/tmp/fuzz-seed-%ld.seg", (long)getpid());
  rc = ferry_segment_open(&seg, path, FERRY_CREATE | FERRY_EXCL | FERRY_FILE,
                          5000, NULL);
  if (rc != 0)
    die("create file segment", rc);
  base = seg_base(seg, &info);
  put("fuzz_header", "file-region", base, (size_t)FERRY_HDR_SIZE,
      hdr_trailer(1 | 2, info.total_size), (size_t)9, NULL);
  ferry_segment_close(seg);
  ferry_segment_unlink(path, FERRY_FILE);

  /* Still initialising (zero-filled), and too short. */
  put("fuzz_header", "zero", zero, sizeof zero, hdr_trailer(0, 0), (size_t)9,
      NULL);
  put("fuzz_header", "short", "FERRYSEG", (size_t)8, NULL);
}

/* fuzz_chan_header: LINE, DATA_SIZE, FLAGS. */
static void chan_seed(const char *file, unsigned kind, unsigned flags,
                      uint64_t cap, unsigned peers, int64_t size_delta,
                      unsigned fuzz_flags) {
  char name[64];
  ferry_channel *ch;
  ferry_channel_opts co = FERRY_CHANNEL_OPTS_INIT;
  const ferry_segment *seg;
  uint8_t tail[9];
  int rc;
  snprintf(name, sizeof name, "fuzz-seed-%ld", (long)getpid());
  co.kind = kind;
  co.flags = flags;
  co.capacity = cap;
  co.max_peers = peers;
  rc = ferry_channel_open(&ch, name, FERRY_CREATE | FERRY_EXCL, FERRY_OBSERVE,
                          &co);
  if (rc != 0)
    die("create channel", rc);
  seg = ferry_channel_segment(ch);
  le64(tail, ferry_segment_data_size(seg) + (uint64_t)size_delta);
  tail[8] = (uint8_t)fuzz_flags;
  put("fuzz_chan_header", file, ferry_segment_data(seg), (size_t)64, tail,
      sizeof tail, NULL);
  ferry_channel_close(ch);
  ferry_segment_unlink(name, 0);
}

static void chan_seeds(void) {
  chan_seed("spsc", FERRY_CHANNEL_SPSC, 0, 4096, 2, 0, 0);
  chan_seed("spsc-1m-fixcrc", FERRY_CHANNEL_SPSC, 0, 1 << 20, 64, 0, 1);
  chan_seed("spsc-too-small", FERRY_CHANNEL_SPSC, 0, 4096, 2, -1, 0);
  chan_seed("mpsc", FERRY_CHANNEL_MPSC, 0, 65536, 256, 0, 0);
  chan_seed("broadcast", FERRY_CHANNEL_BROADCAST, 0, 8192, 8, 0, 0);
  chan_seed("broadcast-overrun", FERRY_CHANNEL_BROADCAST, FERRY_CHANNEL_OVERRUN,
            4096, 3, 0, 1);
}

/* fuzz_pool: LINE, DATA_SIZE, FLAGS, HANDLES (one live, one stale, one
 * from another tag, garbage). */
static void pool_seed(const char *file, uint64_t block_size, uint32_t count,
                      uint32_t peers, int64_t size_delta, unsigned fuzz_flags) {
  char name[64];
  ferry_pool *p;
  ferry_pool_opts po = FERRY_POOL_OPTS_INIT;
  const ferry_segment *seg;
  uint8_t tail[9 + 32];
  uint64_t h;
  int rc;
  snprintf(name, sizeof name, "fuzz-seed-%ld", (long)getpid());
  po.block_size = block_size;
  po.block_count = count;
  po.max_peers = peers;
  rc = ferry_pool_open(&p, name, FERRY_CREATE | FERRY_EXCL, &po);
  if (rc != 0)
    die("create pool", rc);
  rc = ferry_pool_alloc(p, &h, NULL, 0);
  if (rc != 0)
    die("alloc", rc);
  seg = ferry_pool_segment(p);
  le64(tail, ferry_segment_data_size(seg) + (uint64_t)size_delta);
  tail[8] = (uint8_t)fuzz_flags;
  le64(tail + 9, h);
  le64(tail + 17, h + (UINT64_C(1) << 24));
  le64(tail + 25, h ^ (UINT64_C(1) << 50));
  le64(tail + 33, UINT64_C(0x0123456789abcdef));
  put("fuzz_pool", file, ferry_segment_data(seg), (size_t)64, tail, sizeof tail,
      NULL);
  ferry_pool_close(p);
  ferry_segment_unlink(name, 0);
}

static void pool_seeds(void) {
  pool_seed("frames", 3 << 20, 4, 16, 0, 0);
  pool_seed("small-fixcrc", 100, 1000, 40, 0, 1);
  pool_seed("too-small", 4096, 2, 2, -1, 0);
}

/* fuzz_ring: a 4 KiB channel with a few records, a wrap and a pad record. */
static void ring_seed(const char *file, unsigned kind, unsigned max_per_collect,
                      const size_t *sizes, int nsizes, int nrecv) {
  char name[64];
  ferry_channel *tx, *rx;
  ferry_channel_opts co = FERRY_CHANNEL_OPTS_INIT;
  const struct ferry_chan_hdr *h;
  const uint8_t *ring;
  uint8_t hdr[30], msg[4096], buf[4096];
  uint64_t head, tail;
  uint32_t word;
  int i, rc;
  size_t len;

  snprintf(name, sizeof name, "fuzz-seed-%ld", (long)getpid());
  co.kind = kind;
  co.capacity = 4096;
  co.max_peers = 2;
  rc = ferry_channel_open(&rx, name, FERRY_CREATE | FERRY_EXCL, FERRY_RECEIVER,
                          &co);
  if (rc != 0)
    die("create channel", rc);
  rc = ferry_channel_open(&tx, name, 0, FERRY_SENDER, &co);
  if (rc != 0)
    die("open channel", rc);
  for (i = 0; i < nsizes; i++) {
    memset(msg, 'a' + i, sizes[i]);
    rc = ferry_channel_send(tx, msg, sizes[i], 0);
    if (rc != 0)
      die("send", rc);
    if (i + 1 == nrecv) /* drain: the sends that follow wrap around */
      while (ferry_channel_recv(rx, buf, sizeof buf, &len, 0) == 0)
        ;
  }
  h = (const struct ferry_chan_hdr *)ferry_segment_data(
      ferry_channel_segment(rx));
  ring = (const uint8_t *)h + h->ring_offset;
  tail = atomic_load(&h->tail);
  if (kind == FERRY_CHANNEL_BROADCAST) {
    ferry_channel_info *info = malloc(sizeof *info);
    if (!info)
      exit(1);
    rc = ferry_channel_get_info(rx, info, sizeof *info);
    if (rc != 0)
      die("get_info", rc);
    head = tail;
    for (i = 0; i < (int)info->npeers; i++)
      if (info->peers[i].role == FERRY_RECEIVER)
        head = info->peers[i].cursor;
    free(info);
  } else {
    head = atomic_load(&h->head);
  }
  memcpy(&word, ring + (head & 4095), 4);
  hdr[0] = 0; /* 4 KiB */
  hdr[1] = (uint8_t)(((max_per_collect - 1) << 2) |
                     (kind == FERRY_CHANNEL_MPSC ? 2 : 0) |
                     (kind == FERRY_CHANNEL_BROADCAST ? 1 : 0));
  le64(hdr + 2, head);
  le32(hdr + 10, (uint32_t)(tail - head));
  le32(hdr + 14, word);
  le32(hdr + 18, (uint32_t)(head & 4095));
  le64(hdr + 22, tail - head);
  put("fuzz_ring", file, hdr, sizeof hdr, ring, (size_t)4096, NULL);
  ferry_channel_close(tx);
  ferry_channel_close(rx);
  ferry_segment_unlink(name, 0);
}

static void ring_seeds(void) {
  /* 3 records, drained; 2 more: the second does not fit at the end, so a
   * pad record fills it and the record lands at index 0 */
  static const size_t wrap[] = {1000, 1000, 1000, 1000, 1000};
  static const size_t small[] = {0, 1, 7, 8, 9, 15, 16, 17, 100, 0};
  static const size_t big[] = {2000, 2040};
  ring_seed("spsc-pad", FERRY_CHANNEL_SPSC, 64, wrap, 5, 3);
  ring_seed("mpsc-pad", FERRY_CHANNEL_MPSC, 64, wrap, 5, 3);
  ring_seed("broadcast-pad", FERRY_CHANNEL_BROADCAST, 64, wrap, 5, 3);
  ring_seed("spsc-small-1", FERRY_CHANNEL_SPSC, 1, small, 10, 0);
  ring_seed("broadcast-small", FERRY_CHANNEL_BROADCAST, 4, small, 10, 0);
  ring_seed("mpsc-small", FERRY_CHANNEL_MPSC, 3, small, 10, 0);
  ring_seed("spsc-max", FERRY_CHANNEL_SPSC, 2, big, 2, 1);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  outdir = argv[1];
  mkdir_p(outdir);
  header_seeds();
  chan_seeds();
  ring_seeds();
  pool_seeds();
  return 0;
}
