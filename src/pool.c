/*
 * Pools: fixed-size, reference-counted blocks in a segment, for zero-copy
 * hand-off through channels (layout in src/pool.h, protocol in
 * docs/design.md).
 *
 * Who holds a block is one 64-bit word per block: a generation and a mask
 * with one bit per peer slot. Each process counts its own references to a
 * block privately (local[]); its bit is set while that count is above 0.
 * Every change to a word is a single CAS, so a process killed anywhere
 * leaves each word before or after its step, and what a dead process held
 * is exactly its bit, which a sweeper clears. There is no free list to
 * repair: a block is free when its mask is 0.
 *
 * A reference sent through a channel stays the sender's (a "pending" entry
 * here, in process memory) until every receiver has consumed the message;
 * a receiver takes its own reference before it consumes the message. So no
 * reference is ever owned by nobody.
 */
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "error.h"
#include "ferry.h"
#include "guard.h"
#include "header.h"
#include "internal.h"
#include "os/os.h"
#include "peers.h"
#include "pool.h"

#define FERRY_POOL_TIMEOUT_MAX (INT64_C(1) << 62)

/* A reference this handle keeps for a message sent through a channel,
 * until every receiver has consumed the message (position END). */
struct pending {
  ferry_channel *ch;
  uint64_t end;
  uint32_t index, gen;
};

struct ferry_pool {
  ferry_segment *seg;
  struct ferry__guard *guard; /* the segment's registry entry, or NULL */
  struct ferry_pool_hdr *h;
  struct ferry_pool_slot *peers;
  struct ferry_pool_slot *me; /* NULL for observers */
  _Atomic uint64_t *words;
  uint8_t *blocks;
  uint64_t block_size, stride;
  uint32_t count, max_peers, tag, my_index;
  uint64_t my_bit;
  uint32_t *local; /* our references per block */
  uint64_t allocs; /* allocations through this handle */
  int64_t spin_ns;
  int64_t liveness_ns;
  int64_t next_sweep; /* when an allocator may look for dead peers again */
  ferry_os_waitpoint wp;
  struct pending *pend;
  size_t npend, cap_pend;
  size_t reap_batch; /* alloc reaps once this many messages are pending */
};

/* ---------------------------------------------------------------------- */
/* Layout: create and validate                                            */

uint32_t ferry__pool_crc(const struct ferry_pool_hdr *h) {
  uint8_t line[64];
  memcpy(line, h, 64);
  memset(line + offsetof(struct ferry_pool_hdr, crc), 0, 4);
  return ferry__crc32c(line, 64);
}

int ferry__pool_validate(const struct ferry_pool_hdr *h, uint64_t data_size) {
  uint64_t bytes;
  if (memcmp(h->magic, FERRY_POOL_MAGIC, 8) != 0)
    return ferry__err(FERRY_EBADHDR, "not a pool: pool magic is wrong");
  if (h->version != FERRY_POOL_VERSION)
    return ferry__err(FERRY_EVERSION,
                      "pool layout version %u; this library reads %u",
                      (unsigned)h->version, FERRY_POOL_VERSION);
  if (ferry__pool_crc(h) != h->crc)
    return ferry__err(FERRY_EBADHDR, "pool header checksum mismatch");
  if (h->max_peers < 1 || h->max_peers > FERRY_POOL_PEERS_MAX)
    return ferry__err(FERRY_EBADHDR, "pool max_peers %u is out of range",
                      (unsigned)h->max_peers);
  if (h->block_count < 1 || h->block_count > FERRY_POOL_BLOCKS_MAX)
    return ferry__err(FERRY_EBADHDR, "pool block count %u is out of range",
                      (unsigned)h->block_count);
  if (h->block_size < 1 || h->block_size > FERRY_POOL_BYTES_MAX ||
      h->block_stride != ferry__pool_stride(h->block_size))
    return ferry__err(FERRY_EBADHDR,
                      "pool block size %llu / stride %llu is "
                      "invalid",
                      (unsigned long long)h->block_size,
                      (unsigned long long)h->block_stride);
  bytes = h->block_stride * h->block_count; /* < 2^46 * 2^24: no overflow */
  if (bytes > FERRY_POOL_BYTES_MAX)
    return ferry__err(FERRY_EBADHDR, "pool of %llu bytes is too large",
                      (unsigned long long)bytes);
  if (h->tag < 1 || h->tag > FERRY_POOL_TAG_MAX)
    return ferry__err(FERRY_EBADHDR, "pool handle tag %u is invalid",
                      (unsigned)h->tag);
  if (h->peers_offset != FERRY_POOL_HDR_SIZE ||
      h->words_offset != ferry__pool_words_offset(h->max_peers) ||
      h->blocks_offset !=
          ferry__pool_blocks_offset(h->max_peers, h->block_count) ||
      h->reserved0 != 0)
    return ferry__err(FERRY_EBADHDR, "pool offsets are inconsistent");
  if (h->blocks_offset + bytes > data_size)
    return ferry__err(FERRY_ESIZE,
                      "pool blocks (%llu bytes at %llu) overrun the "
                      "%llu-byte segment",
                      (unsigned long long)bytes,
                      (unsigned long long)h->blocks_offset,
                      (unsigned long long)data_size);
  return 0;
}

