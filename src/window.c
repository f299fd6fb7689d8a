/* Windows: a view of a file or a segment of any size through a mapping of a
 * chosen size that slides in steps of the allocation granularity, so that a
 * 6 GiB file can be read from a 32-bit process, and a 400 MB file from a
 * Windows process whose working-set quota refuses to map it whole (error
 * 1132). docs/design.md ("Windows") has the remap policy. Everything
 * OS-specific goes through src/os/os.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ferry.h"
#include "guard.h"
#include "header.h"
#include "internal.h"
#include "os/os.h"

#define DEFAULT_WINDOW (64ull << 20)

struct ferry_window {
  ferry_os_shm os;
  uint64_t base;   /* object offset of the window's byte 0 (segments: the
                      user data offset; files: 0) */
  uint64_t size;   /* bytes the window covers, as at open */
  uint64_t window; /* the largest request at() serves */
  uint64_t gran;   /* allocation granularity: view offsets are multiples */
  uint8_t *view;   /* the current view, or NULL */
  struct ferry__guard *view_guard; /* its registry entry, or NULL */
  uint64_t view_off;  /* object offset of the view (a multiple of gran) */
  uint64_t view_len;  /* bytes mapped at view */
  uint64_t pos;       /* where ferry_window_next() continues (window offset) */
  unsigned map_flags; /* FERRY_OS_MAP_WRITE or 0 */
  uint32_t flags;     /* FERRY_WINDOW_* */
  char os_name[FERRY_PATH_MAX]; /* path or OS name, for messages */
};

/* Returned for zero-length requests when no view covers the offset: a
 * pointer that is not NULL (memcpy(dst, p, 0) is then well defined) and
 * must not be dereferenced. */
static unsigned char empty_byte;

/* ---------------------------------------------------------------------- */
/* Views                                                                  */

static void view_drop(ferry_window *w) {
  if (w->view)
    ferry__unmap(w->view, w->view_len, w->view_guard);
  w->view = NULL;
  w->view_guard = NULL;
  w->view_off = 0;
  w->view_len = 0;
}

/* 0, or FERRY_ESIZE once an access to the current view has faulted (the
 * file was truncated while mapped, or a page of it could not be provided):
 * what was read from that page on was zeros, not the file. The view is
 * dropped, so that a later call maps a new one (after a size check). */
static int view_check(ferry_window *w) {
  uint64_t at, off, now = 0;
  int removed = 0;
  if (!w->view || (at = ferry__guard_lost(w->view_guard)) == 0)
    return 0;
  off = w->view_off + at - 1;
  view_drop(w);
  if (ferry_os_shm_stat(&w->os, &now, &removed) != 0)
    now = 0;
  return ferry__err(FERRY_ESIZE,
                    "%s: an access at byte %llu of it faulted (it is %llu "
                    "bytes now: %s), and the view read zeros from there on, "
                    "not the file",
                    w->os_name, (unsigned long long)off,
                    (unsigned long long)now,
                    now <= off ? "truncated by another process"
                               : "the page could not be provided: an I/O "
                                 "error, or a full file system under a hole");
}

/* Maps LEN bytes of the object from START (a multiple of the granularity;
 * LEN is cut at the end of the window's data) as the view, advised ADVICE. */
