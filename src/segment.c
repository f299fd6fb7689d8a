/* Segments: named, anonymous and file-backed regions of shared memory with a
 * self-describing header (src/header.h). Everything OS-specific goes through
 * src/os/os.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ferry.h"
#include "guard.h"
#include "header.h"
#include "internal.h"
#include "os/os.h"

#define DEFAULT_OPEN_TIMEOUT_MS 5000
#define OPEN_OR_CREATE_TRIES 64

struct ferry_segment {
  ferry_os_shm os;
  uint8_t *base;              /* the whole object, mapped */
  struct ferry__guard *guard; /* its registry entry (NULL: cannot shrink) */
  uint64_t map_len;           /* bytes mapped at base */
  struct ferry_hdr hdr;       /* validated copy of the header */
  int readonly;
  int created;
  int global;                   /* named in Windows' Global\ namespace */
  char os_name[FERRY_PATH_MAX]; /* OS name, path, or anonymous label */
};

/* ---------------------------------------------------------------------- */
/* Options                                                                */

static int opts_load(const ferry_segment_opts *in, ferry_segment_opts *o) {
  const uint32_t known = FERRY_SEG_PREFAULT | FERRY_SEG_MLOCK |
                         FERRY_SEG_HUGEPAGES | FERRY_SEG_HUGEPAGES_TRY |
                         FERRY_SEG_SPARSE | FERRY_SEG_INHERIT |
                         FERRY_SEG_GLOBAL;
  int rc = ferry__opts_copy(o, sizeof *o, in, "FERRY_SEGMENT_OPTS_INIT");
  if (rc != 0)
    return rc;
  if (o->flags & ~known)
    return ferry__err(FERRY_EINVAL, "unknown option flags 0x%x",
                      (unsigned)(o->flags & ~known));
  if (o->mode == 0)
    o->mode = 0600;
  if (o->mode & ~0777u)
    return ferry__err(FERRY_EINVAL, "mode %o has bits beyond 0777",
                      (unsigned)o->mode);
  if (o->payload > FERRY_PAYLOAD_POOL)
    return ferry__err(FERRY_EINVAL, "unknown payload kind %u",
                      (unsigned)o->payload);
  if (o->timeout_ms == 0) {
    const char *env = getenv("FERRY_OPEN_TIMEOUT_MS");
    long long v = env ? atoll(env) : 0;
    o->timeout_ms = v > 0 ? v : DEFAULT_OPEN_TIMEOUT_MS;
  } else if (o->timeout_ms < 0) {
    o->timeout_ms = 0;
  }
  return 0;
}

static unsigned map_flags(const ferry_segment_opts *o, int writable) {
  return (writable ? FERRY_OS_MAP_WRITE : 0u) |
         ((o->flags & FERRY_SEG_PREFAULT) ? FERRY_OS_MAP_POPULATE : 0u) |
         ((o->flags & FERRY_SEG_MLOCK) ? FERRY_OS_MAP_LOCK : 0u);
}

/* ---------------------------------------------------------------------- */
/* Liveness                                                               */

