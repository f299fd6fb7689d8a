/*
 * Channels: SPSC, MPSC and broadcast rings of variable-size messages in a
 * segment (layout in src/channel.h, protocol in docs/design.md).
 *
 * Single-producer kinds (SPSC, broadcast) publish by storing the tail with
 * release ordering; receivers read records up to the tail they loaded with
 * acquire ordering. MPSC senders claim space with a CAS on the tail and
 * commit each record in-band (the header word, COMMIT bit, written last with
 * release); the receiver zeroes what it consumed, so a stale byte can never
 * look like a committed header. Hot paths return codes and touch no
 * thread-local state; every shared value is validated before use.
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

#define FERRY_CHAN_TIMEOUT_MAX (INT64_C(1) << 62)

struct ferry_channel {
  ferry_segment *seg;
  struct ferry_chan_hdr *h;
  struct ferry__guard *guard; /* the segment's registry entry, or NULL */
  struct ferry_chan_peer *peers;
  struct ferry_chan_peer *me; /* NULL for observers */
  uint8_t *ring;
  uint64_t cap, mask, max_msg;
  uint32_t kind, flags, rh, max_peers, my_index;
  unsigned role;
  int64_t spin_ns;
  int64_t liveness_ns; /* how often a blocked call checks its peer */
  ferry_os_waitpoint wp_rx, wp_tx;

  /* sender */
  uint64_t tail;     /* single producer: our tail (published copy in h->tail) */
  uint64_t limit;    /* we may write below this position without checking */
  uint64_t seq;      /* broadcast: number of the next message */
  uint64_t oldest;   /* broadcast overrun: our copy of h->oldest */
  uint64_t sent;     /* messages sent through this handle */
  uint64_t last_end; /* position after the last message committed */
  int reserved;      /* a reserve is open */
  uint64_t res_pos;  /* position of the reserved record */
  uint64_t res_end;  /* position after it */
  uint64_t res_start; /* position where the claim began (before padding) */
  size_t res_len;     /* bytes reserved for the message */

  /* receiver */
  uint64_t head;          /* our read position */
  uint64_t tail_seen;     /* last tail we loaded (single-producer kinds) */
  uint64_t peek_end;      /* position after the peeked messages */
  uint64_t peek_last_seq; /* message number of the last one peeked */
  size_t npeeked;
  uint64_t received;
  uint64_t lost;
  uint64_t expect_seq; /* broadcast: next message number we expect */
  int seq_known;
  uint64_t stall_head; /* MPSC: head where we found nothing committed */
  int64_t stall_check; /* when to look at who owns that claim */
};

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */

static inline uint64_t rec_size(const ferry_channel *ch, uint64_t len) {
  return (ch->rh + len + ch->rh - 1) & ~(uint64_t)(ch->rh - 1);
}

static inline _Atomic uint32_t *rec_word(const ferry_channel *ch,
                                         uint64_t pos) {
  return &((struct ferry_rec *)(ch->ring + (pos & ch->mask)))->word;
}

static inline uint32_t rec_word_acquire(const ferry_channel *ch, uint64_t pos) {
  return ferry__load_acquire(rec_word(ch, pos));
}

static inline void rec_write(ferry_channel *ch, uint64_t pos, uint32_t word,
                             uint64_t seq) {
  struct ferry_rec *r = (struct ferry_rec *)(ch->ring + (pos & ch->mask));
  r->aux = ch->my_index;
  if (ch->rh == 16)
    ((struct ferry_rec_bc *)r)->seq = seq;
  ferry__store_release(&r->word, word);
}

/* 0, or FERRY_ESIZE once an access to the channel's segment faulted
 * because another process shrank it (src/guard.h). */
static inline int chan_fault(const ferry_channel *ch) {
  return ferry__guard_lost(ch->guard) == 0 ? 0 : ferry_segment_check(ch->seg);
}

/* Positions read from shared memory must be record-aligned: a record
 * header read at an unaligned index could run past the ring's end. */
static inline int pos_bad(const ferry_channel *ch, uint64_t pos) {
  return (pos & (ch->rh - 1)) != 0;
}

static int64_t clamp_timeout(int64_t t) {
  return t > FERRY_CHAN_TIMEOUT_MAX ? FERRY_CHAN_TIMEOUT_MAX : t;
}

/* ---------------------------------------------------------------------- */
/* Layout: create and validate                                            */

uint32_t ferry__chan_crc(const struct ferry_chan_hdr *h) {
  uint8_t line[64];
  memcpy(line, h, 64);
  memset(line + offsetof(struct ferry_chan_hdr, crc), 0, 4);
  return ferry__crc32c(line, 64);
}

int ferry__chan_validate(const struct ferry_chan_hdr *h, uint64_t data_size) {
  uint64_t cap = h->capacity;
  uint32_t rh;
  if (memcmp(h->magic, FERRY_CHAN_MAGIC, 8) != 0)
    return ferry__err(FERRY_EBADHDR, "not a channel: channel magic is wrong");
  if (h->version != FERRY_CHAN_VERSION)
    return ferry__err(FERRY_EVERSION,
                      "channel layout version %u; this library reads %u",
                      (unsigned)h->version, FERRY_CHAN_VERSION);
  if (ferry__chan_crc(h) != h->crc)
    return ferry__err(FERRY_EBADHDR, "channel header checksum mismatch");
  if (h->kind < FERRY_CHANNEL_SPSC || h->kind > FERRY_CHANNEL_BROADCAST)
    return ferry__err(FERRY_EBADHDR, "unknown channel kind %u",
                      (unsigned)h->kind);
  if (h->flags & ~(uint32_t)FERRY_CHANNEL_OVERRUN ||
      ((h->flags & FERRY_CHANNEL_OVERRUN) &&
       h->kind != FERRY_CHANNEL_BROADCAST))
    return ferry__err(FERRY_EBADHDR, "bad channel flags 0x%x",
                      (unsigned)h->flags);
  if (cap < FERRY_CHAN_CAP_MIN || cap > FERRY_CHAN_CAP_MAX ||
      (cap & (cap - 1)) != 0)
    return ferry__err(FERRY_EBADHDR, "channel capacity %llu is invalid",
                      (unsigned long long)cap);
  rh = h->kind == FERRY_CHANNEL_BROADCAST ? 16u : 8u;
  if (h->rec_hdr != rh)
    return ferry__err(FERRY_EBADHDR, "record header size %u, expected %u",
                      (unsigned)h->rec_hdr, (unsigned)rh);
  if (h->max_msg !=
      (cap / 2 - rh < FERRY_REC_LEN_MASK ? cap / 2 - rh : FERRY_REC_LEN_MASK))
    return ferry__err(FERRY_EBADHDR, "channel max_msg %llu is inconsistent",
                      (unsigned long long)h->max_msg);
  if (h->max_peers < 2 || h->max_peers > FERRY_CHANNEL_PEERS_MAX)
    return ferry__err(FERRY_EBADHDR, "channel max_peers %u is out of range",
                      (unsigned)h->max_peers);
  if (h->peers_offset != FERRY_CHAN_HDR_SIZE ||
      h->ring_offset != ferry__chan_ring_offset(h->max_peers))
    return ferry__err(FERRY_EBADHDR, "channel offsets are inconsistent");
  if ((uint64_t)h->ring_offset + cap > data_size)
    return ferry__err(FERRY_ESIZE,
                      "channel ring (%llu bytes at %u) overruns the %llu-byte "
                      "segment",
                      (unsigned long long)cap, (unsigned)h->ring_offset,
                      (unsigned long long)data_size);
  return 0;
}

struct chan_init {
  uint32_t kind, flags, max_peers;
  uint64_t cap;
};