int ferry__pool_handle_parse(uint64_t h, uint32_t tag, uint32_t count,
                             uint32_t *index, uint32_t *gen) {
  uint32_t i = (uint32_t)(h & (FERRY_POOL_BLOCKS_MAX - 1));
  uint32_t g = (uint32_t)(h >> FERRY_POOL_INDEX_BITS) & FERRY_POOL_GEN_MAX;
  if ((uint32_t)(h >> 48) != tag || g == 0 || i >= count)
    return FERRY_ECORRUPT;
  *index = i;
  *gen = g;
  return 0;
}

struct pool_init {
  uint64_t block_size;
  uint32_t count, max_peers, tag;
};

static void pool_init(void *data, uint64_t size, void *ctx) {
  const struct pool_init *pi = (const struct pool_init *)ctx;
  struct ferry_pool_hdr *h = (struct ferry_pool_hdr *)data;
  (void)size;
  memcpy(h->magic, FERRY_POOL_MAGIC, 8);
  h->version = FERRY_POOL_VERSION;
  h->max_peers = pi->max_peers;
  h->block_size = pi->block_size;
  h->block_stride = ferry__pool_stride(pi->block_size);
  h->block_count = pi->count;
  h->tag = pi->tag;
  h->peers_offset = FERRY_POOL_HDR_SIZE;
  h->words_offset = ferry__pool_words_offset(pi->max_peers);
  h->blocks_offset = ferry__pool_blocks_offset(pi->max_peers, pi->count);
  h->crc = ferry__pool_crc(h);
  /* everything else starts at zero: every block free, generation 0 */
}

/* A handle tag that differs between pools (so a handle sent to the wrong
 * pool is refused): 16 bits of a hash of pid and clocks, never 0. */
static uint32_t new_tag(void) {
  uint64_t x = ferry_os_pid() * UINT64_C(0x9e3779b97f4a7c15) ^
               (uint64_t)ferry_os_monotonic_ns() ^
               (uint64_t)ferry_os_realtime_ns() * UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  x *= UINT64_C(0xc4ceb9fe1a85ec53);
  x ^= x >> 29;
  return (uint32_t)(x % FERRY_POOL_TAG_MAX) + 1;
}

/* ---------------------------------------------------------------------- */
/* Peers and reclaiming                                                   */

/* The identity fields of a slot (src/peers.h). */
static struct ferry__peer_id *peer_id(struct ferry_pool_slot *p) {
  return (struct ferry__peer_id *)(void *)&p->pid;
}

/* Clears peer slot I's bit from every block. Returns the references
 * dropped; wakes allocators if a block became free. */
static int sweep_slot(ferry_pool *p, uint32_t i) {
  uint64_t bit = UINT64_C(1) << i;
  uint32_t b;
  int dropped = 0, freed = 0;
  for (b = 0; b < p->count; b++) {
    uint64_t w = ferry__load_relaxed(&p->words[b]);
    while (w & bit) {
      if (atomic_compare_exchange_weak_explicit(&p->words[b], &w, w & ~bit,
                                                memory_order_acq_rel,
                                                memory_order_relaxed)) {
        dropped++;
        if (((w & ~bit) & FERRY_POOL_MASK) == 0)
          freed++;
        break;
      }
    }
  }
  if (dropped)
    atomic_fetch_add(&p->h->reclaimed, (uint64_t)dropped);
  if (freed)
    ferry__waitq_wake(&p->h->wq, &p->wp);
  return dropped;
}

/* Leaves the sweep of RETIRING slot Q; the last sweeper out frees it. The
 * count matters: a slot freed while a slow sweeper still clears its bit
 * could be reused, and the sweeper would then rob the new owner. */
static void sweep_leave(ferry_pool *p, struct ferry_pool_slot *q) {
  uint32_t st = ferry__load_acquire(&q->state);
  for (;;) {
    uint32_t n = st >> 8;
    uint32_t to = n > 1 ? st - FERRY_POOL_SWEEPER : FERRY_PEER_RETIRING;
    if (atomic_compare_exchange_weak(&q->state, &st, to)) {
      if (n > 1)
        return;
      break;
    }
  }
  /* Last out, with the slot at RETIRING and no sweeper: nobody joins it
   * now. Fold its counter, forget its identity, free it. */
  atomic_fetch_add(&p->h->allocs, ferry__load_relaxed(&q->allocs));
  ferry__store_relaxed(&q->allocs, 0);
  ferry__peer_id_clear(peer_id(q));
  atomic_fetch_add(&p->h->retired, 1);
  ferry__store_release(&q->state, FERRY_PEER_FREE);
}

/* Looks at every other peer slot: one whose process is dead is retired
 * (its references swept, the slot freed); one already RETIRING whose sweep
 * may have been cut short is swept again. Returns references dropped. */
