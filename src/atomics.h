/* Memory ordering through named helpers over C11 <stdatomic.h> (the idea of
 * liburing's barrier.h). Shared-memory fields that are accessed concurrently
 * are declared _Atomic with a fixed width; these helpers say which ordering
 * each access needs, so a reader sees the protocol, not the mechanism. */
#ifndef FERRY_ATOMICS_H
#define FERRY_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

_Static_assert(sizeof(_Atomic uint32_t) == 4, "atomic u32 is 4 bytes");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "atomic u64 is 8 bytes");
_Static_assert(_Alignof(_Atomic uint64_t) == 8, "atomic u64 is 8-aligned");

/* Shared atomics are used by several processes, possibly of different ABIs
 * (a 32-bit and a 64-bit process share segments), so every one must be a
 * lock-free instruction on the shared word itself. A compiler that would
 * fall back to libatomic's lock table (private to each process: no mutual
 * exclusion between processes at all) is refused here. On i386 this needs
 * cmpxchg8b, i.e. -march=i586 or later (gcc -m32 and clang -m32 default to
 * i686); -march=i386 trips it. (clang says ATOMIC_LLONG_LOCK_FREE is 1 on
 * i386 because a plain long long may be 4-aligned; an _Atomic one is
 * 8-aligned, which its builtin takes into account.) */
#if defined(__clang__)
_Static_assert(__atomic_always_lock_free(sizeof(uint64_t), 0) &&
                   __atomic_always_lock_free(sizeof(uint32_t), 0),
               "32- and 64-bit atomics must always be lock-free");
#elif ATOMIC_INT_LOCK_FREE != 2 || ATOMIC_LLONG_LOCK_FREE != 2
#error                                                                         \
    "32- and 64-bit atomics must always be lock-free (build for i586 or later)"
#endif

#define ferry__load_acquire(p) atomic_load_explicit((p), memory_order_acquire)
#define ferry__load_relaxed(p) atomic_load_explicit((p), memory_order_relaxed)
#define ferry__store_release(p, v)                                             \
  atomic_store_explicit((p), (v), memory_order_release)
#define ferry__store_relaxed(p, v)                                             \
  atomic_store_explicit((p), (v), memory_order_relaxed)

/* Acquire/release access to a plain 64-bit field that another process may be
 * writing (the creator's identity in a header still being initialised). The
 * field must be 8-byte aligned, which the layouts' _Static_asserts ensure. */
static inline uint64_t ferry__peek_u64(const uint64_t *p) {
  return atomic_load_explicit((const _Atomic uint64_t *)p,
                              memory_order_acquire);
}
static inline void ferry__poke_u64(uint64_t *p, uint64_t v) {
  atomic_store_explicit((_Atomic uint64_t *)p, v, memory_order_release);
}

#endif
