/*
 * Guarded mappings: memory that another process can cut off.
 *
 * Any process that may write a POSIX named object or a file may also
 * ftruncate it, and an access to a mapping beyond the object's new end then
 * raises SIGBUS (so does touching a page of a sparse file on a full file
 * system). ferry maps such objects through ferry__map(), which records each
 * mapping in a process-wide registry. When an access faults inside one, the
 * fault handler (ferry_fault_recover) replaces the mapping from the faulting
 * page to its end with private zero-filled memory, records the offset, and
 * lets the access retry: the process reads zeros instead of dying. The data
 * there is gone for this process, so every operation on the mapping fails
 * from then on with FERRY_ESIZE: channels, pools, windows and mutexes check
 * ferry__fault_at() at their entry points, after copying, and while they
 * wait. The check costs one relaxed load of a process-wide counter until
 * the first fault. docs/design.md ("Shrunk while mapped") has the rest.
 */
#ifndef FERRY_GUARD_H
#define FERRY_GUARD_H

#include <stdatomic.h>
#include <stdint.h>

#include "os/os.h"

/* Faults repaired in this process so far. */
extern _Atomic uint32_t ferry__fault_count;

/* ferry_os_map / ferry_os_unmap, plus registration of the mapping when
 * another process can shrink the object under it. FERRY_ENOMEM when the
 * registry cannot grow (the mapping is then undone). */
int ferry__map(const ferry_os_shm *o, uint64_t offset, uint64_t len,
               unsigned flags, void **addr);
int ferry__unmap(void *addr, uint64_t len);

/* 1 + the offset (from the mapping's start) of the first page that the
 * guarded mapping holding ADDR lost, or 0 when it has lost none (or ADDR is
 * in no guarded mapping). */
uint64_t ferry__fault_at_slow(const void *addr);
static inline uint64_t ferry__fault_at(const void *addr) {
  if (atomic_load_explicit(&ferry__fault_count, memory_order_relaxed) == 0)
    return 0;
  return ferry__fault_at_slow(addr);
}

#endif
