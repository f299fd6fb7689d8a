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
