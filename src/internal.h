/* Internal declarations shared between library modules (ferry__ tier). */
#ifndef FERRY_INTERNAL_H
#define FERRY_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

/* 1 if the process PID with start time START (from ferry_os_proc_start) in
 * boot BOOT (ferry_os_boot_id) is running, 0 if it is gone (or the pid now
 * belongs to another process), -1 if the OS will not tell. */
int ferry__proc_alive(uint64_t pid, uint64_t start, uint64_t boot);

#include "ferry.h"
#include "os/os.h"

/* Initialises a new segment's payload (DATA, SIZE bytes, zero-filled)
 * before its header is published. */
typedef void (*ferry__seg_init_fn)(void *data, uint64_t size, void *ctx);

/* ferry_segment_open() with a payload initialiser for the creator. */
int ferry__segment_open_init(ferry_segment **seg, const char *name,
                             unsigned flags, uint64_t size,
                             const ferry_segment_opts *opts,
                             ferry__seg_init_fn init, void *ctx);

/* Copies an options struct that begins with its own uint32_t size: the
 * caller's bytes, up to the smaller of the two sizes, over zeroes (so fields
 * the caller's version does not know get their defaults). NULL SRC gives all
 * defaults. FERRY_EINVAL when SRC's size field is too small, naming
 * INIT_MACRO. */
int ferry__opts_copy(void *dst, size_t dst_size, const void *src,
                     const char *init_macro);

/* The segment's OS name and whether the calling handle created it. */
const char *ferry__segment_os_name(const ferry_segment *seg);
int ferry__segment_created(const ferry_segment *seg);
uint32_t ferry__segment_payload(const ferry_segment *seg);

/* The segment mapping's entry in the registry of guarded mappings
 * (src/guard.h), or NULL when nobody can shrink the object. */
struct ferry__guard *ferry__segment_guard(const ferry_segment *seg);

/* Opens wait point INDEX of the segment (ferry_os_waitpoint_open), under a
 * key of its own: its ferry name, or "@seg-PID-START" (its creator's pid and
 * start time) for an anonymous or file-backed one; in the namespace it was
 * opened in, with the permissions it was created with. */
int ferry__segment_waitpoint_open(const ferry_segment *seg, unsigned index,
                                  ferry_os_waitpoint *wp);

#endif