static int sweep_dead(ferry_pool *p) {
  uint32_t i;
  int dropped = 0;
  for (i = 0; i < p->max_peers; i++) {
    struct ferry_pool_slot *q = &p->peers[i];
    uint32_t st = ferry__load_acquire(&q->state), to;
    if (q == p->me)
      continue;
    switch (st & FERRY_POOL_ST_MASK) {
    case FERRY_PEER_ACTIVE:
    case FERRY_PEER_CLAIMED:
      if (ferry__load_acquire(&q->pid) == 0 ||
          ferry__peer_id_alive(peer_id(q)) != 0)
        continue; /* being filled in, alive, or the OS will not tell */
      to = FERRY_PEER_RETIRING | FERRY_POOL_SWEEPER;
      break;
    case FERRY_PEER_RETIRING:
      if ((st >> 8) == 0)
        continue;                   /* its last sweeper is freeing it */
      to = st + FERRY_POOL_SWEEPER; /* join: its sweeper may have died */
      break;
    default:
      continue;
    }
    if (!atomic_compare_exchange_strong(&q->state, &st, to))
      continue;
    dropped += sweep_slot(p, i);
    sweep_leave(p, q);
  }
  return dropped;
}

/* Claims a free peer slot and fills in our identity. */
static int peer_attach(ferry_pool *p) {
  int round;
  for (round = 0; round < 2; round++) {
    uint32_t i;
    for (i = 0; i < p->max_peers; i++) {
      struct ferry_pool_slot *q = &p->peers[i];
      uint32_t st = FERRY_PEER_FREE;
      if (ferry__load_relaxed(&q->state) != FERRY_PEER_FREE ||
          !atomic_compare_exchange_strong(&q->state, &st, FERRY_PEER_CLAIMED))
        continue;
      ferry__store_relaxed(&q->allocs, 0);
      ferry__peer_id_fill(peer_id(q)); /* pid last: now we can be judged */
      ferry__store_release(&q->state, FERRY_PEER_ACTIVE);
      p->me = q;
      p->my_index = i;
      p->my_bit = UINT64_C(1) << i;
      return 0;
    }
    if (round == 0)
      sweep_dead(p); /* frees dead peers' slots; then look again */
  }
  return ferry__err(FERRY_EBUSY, "%s: all %u peer slots are taken",
                    ferry__segment_os_name(p->seg), (unsigned)p->max_peers);
}

/* ---------------------------------------------------------------------- */
/* References                                                             */

static inline void *block_ptr(const ferry_pool *p, uint32_t index) {
  return p->blocks + (size_t)index * (size_t)p->stride;
}

static inline void prefetch(const void *addr) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(addr);
#else
  (void)addr;
#endif
}

/* 0, or FERRY_ESIZE once an access to the pool's segment faulted because
 * another process shrank it (src/guard.h). */
static inline int pool_fault(const ferry_pool *p) {
  return ferry__guard_lost(p->guard) == 0 ? 0 : ferry_segment_check(p->seg);
}

/* The handle was not valid: the code, and a detail message saying why. */
static int bad_handle(const ferry_pool *p, uint64_t handle, const char *why) {
  return ferry__err(FERRY_ECORRUPT, "%s: handle 0x%016llx %s",
                    ferry__segment_os_name(p->seg), (unsigned long long)handle,
                    why);
}

/* Adds a reference of ours to block INDEX at generation GEN. */
static int ref_take(ferry_pool *p, uint64_t handle, uint32_t index,
                    uint32_t gen) {
  uint64_t w;
  if (p->local[index] > 0) {
    w = ferry__load_relaxed(&p->words[index]);
    if (ferry__pool_word_gen(w) != gen)
      return bad_handle(p, handle, "is stale (the block was reallocated)");
    if (p->local[index] == UINT32_MAX)
      return ferry__err(FERRY_EINVAL, "too many references to one block");
    p->local[index]++;
    return 0;
  }
  /* No load first: a CAS on a guess fetches the word's line once, for
   * writing, and returns the real value; the CAS that follows hits our
   * cache. (A load, then a CAS, would move the line twice.) The guess, our
   * own bit alone, cannot be right while we hold no reference. */
  w = ferry__pool_word(gen, p->my_bit);
  while (!atomic_compare_exchange_strong_explicit(
      &p->words[index], &w, w | p->my_bit, memory_order_acq_rel,
      memory_order_acquire)) {
    if ((w & FERRY_POOL_MASK) == 0)
      return bad_handle(p, handle, "names a free block");
    if (ferry__pool_word_gen(w) != gen)
      return bad_handle(p, handle, "is stale (the block was reallocated)");
  }
  p->local[index] = 1;
  return 0;
}

/* Drops one reference of ours to block INDEX (which we hold, at
 * generation GEN). */
static void ref_drop(ferry_pool *p, uint32_t index, uint32_t gen) {
  uint64_t w;
  if (--p->local[index] > 0)
    return;
  /* Guess that we are the last holder, as in ref_take: one line move. */
  w = ferry__pool_word(gen, p->my_bit);
  while (!atomic_compare_exchange_strong_explicit(
      &p->words[index], &w, w & ~p->my_bit, memory_order_acq_rel,
      memory_order_relaxed)) {
  }
  /* Wake allocators whether or not the block is free now: one may be
   * waiting for the receivers of its messages to let go. */
  ferry__waitq_wake(&p->h->wq, &p->wp);
}

