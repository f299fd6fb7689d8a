/*
 * Guarded mappings: memory that another process can cut off.
 *
 * Any process that may write a POSIX named object or a file may also
 * ftruncate it, and an access to a mapping beyond the object's new end then
 * raises SIGBUS (so does touching a page of a sparse file on a full file
 * system). ferry maps such objects through ferry__map(), which records each
 * mapping in a process-wide registry and hands back its entry. When an
 * access faults inside one, the fault handler (ferry_fault_recover) records
 * the offset in the entry, replaces the mapping from the faulting page to
 * its end with private zero-filled memory, and lets the access retry: the
 * process reads zeros instead of dying. The data there is gone for this
 * process, so every operation on the mapping fails from then on with
 * FERRY_ESIZE: channels, pools and windows check their entry
 * (ferry__guard_lost: one load) at their entry points, after copying, and
 * while they wait; mutexes, which know only an address, ask
 * ferry__addr_lost(). docs/design.md ("Shrunk while mapped") has the rest.
 */
#ifndef FERRY_GUARD_H
#define FERRY_GUARD_H

#include <stdatomic.h>
#include <stdint.h>

#include "os/os.h"

/* A registered mapping: one slot of the registry. Slots are never freed, so
 * a pointer to one stays valid; it describes the mapping until
 * ferry__unmap(). SEQ is odd while the slot is being rewritten (a seqlock
 * for the signal handler, which must not see one mapping's base with
 * another's length). */
struct ferry__guard {
  _Atomic uint32_t used;  /* claimed by a registration */
  _Atomic uint32_t seq;   /* odd while base/len/gran/write change */
  _Atomic uintptr_t base; /* the mapping's address; 0 when free */
  _Atomic uintptr_t len;  /* its length */
  _Atomic uintptr_t gran; /* its page size (a power of two) */
  _Atomic uint32_t write; /* mapped writable */
  _Atomic uint64_t lost;  /* 1 + offset of the first page lost, or 0 */
};

/* Faults repaired in this process so far. */
extern _Atomic uint32_t ferry__fault_count;

/* ferry_os_map / ferry_os_unmap, plus registration of the mapping when
 * another process can shrink the object under it: *G is then its entry,
 * else NULL. FERRY_ENOMEM when the registry cannot grow (the mapping is
 * then undone). */
int ferry__map(const ferry_os_shm *o, uint64_t offset, uint64_t len,
               unsigned flags, void **addr, struct ferry__guard **g);
int ferry__unmap(void *addr, uint64_t len, struct ferry__guard *g);

/* 1 + the offset (from the mapping's start) of the first page that the
 * mapping of G lost, or 0 when it has lost none (or G is NULL). The compiler
 * fence keeps the check after the accesses it vouches for: the handler that
 * sets it runs in the middle of them. */
static inline uint64_t ferry__guard_lost(const struct ferry__guard *g) {
  atomic_signal_fence(memory_order_seq_cst);
  return g ? atomic_load_explicit(&g->lost, memory_order_acquire) : 0;
}

/* 1 when ADDR lies in a guarded mapping at or beyond the first page it
 * lost (its contents are private zeros now), else 0. Walks the registry,
 * but only once some fault has been repaired in this process. */
int ferry__addr_lost(const void *addr);

#endif
