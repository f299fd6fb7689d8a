/*
 * Peer slots: what channels (src/channel.h) and pools (src/pool.h) share.
 *
 * A peer slot is 64 bytes in a segment's peer table. Its first word is a
 * state (FERRY_PEER_*), and bytes 8..31 hold the identity of the process in
 * it: pid, start time and boot id. A process claims a free slot by CAS
 * (FREE -> CLAIMED), writes start and boot, then its pid last with release:
 * a slot whose pid is 0 is being filled in and is never judged dead. A dead
 * peer's slot goes through RETIRING so that exactly one process (or, in a
 * pool, a counted set of sweepers) frees it.
 */
#ifndef FERRY_PEERS_H
#define FERRY_PEERS_H

#include <stdint.h>

#include "atomics.h"

/* Peer slot states. */
#define FERRY_PEER_FREE 0u     /* pid is 0 */
#define FERRY_PEER_CLAIMED 1u  /* being filled in by the process in pid */
#define FERRY_PEER_ACTIVE 2u   /* attached */
#define FERRY_PEER_RETIRING 3u /* a dead peer's slot, being freed */

/* The identity in a peer slot, at byte 8 of every slot layout. */
struct ferry__peer_id {
  _Atomic uint64_t pid;   /* 0 while the slot is free or being filled in */
  _Atomic uint64_t start; /* process start time (pid reuse check) */
  _Atomic uint64_t boot;  /* boot id */
};

/* 1 alive, 0 dead, -1 cannot tell (ferry__proc_alive). A pid of 0 is never
 * judged: the caller checks it first. */
int ferry__peer_id_alive(const struct ferry__peer_id *id);

/* Writes the calling process's identity into ID: start and boot, then the
 * pid with release, so whoever sees the pid sees the rest. */
void ferry__peer_id_fill(struct ferry__peer_id *id);

/* Clears ID (pid first: the slot can no longer be judged). */
void ferry__peer_id_clear(struct ferry__peer_id *id);

#endif