static int view_map(ferry_window *w, uint64_t start, uint64_t len,
                    unsigned advice) {
  uint64_t end = w->base + w->size, now = 0;
  int removed = 0, rc;
  struct ferry__guard *g;
  void *p;
  if (len > end - start)
    len = end - start;
  view_drop(w);
  /* A file that shrank under a mapping raises SIGBUS on access beyond its
   * new end. One fstat per remap catches what happened before this point;
   * a truncation while the view is in use is caught by the fault guard
   * (src/guard.h) and reported by view_check. */
  rc = ferry_os_shm_stat(&w->os, &now, &removed);
  if (rc != 0)
    return ferry__err_ctx(rc, "%s", w->os_name);
  if (now < start + len)
    return ferry__err(FERRY_ESIZE,
                      "%s is %llu bytes now, %llu when the window was opened: "
                      "it shrank, and bytes up to %llu cannot be mapped; open "
                      "a new window",
                      w->os_name, (unsigned long long)now,
                      (unsigned long long)end,
                      (unsigned long long)(start + len));
  rc = ferry__map(&w->os, start, len, w->map_flags, &p, &g);
  if (rc != 0)
    return ferry__err_ctx(rc, "%s: view of %llu bytes at %llu", w->os_name,
                          (unsigned long long)len, (unsigned long long)start);
  w->view = (uint8_t *)p;
  w->view_guard = g;
  w->view_off = start;
  w->view_len = len;
  if (advice != FERRY_OS_ADVISE_NORMAL)
    ferry_os_advise(p, len, advice);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Open and close                                                         */

static int opts_load(const ferry_window_opts *in, ferry_window_opts *o) {
  const uint32_t known = FERRY_WINDOW_RANDOM;
  int rc = ferry__opts_copy(o, sizeof *o, in, "FERRY_WINDOW_OPTS_INIT");
  if (rc != 0)
    return rc;
  if (o->flags & ~known)
    return ferry__err(FERRY_EINVAL, "unknown window flags 0x%x",
                      (unsigned)(o->flags & ~known));
  if (o->seg_flags & ~(uint32_t)FERRY_SEG_GLOBAL)
    return ferry__err(FERRY_EINVAL,
                      "only FERRY_SEG_GLOBAL applies to a window's "
                      "seg_flags (got 0x%x)",
                      (unsigned)o->seg_flags);
  return 0;
}

/* Allocates a window with the view size from O, checked against what this
 * process can map. */
static int win_alloc(ferry_window **out, const ferry_window_opts *o,
                     unsigned flags) {
  const ferry_os_caps *caps = ferry_os_caps_get();
  uint64_t gran = caps->alloc_granularity, win = o->window;
  ferry_window *w;
  if (win == 0)
    win = DEFAULT_WINDOW;
  if (win > (uint64_t)SIZE_MAX / 2) /* a view is window + granule */
    return ferry__err(FERRY_ETOOBIG,
                      "a window of %llu bytes cannot be mapped in a %u-bit "
                      "process",
                      (unsigned long long)win, (unsigned)(sizeof(void *) * 8));
  win = (win + gran - 1) / gran * gran;
  w = (ferry_window *)calloc(1, sizeof *w);
  if (!w)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  w->os.h = FERRY_OS_NO_HANDLE;
  w->os.file = FERRY_OS_NO_HANDLE;
  w->gran = gran;
  w->window = win;
  w->flags = o->flags;
  w->map_flags = (flags & FERRY_RDONLY) ? 0u : FERRY_OS_MAP_WRITE;
  *out = w;
  return 0;
}

static int check_common(ferry_window **w, const char *name, const char *what) {
  ferry__err_clear();
  if (!w)
    return ferry__err(FERRY_EINVAL, "w is NULL");
  *w = NULL;
  if (!name)
    return ferry__err(FERRY_EINVAL, "%s is NULL", what);
  return 0;
}

int ferry_window_open(ferry_window **out, const char *path, unsigned flags,
                      const ferry_window_opts *opts) {
  ferry_window_opts o;
  ferry_window *w;
  int rc, removed;
  rc = check_common(out, path, "path");
  if (rc != 0)
    return rc;
  if (flags & ~(unsigned)FERRY_RDONLY)
    return ferry__err(FERRY_EINVAL,
                      "only FERRY_RDONLY applies to ferry_window_open "
                      "(got 0x%x)",
                      flags);
  if (!path[0] || strlen(path) >= FERRY_PATH_MAX)
    return ferry__err(FERRY_EINVAL, "file path is empty or too long");
  rc = opts_load(opts, &o);
  if (rc == 0 && o.seg_flags)
    rc = ferry__err(FERRY_EINVAL, "seg_flags apply to segments only");
  if (rc == 0)
    rc = win_alloc(&w, &o, flags);
  if (rc != 0)
    return rc;
  snprintf(w->os_name, sizeof w->os_name, "%s", path);
  rc = ferry_os_file_open(&w->os, path, !(flags & FERRY_RDONLY));
  if (rc == 0)
    rc = ferry_os_shm_stat(&w->os, &w->size, &removed);
  if (rc != 0) {
    ferry_window_close(w);
    return rc;
  }
  *out = w;
  return 0;
}

/* Reads and validates the header of the segment behind W->os (whose real
 * size is OBJ), and points the window at its user data. */
static int seg_header(ferry_window *w, uint64_t obj, const char *expect_name,
                      uint32_t kind) {
  struct ferry_hdr hdr;
  uint64_t len = FERRY_HDR_REGION;
  struct ferry__guard *g;
  void *p;
  int rc;
  if (obj < FERRY_HDR_REGION)
    return ferry__err(FERRY_ESIZE,
                      "%s is %llu bytes: too small to be a ferry segment "
                      "(truncated, foreign, or still being created)",
                      w->os_name, (unsigned long long)obj);
  len = (len + w->gran - 1) / w->gran * w->gran;
  if (len > obj)
    len = obj;
  rc = ferry__map(&w->os, 0, len, 0, &p, &g);
  if (rc != 0)
    return ferry__err_ctx(rc, "%s: header", w->os_name);
  rc = ferry__hdr_validate(p, len, obj, expect_name, &hdr);
  if (ferry__guard_lost(g) != 0) /* shrunk while we read */
    rc = ferry__err(FERRY_ESIZE, "%s shrank while its header was read",
                    w->os_name);
  ferry__unmap(p, len, g);
  if (rc == FERRY_EAGAIN)
    return ferry__err(FERRY_EAGAIN,
                      "%s is still being created (its header is not "
                      "published yet): try again",
                      w->os_name);
  if (rc != 0)
    return ferry__err_ctx(rc, "%s", w->os_name);
  if (hdr.kind != kind)
    return ferry__err(FERRY_EBADHDR, "%s: header says kind %u, expected %u",
                      w->os_name, (unsigned)hdr.kind, (unsigned)kind);
  /* validate checked data_offset + data_size <= total_size == obj */
  w->base = hdr.data_offset;
  w->size = hdr.data_size;
  return 0;
}

int ferry_window_open_segment(ferry_window **out, const char *name,
                              unsigned flags, const ferry_window_opts *opts) {
  const unsigned known = FERRY_RDONLY | FERRY_FILE;
  uint32_t kind = (flags & FERRY_FILE) ? FERRY_KIND_FILE : FERRY_KIND_NAMED;
  ferry_window_opts o;
  ferry_window *w;
  uint64_t obj = 0;
  int rc, removed;
  rc = check_common(out, name, "name");
  if (rc != 0)
    return rc;
  if (flags & ~known)
    return ferry__err(FERRY_EINVAL,
                      "only FERRY_RDONLY and FERRY_FILE apply to "
                      "ferry_window_open_segment (got 0x%x)",
                      flags);
  if (kind == FERRY_KIND_NAMED)
    rc = ferry_name_check(name);
  else if (!name[0] || strlen(name) >= FERRY_PATH_MAX)
    rc = ferry__err(FERRY_EINVAL, "file path is empty or too long");
  if (rc == 0)
    rc = opts_load(opts, &o);
  if (rc == 0)
    rc = win_alloc(&w, &o, flags);
  if (rc != 0)
    return rc;
  if (kind == FERRY_KIND_NAMED) {
    rc = ferry_os_object_name(FERRY_OS_NAME_SEGMENT, name,
                              (o.seg_flags & FERRY_SEG_GLOBAL) != 0, w->os_name,
                              sizeof w->os_name);
    if (rc == 0)
      rc = ferry_os_shm_open(&w->os, w->os_name, !(flags & FERRY_RDONLY));
  } else {
    snprintf(w->os_name, sizeof w->os_name, "%s", name);
    rc = ferry_os_file_open(&w->os, name, !(flags & FERRY_RDONLY));
  }
  if (rc == 0)
    rc = ferry_os_shm_stat(&w->os, &obj, &removed);
  if (rc == 0)
    rc = seg_header(w, obj, kind == FERRY_KIND_NAMED ? name : NULL, kind);
  if (rc != 0) {
    ferry_window_close(w);
    return rc;
  }
  *out = w;
  return 0;
}

int ferry_window_close(ferry_window *w) {
  if (!w)
    return 0;
  view_drop(w);
  ferry_os_shm_close(&w->os);
  free(w);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Access                                                                 */

uint64_t ferry_window_size(const ferry_window *w) { return w ? w->size : 0; }

uint64_t ferry_window_max_len(const ferry_window *w) {
  return w ? w->window : 0;
}

int ferry_window_at(ferry_window *w, uint64_t offset, uint64_t len,
                    void **ptr) {
  uint64_t obj;
  int rc;
  if (!w || !ptr)
    return ferry__err(FERRY_EINVAL, "%s is NULL", w ? "ptr" : "w");
  rc = view_check(w);
  if (rc != 0)
    return rc;
  obj = w->base + offset;
  /* the fast path: inside the current view */
  if (w->view && offset <= w->size && len <= w->window && obj >= w->view_off &&
      obj - w->view_off <= w->view_len &&
      len <= w->view_len - (obj - w->view_off)) {
    *ptr = w->view + (size_t)(obj - w->view_off);
    return 0;
  }
  if (offset > w->size || len > w->size - offset)
    return ferry__err(FERRY_EINVAL,
                      "%s: bytes [%llu, %llu%s) lie beyond its end (%llu "
                      "bytes)",
                      w->os_name, (unsigned long long)offset,
                      (unsigned long long)(offset + len),
                      offset + len < offset ? ", overflowing" : "",
                      (unsigned long long)w->size);
  if (len > w->window)
    return ferry__err(FERRY_ETOOBIG,
                      "%s: a request of %llu bytes is larger than the window "
                      "(%llu bytes, ferry_window_max_len): open the window "
                      "with a larger opts.window",
                      w->os_name, (unsigned long long)len,
                      (unsigned long long)w->window);
  if (len == 0) { /* nothing to map */
    *ptr = &empty_byte;
    return 0;
  }
  /* From the granule holding OBJ, one window and one granule long, so that
   * any request of up to w->window bytes fits whatever its alignment. */
  rc = view_map(w, obj - obj % w->gran, w->window + w->gran,
                (w->flags & FERRY_WINDOW_RANDOM) ? FERRY_OS_ADVISE_RANDOM
                                                 : FERRY_OS_ADVISE_NORMAL);
  if (rc != 0)
    return rc;
  *ptr = w->view + (size_t)(obj - w->view_off);
  return 0;
}

int ferry_window_seek(ferry_window *w, uint64_t offset) {
  int rc;
  if (!w)
    return ferry__err(FERRY_EINVAL, "w is NULL");
  rc = view_check(w);
  if (rc != 0)
    return rc;
  if (offset > w->size)
    return ferry__err(FERRY_EINVAL,
                      "%s: offset %llu lies beyond its end (%llu "
                      "bytes)",
                      w->os_name, (unsigned long long)offset,
                      (unsigned long long)w->size);
  w->pos = offset;
  return 0;
}

int ferry_window_next(ferry_window *w, void **ptr, uint64_t *len) {
  uint64_t obj;
  int rc;
  if (!w || !ptr || !len)
    return ferry__err(FERRY_EINVAL, "%s is NULL",
                      !w     ? "w"
                      : !ptr ? "ptr"
                             : "len");
  rc = view_check(w);
  if (rc != 0)
    return rc;
  if (w->pos >= w->size) {
    *ptr = &empty_byte;
    *len = 0;
    return 0;
  }
  obj = w->base + w->pos;
  if (!w->view || obj < w->view_off || obj >= w->view_off + w->view_len) {
    /* Views at multiples of the window size in the object: a walk from
     * the start maps [0, W), [W, 2W), ..., each aligned as the OS likes
     * best (2 MiB-aligned views map large page-cache folios with PMDs). */
    rc = view_map(w, obj - obj % w->window, w->window,
                  FERRY_OS_ADVISE_SEQUENTIAL);
    if (rc != 0)
      return rc;
  }
  *ptr = w->view + (size_t)(obj - w->view_off);
  *len = w->view_off + w->view_len - obj;
  if (*len > w->window) /* a view that at() mapped is a granule longer */
    *len = w->window;
  w->pos += *len;
  return 1;
}

int ferry_window_flush(ferry_window *w) {
  int rc;
  if (!w)
    return ferry__err(FERRY_EINVAL, "w is NULL");
  rc = view_check(w);
  if (rc != 0)
    return rc;
  if (!(w->map_flags & FERRY_OS_MAP_WRITE))
    return 0; /* nothing was written through it */
  rc = ferry_os_sync(&w->os, w->view, w->view_len);
  if (rc != 0)
    return ferry__err_ctx(rc, "%s: flush", w->os_name);
  return 0;
}