/* Parses HANDLE and checks that we hold it. */
static int held(const ferry_pool *p, uint64_t handle, uint32_t *index,
                uint32_t *gen) {
  if (ferry__pool_handle_parse(handle, p->tag, p->count, index, gen) != 0)
    return bad_handle(p, handle, "does not name a block of this pool");
  if (!p->me || p->local[*index] == 0)
    return bad_handle(p, handle, "names a block this process does not hold");
  if (ferry__pool_word_gen(ferry__load_relaxed(&p->words[*index])) != *gen)
    return bad_handle(p, handle, "is stale (the block was reallocated)");
  return 0;
}

/* Releases the references kept for messages every receiver has consumed.
 * CHECK_PEERS: also evict dead broadcast subscribers. Returns how many. */
static int reap(ferry_pool *p, int check_peers) {
  ferry_channel *last = NULL;
  uint64_t consumed = 0;
  size_t i, kept = 0;
  int n = 0, ok = 0;
  for (i = 0; i < p->npend; i++) {
    struct pending *e = &p->pend[i];
    if (e->ch != last) {
      last = e->ch;
      ok = ferry__channel_consumed(e->ch, check_peers, &consumed) == 0;
    }
    if (ok && e->end <= consumed) {
      ref_drop(p, e->index, e->gen);
      n++;
    } else {
      p->pend[kept++] = *e;
    }
  }
  p->npend = kept;
  return n;
}

/* ---------------------------------------------------------------------- */
/* Open and close                                                         */

static int opts_load(const ferry_pool_opts *in, ferry_pool_opts *o) {
  int rc = ferry__opts_copy(o, sizeof *o, in, "FERRY_POOL_OPTS_INIT");
  if (rc != 0)
    return rc;
  if (o->max_peers > FERRY_POOL_PEERS_MAX)
    return ferry__err(FERRY_EINVAL, "max_peers %u is out of range (1..%d)",
                      (unsigned)o->max_peers, FERRY_POOL_PEERS_MAX);
  if (o->block_count > FERRY_POOL_BLOCKS_MAX)
    return ferry__err(FERRY_EINVAL, "block_count %u exceeds the maximum %u",
                      (unsigned)o->block_count, FERRY_POOL_BLOCKS_MAX);
  if (o->block_size > FERRY_POOL_BYTES_MAX ||
      (o->block_count && ferry__pool_stride(o->block_size) * o->block_count >
                             FERRY_POOL_BYTES_MAX))
    return ferry__err(FERRY_EINVAL,
                      "a pool of %u blocks of %llu bytes is "
                      "too large",
                      (unsigned)o->block_count,
                      (unsigned long long)o->block_size);
  return 0;
}

/* Everything after the segment is open: validate, map the layout, attach
 * (unless READONLY). Frees P on failure. */
static int pool_setup(ferry_pool *p, const ferry_pool_opts *o, int observe) {
  struct ferry_pool_hdr copy;
  uint64_t data_size;
  int rc;

  if (ferry__segment_payload(p->seg) != FERRY_PAYLOAD_POOL) {
    rc = ferry__err(FERRY_EINVAL, "%s is a segment, but not a pool",
                    ferry__segment_os_name(p->seg));
    goto fail;
  }
  data_size = ferry_segment_data_size(p->seg);
  if (data_size < FERRY_POOL_HDR_SIZE) {
    rc = ferry__err(FERRY_ESIZE, "%s is too small for a pool",
                    ferry__segment_os_name(p->seg));
    goto fail;
  }
  p->h = (struct ferry_pool_hdr *)ferry_segment_data(p->seg);
  p->guard = ferry__segment_guard(p->seg);
  memcpy(&copy, p->h, 64); /* the immutable line, read once */
  rc = ferry__pool_validate(&copy, data_size);
  if (ferry__guard_lost(p->guard) != 0) /* shrunk since the open */
    rc = ferry_segment_check(p->seg);
  else if (rc != 0)
    ferry__err_ctx(rc, "%s", ferry__segment_os_name(p->seg));
  if (rc != 0)
    goto fail;
  if (!ferry__segment_created(p->seg) &&
      ((o->block_size && o->block_size != copy.block_size) ||
       (o->block_count && o->block_count != copy.block_count))) {
    rc =
        ferry__err(FERRY_EINVAL,
                   "%s exists as a pool of %u blocks of %llu bytes; asked "
                   "for %u of %llu",
                   ferry__segment_os_name(p->seg), (unsigned)copy.block_count,
                   (unsigned long long)copy.block_size,
                   (unsigned)o->block_count, (unsigned long long)o->block_size);
    goto fail;
  }
  p->block_size = copy.block_size;
  p->stride = copy.block_stride;
  p->count = copy.block_count;
  p->max_peers = copy.max_peers;
  p->tag = copy.tag;
  p->peers = (struct ferry_pool_slot *)((uint8_t *)p->h + copy.peers_offset);
  p->words = (_Atomic uint64_t *)((uint8_t *)p->h + copy.words_offset);
  p->blocks = (uint8_t *)p->h + copy.blocks_offset;
  p->spin_ns = ferry__spin_ns(o->spin_ns);
  p->liveness_ns = o->liveness_ns == 0  ? 10000000
                   : o->liveness_ns < 0 ? INT64_MAX
                                        : o->liveness_ns;
  p->my_index = UINT32_MAX;
  p->reap_batch = p->count / 4 ? p->count / 4 : 1;
  rc = ferry__segment_waitpoint_open(p->seg, 0, &p->wp);
  if (rc != 0) {
    ferry__err_ctx(rc, "pool '%s'", ferry__segment_os_name(p->seg));
    goto fail;
  }
  if (!observe) {
    p->local = (uint32_t *)calloc(p->count, sizeof *p->local);
    if (!p->local) {
      rc = ferry__err(FERRY_ENOMEM, "out of memory");
      goto fail_wp;
    }
    rc = peer_attach(p);
    if (rc != 0)
      goto fail_wp;
    rc = pool_fault(p); /* shrunk while we attached: do not hand it out */
    if (rc != 0) {
      ferry_pool_close(p);
      return rc;
    }
  }
  return 0;

fail_wp:
  ferry_os_waitpoint_close(&p->wp);
fail:
  free(p->local);
  ferry_segment_close(p->seg);
  free(p);
  return rc;
}

