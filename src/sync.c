/* Wait and wake between processes: spin, then park on a wait queue. */
#include "sync.h"

#include <stdlib.h>

#include "ferry.h"

int64_t ferry__spin_ns(int64_t spin_ns) {
  if (spin_ns == 0) {
    const char *env = getenv("FERRY_SPIN_NS");
    spin_ns = env ? atoll(env) : FERRY_SPIN_NS_DEFAULT;
    if (env && spin_ns == 0)
      spin_ns = -1; /* FERRY_SPIN_NS=0: do not spin */
  }
  return spin_ns < 0 ? 0 : spin_ns;
}

int ferry__wait(struct ferry__waitq *q, ferry_os_waitpoint *wp,
                ferry__ready_fn ready, void *ctx, int64_t timeout_ns,
                int64_t spin_ns) {
  int64_t start, deadline, now;
  unsigned i;
  int rc = ready(ctx);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  if (timeout_ns <= 0)
    return FERRY_ETIMEDOUT;
  start = ferry_os_monotonic_ns();
  deadline = start + timeout_ns;

  /* Spin: the peer is probably running and about to act. */
  if (spin_ns > 0) {
    int64_t spin_end = start + (spin_ns < timeout_ns ? spin_ns : timeout_ns);
    for (i = 1;; i++) {
      rc = ready(ctx);
      if (rc != 0)
        return rc < 0 ? rc : 0;
      ferry_os_cpu_relax();
      if ((i & 63) == 0 && ferry_os_monotonic_ns() >= spin_end)
        break;
    }
  }

  /* Park. */
  for (i = 0;; i++) {
    uint32_t s = atomic_load_explicit(&q->seq, memory_order_acquire);
    int64_t slice;
    atomic_fetch_add_explicit(&q->sleepers, 1, memory_order_seq_cst);
    rc = ready(ctx);
    if (rc != 0) {
      atomic_fetch_sub_explicit(&q->sleepers, 1, memory_order_relaxed);
      return rc < 0 ? rc : 0;
    }
    now = ferry_os_monotonic_ns();
    if (now >= deadline) {
      atomic_fetch_sub_explicit(&q->sleepers, 1, memory_order_relaxed);
      return FERRY_ETIMEDOUT;
    }
    slice = deadline - now;
    if (slice > FERRY_PARK_SLICE_NS)
      slice = FERRY_PARK_SLICE_NS;
    if (i == 0 && slice > FERRY_PARK_FIRST_NS)
      slice = FERRY_PARK_FIRST_NS;
    ferry_os_wait(wp, &q->seq, s, slice);
    atomic_fetch_sub_explicit(&q->sleepers, 1, memory_order_relaxed);
    rc = ready(ctx);
    if (rc != 0)
      return rc < 0 ? rc : 0;
  }
}