static void chan_init(void *data, uint64_t size, void *ctx) {
  const struct chan_init *ci = (const struct chan_init *)ctx;
  struct ferry_chan_hdr *h = (struct ferry_chan_hdr *)data;
  uint32_t rh = ci->kind == FERRY_CHANNEL_BROADCAST ? 16u : 8u;
  (void)size;
  memcpy(h->magic, FERRY_CHAN_MAGIC, 8);
  h->version = FERRY_CHAN_VERSION;
  h->kind = ci->kind;
  h->capacity = ci->cap;
  h->max_msg = ci->cap / 2 - rh < FERRY_REC_LEN_MASK ? ci->cap / 2 - rh
                                                     : FERRY_REC_LEN_MASK;
  h->flags = ci->flags;
  h->max_peers = ci->max_peers;
  h->rec_hdr = rh;
  h->peers_offset = FERRY_CHAN_HDR_SIZE;
  h->ring_offset = ferry__chan_ring_offset(ci->max_peers);
  h->crc = ferry__chan_crc(h);
  /* everything else starts at zero: the segment is zero-filled */
}

/* ---------------------------------------------------------------------- */
/* Peers                                                                  */

/* The identity fields of a slot (pid, start, boot at 8..31, as in every
 * peer slot: src/peers.h). */
static struct ferry__peer_id *peer_id(const struct ferry_chan_peer *p) {
  return (struct ferry__peer_id *)(void *)&((struct ferry_chan_peer *)p)->pid;
}

static int peer_alive(const struct ferry_chan_peer *p) {
  return ferry__peer_id_alive(peer_id(p));
}

static int role_is_unique(uint32_t kind, unsigned role) {
  if (role == FERRY_SENDER)
    return kind != FERRY_CHANNEL_MPSC;
  return kind != FERRY_CHANNEL_BROADCAST;
}

/* Folds a departing (or dead) peer's counters into the channel totals. */
static void peer_fold(struct ferry_chan_hdr *h, struct ferry_chan_peer *p) {
  uint64_t msgs = ferry__load_relaxed(&p->msgs);
  if (p->role == FERRY_SENDER)
    atomic_fetch_add(&h->sent_total, msgs);
  else
    atomic_fetch_add(&h->recv_total, msgs);
  atomic_fetch_add(&h->lost_total, ferry__load_relaxed(&p->lost));
  ferry__store_relaxed(&p->msgs, 0);
  ferry__store_relaxed(&p->lost, 0);
}

static void peer_fill(ferry_channel *ch, struct ferry_chan_peer *p,
                      unsigned role) {
  /* The slot's pid is 0 while we hold it CLAIMED, so nobody judges it;
   * the pid goes in last (release), and with it the rest is visible. */
  p->role = role;
  ferry__store_relaxed(&p->msgs, 0);
  ferry__store_relaxed(&p->lost, 0);
  ferry__peer_id_fill(peer_id(p));
  ch->me = p;
  ch->my_index = (uint32_t)(p - ch->peers);
}

/* Frees a dead peer's slot P (ACTIVE or CLAIMED): exactly one process wins
 * the move to RETIRING, folds the counters and frees it. */
static void peer_retire(struct ferry_chan_hdr *h, struct ferry_chan_peer *p,
                        uint32_t st) {
  if (!atomic_compare_exchange_strong(&p->state, &st, FERRY_PEER_RETIRING))
    return;
  peer_fold(h, p);
  ferry__store_relaxed(&p->pid, 0);
  ferry__store_release(&p->state, FERRY_PEER_FREE);
}

/* May slot I (state ST) be reused because its process died? Not while it
 * holds a unique role (that passes through the owner word), nor while it is a
 * dead MPSC sender's with a claim the receiver has yet to skip. */
static int slot_reusable(ferry_channel *ch, uint32_t i, uint32_t st) {
  struct ferry_chan_peer *p = &ch->peers[i];
  struct ferry_chan_hdr *h = ch->h;
  if (st != FERRY_PEER_ACTIVE && st != FERRY_PEER_CLAIMED)
    return 0;
  if (ferry__load_relaxed(&p->pid) == 0 || peer_alive(p) != 0)
    return 0; /* live, or being filled in: pid 0 cannot be judged */
  if (ferry__load_relaxed(&h->tx_owner) == i + 1 ||
      ferry__load_relaxed(&h->rx_owner) == i + 1)
    return 0;
  if (ch->kind == FERRY_CHANNEL_MPSC && p->role == FERRY_SENDER &&
      ferry__load_relaxed(&p->claim_end) > ferry__load_acquire(&h->head))
    return 0;
  return 1;
}

/* Registers this process in the peer table as ROLE: claims a slot (free, or
 * a dead peer's), writes our identity into it, then, for a unique role,
 * takes the role through the owner word, from nobody or from a dead holder
 * (whose position lives in the channel header, so it carries over). A
 * process that dies anywhere in here leaves nothing that blocks the next. */
static int peer_attach(ferry_channel *ch, unsigned role) {
  struct ferry_chan_hdr *h = ch->h;
  _Atomic uint32_t *owner = role == FERRY_SENDER ? &h->tx_owner : &h->rx_owner;
  int unique = role_is_unique(ch->kind, role);
  struct ferry_chan_peer *mine = NULL;
  uint32_t i;

  for (i = 0; i < ch->max_peers && !mine; i++) {
    struct ferry_chan_peer *p = &ch->peers[i];
    uint32_t st = ferry__load_acquire(&p->state);
    if (st == FERRY_PEER_FREE) {
      if (atomic_compare_exchange_strong(&p->state, &st, FERRY_PEER_CLAIMED))
        mine = p;
    } else if (slot_reusable(ch, i, st)) {
      peer_retire(h, p, st);
      st = FERRY_PEER_FREE;
      if (atomic_compare_exchange_strong(&p->state, &st, FERRY_PEER_CLAIMED))
        mine = p;
    }
  }
  if (!mine)
    return ferry__err(FERRY_EBUSY, "%s: all %u peer slots are taken",
                      ferry__segment_os_name(ch->seg), (unsigned)ch->max_peers);
  peer_fill(ch, mine, role); /* our pid first: from now on we can be judged */
  if (!unique)
    return 0; /* the caller sets the cursor, then marks the slot active */

  for (;;) {
    uint32_t cur = ferry__load_acquire(owner), zero = 0;
    struct ferry_chan_peer *q;
    if (cur == 0) {
      if (atomic_compare_exchange_strong(owner, &zero, ch->my_index + 1))
        return 0;
      continue;
    }
    if (cur > ch->max_peers) {
      peer_retire(h, mine, FERRY_PEER_CLAIMED);
      ch->me = NULL;
      return ferry__err(FERRY_ECORRUPT, "%s: role owner index %u is corrupt",
                        ferry__segment_os_name(ch->seg), (unsigned)cur);
    }
    q = &ch->peers[cur - 1];
    if (ferry__load_relaxed(&q->pid) == 0 || peer_alive(q) != 0) {
      uint64_t pid = ferry__load_relaxed(&q->pid);
      peer_retire(h, mine, FERRY_PEER_CLAIMED);
      ch->me = NULL;
      return ferry__err(FERRY_EBUSY, "%s already has a %s: process %llu",
                        ferry__segment_os_name(ch->seg),
                        role == FERRY_SENDER ? "sender" : "receiver",
                        (unsigned long long)pid);
    }
    /* The holder died: take the role over, then free its slot. */
    if (atomic_compare_exchange_strong(owner, &cur, ch->my_index + 1)) {
      uint32_t st = ferry__load_acquire(&q->state);
      if (st == FERRY_PEER_ACTIVE || st == FERRY_PEER_CLAIMED)
        peer_retire(h, q, st);
      return 0;
    }
  }
}

static void peer_detach(ferry_channel *ch) {
  struct ferry_chan_peer *p = ch->me;
  struct ferry_chan_hdr *h = ch->h;
  uint32_t mine;
  if (!p)
    return;
  mine = ch->my_index + 1;
  peer_fold(h, p);
  /* Give up the role before the slot: a newcomer must never find the role
   * pointing at a free slot (or at one it would judge by our pid). */
  if (role_is_unique(ch->kind, ch->role))
    atomic_compare_exchange_strong(
        ch->role == FERRY_SENDER ? &h->tx_owner : &h->rx_owner, &mine, 0);
  ferry__store_relaxed(&p->pid, 0);
  ferry__store_release(&p->state, FERRY_PEER_FREE);
  /* A broadcast sender waiting on this subscriber can move on. */
  if (ch->kind == FERRY_CHANNEL_BROADCAST && ch->role == FERRY_RECEIVER)
    ferry__waitq_wake(&h->tx, &ch->wp_tx);
  ch->me = NULL;
}

