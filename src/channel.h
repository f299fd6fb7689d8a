/*
 * Channel layout, version 1. It sits at the segment's user-data offset
 * (payload FERRY_PAYLOAD_CHANNEL). Like the segment header it is a file
 * format: fixed widths, asserted offsets; docs/design.md has the same table.
 *
 *   [channel header: 6 cache lines] [peer table: max_peers x 64] [ring]
 *
 * Everything here except the immutable first line (which a CRC covers) is
 * written by peers while others read it: every value is validated before it
 * is used (positions against each other and the capacity, lengths against
 * max_msg and the ring's end), and a bad one is FERRY_ECORRUPT.
 *
 * Positions are 64-bit byte counts that only grow; the ring index of a
 * position is pos & (capacity - 1). A record is a header of rec_hdr bytes
 * (8, or 16 for broadcast, which adds a message number) and its payload,
 * padded to rec_hdr. Records never wrap: a PAD record fills the end of the
 * ring when the next record does not fit there.
 */
#ifndef FERRY_CHANNEL_H
#define FERRY_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "ferry.h"
#include "peers.h"
#include "sync.h"

#define FERRY_CHAN_MAGIC "FERRYCHN"
#define FERRY_CHAN_VERSION 1u
#define FERRY_CHAN_HDR_SIZE 384u
#define FERRY_CHAN_PEER_SIZE 64u
#define FERRY_CHAN_RING_ALIGN 4096u
#define FERRY_CHAN_CAP_MIN 4096ull
#define FERRY_CHAN_CAP_MAX (1ull << 32)
#define FERRY_CHAN_CAP_DEFAULT (1ull << 20)
#define FERRY_CHAN_PEERS_DEFAULT 64u

/* Record header word: COMMIT | PAD | length (30 bits). */
#define FERRY_REC_COMMIT 0x80000000u
#define FERRY_REC_PAD 0x40000000u
#define FERRY_REC_LEN_MASK 0x3fffffffu

struct ferry_chan_hdr {
  /* line 0: immutable after creation, covered by crc */
  uint8_t magic[8];      /*   0 "FERRYCHN" */
  uint32_t version;      /*   8 FERRY_CHAN_VERSION */
  uint32_t kind;         /*  12 FERRY_CHANNEL_* */
  uint64_t capacity;     /*  16 ring bytes, a power of two */
  uint64_t max_msg;      /*  24 capacity / 2 - rec_hdr (and < 2^30) */
  uint32_t flags;        /*  32 FERRY_CHANNEL_OVERRUN */
  uint32_t max_peers;    /*  36 2..FERRY_CHANNEL_PEERS_MAX */
  uint32_t rec_hdr;      /*  40 8, or 16 for broadcast */
  uint32_t peers_offset; /*  44 FERRY_CHAN_HDR_SIZE */
  uint32_t ring_offset;  /*  48 after the peer table, 4096-aligned */
  uint32_t crc;          /*  52 CRC-32C of bytes 0..63, this field as 0 */
  uint8_t reserved0[8];  /*  56 */
  /* line 1: written by the sender (single-producer kinds) */
  _Atomic uint64_t tail;     /*  64 end of published (MPSC: claimed) bytes */
  _Atomic uint64_t oldest;   /*  72 broadcast overrun: oldest intact record */
  _Atomic uint32_t closed;   /*  80 1 once the sender ended the stream */
  _Atomic uint32_t gen;      /*  84 broadcast: seqlock over tail + tail_seq */
  _Atomic uint64_t tail_seq; /*  88 broadcast: number of the next message */
  uint8_t reserved1[32];     /*  96 */
  /* line 2: written by the receiver (SPSC, MPSC) */
  _Atomic uint64_t head;         /* 128 end of consumed bytes */
  _Atomic uint64_t head_pending; /* 136 MPSC: release under way up to here */
  uint8_t reserved2[48];         /* 144 */
  /* line 3: receivers wait here for messages */
  struct ferry__waitq rx; /* 192 */
  uint8_t reserved3[56];  /* 200 */
  /* line 4: senders wait here for room */
  struct ferry__waitq tx; /* 256 */
  uint8_t reserved4[56];  /* 264 */
  /* line 5: totals of departed peers, and who holds the unique roles */
  _Atomic uint64_t sent_total; /* 320 */
  _Atomic uint64_t recv_total; /* 328 */
  _Atomic uint64_t lost_total; /* 336 */
  _Atomic uint32_t tx_owner;   /* 344 peer index + 1 of the unique sender */
  _Atomic uint32_t rx_owner;   /* 348 peer index + 1 of the unique receiver */
  _Atomic uint64_t abandoned;  /* 352 MPSC claims of dead senders skipped */
  uint8_t reserved5[24];       /* 360 */
};                             /* 384 */