static int pool_prepare(const ferry_pool_opts *opts, ferry_pool_opts *o,
                        struct pool_init *pi, ferry_segment_opts *so,
                        ferry_pool **pp) {
  int rc = opts_load(opts, o);
  if (rc != 0)
    return rc;
  pi->block_size = o->block_size;
  pi->count = o->block_count;
  pi->max_peers = o->max_peers ? o->max_peers : FERRY_POOL_PEERS_DEFAULT;
  pi->tag = new_tag();
  so->flags = o->seg_flags;
  so->mode = o->mode;
  so->payload = FERRY_PAYLOAD_POOL;
  so->timeout_ms = o->open_timeout_ms;
  *pp = (ferry_pool *)calloc(1, sizeof **pp);
  if (!*pp)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  return 0;
}

static uint64_t pool_bytes(const struct pool_init *pi) {
  return ferry__pool_blocks_offset(pi->max_peers, pi->count) +
         ferry__pool_stride(pi->block_size) * pi->count;
}

enum { OPEN_NAMED, OPEN_ANON, OPEN_HANDLE };

/* Opens (or creates) a pool by name, anonymously, or from an OS handle. */
static int pool_open_any(ferry_pool **out, int how, const char *name,
                         ferry_handle h, unsigned flags,
                         const ferry_pool_opts *opts) {
  ferry_pool_opts o;
  ferry_segment_opts so = FERRY_SEGMENT_OPTS_INIT;
  struct pool_init pi;
  ferry_pool *p;
  int rc, creating =
              how == OPEN_ANON || (how == OPEN_NAMED && (flags & FERRY_CREATE));

  ferry__err_clear();
  if (!out)
    return ferry__err(FERRY_EINVAL, "pool is NULL");
  *out = NULL;
  if (flags & FERRY_FILE)
    return ferry__err(FERRY_EINVAL, "a pool is a named or anonymous segment");
  rc = pool_prepare(opts, &o, &pi, &so, &p);
  if (rc != 0)
    return rc;
  if (creating && (!o.block_size || !o.block_count)) {
    free(p);
    return ferry__err(FERRY_EINVAL,
                      "creating a pool needs block_size and block_count");
  }
  if (how == OPEN_NAMED)
    rc = ferry__segment_open_init(&p->seg, name, flags,
                                  creating ? pool_bytes(&pi) : 1, &so,
                                  pool_init, &pi);
  else if (how == OPEN_ANON)
    rc = ferry_segment_create_anon(&p->seg, pool_bytes(&pi), &so);
  else
    rc = ferry_segment_open_handle(&p->seg, h, flags, &so);
  if (rc != 0) {
    free(p);
    return rc;
  }
  if (how == OPEN_ANON) /* nobody else sees it before we share its handle */
    pool_init(ferry_segment_data(p->seg), ferry_segment_data_size(p->seg), &pi);
  rc = pool_setup(p, &o, (flags & FERRY_RDONLY) != 0);
  if (rc == 0)
    *out = p;
  return rc;
}

int ferry_pool_open(ferry_pool **out, const char *name, unsigned flags,
                    const ferry_pool_opts *opts) {
  return pool_open_any(out, OPEN_NAMED, name, 0, flags, opts);
}

int ferry_pool_create_anon(ferry_pool **out, const ferry_pool_opts *opts) {
  return pool_open_any(out, OPEN_ANON, NULL, 0, 0, opts);
}

int ferry_pool_open_handle(ferry_pool **out, ferry_handle h, unsigned flags,
                           const ferry_pool_opts *opts) {
  return pool_open_any(out, OPEN_HANDLE, NULL, h, flags, opts);
}