/* ---------------------------------------------------------------------- */
/* Open and close                                                         */

static void advance(ferry_channel *ch, uint64_t to);
static void bc_load_tail_seq(ferry_channel *ch, uint64_t *t, uint64_t *seq);

static int opts_load(const ferry_channel_opts *in, ferry_channel_opts *o) {
  int rc = ferry__opts_copy(o, sizeof *o, in, "FERRY_CHANNEL_OPTS_INIT");
  if (rc != 0)
    return rc;
  if (o->kind > FERRY_CHANNEL_BROADCAST)
    return ferry__err(FERRY_EINVAL, "unknown channel kind %u",
                      (unsigned)o->kind);
  if (o->flags & ~(uint32_t)FERRY_CHANNEL_OVERRUN)
    return ferry__err(FERRY_EINVAL, "unknown channel flags 0x%x",
                      (unsigned)o->flags);
  if ((o->flags & FERRY_CHANNEL_OVERRUN) && o->kind != FERRY_CHANNEL_BROADCAST)
    return ferry__err(FERRY_EINVAL,
                      "FERRY_CHANNEL_OVERRUN applies to broadcast channels");
  if (o->capacity > FERRY_CHAN_CAP_MAX)
    return ferry__err(FERRY_EINVAL, "capacity %llu exceeds the maximum %llu",
                      (unsigned long long)o->capacity,
                      (unsigned long long)FERRY_CHAN_CAP_MAX);
  if (o->max_peers == 1 || o->max_peers > FERRY_CHANNEL_PEERS_MAX)
    return ferry__err(FERRY_EINVAL, "max_peers %u is out of range (2..%d)",
                      (unsigned)o->max_peers, FERRY_CHANNEL_PEERS_MAX);
  return 0;
}

static uint64_t pow2_at_least(uint64_t v) {
  uint64_t p = FERRY_CHAN_CAP_MIN;
  while (p < v)
    p <<= 1;
  return p;
}

int ferry_channel_open(ferry_channel **out, const char *name, unsigned flags,
                       unsigned role, const ferry_channel_opts *opts) {
  ferry_channel_opts o;
  ferry_segment_opts so = FERRY_SEGMENT_OPTS_INIT;
  struct chan_init ci;
  struct ferry_chan_hdr copy;
  ferry_channel *ch;
  uint64_t data_size;
  int rc;

  ferry__err_clear();
  if (!out)
    return ferry__err(FERRY_EINVAL, "ch is NULL");
  *out = NULL;
  if (role > FERRY_RECEIVER)
    return ferry__err(FERRY_EINVAL, "unknown role %u", role);
  if (flags & (FERRY_RDONLY | FERRY_FILE) && role != FERRY_OBSERVE)
    return ferry__err(FERRY_EINVAL,
                      "senders and receivers need a read-write, named "
                      "channel");
  rc = opts_load(opts, &o);
  if (rc != 0)
    return rc;
  ci.kind = o.kind ? o.kind : FERRY_CHANNEL_SPSC;
  ci.flags = o.flags;
  ci.max_peers = o.max_peers ? o.max_peers : FERRY_CHAN_PEERS_DEFAULT;
  ci.cap = pow2_at_least(o.capacity ? o.capacity : FERRY_CHAN_CAP_DEFAULT);
  so.flags = o.seg_flags;
  so.mode = o.mode;
  so.payload = FERRY_PAYLOAD_CHANNEL;
  so.timeout_ms = o.open_timeout_ms;

  ch = (ferry_channel *)calloc(1, sizeof *ch);
  if (!ch)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  rc = ferry__segment_open_init(&ch->seg, name, flags,
                                ferry__chan_ring_offset(ci.max_peers) + ci.cap,
                                &so, chan_init, &ci);
  if (rc != 0) {
    free(ch);
    return rc;
  }
  if (ferry__segment_payload(ch->seg) != FERRY_PAYLOAD_CHANNEL) {
    rc = ferry__err(FERRY_EINVAL, "%s is a segment, but not a channel",
                    ferry__segment_os_name(ch->seg));
    goto fail;
  }
  data_size = ferry_segment_data_size(ch->seg);
  if (data_size < FERRY_CHAN_HDR_SIZE) {
    rc = ferry__err(FERRY_ESIZE, "%s is too small for a channel",
                    ferry__segment_os_name(ch->seg));
    goto fail;
  }
  ch->h = (struct ferry_chan_hdr *)ferry_segment_data(ch->seg);
  ch->guard = ferry__segment_guard(ch->seg);
  memcpy(&copy, ch->h, 64); /* the immutable line, read once */
  rc = ferry__chan_validate(&copy, data_size);
  if (chan_fault(ch) != 0) /* shrunk since the segment was opened */
    rc = ferry_segment_check(ch->seg);
  else if (rc != 0)
    ferry__err_ctx(rc, "%s", ferry__segment_os_name(ch->seg));
  if (rc != 0)
    goto fail;
  if (!ferry__segment_created(ch->seg) &&
      ((o.kind && o.kind != copy.kind) || (o.kind && o.flags != copy.flags))) {
    rc = ferry__err(FERRY_EINVAL,
                    "%s exists as a channel of kind %u flags 0x%x; asked for "
                    "kind %u flags 0x%x",
                    ferry__segment_os_name(ch->seg), (unsigned)copy.kind,
                    (unsigned)copy.flags, (unsigned)o.kind, (unsigned)o.flags);
    goto fail;
  }
  ch->kind = copy.kind;
  ch->flags = copy.flags;
  ch->cap = copy.capacity;
  ch->mask = copy.capacity - 1;
  ch->max_msg = copy.max_msg;
  ch->rh = copy.rec_hdr;
  ch->max_peers = copy.max_peers;
  ch->peers = (struct ferry_chan_peer *)((uint8_t *)ch->h + copy.peers_offset);
  ch->ring = (uint8_t *)ch->h + copy.ring_offset;
  ch->role = role;
  ch->spin_ns = ferry__spin_ns(o.spin_ns);
  ch->liveness_ns = o.liveness_ns == 0  ? 10000000
                    : o.liveness_ns < 0 ? INT64_MAX
                                        : o.liveness_ns;
  ch->stall_head = UINT64_MAX;
  ch->my_index = UINT32_MAX;
  ch->wp_tx.h = FERRY_OS_NO_HANDLE;
  rc = ferry__segment_waitpoint_open(ch->seg, 0, &ch->wp_rx);
  if (rc == 0)
    rc = ferry__segment_waitpoint_open(ch->seg, 1, &ch->wp_tx);
  if (rc != 0) {
    ferry__err_ctx(rc, "channel '%s'", name);
    goto fail_wp;
  }

  if (role != FERRY_OBSERVE) {
    uint64_t t;
    rc = peer_attach(ch, role);
    if (rc != 0)
      goto fail_wp;
    t = ferry__load_acquire(&ch->h->tail);
    if (pos_bad(ch, t)) {
      rc = ferry__err(FERRY_ECORRUPT, "%s: tail %llu is not record-aligned",
                      ferry__segment_os_name(ch->seg), (unsigned long long)t);
      peer_detach(ch);
      goto fail_wp;
    }
    if (role == FERRY_SENDER) {
      ch->tail = t;
      ch->limit = t; /* learn the real limit on the first send */
      if (ch->kind == FERRY_CHANNEL_BROADCAST) {
        /* A restarted sender resumes numbering where the last one stopped. */
        ch->oldest = ferry__load_acquire(&ch->h->oldest);
        ch->seq = ferry__load_acquire(&ch->h->tail_seq);
        if (!(ch->flags & FERRY_CHANNEL_OVERRUN))
          ch->oldest = t; /* only overrun mode keeps it */
        else if (ch->oldest > t || t - ch->oldest > ch->cap ||
                 pos_bad(ch, ch->oldest)) {
          rc = ferry__err(FERRY_ECORRUPT, "%s: oldest position is corrupt",
                          ferry__segment_os_name(ch->seg));
          peer_detach(ch);
          goto fail_wp;
        }
      }
    } else if (ch->kind == FERRY_CHANNEL_BROADCAST) {
      /* A subscriber starts with the messages sent after it joined; it
       * knows the number of the first, so a loss is counted even before it
       * has received anything. */
      uint64_t sq = 0;
      /* Become visible to the sender first, with a cursor no later than
       * where we will start; then read where we start. The sender fences
       * before it scans cursors, so either it sees us (and waits for us) or
       * we see a tail at least as new as the one it computed its room
       * from, and start there: nothing we read is overwritten. */
      ferry__store_relaxed(&ch->me->cursor, t);
      ferry__store_release(&ch->me->state, FERRY_PEER_ACTIVE);
      atomic_thread_fence(memory_order_seq_cst);
      bc_load_tail_seq(ch, &t, &sq);
      ch->head = t;
      ch->tail_seen = t;
      ch->expect_seq = sq;
      ch->seq_known = 1;
      ferry__store_release(&ch->me->cursor, t);
    } else {
      uint64_t hd = ferry__load_acquire(&ch->h->head);
      if (hd > t || t - hd > ch->cap || pos_bad(ch, hd)) {
        rc = ferry__err(FERRY_ECORRUPT,
                        "%s: ring positions are inconsistent (head %llu, "
                        "tail %llu)",
                        ferry__segment_os_name(ch->seg), (unsigned long long)hd,
                        (unsigned long long)t);
        peer_detach(ch);
        goto fail_wp;
      }
      ch->head = hd;
      ch->tail_seen = hd;
      if (ch->kind == FERRY_CHANNEL_MPSC) {
        /* Finish a release its predecessor died in the middle of. */
        uint64_t pend = ferry__load_acquire(&ch->h->head_pending);
        if (pend > hd && pend <= t && pend - hd <= ch->cap &&
            !pos_bad(ch, pend))
          advance(ch, pend);
      }
    }
    ferry__store_release(&ch->me->state, FERRY_PEER_ACTIVE);
  }
  rc = chan_fault(ch); /* shrunk while we attached: do not hand it out */
  if (rc != 0) {
    if (role != FERRY_OBSERVE)
      peer_detach(ch);
    goto fail_wp;
  }
  *out = ch;
  return 0;

fail_wp:
  ferry_os_waitpoint_close(&ch->wp_rx);
  ferry_os_waitpoint_close(&ch->wp_tx);
fail:
  ferry_segment_close(ch->seg);
  free(ch);
  return rc;
}

