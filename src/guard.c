/* Guarded mappings (src/guard.h): the registry and the fault recovery. The
 * registry is read from a signal handler, so it is lock-free: chunks of
 * slots that are only ever appended (and never freed), each slot claimed
 * with a CAS and rewritten under its seqlock. */
#include "guard.h"

#include <stdlib.h>

#include "error.h"
#include "ferry.h"

#define GUARD_CHUNK_SLOTS 64

struct guard_chunk {
  struct ferry__guard slots[GUARD_CHUNK_SLOTS];
  struct guard_chunk *_Atomic next;
};

_Atomic uint32_t ferry__fault_count;

static struct guard_chunk guard_first;

/* 0: ferry installs its handler at the first guarded mapping; 1: installed;
 * 2: turned off by ferry_fault_guard(0). */
static _Atomic int guard_mode;

/* A consistent snapshot of slot S: 1 and BASE, LEN, GRAN, WRITE when it
 * describes a mapping, 0 when it is free or changing. Async-signal-safe. */
static int slot_read(struct ferry__guard *s, uintptr_t *base, uintptr_t *len,
                     uintptr_t *gran, uint32_t *write) {
  uint32_t q = atomic_load_explicit(&s->seq, memory_order_acquire);
  if (q & 1)
    return 0;
  *base = atomic_load_explicit(&s->base, memory_order_relaxed);
  *len = atomic_load_explicit(&s->len, memory_order_relaxed);
  *gran = atomic_load_explicit(&s->gran, memory_order_relaxed);
  *write = atomic_load_explicit(&s->write, memory_order_relaxed);
  atomic_thread_fence(memory_order_acquire);
  return *base != 0 && atomic_load_explicit(&s->seq, memory_order_relaxed) == q;
}

/* The slot whose mapping holds ADDR, with its snapshot, or NULL.
 * Async-signal-safe. */
static struct ferry__guard *slot_find(uintptr_t addr, uintptr_t *base,
                                      uintptr_t *len, uintptr_t *gran,
                                      uint32_t *write) {
  struct guard_chunk *c;
  for (c = &guard_first; c;
       c = atomic_load_explicit(&c->next, memory_order_acquire)) {
    unsigned i;
    for (i = 0; i < GUARD_CHUNK_SLOTS; i++) {
      struct ferry__guard *s = &c->slots[i];
      if (slot_read(s, base, len, gran, write) && addr >= *base &&
          addr - *base < *len)
        return s;
    }
  }
  return NULL;
}

/* Rewrites slot S (claimed by the caller) under its seqlock. */
static void slot_write(struct ferry__guard *s, uintptr_t base, uintptr_t len,
                       uintptr_t gran, uint32_t write) {
  atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed); /* odd */
  atomic_thread_fence(memory_order_release);
  atomic_store_explicit(&s->len, len, memory_order_relaxed);
  atomic_store_explicit(&s->gran, gran, memory_order_relaxed);
  atomic_store_explicit(&s->write, write, memory_order_relaxed);
  atomic_store_explicit(&s->lost, 0, memory_order_relaxed);
  atomic_store_explicit(&s->base, base, memory_order_relaxed);
  atomic_fetch_add_explicit(&s->seq, 1, memory_order_release); /* even */
}

static struct ferry__guard *guard_add(void *addr, uint64_t len, uint64_t gran,
                                      int write) {
  struct guard_chunk *c = &guard_first;
  for (;;) {
    struct guard_chunk *next;
    unsigned i;
    for (i = 0; i < GUARD_CHUNK_SLOTS; i++) {
      struct ferry__guard *s = &c->slots[i];
      uint32_t free_ = 0;
      if (atomic_load_explicit(&s->used, memory_order_relaxed) != 0 ||
          !atomic_compare_exchange_strong(&s->used, &free_, 1u))
        continue;
      slot_write(s, (uintptr_t)addr, (uintptr_t)len, (uintptr_t)gran,
                 write ? 1u : 0u);
      return s;
    }
    next = atomic_load_explicit(&c->next, memory_order_acquire);
    if (!next) {
      struct guard_chunk *fresh =
          (struct guard_chunk *)calloc(1, sizeof *fresh);
      if (!fresh)
        return NULL;
      if (atomic_compare_exchange_strong(&c->next, &next, fresh))
        next = fresh;
      else
        free(fresh); /* another thread appended one: use that */
    }
    c = next;
  }
}

int ferry_fault_recover(void *addr) {
  uintptr_t a = (uintptr_t)addr, b, len, gran, page;
  uint32_t write;
  uint64_t off, cur;
  struct ferry__guard *s = slot_find(a, &b, &len, &gran, &write);
  if (!s)
    return 0;
  page = b + ((a - b) & ~(gran - 1));
  cur = atomic_load_explicit(&s->lost, memory_order_relaxed);
  /* Say so before the zeros appear: whoever reads them and then checks
   * (another thread, too) must find the loss recorded. */
  for (off = (uint64_t)(page - b) + 1;
       (cur == 0 || off < cur) &&
       !atomic_compare_exchange_weak(&s->lost, &cur, off);) {
  } /* the lowest page lost (a file may shrink twice) */
  atomic_fetch_add_explicit(&ferry__fault_count, 1, memory_order_seq_cst);
  /* Everything from the faulting page on lies beyond the object's end. */
  return ferry_os_fault_patch((void *)page, (size_t)(b + len - page),
                              (int)write) == 0;
}

int ferry__addr_lost(const void *addr) {
  uintptr_t b, len, gran;
  uint32_t write;
  uint64_t lost;
  struct ferry__guard *s;
  atomic_signal_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&ferry__fault_count, memory_order_acquire) == 0)
    return 0;
  s = slot_find((uintptr_t)addr, &b, &len, &gran, &write);
  if (!s)
    return 0;
  lost = atomic_load_explicit(&s->lost, memory_order_acquire);
  return lost != 0 && (uintptr_t)addr - b >= lost - 1;
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
               unsigned flags, void **addr, struct ferry__guard **g) {
  const ferry_os_caps *caps;
  uint64_t gran;
  int rc = ferry_os_map(o, offset, len, flags, addr);
  *g = NULL;
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
  *g = guard_add(*addr, len, gran, (flags & FERRY_OS_MAP_WRITE) != 0);
  if (!*g) {
    ferry_os_unmap(*addr, len);
    *addr = NULL;
    return ferry__err(FERRY_ENOMEM,
                      "out of memory for the registry of mappings");
  }
  return 0;
}

int ferry__unmap(void *addr, uint64_t len, struct ferry__guard *g) {
  if (g) { /* first: the address range may be reused at once */
    slot_write(g, 0, 0, 0, 0);
    atomic_store_explicit(&g->used, 0u, memory_order_release);
  }
  return ferry_os_unmap(addr, len);
}