/* Peer slot states FERRY_PEER_* are in peers.h. */

struct ferry_chan_peer {
  _Atomic uint32_t state; /*  0 FERRY_PEER_* */
  uint32_t role;          /*  4 FERRY_SENDER / FERRY_RECEIVER */
  _Atomic uint64_t pid;   /*  8 */
  _Atomic uint64_t start; /* 16 process start time (liveness) */
  _Atomic uint64_t boot;  /* 24 */
  /* 32 broadcast receiver: consumed up to here. MPSC sender: start of its
   * current claim, written before the claiming CAS (with claim_end), so a
   * receiver stuck on a dead sender's claim knows what to skip. */
  _Atomic uint64_t cursor;
  _Atomic uint64_t msgs;      /* 40 messages sent / received */
  _Atomic uint64_t lost;      /* 48 broadcast overrun losses */
  _Atomic uint64_t claim_end; /* 56 MPSC sender: end of its current claim */
};                            /* 64 */

#define FERRY_CHAN_CHECK_(field, off)                                          \
  _Static_assert(offsetof(struct ferry_chan_hdr, field) == (off),              \
                 "ferry_chan_hdr." #field " must be at offset " #off)
FERRY_CHAN_CHECK_(version, 8);
FERRY_CHAN_CHECK_(capacity, 16);
FERRY_CHAN_CHECK_(max_msg, 24);
FERRY_CHAN_CHECK_(rec_hdr, 40);
FERRY_CHAN_CHECK_(crc, 52);
FERRY_CHAN_CHECK_(tail, 64);
FERRY_CHAN_CHECK_(oldest, 72);
FERRY_CHAN_CHECK_(closed, 80);
FERRY_CHAN_CHECK_(gen, 84);
FERRY_CHAN_CHECK_(tail_seq, 88);
FERRY_CHAN_CHECK_(head, 128);
FERRY_CHAN_CHECK_(head_pending, 136);
FERRY_CHAN_CHECK_(rx, 192);
FERRY_CHAN_CHECK_(tx, 256);
FERRY_CHAN_CHECK_(sent_total, 320);
FERRY_CHAN_CHECK_(tx_owner, 344);
FERRY_CHAN_CHECK_(rx_owner, 348);
FERRY_CHAN_CHECK_(abandoned, 352);
_Static_assert(sizeof(struct ferry_chan_hdr) == FERRY_CHAN_HDR_SIZE,
               "channel header is 384 bytes");
_Static_assert(sizeof(struct ferry_chan_peer) == FERRY_CHAN_PEER_SIZE,
               "peer slot is 64 bytes");
_Static_assert(offsetof(struct ferry_chan_peer, cursor) == 32, "cursor at 32");
/* The rest of both layouts, so that a 32-bit and a 64-bit build (or two
 * compilers) cannot disagree on any field: on i386 a plain uint64_t member is
 * only 4-aligned (an _Atomic one is 8-aligned), so no field may rely on
 * natural alignment for its place. */
FERRY_CHAN_CHECK_(magic, 0);
FERRY_CHAN_CHECK_(kind, 12);
FERRY_CHAN_CHECK_(flags, 32);
FERRY_CHAN_CHECK_(max_peers, 36);
FERRY_CHAN_CHECK_(peers_offset, 44);
FERRY_CHAN_CHECK_(ring_offset, 48);
FERRY_CHAN_CHECK_(reserved0, 56);
FERRY_CHAN_CHECK_(reserved1, 96);
FERRY_CHAN_CHECK_(reserved2, 144);
FERRY_CHAN_CHECK_(reserved3, 200);
FERRY_CHAN_CHECK_(reserved4, 264);
FERRY_CHAN_CHECK_(recv_total, 328);
FERRY_CHAN_CHECK_(lost_total, 336);
FERRY_CHAN_CHECK_(reserved5, 360);
_Static_assert(_Alignof(struct ferry_chan_hdr) == 8, "header 8-aligned");
#define FERRY_PEER_CHECK_(field, off)                                          \
  _Static_assert(offsetof(struct ferry_chan_peer, field) == (off),             \
                 "ferry_chan_peer." #field " must be at offset " #off)
FERRY_PEER_CHECK_(state, 0);
FERRY_PEER_CHECK_(role, 4);
FERRY_PEER_CHECK_(pid, 8);
FERRY_PEER_CHECK_(start, 16);
FERRY_PEER_CHECK_(boot, 24);
FERRY_PEER_CHECK_(msgs, 40);
FERRY_PEER_CHECK_(lost, 48);
FERRY_PEER_CHECK_(claim_end, 56);
_Static_assert(_Alignof(struct ferry_chan_peer) == 8, "peer slot 8-aligned");
_Static_assert(offsetof(struct ferry__waitq, sleepers) == 4, "sleepers at 4");
_Static_assert(sizeof(struct ferry__waitq) == 8, "wait queue 8 bytes");
_Static_assert(offsetof(struct ferry_chan_peer, pid) == 8 &&
                   offsetof(struct ferry_chan_peer, start) == 16 &&
                   offsetof(struct ferry_chan_peer, boot) == 24,
               "identity at 8..31, as struct ferry__peer_id (peers.h)");

/* Record headers. */
struct ferry_rec {
  _Atomic uint32_t word; /* COMMIT | PAD | length */
  uint32_t aux;          /* MPSC: sender's peer index (for recovery) */
};
struct ferry_rec_bc {
  _Atomic uint32_t word;
  uint32_t aux;
  uint64_t seq; /* broadcast message number, from 0 */
};
_Static_assert(sizeof(struct ferry_rec) == 8, "record header 8");
_Static_assert(sizeof(struct ferry_rec_bc) == 16, "broadcast header 16");
_Static_assert(offsetof(struct ferry_rec, aux) == 4, "record aux at 4");
_Static_assert(offsetof(struct ferry_rec_bc, aux) == 4, "record aux at 4");
_Static_assert(offsetof(struct ferry_rec_bc, seq) == 8, "record seq at 8");

/* Where the ring starts, for MAX_PEERS peers. */
static inline uint32_t ferry__chan_ring_offset(uint32_t max_peers) {
  uint32_t end = FERRY_CHAN_HDR_SIZE + max_peers * FERRY_CHAN_PEER_SIZE;
  return (end + FERRY_CHAN_RING_ALIGN - 1) / FERRY_CHAN_RING_ALIGN *
         FERRY_CHAN_RING_ALIGN;
}

/* Validates the immutable line of a channel header copied out of shared
 * memory, against the segment's user-data size. FERRY_EBADHDR with a
 * message when anything is off. Pure: fuzzable. */
int ferry__chan_validate(const struct ferry_chan_hdr *h, uint64_t data_size);

/* Parses a record header WORD found at ring index IDX, with AVAIL bytes
 * published from there on (tail - pos), in a ring of CAP bytes with RH-byte
 * headers and messages of at most MAX_MSG bytes. Returns 0 when the record
 * is not committed, 1 with *LEN (payload bytes), *SIZE (bytes to step over)
 * and *PAD set, or FERRY_ECORRUPT when the record cannot be right. Pure:
 * fuzzable. */
int ferry__rec_parse(uint32_t word, uint64_t idx, uint64_t avail, uint64_t cap,
                     uint32_t rh, uint64_t max_msg, uint64_t *len,
                     uint64_t *size, int *pad);

/* CRC of the immutable line. */
uint32_t ferry__chan_crc(const struct ferry_chan_hdr *h);

/* For pools. The position after the last message CH (a sender) committed. */
uint64_t ferry__channel_sent_end(const ferry_channel *ch);

/* For pools: 1 for a broadcast channel with FERRY_CHANNEL_OVERRUN. */
int ferry__channel_overrun(const ferry_channel *ch);

/* For pools: into *POS, how far every receiver of CH (a sender's handle)
 * has consumed: the receiver's head (SPSC, MPSC), or the slowest active
 * subscriber's cursor (broadcast; the tail when there is none; with overrun
 * never behind the oldest intact record). A message that ends at or before
 * *POS will never be read again. CHECK_PEERS: first evict dead broadcast
 * subscribers (a /proc read each). FERRY_EINVAL for a receiver's handle,
 * FERRY_ECORRUPT for positions that cannot be right. */
int ferry__channel_consumed(ferry_channel *ch, int check_peers, uint64_t *pos);

#endif