int ferry_channel_close(ferry_channel *ch) {
  if (!ch)
    return 0;
  if (ch->reserved)
    ferry_channel_abort(ch);
  if (ch->npeeked)
    ferry_channel_release(ch);
  peer_detach(ch);
  ferry_os_waitpoint_close(&ch->wp_rx);
  ferry_os_waitpoint_close(&ch->wp_tx);
  ferry_segment_close(ch->seg);
  free(ch);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Sending                                                                */

/* Broadcast sender: the slowest active subscriber's cursor (our tail when
 * there is none) into *MIN. */
static int bc_min_cursor(ferry_channel *ch, uint64_t *min) {
  uint64_t t = ch->tail;
  uint32_t i;
  *min = t;
  /* Pairs with the fence of a joining subscriber (see its open). */
  atomic_thread_fence(memory_order_seq_cst);
  for (i = 0; i < ch->max_peers; i++) {
    struct ferry_chan_peer *p = &ch->peers[i];
    uint64_t c;
    if (ferry__load_acquire(&p->state) != FERRY_PEER_ACTIVE ||
        p->role != FERRY_RECEIVER)
      continue;
    c = ferry__load_acquire(&p->cursor);
    if (c > t || t - c > ch->cap)
      return FERRY_ECORRUPT;
    if (c < *min)
      *min = c;
  }
  return 0;
}

/* Single producer: the limit below which we may write. FERRY_EAGAIN if it
 * did not move far enough for END. */
static int sp_refresh_limit(ferry_channel *ch, uint64_t end) {
  uint64_t t = ch->tail;
  if (ch->kind == FERRY_CHANNEL_SPSC) {
    uint64_t hd = ferry__load_acquire(&ch->h->head);
    if (hd > t || t - hd > ch->cap)
      return FERRY_ECORRUPT;
    ch->limit = hd + ch->cap;
  } else if (ch->flags & FERRY_CHANNEL_OVERRUN) {
    ch->limit = UINT64_MAX;
  } else {
    uint64_t min;
    int rc = bc_min_cursor(ch, &min);
    if (rc != 0)
      return rc;
    ch->limit = min + ch->cap;
  }
  return end <= ch->limit ? 0 : FERRY_EAGAIN;
}

struct space_wait {
  ferry_channel *ch;
  uint64_t end;
  int64_t next_check; /* when to look at the slowest peer's liveness */
};

/* Broadcast (wait policy), blocked: a subscriber that died holding the
 * slowest cursor would block the sender forever. Evict it. */
static void bc_evict_dead(ferry_channel *ch) {
  uint32_t i;
  for (i = 0; i < ch->max_peers; i++) {
    struct ferry_chan_peer *p = &ch->peers[i];
    uint32_t st = FERRY_PEER_ACTIVE;
    if (ferry__load_acquire(&p->state) != FERRY_PEER_ACTIVE ||
        p->role != FERRY_RECEIVER || peer_alive(p) != 0)
      continue;
    peer_retire(ch->h, p, st);
  }
}

/* SPSC, MPSC: FERRY_EPEERDEAD if the receiver holding the role has died
 * (the channel is full and nobody will empty it), else 0. */
static int rx_dead(ferry_channel *ch) {
  uint32_t o = ferry__load_acquire(&ch->h->rx_owner);
  if (o == 0 || o > ch->max_peers)
    return 0; /* no receiver: one may still come */
  if (peer_alive(&ch->peers[o - 1]) == 0)
    return FERRY_EPEERDEAD;
  return 0;
}

/* A sender blocked for room: every liveness_ns, look whether the receivers
 * it waits for are still there. */
static int space_check_peers(ferry_channel *ch, int64_t *next_check) {
  int64_t now;
  if (ch->liveness_ns == INT64_MAX)
    return 0;
  now = ferry_os_monotonic_ns();
  if (now < *next_check)
    return 0;
  *next_check = now + ch->liveness_ns; /* liveness costs a /proc read */
  if (ch->kind == FERRY_CHANNEL_BROADCAST) {
    bc_evict_dead(ch);
    return 1; /* look at the room again */
  }
  return rx_dead(ch);
}

static int sp_space_ready(void *ctx) {
  struct space_wait *w = (struct space_wait *)ctx;
  int rc = chan_fault(w->ch);
  if (rc != 0)
    return rc;
  rc = sp_refresh_limit(w->ch, w->end);
  if (rc == FERRY_EAGAIN) {
    rc = space_check_peers(w->ch, &w->next_check);
    if (rc < 0)
      return rc;
    if (rc > 0) {
      rc = sp_refresh_limit(w->ch, w->end);
      if (rc != FERRY_EAGAIN)
        return rc == 0 ? 1 : rc;
    }
    return 0;
  }
  return rc == 0 ? 1 : rc;
}

/* Broadcast with overrun: before overwriting [.., END), move the oldest
 * intact record past everything that will be overwritten, and publish it
 * before writing (readers check it after reading). */
static int bc_advance_oldest(ferry_channel *ch, uint64_t end) {
  uint64_t o = ch->oldest;
  if (o + ch->cap >= end)
    return 0;
  while (o + ch->cap < end) {
    uint32_t w;
    uint64_t sz;
    if (o >= ch->tail) { /* nothing older remains */
      o = end - ch->cap;
      break;
    }
    w = ferry__load_relaxed(rec_word(ch, o));
    if (w & FERRY_REC_PAD)
      sz = ch->rh + (w & FERRY_REC_LEN_MASK);
    else
      sz = rec_size(ch, w & FERRY_REC_LEN_MASK);
    if (sz == 0 || (sz & (ch->rh - 1)) != 0 || o + sz > ch->tail ||
        (o & ch->mask) + sz > ch->cap)
      return FERRY_ECORRUPT;
    o += sz;
  }
  ch->oldest = o;
  ferry__store_relaxed(&ch->h->oldest, o);
  atomic_thread_fence(memory_order_seq_cst); /* oldest before the data */
  return 0;
}

/* Single producer: find room for a record of LEN bytes; sets res_*. */
static int sp_reserve(ferry_channel *ch, size_t len, int64_t timeout_ns) {
  uint64_t size = rec_size(ch, len);
  uint64_t idx = ch->tail & ch->mask;
  uint64_t pad = idx + size > ch->cap ? ch->cap - idx : 0;
  uint64_t end = ch->tail + pad + size;
  int rc;
  if (end > ch->limit) {
    rc = sp_refresh_limit(ch, end);
    if (rc == FERRY_EAGAIN) {
      struct space_wait w;
      w.ch = ch;
      w.end = end;
      w.next_check = ferry_os_monotonic_ns() + ch->liveness_ns / 2;
      rc = ferry__wait(&ch->h->tx, &ch->wp_tx, sp_space_ready, &w, timeout_ns,
                       ch->spin_ns);
      if (rc == FERRY_ETIMEDOUT && timeout_ns == 0)
        rc = FERRY_EAGAIN;
    }
    if (rc != 0)
      return rc;
  }
  if (ch->flags & FERRY_CHANNEL_OVERRUN) {
    rc = bc_advance_oldest(ch, end);
    if (rc != 0)
      return rc;
  }
  ch->res_start = ch->tail;
  ch->res_pos = ch->tail + pad;
  ch->res_end = end;
  ch->res_len = len;
  return 0;
}

/* MPSC: claim room with a CAS on the shared tail. */
struct mp_wait {
  ferry_channel *ch;
  uint64_t size;
  int64_t next_check;
};

static int mp_try_claim(ferry_channel *ch, uint64_t size) {
  uint64_t t = ferry__load_relaxed(&ch->h->tail);
  for (;;) {
    uint64_t idx = t & ch->mask;
    uint64_t pad = idx + size > ch->cap ? ch->cap - idx : 0;
    uint64_t end = t + pad + size;
    if (t < ch->tail || t + ch->cap < ch->limit || pos_bad(ch, t))
      return FERRY_ECORRUPT; /* behind our own last claim, or a head we saw */
    if (end > ch->limit) {
      /* Learn how far the receiver got. A claim was made against a head no
       * newer than one read after it, and a head never passes a tail read
       * after it: so read tail, head, tail and check each bound. */
      uint64_t t1 = ferry__load_acquire(&ch->h->tail);
      uint64_t hd = ferry__load_acquire(&ch->h->head);
      t = ferry__load_acquire(&ch->h->tail);
      if (hd > t || (t1 > hd && t1 - hd > ch->cap) || pos_bad(ch, hd) ||
          pos_bad(ch, t))
        return FERRY_ECORRUPT;
      ch->limit = hd + ch->cap;
      idx = t & ch->mask;
      pad = idx + size > ch->cap ? ch->cap - idx : 0;
      end = t + pad + size;
      if (end > ch->limit)
        return FERRY_EAGAIN;
    }
    /* Say what we are claiming before we claim it (the CAS releases it):
     * if we die before committing, the receiver can skip exactly this. */
    ferry__store_relaxed(&ch->me->cursor, t);
    ferry__store_relaxed(&ch->me->claim_end, end);
    if (atomic_compare_exchange_weak_explicit(&ch->h->tail, &t, end,
                                              memory_order_acq_rel,
                                              memory_order_relaxed)) {
      ch->res_start = t;
      ch->res_pos = t + pad;
      ch->res_end = end;
      ch->tail = end; /* MPSC: the end of our last claim */
      return 0;
    }
  }
}

static int mp_space_ready(void *ctx) {
  struct mp_wait *w = (struct mp_wait *)ctx;
  int rc = chan_fault(w->ch);
  if (rc != 0)
    return rc;
  rc = mp_try_claim(w->ch, w->size);
  if (rc == FERRY_EAGAIN) {
    rc = space_check_peers(w->ch, &w->next_check);
    return rc < 0 ? rc : 0;
  }
  return rc == 0 ? 1 : rc;
}

static int mp_reserve(ferry_channel *ch, size_t len, int64_t timeout_ns) {
  uint64_t size = rec_size(ch, len);
  int rc = mp_try_claim(ch, size);
  if (rc == FERRY_EAGAIN) {
    struct mp_wait w;
    w.ch = ch;
    w.size = size;
    w.next_check = ferry_os_monotonic_ns() + ch->liveness_ns / 2;
    rc = ferry__wait(&ch->h->tx, &ch->wp_tx, mp_space_ready, &w, timeout_ns,
                     ch->spin_ns);
    if (rc == FERRY_ETIMEDOUT && timeout_ns == 0)
      rc = FERRY_EAGAIN;
  }
  if (rc != 0)
    return rc;
  ch->res_len = len;
  /* The padding at the ring's end, if any, is ours: commit it at once. */
  if (ch->res_pos != ch->res_start)
    rec_write(ch, ch->res_start,
              FERRY_REC_COMMIT | FERRY_REC_PAD |
                  (uint32_t)(ch->res_pos - ch->res_start - ch->rh),
              0);
  return 0;
}

int ferry_channel_reserve(ferry_channel *ch, size_t len, void **buf,
                          int64_t timeout_ns) {
  int rc;
  if (!ch || !buf || ch->role != FERRY_SENDER || ch->reserved || timeout_ns < 0)
    return FERRY_EINVAL;
  if (len > ch->max_msg)
    return FERRY_EMSGSIZE;
  rc = chan_fault(ch);
  if (rc != 0)
    return rc;
  if (ferry__load_relaxed(&ch->h->closed))
    return FERRY_ECLOSED; /* the stream has ended: a message now is lost */
  timeout_ns = clamp_timeout(timeout_ns);
  rc = ch->kind == FERRY_CHANNEL_MPSC ? mp_reserve(ch, len, timeout_ns)
                                      : sp_reserve(ch, len, timeout_ns);
  if (rc != 0)
    return rc;
  ch->reserved = 1;
  *buf = ch->ring + (ch->res_pos & ch->mask) + ch->rh;
  return 0;
}

int ferry_channel_commit(ferry_channel *ch, size_t len) {
  uint64_t end;
  int rc;
  if (!ch || !ch->reserved)
    return FERRY_EINVAL;
  if (len > ch->res_len)
    return FERRY_EMSGSIZE;
  /* The message may have gone to private zero pages: both paths below
   * check (chan_fault) after their writes and before they publish. */
  end = ch->res_pos + rec_size(ch, len);
  if (ch->kind == FERRY_CHANNEL_MPSC) {
    /* A shorter message leaves a gap in our claim: a PAD record fills it.
     * It is written (committed) before the message, whose commit releases
     * the receiver onto it. */
    if (end < ch->res_end)
      rec_write(ch, end,
                FERRY_REC_COMMIT | FERRY_REC_PAD |
                    (uint32_t)(ch->res_end - end - ch->rh),
                0);
    rc = chan_fault(ch); /* the payload or the padding went to lost memory */
    if (rc != 0) {
      ferry_channel_abort(ch); /* the whole claim becomes padding */
      return rc;
    }
    rec_write(ch, ch->res_pos, FERRY_REC_COMMIT | (uint32_t)len, 0);
    rc = chan_fault(ch); /* the record itself went to lost memory: it */
    if (rc != 0) {       /* reached nobody */
      ch->reserved = 0;
      return rc;
    }
  } else {
    if (ch->res_pos != ch->res_start)
      rec_write(ch, ch->res_start,
                FERRY_REC_COMMIT | FERRY_REC_PAD |
                    (uint32_t)(ch->res_pos - ch->res_start - ch->rh),
                0);
    rec_write(ch, ch->res_pos, FERRY_REC_COMMIT | (uint32_t)len, ch->seq++);
    rc = chan_fault(ch); /* payload or record lost: do not publish */
    if (rc != 0) {
      ch->reserved = 0;
      return rc;
    }
    ch->tail = end;
    if (ch->kind == FERRY_CHANNEL_BROADCAST) {
      /* (tail, tail_seq) change together under the generation seqlock, so
       * a joining subscriber reads a consistent pair. */
      uint32_t g = ferry__load_relaxed(&ch->h->gen);
      ferry__store_relaxed(&ch->h->gen, g + 1);
      atomic_thread_fence(memory_order_release);
      ferry__store_relaxed(&ch->h->tail_seq, ch->seq);
      ferry__store_release(&ch->h->tail, end);
      ferry__store_release(&ch->h->gen, g + 2);
    } else {
      ferry__store_release(&ch->h->tail, end);
    }
  }
  ch->reserved = 0;
  ch->last_end = end;
  ch->sent++;
  ferry__store_relaxed(&ch->me->msgs, ch->sent);
  ferry__waitq_wake(&ch->h->rx, &ch->wp_rx);
  return 0;
}

int ferry_channel_abort(ferry_channel *ch) {
  if (!ch || !ch->reserved)
    return FERRY_EINVAL;
  if (ch->kind == FERRY_CHANNEL_MPSC) {
    /* The claim cannot be given back: it becomes padding. */
    rec_write(ch, ch->res_pos,
              FERRY_REC_COMMIT | FERRY_REC_PAD |
                  (uint32_t)(ch->res_end - ch->res_pos - ch->rh),
              0);
    ferry__waitq_wake(&ch->h->rx, &ch->wp_rx);
  }
  /* Single producer: nothing was published. */
  ch->reserved = 0;
  return chan_fault(ch);
}

int ferry_channel_send(ferry_channel *ch, const void *msg, size_t len,
                       int64_t timeout_ns) {
  void *buf;
  int rc;
  if (len > 0 && !msg)
    return FERRY_EINVAL;
  rc = ferry_channel_reserve(ch, len, &buf, timeout_ns);
  if (rc != 0)
    return rc;
  if (len > 0)
    memcpy(buf, msg, len);
  return ferry_channel_commit(ch, len);
}

int ferry_channel_close_send(ferry_channel *ch) {
  int rc;
  if (!ch || ch->role != FERRY_SENDER)
    return FERRY_EINVAL;
  /* A channel that lost memory under this sender may have lost messages
   * it sent: no clean end of the stream then (receivers must not take it
   * for complete). */
  rc = chan_fault(ch);
  if (rc != 0)
    return rc;
  ferry__store_release(&ch->h->closed, 1u);
  ferry__waitq_wake(&ch->h->rx, &ch->wp_rx);
  return chan_fault(ch); /* the flag itself went to lost memory */
}

/* ---------------------------------------------------------------------- */
/* Receiving                                                              */

/* Looks at the record at POS. Returns 1 and fills in LEN, SIZE and PAD for a
 * committed record, 0 when there is none yet, FERRY_ECORRUPT when the
 * record cannot be right. LIMIT bounds it (the tail, or for MPSC the ring). */
int ferry__rec_parse(uint32_t word, uint64_t idx, uint64_t avail, uint64_t cap,
                     uint32_t rh, uint64_t max_msg, uint64_t *len,
                     uint64_t *size, int *pad) {
  uint64_t l;
  if (!(word & FERRY_REC_COMMIT))
    return 0;
  l = word & FERRY_REC_LEN_MASK;
  *pad = (word & FERRY_REC_PAD) != 0;
  *size = *pad ? rh + l : (rh + l + rh - 1) & ~(uint64_t)(rh - 1);
  *len = l;
  if ((*pad ? (l & (rh - 1)) != 0 : l > max_msg) || idx >= cap ||
      *size > cap - idx || *size > avail)
    return FERRY_ECORRUPT;
  return 1;
}

static int rec_inspect(const ferry_channel *ch, uint64_t pos, uint64_t limit,
                       uint64_t *len, uint64_t *size, int *pad) {
  if (pos_bad(ch, pos))
    return FERRY_ECORRUPT;
  return ferry__rec_parse(rec_word_acquire(ch, pos), pos & ch->mask,
                          limit - pos, ch->cap, ch->rh, ch->max_msg, len, size,
                          pad);
}

/* How far the receiver may read: single producer, the tail (validated). */
static int sp_load_tail(ferry_channel *ch) {
  uint64_t t = ferry__load_acquire(&ch->h->tail);
  /* With overrun the sender may be any distance ahead (it lapped us; the
   * oldest intact record says where to resume); otherwise at most a ring. */
  if (t < ch->head || pos_bad(ch, t) ||
      (!(ch->flags & FERRY_CHANNEL_OVERRUN) && t - ch->head > ch->cap))
    return FERRY_ECORRUPT;
  ch->tail_seen = t;
  return 0;
}

/* Broadcast: the sender's tail and the number of the message that will be
 * written there, read consistently under the generation seqlock. */
static void bc_load_tail_seq(ferry_channel *ch, uint64_t *t, uint64_t *seq) {
  int tries;
  for (tries = 0; tries < 1000000; tries++) {
    uint32_t g1 = ferry__load_acquire(&ch->h->gen);
    *t = ferry__load_acquire(&ch->h->tail);
    *seq = ferry__load_acquire(&ch->h->tail_seq);
    atomic_thread_fence(memory_order_acquire);
    if (!(g1 & 1) && ferry__load_relaxed(&ch->h->gen) == g1)
      return;
    ferry_os_cpu_relax();
  }
}

static void bc_count_loss(ferry_channel *ch, uint64_t next_seq) {
  if (ch->seq_known && next_seq > ch->expect_seq) {
    ch->lost += next_seq - ch->expect_seq;
    ferry__store_relaxed(&ch->me->lost, ch->lost);
  }
  ch->expect_seq = next_seq;
  ch->seq_known = 1;
}

/* Broadcast with overrun: if the sender lapped us, jump to the oldest intact
 * record and count what we lost. */
static int bc_catch_up(ferry_channel *ch) {
  int tries;
  for (tries = 0; tries < 1000; tries++) {
    uint64_t o = ferry__load_acquire(&ch->h->oldest);
    const struct ferry_rec_bc *r;
    uint64_t seq, t, tseq;
    uint32_t w;
    if (o <= ch->head)
      return 0;
    if (pos_bad(ch, o))
      return FERRY_ECORRUPT;
    bc_load_tail_seq(ch, &t, &tseq);
    if (t < ch->head)
      return FERRY_ECORRUPT;
    ch->tail_seen = t;
    if (o > t || t - o > ch->cap) {
      /* The sender may have lapped us again since we read o. */
      if (ferry__load_acquire(&ch->h->oldest) != o)
        continue;
      return FERRY_ECORRUPT;
    }
    if (o == t) {
      /* Everything older was overwritten, and the oldest intact record is
       * the one being written now: its number is tail_seq. */
      atomic_thread_fence(memory_order_acquire);
      if (ferry__load_relaxed(&ch->h->oldest) != o)
        continue;
      bc_count_loss(ch, tseq);
      ch->head = o;
      return 0;
    }
    r = (const struct ferry_rec_bc *)(ch->ring + (o & ch->mask));
    w = ferry__load_acquire(&r->word);
    seq = r->seq;
    atomic_thread_fence(memory_order_acquire);
    if (ferry__load_relaxed(&ch->h->oldest) != o)
      continue; /* moved again while we looked */
    if (!(w & FERRY_REC_COMMIT))
      return FERRY_ECORRUPT; /* published records are committed */
    if (w & FERRY_REC_PAD) {
      /* the oldest record is padding: the next real one follows it */
      ch->head = o;
      continue;
    }
    bc_count_loss(ch, seq);
    ch->head = o;
    return 0;
  }
  return FERRY_EAGAIN;
}

/* Moves our head to TO: zeroes consumed MPSC bytes, publishes the head (or
 * the broadcast cursor), wakes a sender waiting for room. */
static void advance(ferry_channel *ch, uint64_t to) {
  uint64_t from = ch->head;
  if (ch->kind == FERRY_CHANNEL_MPSC && to > from) {
    /* Records never wrap, but the consumed range may. Say where we are
     * going first: a receiver that dies while zeroing leaves records that
     * look uncommitted, and its successor must know to skip them. */
    uint64_t a = from & ch->mask, len = to - from;
    ferry__store_relaxed(&ch->h->head_pending, to);
    if (a + len <= ch->cap) {
      memset(ch->ring + a, 0, (size_t)len);
    } else {
      memset(ch->ring + a, 0, (size_t)(ch->cap - a));
      memset(ch->ring, 0, (size_t)(len - (ch->cap - a)));
    }
  }
  ch->head = to;
  if (ch->kind == FERRY_CHANNEL_BROADCAST)
    ferry__store_release(&ch->me->cursor, to);
  else
    ferry__store_release(&ch->h->head, to);
  ferry__waitq_wake(&ch->h->tx, &ch->wp_tx);
}

/* Collects up to MAX committed messages from our head on, without waiting.
 * Returns the count (0: none yet) or an error. Leading padding is consumed
 * on the way. */
static int collect(ferry_channel *ch, ferry_msg *msgs, size_t max) {
  uint64_t pos, limit;
  size_t n = 0;
  int rc;
  if (ch->flags & FERRY_CHANNEL_OVERRUN) {
    rc = bc_catch_up(ch);
    if (rc != 0)
      return rc == FERRY_EAGAIN ? 0 : rc;
  }
  pos = ch->head;
  if (ch->kind == FERRY_CHANNEL_MPSC) {
    limit = pos + ch->cap;
  } else {
    if (pos == ch->tail_seen) {
      rc = sp_load_tail(ch);
      if (rc != 0)
        return rc;
    }
    limit = ch->tail_seen;
    /* (With overrun, catching up put us at or after the oldest intact
     * record, which is at most a ring behind the tail.) */
    if ((ch->flags & FERRY_CHANNEL_OVERRUN) && limit - pos > ch->cap &&
        ferry__load_acquire(&ch->h->oldest) <= pos)
      return FERRY_ECORRUPT;
  }
  while (n < max && pos < limit) {
    uint64_t len, size;
    int pad;
    rc = rec_inspect(ch, pos, limit, &len, &size, &pad);
    if (rc == 0) {
      /* Nothing committed here. A tail behind us would mean messages are
       * being written where we will never look. */
      if (n == 0 && ch->kind == FERRY_CHANNEL_MPSC) {
        uint64_t t = ferry__load_acquire(&ch->h->tail);
        if (t < pos || t - pos > ch->cap)
          return FERRY_ECORRUPT;
      }
      break;
    }
    if (rc < 0) {
      if ((ch->flags & FERRY_CHANNEL_OVERRUN) &&
          ferry__load_acquire(&ch->h->oldest) > pos)
        break; /* overwritten under us: catch up on the next call */
      return rc;
    }
    if (pad) {
      if (n == 0) {
        if (ch->flags & FERRY_CHANNEL_OVERRUN) {
          /* Was the padding overwritten while we read it? (Messages are
           * checked at release; padding is acted on here.) */
          atomic_thread_fence(memory_order_acquire);
          if (ferry__load_relaxed(&ch->h->oldest) > pos)
            break;
        }
        advance(ch, pos + size); /* nothing to hand out before it */
        pos = ch->head;
        if (ch->kind == FERRY_CHANNEL_MPSC)
          limit = pos + ch->cap; /* senders may now claim further */
        continue;
      }
    } else {
      const uint8_t *r = ch->ring + (pos & ch->mask);
      msgs[n].data = r + ch->rh;
      msgs[n].len = (size_t)len;
      msgs[n].seq = ch->rh == 16 ? ((const struct ferry_rec_bc *)r)->seq : 0;
      n++;
    }
    pos += size;
  }
  ch->peek_end = pos;
  ch->npeeked = n;
  if (n > 0)
    ch->peek_last_seq = msgs[n - 1].seq;
  return (int)n;
}

struct recv_wait {
  ferry_channel *ch;
  ferry_msg *msgs;
  size_t max;
  int n;
};

static int closed_and_drained(ferry_channel *ch) {
  if (!ferry__load_acquire(&ch->h->closed))
    return 0;
  if (ch->kind == FERRY_CHANNEL_MPSC)
    return ferry__load_acquire(&ch->h->tail) == ch->head;
  return sp_load_tail(ch) == 0 && ch->tail_seen == ch->head;
}

/* MPSC: the record at our head has not been committed for liveness_ns. If
 * the sender that claimed it has died, skip its claim (and count it). */
static void mp_skip_dead_claim(ferry_channel *ch) {
  uint64_t t = ferry__load_acquire(&ch->h->tail);
  uint32_t i;
  if (t <= ch->head)
    return; /* nothing claimed: simply empty */
  for (i = 0; i < ch->max_peers; i++) {
    struct ferry_chan_peer *p = &ch->peers[i];
    uint64_t from, to;
    if (ferry__load_acquire(&p->state) != FERRY_PEER_ACTIVE ||
        p->role != FERRY_SENDER)
      continue;
    from = ferry__load_relaxed(&p->cursor);
    to = ferry__load_relaxed(&p->claim_end);
    if (!(from <= ch->head && ch->head < to && to <= t &&
          to - ch->head <= ch->cap))
      continue;
    if (peer_alive(p) != 0)
      return;        /* a slow sender, not a dead one: keep waiting */
    advance(ch, to); /* zeroes the abandoned claim */
    atomic_fetch_add(&ch->h->abandoned, 1);
    return;
  }
}

static int recv_ready(void *ctx) {
  struct recv_wait *w = (struct recv_wait *)ctx;
  int n = chan_fault(w->ch);
  if (n != 0)
    return n;
  n = collect(w->ch, w->msgs, w->max);
  if (n == 0 && (n = chan_fault(w->ch)) != 0)
    return n; /* collect read zeros where a record should be */
  if (n == 0 && w->ch->kind == FERRY_CHANNEL_MPSC &&
      w->ch->liveness_ns != INT64_MAX) {
    ferry_channel *ch = w->ch;
    int64_t now = ferry_os_monotonic_ns();
    if (ch->stall_head != ch->head) {
      ch->stall_head = ch->head;
      ch->stall_check = now + ch->liveness_ns;
    } else if (now >= ch->stall_check) {
      ch->stall_check = now + ch->liveness_ns;
      mp_skip_dead_claim(ch);
      n = collect(ch, w->msgs, w->max);
    }
  }
  if (n == 0 && closed_and_drained(w->ch)) {
    /* a message may have landed between collect and the closed check */
    n = collect(w->ch, w->msgs, w->max);
    if (n == 0)
      return FERRY_ECLOSED;
  }
  w->n = n;
  return n < 0 ? n : n > 0;
}

int ferry_channel_peek(ferry_channel *ch, ferry_msg *msgs, size_t max,
                       int64_t timeout_ns) {
  struct recv_wait w;
  int rc;
  if (!ch || !msgs || max == 0 || ch->role != FERRY_RECEIVER || ch->npeeked ||
      timeout_ns < 0)
    return FERRY_EINVAL;
  if (max > INT32_MAX)
    max = INT32_MAX;
  w.ch = ch;
  w.msgs = msgs;
  w.max = max;
  w.n = 0;
  /* ferry__wait checks once before it reads a clock or spins */
  rc = ferry__wait(&ch->h->rx, &ch->wp_rx, recv_ready, &w,
                   clamp_timeout(timeout_ns), ch->spin_ns);
  if (rc == FERRY_ETIMEDOUT && timeout_ns == 0)
    return FERRY_EAGAIN;
  if (rc != 0)
    return rc;
  return w.n;
}

/* Releases the peeked messages; LAST_SEQ is the last one's number. */
static int consume(ferry_channel *ch, uint64_t last_seq) {
  int rc = chan_fault(ch); /* what was read may be zeros, not messages */
  if (rc != 0) {
    ch->npeeked = 0;
    return rc;
  }
  if (ch->flags & FERRY_CHANNEL_OVERRUN) {
    /* Were the messages overwritten while they were being read? Then they
     * are lost; bc_catch_up counts them from the message numbers. */
    atomic_thread_fence(memory_order_acquire);
    if (ferry__load_relaxed(&ch->h->oldest) > ch->head) {
      ch->npeeked = 0;
      return FERRY_EOVERRUN;
    }
  }
  if (ch->kind == FERRY_CHANNEL_BROADCAST) {
    /* Numbers inside one batch are consecutive; a gap before it is loss,
     * and a number going backwards is a record that cannot be right. */
    uint64_t first = last_seq - (ch->npeeked - 1);
    if (last_seq < ch->npeeked - 1 ||
        (ch->seq_known && first < ch->expect_seq)) {
      ch->npeeked = 0;
      return FERRY_ECORRUPT;
    }
    bc_count_loss(ch, first);
    ch->expect_seq = last_seq + 1;
  }
  ch->received += ch->npeeked;
  ferry__store_relaxed(&ch->me->msgs, ch->received);
  advance(ch, ch->peek_end);
  ch->npeeked = 0;
  return 0;
}

int ferry_channel_release(ferry_channel *ch) {
  if (!ch || ch->role != FERRY_RECEIVER || !ch->npeeked)
    return FERRY_EINVAL;
  return consume(ch, ch->peek_last_seq);
}

/* SPSC receive without the general path's detours: a committed message
 * that the tail we already know says is published, copied out directly.
 * Returns 1 when it delivered one, 0 to take the general path. */
static int spsc_recv_fast(ferry_channel *ch, void *buf, size_t cap,
                          size_t *len) {
  uint64_t pos = ch->head, l, size;
  int pad;
  if (pos == ch->tail_seen && sp_load_tail(ch) != 0)
    return 0;
  if (pos == ch->tail_seen ||
      ferry__rec_parse(rec_word_acquire(ch, pos), pos & ch->mask,
                       ch->tail_seen - pos, ch->cap, ch->rh, ch->max_msg, &l,
                       &size, &pad) != 1 ||
      pad || l > cap)
    return 0; /* empty, padding, corrupt or too large: the general path */
  if (l)
    memcpy(buf, ch->ring + (pos & ch->mask) + ch->rh, (size_t)l);
  if (ferry__guard_lost(ch->guard) != 0)
    return 0; /* copied zeros: the general path reports it */
  *len = (size_t)l;
  ch->received++;
  ferry__store_relaxed(&ch->me->msgs, ch->received);
  ch->head = pos + size;
  ferry__store_release(&ch->h->head, ch->head);
  ferry__waitq_wake(&ch->h->tx, &ch->wp_tx);
  return 1;
}

int ferry_channel_recv(ferry_channel *ch, void *buf, size_t cap, size_t *len,
                       int64_t timeout_ns) {
  ferry_msg m;
  int n;
  if (!len || (cap > 0 && !buf))
    return FERRY_EINVAL;
  if (ch && ch->kind == FERRY_CHANNEL_SPSC && ch->role == FERRY_RECEIVER &&
      !ch->npeeked && timeout_ns >= 0 && spsc_recv_fast(ch, buf, cap, len))
    return 0;
  n = ferry_channel_peek(ch, &m, 1, timeout_ns);
  if (n < 0)
    return n;
  *len = m.len;
  if (m.len > cap) {
    ch->npeeked = 0; /* leave it for the next call */
    return FERRY_EMSGSIZE;
  }
  if (m.len)
    memcpy(buf, m.data, m.len);
  return consume(ch, m.seq);
}

uint64_t ferry_channel_max_msg(const ferry_channel *ch) {
  return ch ? ch->max_msg : 0;
}

uint64_t ferry_channel_lost(const ferry_channel *ch) {
  return ch ? ch->lost : 0;
}

const ferry_segment *ferry_channel_segment(const ferry_channel *ch) {
  return ch ? ch->seg : NULL;
}

int ferry_channel_get_info(const ferry_channel *ch, ferry_channel_info *info,
                           size_t info_size) {
  ferry_channel_info *i;
  uint64_t t, min_cursor;
  uint32_t k;
  if (!ch || !info)
    return ferry__err(FERRY_EINVAL, "ch or info is NULL");
  i = (ferry_channel_info *)calloc(1, sizeof *i);
  if (!i)
    return ferry__err(FERRY_ENOMEM, "out of memory");
  i->kind = ch->kind;
  i->flags = ch->flags;
  i->capacity = ch->cap;
  i->max_msg = ch->max_msg;
  i->closed = ferry__load_acquire(&ch->h->closed);
  i->abandoned = ferry__load_relaxed(&ch->h->abandoned);
  i->sent = ferry__load_relaxed(&ch->h->sent_total);
  i->received = ferry__load_relaxed(&ch->h->recv_total);
  i->lost = ferry__load_relaxed(&ch->h->lost_total);
  t = ferry__load_acquire(&ch->h->tail);
  min_cursor = t;
  for (k = 0; k < ch->max_peers && i->npeers < FERRY_CHANNEL_PEERS_MAX; k++) {
    const struct ferry_chan_peer *p = &ch->peers[k];
    ferry_channel_peer *q;
    if (ferry__load_acquire(&((struct ferry_chan_peer *)p)->state) !=
        FERRY_PEER_ACTIVE)
      continue;
    q = &i->peers[i->npeers++];
    q->pid = ferry__load_relaxed(&((struct ferry_chan_peer *)p)->pid);
    q->role = p->role;
    q->alive = peer_alive(p);
    q->msgs = ferry__load_relaxed(&((struct ferry_chan_peer *)p)->msgs);
    q->lost = ferry__load_relaxed(&((struct ferry_chan_peer *)p)->lost);
    q->cursor = ferry__load_relaxed(&((struct ferry_chan_peer *)p)->cursor);
    if (p->role == FERRY_SENDER)
      i->sent += q->msgs;
    else {
      i->received += q->msgs;
      i->lost += q->lost;
      if (ch->kind == FERRY_CHANNEL_BROADCAST && q->cursor < min_cursor &&
          t - q->cursor <= ch->cap)
        min_cursor = q->cursor;
    }
  }
  if (ch->kind == FERRY_CHANNEL_BROADCAST) {
    i->used = t - min_cursor;
  } else {
    uint64_t hd = ferry__load_acquire(&ch->h->head);
    i->used = hd <= t && t - hd <= ch->cap ? t - hd : 0;
  }
  memcpy(info, i, info_size < sizeof *i ? info_size : sizeof *i);
  free(i);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* For pools (src/pool.c)                                                 */

uint64_t ferry__channel_sent_end(const ferry_channel *ch) {
  return ch->last_end;
}

int ferry__channel_overrun(const ferry_channel *ch) {
  return (ch->flags & FERRY_CHANNEL_OVERRUN) != 0;
}

int ferry__channel_consumed(ferry_channel *ch, int check_peers, uint64_t *pos) {
  uint64_t hd;
  if (ch->role != FERRY_SENDER)
    return FERRY_EINVAL;
  if (ch->kind != FERRY_CHANNEL_BROADCAST) {
    hd = ferry__load_acquire(&ch->h->head);
    if (hd > ch->tail && ch->kind == FERRY_CHANNEL_SPSC)
      return FERRY_ECORRUPT;
    *pos = hd;
    return 0;
  }
  if (check_peers)
    bc_evict_dead(ch); /* a dead subscriber will never consume */
  if (bc_min_cursor(ch, &hd) != 0)
    return FERRY_ECORRUPT;
  /* Overrun: what lies before the oldest intact record is gone. */
  *pos =
      (ch->flags & FERRY_CHANNEL_OVERRUN) && ch->oldest > hd ? ch->oldest : hd;
  return 0;
}