int ferry__proc_alive(uint64_t pid, uint64_t start, uint64_t boot) {
  uint64_t now_start;
  uint64_t now_boot = ferry_os_boot_id();
  int rc;
  if (pid == 0)
    return -1;
  if (boot != 0 && now_boot != 0 && boot != now_boot)
    return 0; /* recorded in an earlier boot */
  rc = ferry_os_proc_start(pid, &now_start);
  if (rc == FERRY_ENOENT)
    return 0;
  if (rc != 0)
    return -1;
  return now_start == start ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* Attach: map an opened object and validate its header                  */

static void seg_free(ferry_segment *s) {
  if (!s)
    return;
  if (s->base)
    ferry__unmap(s->base, s->map_len, s->guard);
  ferry_os_shm_close(&s->os);
  free(s);
}

static ferry_segment *seg_alloc(const char *os_name) {
  ferry_segment *s = (ferry_segment *)calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->os.h = FERRY_OS_NO_HANDLE;
  s->os.file = FERRY_OS_NO_HANDLE;
  snprintf(s->os_name, sizeof s->os_name, "%s", os_name);
  return s;
}

/* Waits (bounded) for S's object to be initialised, maps it and validates
 * the header. FERRY_ENOENT with *REMOVED set when the object's name was
 * removed meanwhile (a failed creator cleaned up: open-or-create retries). */
static int seg_attach(ferry_segment *s, const char *expect_name, int by_name,
                      const ferry_segment_opts *o, int *removed) {
  int64_t wait_ms = o->timeout_ms < 86400000 ? o->timeout_ms : 86400000;
  int64_t deadline = ferry_os_monotonic_ns() + wait_ms * 1000000;
  int64_t backoff = 50000; /* 50 us, doubling to 10 ms */
  uint64_t size = 0;
  int rc;
  *removed = 0;
  for (;;) {
    int expired = ferry_os_monotonic_ns() >= deadline;
    rc = ferry_os_shm_stat(&s->os, &size, removed);
    if (rc != 0)
      return rc;
    if (*removed && by_name) /* a memfd or a passed handle has no name */
      return ferry__err(FERRY_ENOENT, "%s was removed while being opened",
                        s->os_name);
    *removed = 0;
    if (size == 0) {
      if (expired)
        return ferry__err(FERRY_ETIMEDOUT,
                          "%s is still empty after %lld ms: its creator is "
                          "slow or crashed (remove it with `ferry rm`)",
                          s->os_name, (long long)o->timeout_ms);
    } else if (size < FERRY_HDR_REGION) {
      return ferry__err(FERRY_ESIZE,
                        "%s is %llu bytes: too small to be a ferry segment "
                        "(truncated or foreign)",
                        s->os_name, (unsigned long long)size);
    } else {
      if (!s->base) {
        rc = ferry__map(&s->os, 0, size, map_flags(o, !s->readonly),
                        (void **)&s->base, &s->guard);
        if (rc != 0)
          return ferry__err_ctx(rc, "map %s", s->os_name);
        s->map_len = size;
      }
      if (ferry__guard_lost(s->guard) != 0) /* shrunk since the stat */
        return ferry_segment_check(s);
      if (ferry__load_acquire(&((struct ferry_hdr *)s->base)->state) != 0) {
        rc = ferry__hdr_validate(s->base, s->map_len, s->map_len, expect_name,
                                 &s->hdr);
        if (ferry__guard_lost(s->guard) != 0)
          return ferry_segment_check(s);
        if (rc != FERRY_EAGAIN) {
          if (rc != 0)
            return ferry__err_ctx(rc, "%s", s->os_name);
          return 0;
        }
      } else {
        /* Initialising. The creator wrote its identity first: if it has
         * died, waiting is pointless. The fields are untrusted: they only
         * feed a liveness probe. `ferry gc` recognises the message below
         * (tools/ferry/gc.c, half_init_pid): keep its wording. */
        const struct ferry_hdr *h = (const struct ferry_hdr *)s->base;
        uint64_t pid = ferry__peek_u64(&h->creator_pid);
        if (pid != 0 &&
            ferry__proc_alive(pid, ferry__peek_u64(&h->creator_start),
                              ferry__peek_u64(&h->creator_boot)) == 0 &&
            /* it may have published, then exited, since we looked */
            ferry__load_acquire(&((struct ferry_hdr *)s->base)->state) == 0)
          return ferry__err(FERRY_EBADHDR,
                            "%s was left half-initialised by process %llu, "
                            "which has died: remove it with `ferry rm` or "
                            "`ferry gc`",
                            s->os_name, (unsigned long long)pid);
      }
      if (expired) /* no creator identity yet, or a live creator */
        return ferry__err(FERRY_ETIMEDOUT,
                          "%s is still being initialised after %lld ms: its "
                          "creator is slow, or died before recording itself "
                          "(if nothing is creating it, remove it with "
                          "`ferry rm`)",
                          s->os_name, (long long)o->timeout_ms);
    }
    ferry_os_sleep_ns(backoff);
    if (backoff < 10000000)
      backoff *= 2;
  }
}

/* ---------------------------------------------------------------------- */
/* Create                                                                 */

static const char *path_basename(const char *path) {
  const char *b = path, *p;
  for (p = path; *p; p++)
    if (*p == '/' || *p == '\\')
      b = p + 1;
  return b;
}

/* Fills and publishes the header of a freshly created, zero-filled object. */
static void hdr_publish(ferry_segment *s, uint32_t kind, const char *name,
                        uint64_t size, const ferry_segment_opts *o) {
  struct ferry_hdr *h = (struct ferry_hdr *)s->base;
  uint64_t start = 0;
  size_t nlen = 0;
  /* Identity first, so a waiter can tell if we die before publishing. */
  ferry_os_proc_start(ferry_os_pid(), &start);
  ferry__poke_u64(&h->creator_start, start);
  ferry__poke_u64(&h->creator_boot, ferry_os_boot_id());
  ferry__poke_u64(&h->creator_pid, ferry_os_pid());
  memcpy(h->magic, FERRY_HDR_MAGIC, 8);
  h->version_major = FERRY_LAYOUT_MAJOR;
  h->version_minor = FERRY_LAYOUT_MINOR;
  h->header_size = FERRY_HDR_SIZE;
  h->total_size = s->map_len;
  h->data_offset = FERRY_HDR_REGION;
  h->data_size = size;
  h->kind = kind;
  h->payload = o->payload;
  h->seg_flags = (s->os.huge ? (uint32_t)FERRY_SEG_HUGEPAGES : 0u) |
                 (o->flags & FERRY_SEG_SPARSE);
  h->mode = o->mode;
  h->created_ns = ferry_os_realtime_ns();
  if (name && ferry_name_check(name) == 0)
    nlen = strlen(name);
  memcpy(h->name, name ? name : "", nlen);
  h->name_len = (uint32_t)nlen;
  h->header_crc = ferry__hdr_crc(h, FERRY_HDR_SIZE);
  ferry__store_release(&h->state, FERRY_HDR_READY);
  memcpy(&s->hdr, h, sizeof s->hdr);
}

static int seg_create(ferry_segment **out, uint32_t kind, const char *name,
                      uint64_t size, const ferry_segment_opts *o,
                      ferry__seg_init_fn init, void *ctx) {
  const ferry_os_caps *caps = ferry_os_caps_get();
  int want_huge =
      (o->flags & (FERRY_SEG_HUGEPAGES | FERRY_SEG_HUGEPAGES_TRY)) != 0;
  unsigned osflags = ((o->flags & FERRY_SEG_SPARSE) ? FERRY_OS_SPARSE : 0u) |
                     ((o->flags & FERRY_SEG_INHERIT) ? FERRY_OS_INHERIT : 0u);
  ferry_segment *s;
  uint64_t total = 0;
  int rc, attempt;

  if (size == 0)
    return ferry__err(FERRY_EINVAL, "segment size must be at least 1 byte");
  if ((o->flags & FERRY_SEG_SPARSE) && kind != FERRY_KIND_FILE)
    return ferry__err(FERRY_EINVAL,
                      "FERRY_SEG_SPARSE applies to file-backed segments only");
  s = seg_alloc("");
  if (!s)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  s->global = (o->flags & FERRY_SEG_GLOBAL) != 0;
  if (kind == FERRY_KIND_NAMED) {
    rc = ferry_os_object_name(FERRY_OS_NAME_SEGMENT, name, s->global,
                              s->os_name, sizeof s->os_name);
    if (rc != 0)
      goto fail;
  } else if (kind == FERRY_KIND_FILE) {
    snprintf(s->os_name, sizeof s->os_name, "%s", name);
  } else {
    snprintf(s->os_name, sizeof s->os_name, "anonymous segment");
  }

  /* Two attempts: with huge pages, then (HUGEPAGES_TRY) without. */
  for (attempt = 0; attempt < 2; attempt++) {
    int huge = want_huge && attempt == 0;
    uint64_t gran = caps->page_size;
    if (huge && caps->huge_page_size > gran)
      gran = caps->huge_page_size;
    if (size > UINT64_MAX - FERRY_HDR_REGION - gran)
      return seg_free(s),
             ferry__err(FERRY_EINVAL, "segment size %llu is too large",
                        (unsigned long long)size);
    total = (FERRY_HDR_REGION + size + gran - 1) / gran * gran;
    if (total > (uint64_t)SIZE_MAX) /* 32-bit: refuse before reserving */
      return seg_free(s),
             ferry__err(FERRY_ETOOBIG,
                        "a segment of %llu bytes cannot be mapped in a "
                        "%u-bit process",
                        (unsigned long long)size,
                        (unsigned)(sizeof(void *) * 8));
    if (kind == FERRY_KIND_NAMED)
      rc = ferry_os_shm_create(&s->os, s->os_name, total, o->mode,
                               osflags | (huge ? FERRY_OS_HUGE : 0u));
    else if (kind == FERRY_KIND_FILE)
      rc = ferry_os_file_create(&s->os, s->os_name, total, o->mode,
                                osflags | (huge ? FERRY_OS_HUGE : 0u));
    else
      rc = ferry_os_anon_create(&s->os, total,
                                osflags | (huge ? FERRY_OS_HUGE : 0u));
    if (!(rc == FERRY_ENOTSUP && huge && (o->flags & FERRY_SEG_HUGEPAGES_TRY)))
      break;
  }
  if (rc != 0)
    goto fail;
  ferry__err_clear(); /* a huge-page fallback is not an error */

  rc = ferry__map(&s->os, 0, total, map_flags(o, 1), (void **)&s->base,
                  &s->guard);
  if (rc != 0) {
    ferry__err_ctx(rc, "map %s", s->os_name);
    goto fail_unlink;
  }
  s->map_len = total;
  s->created = 1;
  if (init) /* the payload is ready before the header says so */
    init(s->base + FERRY_HDR_REGION, size, ctx);
  hdr_publish(s, kind, kind == FERRY_KIND_FILE ? path_basename(name) : name,
              size, o);
  *out = s;
  return 0;

fail_unlink:
  if (kind == FERRY_KIND_NAMED)
    ferry_os_shm_unlink(s->os_name);
  else if (kind == FERRY_KIND_FILE)
    ferry_os_file_unlink(s->os_name);
fail:
  seg_free(s);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Open                                                                   */

static int seg_open_existing(ferry_segment **out, uint32_t kind,
                             const char *name, int readonly,
                             const ferry_segment_opts *o, int *removed) {
  ferry_segment *s = seg_alloc("");
  int rc;
  *removed = 0;
  if (!s)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  s->readonly = readonly;
  s->global = (o->flags & FERRY_SEG_GLOBAL) != 0;
  if (kind == FERRY_KIND_NAMED) {
    rc = ferry_os_object_name(FERRY_OS_NAME_SEGMENT, name, s->global,
                              s->os_name, sizeof s->os_name);
    if (rc == 0)
      rc = ferry_os_shm_open(&s->os, s->os_name, !readonly);
  } else {
    snprintf(s->os_name, sizeof s->os_name, "%s", name);
    rc = ferry_os_file_open(&s->os, name, !readonly);
  }
  if (rc == 0)
    rc = seg_attach(s, kind == FERRY_KIND_NAMED ? name : NULL, 1, o, removed);
  if (rc == 0 && s->hdr.kind != kind)
    rc = ferry__err(FERRY_EBADHDR, "%s: header says kind %u, expected %u",
                    s->os_name, (unsigned)s->hdr.kind, (unsigned)kind);
  if (rc != 0) {
    seg_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int ferry_segment_open(ferry_segment **seg, const char *name, unsigned flags,
                       uint64_t size, const ferry_segment_opts *opts) {
  return ferry__segment_open_init(seg, name, flags, size, opts, NULL, NULL);
}

int ferry__segment_open_init(ferry_segment **seg, const char *name,
                             unsigned flags, uint64_t size,
                             const ferry_segment_opts *opts,
                             ferry__seg_init_fn init, void *ctx) {
  const unsigned known = FERRY_CREATE | FERRY_EXCL | FERRY_RDONLY | FERRY_FILE;
  ferry_segment_opts o;
  uint32_t kind = (flags & FERRY_FILE) ? FERRY_KIND_FILE : FERRY_KIND_NAMED;
  int rc, tries, removed;

  ferry__err_clear();
  if (!seg)
    return ferry__err(FERRY_EINVAL, "seg is NULL");
  *seg = NULL;
  if (flags & ~known)
    return ferry__err(FERRY_EINVAL, "unknown open flags 0x%x", flags & ~known);
  if ((flags & FERRY_RDONLY) && (flags & FERRY_CREATE))
    return ferry__err(FERRY_EINVAL,
                      "FERRY_RDONLY cannot be combined with FERRY_CREATE");
  if ((flags & FERRY_EXCL) && !(flags & FERRY_CREATE))
    return ferry__err(FERRY_EINVAL, "FERRY_EXCL needs FERRY_CREATE");
  rc = opts_load(opts, &o);
  if (rc != 0)
    return rc;
  if (kind == FERRY_KIND_NAMED) {
    rc = ferry_name_check(name);
    if (rc != 0)
      return rc;
  } else if (!name || !name[0] || strlen(name) >= FERRY_PATH_MAX) {
    return ferry__err(FERRY_EINVAL, "file path is empty or too long");
  }

  if ((flags & FERRY_CREATE) && (flags & FERRY_EXCL))
    return seg_create(seg, kind, name, size, &o, init, ctx);
  if (!(flags & FERRY_CREATE)) {
    rc = seg_open_existing(seg, kind, name, (flags & FERRY_RDONLY) != 0, &o,
                           &removed);
    return rc;
  }
  /* Open-or-create: whoever wins the exclusive create initialises; the rest
   * open and wait for the header to be published. A creator that fails
   * removes the name, and the losers then try again. */
  for (tries = 0; tries < OPEN_OR_CREATE_TRIES; tries++) {
    rc = seg_open_existing(seg, kind, name, 0, &o, &removed);
    if (rc != FERRY_ENOENT)
      return rc;
    rc = seg_create(seg, kind, name, size, &o, init, ctx);
    if (rc != FERRY_EEXIST)
      return rc;
  }
  return ferry__err(FERRY_EBUSY,
                    "%s: gave up after %d rounds of racing creators and "
                    "removers",
                    name, OPEN_OR_CREATE_TRIES);
}

int ferry_segment_create_anon(ferry_segment **seg, uint64_t size,
                              const ferry_segment_opts *opts) {
  ferry_segment_opts o;
  int rc;
  ferry__err_clear();
  if (!seg)
    return ferry__err(FERRY_EINVAL, "seg is NULL");
  *seg = NULL;
  rc = opts_load(opts, &o);
  if (rc != 0)
    return rc;
  if (o.flags & FERRY_SEG_GLOBAL)
    return ferry__err(FERRY_EINVAL, "an anonymous segment has no namespace");
  return seg_create(seg, FERRY_KIND_ANON, NULL, size, &o, NULL, NULL);
}

int ferry_segment_open_handle(ferry_segment **seg, ferry_handle h,
                              unsigned flags, const ferry_segment_opts *opts) {
  ferry_segment_opts o;
  ferry_segment *s;
  int rc, removed;
  ferry__err_clear();
  if (!seg)
    return ferry__err(FERRY_EINVAL, "seg is NULL");
  *seg = NULL;
  if (flags & ~(unsigned)FERRY_RDONLY)
    return ferry__err(FERRY_EINVAL, "only FERRY_RDONLY applies to a handle");
  rc = opts_load(opts, &o);
  if (rc != 0)
    return rc;
  s = seg_alloc("");
  if (!s)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  snprintf(s->os_name, sizeof s->os_name, "segment behind handle %lld",
           (long long)h);
  s->readonly = (flags & FERRY_RDONLY) != 0;
  rc = ferry_os_handle_open(&s->os, (ferry_os_handle)h, !s->readonly);
  if (rc == 0)
    rc = seg_attach(s, NULL, 0, &o, &removed);
  if (rc == 0 && s->hdr.kind == FERRY_KIND_ANON && !removed)
    snprintf(s->os_name, sizeof s->os_name, "anonymous segment");
  if (rc != 0) {
    seg_free(s);
    return rc;
  }
  if (s->hdr.kind == FERRY_KIND_NAMED)
    ferry_os_object_name(FERRY_OS_NAME_SEGMENT, s->hdr.name, 0, s->os_name,
                         sizeof s->os_name);
  *seg = s;
  return 0;
}

ferry_handle ferry_segment_handle(const ferry_segment *seg) {
  return seg ? (ferry_handle)seg->os.h : (ferry_handle)FERRY_OS_NO_HANDLE;
}

int ferry_segment_close(ferry_segment *seg) {
  seg_free(seg);
  return 0;
}

int ferry_segment_unlink(const char *name, unsigned flags) {
  char osname[FERRY_PATH_MAX];
  int rc;
  ferry__err_clear();
  if (flags & ~(unsigned)(FERRY_FILE))
    return ferry__err(FERRY_EINVAL, "only FERRY_FILE applies to unlink");
  if (flags & FERRY_FILE) {
    /* Remove only what carries ferry's magic: `ferry rm notes.txt` must not
     * delete a user's file, even an empty one. (A file-backed segment whose
     * creator died before writing its header has no magic yet: the message
     * says to remove it by hand.) */
    ferry_os_shm f;
    struct ferry__guard *g = NULL;
    uint8_t *p = NULL;
    uint64_t size = 0;
    int removed, ours = 0;
    if (!name || !name[0])
      return ferry__err(FERRY_EINVAL, "file path is empty");
    rc = ferry_os_file_open(&f, name, 0);
    if (rc != 0)
      return rc;
    rc = ferry_os_shm_stat(&f, &size, &removed);
    if (rc == 0 && size >= 8 && ferry__map(&f, 0, 8, 0, (void **)&p, &g) == 0) {
      ours = memcmp(p, FERRY_HDR_MAGIC, 8) == 0 && ferry__guard_lost(g) == 0;
      ferry__unmap(p, 8, g);
    }
    ferry_os_shm_close(&f);
    if (!ours)
      return ferry__err(FERRY_EBADHDR,
                        "%s is not a ferry segment (no ferry header); not "
                        "removing it",
                        name);
    return ferry_os_file_unlink(name);
  }
  rc = ferry_name_check(name);
  if (rc != 0)
    return rc;
  rc = ferry_os_object_name(FERRY_OS_NAME_SEGMENT, name, 0, osname,
                            sizeof osname);
  if (rc != 0)
    return rc;
  return ferry_os_shm_unlink(osname);
}

int ferry_segment_os_name(const char *name, unsigned flags, char *buf,
                          size_t cap) {
  int rc;
  ferry__err_clear();
  rc = ferry_name_check(name);
  if (rc != 0)
    return rc;
  if (!buf || cap == 0)
    return ferry__err(FERRY_EINVAL, "no buffer");
  return ferry_os_object_name(FERRY_OS_NAME_SEGMENT, name,
                              (flags & FERRY_SEG_GLOBAL) != 0, buf, cap);
}

void *ferry_segment_data(const ferry_segment *seg) {
  return seg ? seg->base + seg->hdr.data_offset : NULL;
}

uint64_t ferry_segment_data_size(const ferry_segment *seg) {
  return seg ? seg->hdr.data_size : 0;
}

int ferry_segment_check(const ferry_segment *seg) {
  uint64_t at, now = 0;
  int removed = 0;
  if (!seg)
    return FERRY_EINVAL;
  at = ferry__guard_lost(seg->guard);
  if (at == 0)
    return 0;
  if (ferry_os_shm_stat(&seg->os, &now, &removed) == 0 && now < seg->map_len)
    return ferry__err(FERRY_ESIZE,
                      "%s was shrunk to %llu bytes by another process while "
                      "mapped (%llu bytes): this process touched offset %llu, "
                      "beyond the new end, and from there on sees private "
                      "zeros, not the segment; close it",
                      seg->os_name, (unsigned long long)now,
                      (unsigned long long)seg->map_len,
                      (unsigned long long)(at - 1));
  return ferry__err(FERRY_ESIZE,
                    "%s: the page at offset %llu could not be provided (an "
                    "I/O error, or a full file system under a sparse file; "
                    "the object is %llu bytes now): this process sees private "
                    "zeros from there on, not the segment; close it",
                    seg->os_name, (unsigned long long)(at - 1),
                    (unsigned long long)now);
}

int ferry_segment_get_info(const ferry_segment *seg, ferry_segment_info *info,
                           size_t info_size) {
  ferry_segment_info i;
  const struct ferry_hdr *h;
  if (!seg || !info)
    return ferry__err(FERRY_EINVAL, "seg or info is NULL");
  h = &seg->hdr;
  memset(&i, 0, sizeof i);
  i.kind = h->kind;
  i.payload = h->payload;
  i.version_major = h->version_major;
  i.version_minor = h->version_minor;
  i.header_size = h->header_size;
  i.state = ferry__load_acquire(&((const struct ferry_hdr *)seg->base)->state);
  i.seg_flags = h->seg_flags;
  i.mode = h->mode;
  i.total_size = h->total_size;
  i.data_offset = h->data_offset;
  i.data_size = h->data_size;
  i.creator_pid = h->creator_pid;
  i.creator_start = h->creator_start;
  i.creator_boot = h->creator_boot;
  i.created_ns = h->created_ns;
  i.header_crc = h->header_crc;
  i.creator_alive =
      ferry__proc_alive(h->creator_pid, h->creator_start, h->creator_boot);
  i.readonly = seg->readonly;
  i.created = seg->created;
  memcpy(i.name, h->name, h->name_len);
  i.name[h->name_len] = '\0';
  snprintf(i.os_name, sizeof i.os_name, "%s", seg->os_name);
  memcpy(info, &i, info_size < sizeof i ? info_size : sizeof i);
  return 0;
}

int ferry_segment_list(ferry_list_cb cb, void *ctx) {
  ferry__err_clear();
  if (!cb)
    return ferry__err(FERRY_EINVAL, "callback is NULL");
  return ferry_os_shm_list(cb, ctx);
}

const char *ferry__segment_os_name(const ferry_segment *seg) {
  return seg->os_name;
}

int ferry__segment_created(const ferry_segment *seg) { return seg->created; }

int ferry__segment_waitpoint_open(const ferry_segment *seg, unsigned index,
                                  ferry_os_waitpoint *wp) {
  /* The key: the ferry name, or for an anonymous or file-backed segment its
   * creator's identity ('@' cannot start a ferry name, so no named segment
   * has such a key). */
  char key[FERRY_NAME_MAX + 1];
  if (seg->hdr.kind == FERRY_KIND_NAMED && seg->hdr.name[0])
    snprintf(key, sizeof key, "%.*s", (int)FERRY_NAME_MAX, seg->hdr.name);
  else
    snprintf(key, sizeof key, "@seg-%llx-%llx",
             (unsigned long long)seg->hdr.creator_pid,
             (unsigned long long)seg->hdr.creator_start);
  return ferry_os_waitpoint_open(wp, key, seg->global, seg->hdr.mode, index);
}

struct ferry__guard *ferry__segment_guard(const ferry_segment *seg) {
  return seg->guard;
}

uint32_t ferry__segment_payload(const ferry_segment *seg) {
  return seg->hdr.payload;
}

int ferry__opts_copy(void *dst, size_t dst_size, const void *src,
                     const char *init_macro) {
  uint32_t n = 0;
  memset(dst, 0, dst_size);
  if (src) {
    memcpy(&n, src, sizeof n); /* every options struct starts with its size */
    if (n < sizeof(uint32_t))
      return ferry__err(FERRY_EINVAL,
                        "opts.struct_size is %u: initialise options with %s",
                        (unsigned)n, init_macro);
    memcpy(dst, src, n < dst_size ? n : dst_size);
  }
  n = (uint32_t)dst_size;
  memcpy(dst, &n, sizeof n);
  return 0;
}
