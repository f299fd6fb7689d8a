/* Guarded mappings (src/guard.h): the registry and the fault recovery. The
 * registry is read from a signal handler, so it is lock-free: chunks of
 * slots that are only ever appended (and freed at no point), each slot
 * claimed with a CAS and published by a release store of its base. */
#include "guard.h"

#include <stdlib.h>

#include "error.h"
#include "ferry.h"

#define GUARD_CHUNK_SLOTS 64

struct guard_slot {
  _Atomic uint32_t used;  /* claimed by a registration */
  _Atomic uintptr_t base; /* the mapping's address; 0 while not published */
  _Atomic uintptr_t len;  /* its length */
  _Atomic uintptr_t gran; /* its page size (a power of two) */
  _Atomic uint32_t write; /* mapped writable */
  _Atomic uint64_t fault; /* 1 + offset of the first page lost, or 0 */
};

struct guard_chunk {
  struct guard_slot slots[GUARD_CHUNK_SLOTS];
  struct guard_chunk *_Atomic next;
};

_Atomic uint32_t ferry__fault_count;

static struct guard_chunk guard_first;

/* 0: ferry installs its handler at the first guarded mapping; 1: installed;
 * 2: turned off by ferry_fault_guard(0). */
static _Atomic int guard_mode;

/* The slot whose mapping holds ADDR (EXACT: starts at ADDR), or NULL.
 * Async-signal-safe. */
static struct guard_slot *slot_find(uintptr_t addr, int exact) {
  struct guard_chunk *c;
  for (c = &guard_first; c;
       c = atomic_load_explicit(&c->next, memory_order_acquire)) {
    unsigned i;
    for (i = 0; i < GUARD_CHUNK_SLOTS; i++) {
      struct guard_slot *s = &c->slots[i];
      uintptr_t b = atomic_load_explicit(&s->base, memory_order_acquire);
      if (b != 0 &&
          (exact ? addr == b
                 : addr >= b && addr - b < atomic_load_explicit(
                                               &s->len, memory_order_relaxed)))
        return s;
    }
  }
  return NULL;
}

static int guard_add(void *addr, uint64_t len, uint64_t gran, int write) {
  struct guard_chunk *c = &guard_first;
  for (;;) {
    struct guard_chunk *next;
    unsigned i;
    for (i = 0; i < GUARD_CHUNK_SLOTS; i++) {
      struct guard_slot *s = &c->slots[i];
      uint32_t free_ = 0;
      if (atomic_load_explicit(&s->used, memory_order_relaxed) != 0 ||
          !atomic_compare_exchange_strong(&s->used, &free_, 1u))
        continue;
      atomic_store_explicit(&s->len, (uintptr_t)len, memory_order_relaxed);
      atomic_store_explicit(&s->gran, (uintptr_t)gran, memory_order_relaxed);
      atomic_store_explicit(&s->write, write ? 1u : 0u, memory_order_relaxed);
      atomic_store_explicit(&s->fault, 0, memory_order_relaxed);
      atomic_store_explicit(&s->base, (uintptr_t)addr, memory_order_release);
      return 0;
    }
    next = atomic_load_explicit(&c->next, memory_order_acquire);
    if (!next) {
      struct guard_chunk *fresh =
          (struct guard_chunk *)calloc(1, sizeof *fresh);
      if (!fresh)
        return ferry__err(FERRY_ENOMEM,
                          "out of memory for the registry of mappings");
      if (atomic_compare_exchange_strong(&c->next, &next, fresh))
        next = fresh;
      else
        free(fresh); /* another thread appended one: use that */
    }
    c = next;
  }
}

static void guard_remove(void *addr) {
  struct guard_slot *s = slot_find((uintptr_t)addr, 1);
  if (s) {
    atomic_store_explicit(&s->base, 0, memory_order_release);
    atomic_store_explicit(&s->used, 0u, memory_order_release);
  }
}

int ferry_fault_recover(void *addr) {
  uintptr_t a = (uintptr_t)addr, b, len, gran, page;
  uint64_t none = 0;
  struct guard_slot *s = slot_find(a, 0);
  if (!s)
    return 0;
  b = atomic_load_explicit(&s->base, memory_order_acquire);
  len = atomic_load_explicit(&s->len, memory_order_relaxed);
  gran = atomic_load_explicit(&s->gran, memory_order_relaxed);
  if (b == 0 || a < b || a - b >= len)
    return 0; /* unregistered meanwhile */
  page = b + ((a - b) & ~(gran - 1));
  /* Everything from the faulting page on lies beyond the object's end. */
  if (ferry_os_fault_patch(
          (void *)page, (size_t)(b + len - page),
          (int)atomic_load_explicit(&s->write, memory_order_relaxed)) != 0)
    return 0; /* cannot repair it: let the fault take its course */
  atomic_compare_exchange_strong(&s->fault, &none, (uint64_t)(page - b) + 1);
  atomic_fetch_add_explicit(&ferry__fault_count, 1, memory_order_release);
  return 1;
}

uint64_t ferry__fault_at_slow(const void *addr) {
  struct guard_slot *s = slot_find((uintptr_t)addr, 0);
  return s ? atomic_load_explicit(&s->fault, memory_order_acquire) : 0;
}

int ferry_fault_guard(int on) {
  int rc;
  ferry__err_clear();
  rc = ferry_os_fault_handler(on, ferry_fault_recover);
  if (rc == 0)
    atomic_store(&guard_mode, on ? 1 : 2);
  return rc;
}

int ferry__map(const ferry_os_shm *o, uint64_t offset, uint64_t len,
               unsigned flags, void **addr) {
  const ferry_os_caps *caps;
  uint64_t gran;
  int rc = ferry_os_map(o, offset, len, flags, addr);
  if (rc != 0 || !ferry_os_shm_can_shrink(o))
    return rc;
  if (atomic_load(&guard_mode) == 0 &&
      ferry_os_fault_handler(1, ferry_fault_recover) == 0) {
    int unset = 0;
    atomic_compare_exchange_strong(&guard_mode, &unset, 1);
  }
  caps = ferry_os_caps_get();
  gran = o->huge == 1 && caps->huge_page_size > caps->page_size
             ? caps->huge_page_size
             : caps->page_size;
  rc = guard_add(*addr, len, gran, (flags & FERRY_OS_MAP_WRITE) != 0);
  if (rc != 0) {
    ferry_os_unmap(*addr, len);
    *addr = NULL;
  }
  return rc;
}

int ferry__unmap(void *addr, uint64_t len) {
  guard_remove(addr); /* first: the address range may be reused at once */
  return ferry_os_unmap(addr, len);
}