int ferry_pool_close(ferry_pool *p) {
  if (!p)
    return 0;
  if (p->me) {
    uint32_t b;
    int freed = 0;
    for (b = 0; b < p->count; b++) {
      uint64_t w;
      if (p->local[b] == 0)
        continue;
      w = ferry__load_relaxed(&p->words[b]);
      while (!atomic_compare_exchange_weak_explicit(
          &p->words[b], &w, w & ~p->my_bit, memory_order_acq_rel,
          memory_order_relaxed)) {
      }
      freed |= ((w & ~p->my_bit) & FERRY_POOL_MASK) == 0;
    }
    atomic_fetch_add(&p->h->allocs, ferry__load_relaxed(&p->me->allocs));
    ferry__store_relaxed(&p->me->allocs, 0);
    ferry__peer_id_clear(peer_id(p->me));
    ferry__store_release(&p->me->state, FERRY_PEER_FREE);
    if (freed)
      ferry__waitq_wake(&p->h->wq, &p->wp);
  }
  ferry_os_waitpoint_close(&p->wp);
  ferry_segment_close(p->seg);
  free(p->pend);
  free(p->local);
  free(p);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Allocate                                                               */

/* One pass over the block words from the shared hint: the first free block
 * becomes ours with a new generation. Returns its index or -1. */
static int64_t alloc_try(ferry_pool *p) {
  uint32_t n = p->count, b = ferry__load_relaxed(&p->h->next), k;
  if (b >= n)
    b = 0;
  for (k = 0; k < n; k++, b = b + 1 == n ? 0 : b + 1) {
    uint64_t w = ferry__load_relaxed(&p->words[b]);
    uint32_t gen;
    if ((w & FERRY_POOL_MASK) != 0 || p->local[b] != 0)
      continue;
    gen = ferry__pool_word_gen(w) % FERRY_POOL_GEN_MAX + 1; /* never 0 */
    /* Acquire: the last holder's writes to the block come before ours. */
    if (!atomic_compare_exchange_strong_explicit(
            &p->words[b], &w, ferry__pool_word(gen, p->my_bit),
            memory_order_acq_rel, memory_order_relaxed))
      continue;
    ferry__store_relaxed(&p->h->next, b + 1 == n ? 0 : b + 1);
    p->local[b] = 1;
    ferry__store_relaxed(&p->me->allocs, ++p->allocs);
    return b;
  }
  return -1;
}

/* Broadcast with overrun never makes its sender wait for a slow
 * subscriber, and neither may the pool: with no block free, let go of the
 * oldest blocks kept for unconsumed messages on overrun channels until one
 * is free. A subscriber that reaches such a message gets FERRY_EOVERRUN. */
static int64_t alloc_steal(ferry_pool *p) {
  size_t i = 0;
  while (i < p->npend) {
    int64_t b;
    if (!ferry__channel_overrun(p->pend[i].ch)) {
      i++;
      continue;
    }
    ref_drop(p, p->pend[i].index, p->pend[i].gen);
    memmove(&p->pend[i], &p->pend[i + 1],
            (p->npend - i - 1) * sizeof p->pend[0]);
    p->npend--;
    b = alloc_try(p);
    if (b >= 0)
      return b;
  }
  return -1;
}

struct alloc_wait {
  ferry_pool *p;
  int64_t index;
};

static int alloc_ready(void *ctx) {
  struct alloc_wait *w = (struct alloc_wait *)ctx;
  ferry_pool *p = w->p;
  int check = 0, rc = pool_fault(p);
  if (rc != 0)
    return rc;
  if (p->liveness_ns != INT64_MAX) {
    int64_t now = ferry_os_monotonic_ns();
    if (now >= p->next_sweep) {
      p->next_sweep = now + p->liveness_ns; /* costs a /proc read a peer */
      check = 1;
    }
  }
  if (p->npend)
    reap(p, check);
  if (check)
    sweep_dead(p);
  w->index = alloc_try(p);
  return w->index >= 0;
}

int ferry_pool_alloc(ferry_pool *p, uint64_t *handle, void **data,
                     int64_t timeout_ns) {
  struct alloc_wait w;
  uint32_t gen;
  int rc;
  if (!p || !handle || timeout_ns < 0)
    return FERRY_EINVAL;
  if (!p->me)
    return ferry__err(FERRY_EINVAL, "an observer cannot allocate");
  rc = pool_fault(p);
  if (rc != 0)
    return rc;
  /* Letting go of consumed messages' blocks costs a look at each channel
   * (a cache miss): do it in batches, or when no block is free. A sender
   * keeps at most a quarter of the blocks longer than needed this way. */
  if (p->npend && p->npend >= p->reap_batch)
    reap(p, 0);
  w.p = p;
  w.index = alloc_try(p);
  if (w.index < 0 && p->npend && reap(p, 0) > 0)
    w.index = alloc_try(p);
  if (w.index < 0 && p->npend)
    w.index = alloc_steal(p);
  if (w.index < 0) {
    rc =
        ferry__wait(&p->h->wq, &p->wp, alloc_ready, &w,
                    timeout_ns > FERRY_POOL_TIMEOUT_MAX ? FERRY_POOL_TIMEOUT_MAX
                                                        : timeout_ns,
                    p->spin_ns);
    if (rc != 0)
      return rc == FERRY_ETIMEDOUT && timeout_ns == 0 ? FERRY_EAGAIN : rc;
  }
  gen = ferry__pool_word_gen(ferry__load_relaxed(&p->words[w.index]));
  *handle = ferry__pool_handle(p->tag, gen, (uint32_t)w.index);
  if (data)
    *data = block_ptr(p, (uint32_t)w.index);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Take, release, send, receive                                           */

int ferry_pool_take(ferry_pool *p, uint64_t handle, void **data) {
  uint32_t index, gen;
  int rc;
  if (!p || !p->me)
    return FERRY_EINVAL;
  rc = pool_fault(p);
  if (rc != 0)
    return rc;
  if (ferry__pool_handle_parse(handle, p->tag, p->count, &index, &gen) != 0)
    return bad_handle(p, handle, "does not name a block of this pool");
  rc = ref_take(p, handle, index, gen);
  if (rc == 0 && data)
    *data = block_ptr(p, index);
  return rc;
}

int ferry_pool_data(const ferry_pool *p, uint64_t handle, void **data) {
  uint32_t index, gen;
  int rc;
  if (!p || !data)
    return FERRY_EINVAL;
  rc = pool_fault(p);
  if (rc == 0)
    rc = held(p, handle, &index, &gen);
  if (rc == 0)
    *data = block_ptr(p, index);
  return rc;
}

int ferry_pool_release(ferry_pool *p, uint64_t handle) {
  uint32_t index, gen;
  int rc;
  if (!p)
    return FERRY_EINVAL;
  rc = held(p, handle, &index, &gen);
  if (rc != 0)
    return rc;
  /* Let go even when the memory is lost, so the handle is not leaked; but
   * say that what was read from the block may be zeros. */
  ref_drop(p, index, gen);
  return pool_fault(p);
}

static int pend_reserve(ferry_pool *p) {
  if (p->npend == p->cap_pend) {
    size_t cap = p->cap_pend ? p->cap_pend * 2 : 64;
    struct pending *n = (struct pending *)realloc(p->pend, cap * sizeof *n);
    if (!n)
      return ferry__err(FERRY_ENOMEM, "out of memory");
    p->pend = n;
    p->cap_pend = cap;
  }
  return 0;
}

int ferry_pool_send(ferry_pool *p, ferry_channel *ch, uint64_t handle,
                    const void *meta, size_t meta_len, int64_t timeout_ns) {
  uint32_t index, gen;
  void *buf;
  int rc;
  if (!p || !ch || (meta_len && !meta))
    return FERRY_EINVAL;
  rc = pool_fault(p); /* what was written to the block may be lost */
  if (rc != 0)
    return rc;
  rc = held(p, handle, &index, &gen);
  if (rc != 0)
    return rc;
  /* Room to track the message before it is sent: once it is out, the
   * reference must be kept. */
  rc = pend_reserve(p);
  if (rc != 0)
    return rc;
  rc = ferry_channel_reserve(ch, 8 + meta_len, &buf, timeout_ns);
  if (rc != 0)
    return rc;
  memcpy(buf, &handle, 8);
  if (meta_len)
    memcpy((uint8_t *)buf + 8, meta, meta_len);
  rc = ferry_channel_commit(ch, 8 + meta_len);
  if (rc != 0)
    return rc;
  p->pend[p->npend].ch = ch;
  p->pend[p->npend].end = ferry__channel_sent_end(ch);
  p->pend[p->npend].index = index;
  p->pend[p->npend].gen = gen;
  p->npend++;
  return 0;
}

int ferry_pool_recv(ferry_pool *p, ferry_channel *ch, uint64_t *handle,
                    void **data, void *meta, size_t meta_cap, size_t *meta_len,
                    int64_t timeout_ns) {
  ferry_msg m;
  uint64_t hv = 0;
  uint32_t index = 0, gen = 0;
  int rc, took, rel, stale = 0;
  if (!p || !p->me || !ch || !handle || (meta_cap && !meta))
    return FERRY_EINVAL;
  rc = pool_fault(p);
  if (rc != 0)
    return rc;
  rc = ferry_channel_peek(ch, &m, 1, timeout_ns);
  if (rc < 0)
    return rc;
  if (m.len < 8) {
    rc = ferry__err(FERRY_ECORRUPT,
                    "%s: a %llu-byte message is not a pool message",
                    ferry__segment_os_name(p->seg), (unsigned long long)m.len);
  } else {
    memcpy(&hv, m.data, 8);
    rc = ferry__pool_handle_parse(hv, p->tag, p->count, &index, &gen);
    if (rc != 0) {
      rc = bad_handle(p, hv, "does not name a block of this pool");
    } else {
      /* The caller reads the block next: start fetching its first line
       * now, so that the miss overlaps with the take's. */
      prefetch(block_ptr(p, index));
      rc = ref_take(p, hv, index, gen);
      stale = rc != 0; /* a block of this pool, freed or reused since */
    }
    if (rc == 0) {
      size_t n = m.len - 8 < meta_cap ? m.len - 8 : meta_cap;
      if (n)
        memcpy(meta, (const uint8_t *)m.data + 8, n);
    }
  }
  took = rc == 0;
  if (meta_len)
    *meta_len = m.len >= 8 ? m.len - 8 : 0;
  /* Our reference is in place before the message is consumed: the sender
   * keeps its own until then. */
  rel = ferry_channel_release(ch);
  ferry__waitq_wake(&p->h->wq, &p->wp); /* its sender may wait for this */
  if (rel != 0) {
    if (took)
      ref_drop(p, index, gen); /* overwritten while read: it is lost */
    return rel;
  }
  if (!took)
    return rc == FERRY_ECORRUPT && m.len >= 8 && ferry__channel_overrun(ch) &&
                   stale
               ? FERRY_EOVERRUN /* its sender let go: see alloc_steal */
               : rc;
  rc = pool_fault(p); /* the take may have reached private zeros */
  if (rc != 0) {
    ref_drop(p, index, gen);
    return rc;
  }
  *handle = hv;
  if (data)
    *data = block_ptr(p, index);
  return 0;
}

static int flush_ready(void *ctx) {
  ferry_pool *p = (ferry_pool *)ctx;
  int rc = pool_fault(p);
  if (rc != 0)
    return rc;
  reap(p, 0);
  return p->npend == 0;
}

int ferry_pool_flush(ferry_pool *p, int64_t timeout_ns) {
  int rc;
  if (!p || timeout_ns < 0)
    return FERRY_EINVAL;
  if (p->npend == 0)
    return 0;
  rc = ferry__wait(&p->h->wq, &p->wp, flush_ready, p,
                   timeout_ns > FERRY_POOL_TIMEOUT_MAX ? FERRY_POOL_TIMEOUT_MAX
                                                       : timeout_ns,
                   p->spin_ns);
  return rc == FERRY_ETIMEDOUT && timeout_ns == 0 ? FERRY_EAGAIN : rc;
}

int ferry_pool_forget(ferry_pool *p, ferry_channel *ch) {
  size_t i, kept = 0;
  int n = 0;
  if (!p)
    return FERRY_EINVAL;
  for (i = 0; i < p->npend; i++) {
    if (p->pend[i].ch == ch) {
      ref_drop(p, p->pend[i].index, p->pend[i].gen);
      n++;
    } else {
      p->pend[kept++] = p->pend[i];
    }
  }
  p->npend = kept;
  return n;
}

int ferry_pool_reclaim(ferry_pool *p) {
  int n = 0;
  if (!p || !p->me)
    return FERRY_EINVAL;
  if (p->npend)
    n += reap(p, 1);
  n += sweep_dead(p);
  return n;
}

/* ---------------------------------------------------------------------- */
/* Information                                                            */

uint64_t ferry_pool_block_size(const ferry_pool *p) {
  return p ? p->block_size : 0;
}

uint32_t ferry_pool_block_count(const ferry_pool *p) {
  return p ? p->count : 0;
}

const ferry_segment *ferry_pool_segment(const ferry_pool *p) {
  return p ? p->seg : NULL;
}

int ferry_pool_get_info(const ferry_pool *p, ferry_pool_info *info,
                        size_t info_size) {
  ferry_pool_info *in;
  uint32_t held_by[FERRY_POOL_PEERS_MAX] = {0};
  uint32_t b, i;
  if (!p || !info)
    return ferry__err(FERRY_EINVAL, "pool or info is NULL");
  in = (ferry_pool_info *)calloc(1, sizeof *in);
  if (!in)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  in->block_size = p->block_size;
  in->block_stride = p->stride;
  in->block_count = p->count;
  in->max_peers = p->max_peers;
  for (b = 0; b < p->count; b++) {
    uint64_t m = ferry__load_relaxed(&p->words[b]) & FERRY_POOL_MASK;
    if (m == 0) {
      in->free++;
      continue;
    }
    in->used++;
    for (i = 0; i < p->max_peers; i++)
      if (m & (UINT64_C(1) << i))
        held_by[i]++;
  }
  in->allocs = ferry__load_relaxed(&p->h->allocs);
  in->reclaimed = ferry__load_relaxed(&p->h->reclaimed);
  in->retired = ferry__load_relaxed(&p->h->retired);
  for (i = 0; i < p->max_peers; i++) {
    struct ferry_pool_slot *q = &p->peers[i];
    uint32_t st = ferry__load_acquire(&q->state) & FERRY_POOL_ST_MASK;
    ferry_pool_peer *e;
    uint64_t a = ferry__load_relaxed(&q->allocs);
    in->allocs += a;
    if (st == FERRY_PEER_FREE && held_by[i] == 0)
      continue;
    e = &in->peers[in->npeers++];
    e->slot = i;
    e->state = st;
    e->pid = ferry__load_relaxed(&q->pid);
    e->alive = e->pid ? ferry__peer_id_alive(peer_id(q)) : -1;
    e->held = held_by[i];
    e->allocs = a;
  }
  memcpy(info, in, info_size < sizeof *in ? info_size : sizeof *in);
  free(in);
  return 0;
}

int ferry_pool_block_info(const ferry_pool *p, uint32_t index,
                          ferry_pool_block *block, size_t block_size) {
  ferry_pool_block bi;
  uint64_t w;
  if (!p || !block)
    return ferry__err(FERRY_EINVAL, "pool or block is NULL");
  if (index >= p->count)
    return ferry__err(FERRY_EINVAL, "block %u of %u", (unsigned)index,
                      (unsigned)p->count);
  w = ferry__load_relaxed(&p->words[index]);
  memset(&bi, 0, sizeof bi);
  bi.index = index;
  bi.gen = ferry__pool_word_gen(w);
  bi.holders = w & FERRY_POOL_MASK;
  bi.handle = bi.gen ? ferry__pool_handle(p->tag, bi.gen, index) : 0;
  memcpy(block, &bi, block_size < sizeof bi ? block_size : sizeof bi);
  return 0;
}
