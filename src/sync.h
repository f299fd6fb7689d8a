/*
 * Wait and wake between processes, on words in shared memory.
 *
 * A wait queue is two 32-bit words in shared memory: SEQ, which a waker bumps
 * before it wakes, and SLEEPERS, the number of processes parked or about to
 * park. The protocol:
 *
 *   waiter:  s = SEQ; SLEEPERS += 1 (seq_cst RMW); if ready: SLEEPERS -= 1,
 *            done; else sleep on SEQ while it equals s (the first sleep of a
 *            park lasts at most FERRY_PARK_FIRST_NS), SLEEPERS -= 1, re-check
 *            readiness, and repeat.
 *   waker:   publish the state (release store); if SLEEPERS != 0 (relaxed
 *            load): SEQ += 1, wake all on SEQ.
 *
 * A wake between "s = SEQ" and the sleep changes SEQ, so that sleep returns
 * at once. The waker has no fence between its publishing store and its load
 * of SLEEPERS: a full fence there costs ~4.5 ns per message, which halves
 * streaming throughput. Without it one race remains: the waker's store still
 * sits in its CPU's store buffer while the waiter re-checks, and the waker
 * reads SLEEPERS before the waiter's increment reaches it. Store buffers
 * drain within well under a microsecond, so the waiter's first, short sleep
 * ends with a re-check that sees the store. Nothing is lost and no timeout
 * is exceeded; in that rare race a wake-up is late by at most
 * FERRY_PARK_FIRST_NS. (Closing the race with no fence on the fast path,
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) before sleeping, costs ~40 us
 * of IPIs per park on this kind of virtual machine.)
 *
 * A waker makes no system call while nobody sleeps. Waiters spin for a
 * while first (the peer is usually awake, and a futex round trip costs
 * ~80 us on an idle virtual CPU).
 */
#ifndef FERRY_SYNC_H
#define FERRY_SYNC_H

#include <stdatomic.h>
#include <stdint.h>

#include "os/os.h"

struct ferry__waitq {
  _Atomic uint32_t seq;
  _Atomic uint32_t sleepers;
};

/* Default spin before parking, ns; FERRY_SPIN_NS overrides it. */
#define FERRY_SPIN_NS_DEFAULT 20000

/* The first sleep of a park is at most this long: it closes the one race
 * the fence-free waker leaves open (see above). */
#define FERRY_PARK_FIRST_NS 200000

/* While parked, a waiter wakes at least this often to re-run its readiness
 * check (which may look at peer liveness). Not needed for correctness. */
#define FERRY_PARK_SLICE_NS 50000000

/* The spin time: SPIN_NS if non-zero, else FERRY_SPIN_NS from the
 * environment, else the default; negative means no spinning. */
int64_t ferry__spin_ns(int64_t spin_ns);

/* Wakes the sleepers of Q, if any. Call right after publishing. */
static inline void ferry__waitq_wake(struct ferry__waitq *q,
                                     ferry_os_waitpoint *wp) {
  uint32_t n = atomic_load_explicit(&q->sleepers, memory_order_relaxed);
  if (n != 0) {
    atomic_fetch_add_explicit(&q->seq, 1, memory_order_release);
    ferry_os_wake(wp, &q->seq, n);
  }
}

/* READY returns 1 when the awaited state holds, 0 when not yet, or a
 * negative FERRY_E* code to stop waiting with that error. */
typedef int (*ferry__ready_fn)(void *ctx);

/* Waits until READY(CTX) is not 0, for at most TIMEOUT_NS: spins for
 * SPIN_NS (already resolved by ferry__spin_ns), then parks on Q. Returns 0
 * when ready, READY's error, or FERRY_ETIMEDOUT. TIMEOUT_NS 0 checks once. */
int ferry__wait(struct ferry__waitq *q, ferry_os_waitpoint *wp,
                ferry__ready_fn ready, void *ctx, int64_t timeout_ns,
                int64_t spin_ns);

#endif
