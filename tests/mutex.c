/* Description: robust process-shared mutexes in a segment: mutual exclusion
 * across processes, try and timed locks, an owner that exits or is killed
 * holding the lock (FERRY_EOWNERDEAD, repaired with ferry_mutex_consistent,
 * or left FERRY_ENOTRECOVERABLE), and regions that are not mutexes (zeroed,
 * random, damaged header), which must give an error, never a crash or a
 * hang. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "os/os.h"

#define MS 1000000ll /* ns */

/* The segment's user data: a mutex, the words the processes signal each
 * other through, and the data the mutex protects. */
struct shared {
  _Alignas(FERRY_MUTEX_ALIGN) unsigned char mutex[FERRY_MUTEX_SIZE];
  _Alignas(64) _Atomic uint32_t ready; /* helpers at the start line */
  _Atomic uint32_t go;                 /* the parent says start */
  _Atomic uint32_t held;               /* a helper holds the mutex */
  _Atomic uint32_t release;            /* the parent says let go / die */
  _Atomic uint32_t waiting;            /* a helper is about to lock */
  _Atomic uint32_t inside;             /* processes in the critical section */
  _Atomic int32_t result;              /* a helper's lock result */
  _Alignas(64) uint64_t counter;       /* protected by the mutex only */
};

struct seg {
  ferry_segment *seg;
  struct shared *sh;
};

static int64_t mono_ms(void) { return ferry_os_monotonic_ns() / MS; }

/* A lock timeout that only a broken mutex can exceed. */
static int64_t long_ns(void) { return test_timeout_ms(30000) * MS; }

/* Spins (yielding) until *W >= WANT; fails the test after a generous
 * timeout. */
static void wait_for(_Atomic uint32_t *w, uint32_t want) {
  int64_t deadline = mono_ms() + test_timeout_ms(60000);
  while (atomic_load(w) < want) {
    if (mono_ms() > deadline)
      TEST_FAIL("waited in vain for a word to reach %u (it is %u)",
                (unsigned)want, (unsigned)atomic_load(w));
    sched_yield();
  }
}

static struct seg seg_create(char *name, size_t cap) {
  struct seg s;
  test_name(name, cap, "mx");
  ASSERT_OK(ferry_segment_open(&s.seg, name, FERRY_CREATE | FERRY_EXCL,
                               sizeof(struct shared), NULL));
  s.sh = (struct shared *)ferry_segment_data(s.seg);
  ASSERT_OK(ferry_mutex_init(s.sh->mutex));
  return s;
}

static struct seg seg_attach(const char *name) {
  struct seg s;
  ASSERT_OK(ferry_segment_open(&s.seg, name, 0, 0, NULL));
  ASSERT_TRUE(ferry_segment_data_size(s.seg) >= sizeof(struct shared));
  s.sh = (struct shared *)ferry_segment_data(s.seg);
  return s;
}

/* Closes S; with NAME (the creator, the last process using it) also removes
 * the segment. Unlink comes first: a Windows section has no name to remove
 * and goes with its last handle, so unlink must find it still open. */
static void seg_done(struct seg *s, const char *name) {
  if (name)
    ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_close(s->seg));
}

static long spawn1(const char *role, const char *name, const char *arg) {
  const char *args[3];
  args[0] = name;
  args[1] = arg;
  args[2] = NULL;
  return test_spawn(role, args);
}

static void wait_ok(long pid) {
  ASSERT_EQ(test_wait(pid, test_timeout_ms(120000)), 0);
}

/* ---------------------------------------------------------------------- */
/* Helper roles                                                           */

/* count NAME N: N times, lock and increment the counter with a read, a
 * yield and a write, so that two processes inside at once lose updates.
 * Exit 10 on a lock error, 11 on an unlock error, 12 if it ever found
 * another process inside. */
static int role_count(int argc, char **argv) {
  struct seg s;
  long i, n;
  int overlap = 0;
  if (argc < 2)
    return 2;
  s = seg_attach(argv[0]);
  n = atol(argv[1]);
  atomic_fetch_add(&s.sh->ready, 1);
  wait_for(&s.sh->go, 1);
  for (i = 0; i < n; i++) {
    volatile uint64_t *c = &s.sh->counter;
    uint64_t v;
    int rc = ferry_mutex_lock(s.sh->mutex, long_ns());
    if (rc != 0) {
      fprintf(stderr, "lock: %s: %s\n", ferry_err_name(rc), ferry_errmsg());
      return 10;
    }
    if (atomic_fetch_add(&s.sh->inside, 1) != 0)
      overlap = 1;
    v = *c;
    if ((i & 7) == 0)
      sched_yield();
    *c = v + 1;
    atomic_fetch_sub(&s.sh->inside, 1);
    rc = ferry_mutex_unlock(s.sh->mutex);
    if (rc != 0) {
      fprintf(stderr, "unlock: %s: %s\n", ferry_err_name(rc), ferry_errmsg());
      return 11;
    }
  }
  seg_done(&s, NULL);
  return overlap ? 12 : 0;
}

/* hold NAME: locks, says so, unlocks when told to. */
static int role_hold(int argc, char **argv) {
  struct seg s;
  if (argc < 1)
    return 2;
  s = seg_attach(argv[0]);
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, long_ns()));
  atomic_store(&s.sh->held, 1);
  wait_for(&s.sh->release, 1);
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  seg_done(&s, NULL);
  return 0;
}

/* die NAME exit|kill: locks, says so, then dies holding the lock: with
 * _Exit(0) when told to, or by the test_kill (SIGKILL, TerminateProcess)
 * the parent sends. */
static int role_die(int argc, char **argv) {
  struct seg s;
  if (argc < 2)
    return 2;
  s = seg_attach(argv[0]);
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, long_ns()));
  atomic_store(&s.sh->held, 1);
  if (strcmp(argv[1], "kill") == 0) {
    /* Hangs until killed. The deadline is only a safety net, should the
     * parent never kill it. */
    int64_t deadline = mono_ms() + test_timeout_ms(120000);
    while (mono_ms() < deadline)
      test_sleep_ms(100);
    return 3;
  }
  wait_for(&s.sh->release, 1);
  _Exit(0); /* no unlock, no segment close: as if it crashed */
}

/* lock NAME: says it is about to lock, locks (a long timeout), records
 * the result, and on success (repairing after FERRY_EOWNERDEAD) increments
 * the counter and unlocks. */
static int role_lock(int argc, char **argv) {
  struct seg s;
  int rc;
  if (argc < 1)
    return 2;
  s = seg_attach(argv[0]);
  atomic_store(&s.sh->waiting, 1);
  rc = ferry_mutex_lock(s.sh->mutex, long_ns());
  atomic_store(&s.sh->result, rc);
  if (rc == FERRY_EOWNERDEAD)
    ASSERT_OK(ferry_mutex_consistent(s.sh->mutex));
  if (rc == 0 || rc == FERRY_EOWNERDEAD) {
    s.sh->counter++;
    ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  }
  seg_done(&s, NULL);
  return 0;
}

/* Starts "die NAME MODE" and returns once it has died holding the mutex. */
static void owner_dies(const char *name, struct shared *sh, const char *mode) {
  long pid = spawn1("die", name, mode);
  wait_for(&sh->held, 1);
  if (strcmp(mode, "kill") == 0) {
    test_kill(pid);
    ASSERT_EQ(test_wait(pid, test_timeout_ms(60000)), 137); /* 128 + SIGKILL */
  } else {
    atomic_store(&sh->release, 1);
    wait_ok(pid);
  }
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                  */

static void test_lock_unlock_one_process(void) {
  _Alignas(FERRY_MUTEX_ALIGN) static unsigned char mem[FERRY_MUTEX_SIZE];
  ASSERT_OK(ferry_mutex_init(mem));
  ASSERT_OK(ferry_mutex_lock(mem, 0));
  /* Not recursive: the holder itself is told it is busy, even when it
   * offers to wait (it would wait for itself). */
  ASSERT_ERR(ferry_mutex_lock(mem, 0), FERRY_EBUSY);
  ASSERT_ERR(ferry_mutex_lock(mem, 1 * MS), FERRY_EBUSY);
  ASSERT_CONTAINS(ferry_errmsg(), "calling thread holds it");
  /* Consistent is only for a mutex taken over from a dead owner. */
  ASSERT_ERR(ferry_mutex_consistent(mem), FERRY_EINVAL);
  ASSERT_OK(ferry_mutex_unlock(mem));
  ASSERT_ERR(ferry_mutex_unlock(mem), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "does not hold it");
  ASSERT_OK(ferry_mutex_lock(mem, long_ns()));
  ASSERT_OK(ferry_mutex_unlock(mem));
  ASSERT_ERR(ferry_mutex_lock(mem, -1), FERRY_EINVAL);
}

static void *other_thread(void *arg) {
  static int rc[3];
  rc[0] = ferry_mutex_lock(arg, 0);
  rc[1] = ferry_mutex_lock(arg, 1 * MS);
  rc[2] = ferry_mutex_unlock(arg);
  return rc;
}

static void test_other_thread(void) {
  _Alignas(FERRY_MUTEX_ALIGN) static unsigned char mem[FERRY_MUTEX_SIZE];
  pthread_t t;
  void *res;
  int *rc;
  ASSERT_OK(ferry_mutex_init(mem));
  ASSERT_OK(ferry_mutex_lock(mem, 0));
  ASSERT_EQ(pthread_create(&t, NULL, other_thread, mem), 0);
  ASSERT_EQ(pthread_join(t, &res), 0);
  rc = (int *)res;
  ASSERT_ERR(rc[0], FERRY_EBUSY);
  ASSERT_ERR(rc[1], FERRY_ETIMEDOUT);
  ASSERT_ERR(rc[2], FERRY_EINVAL); /* it does not hold it */
  ASSERT_OK(ferry_mutex_unlock(mem));
}

static void test_mutual_exclusion(void) {
  enum { PROCS = 4, ROUNDS = 20000 };
  char name[64], n[32];
  struct seg s = seg_create(name, sizeof name);
  long pids[PROCS];
  int i;
  snprintf(n, sizeof n, "%d", ROUNDS);
  for (i = 0; i < PROCS; i++)
    pids[i] = spawn1("count", name, n);
  wait_for(&s.sh->ready, PROCS);
  atomic_store(&s.sh->go, 1);
  for (i = 0; i < PROCS; i++)
    wait_ok(pids[i]);
  ASSERT_UEQ(s.sh->counter, (uint64_t)PROCS * ROUNDS);
  ASSERT_EQ(atomic_load(&s.sh->inside), 0);
  seg_done(&s, name);
}

/* Rounds of processes taking a fresh mutex for the first time at once
 * (mutual_exclusion has only one such moment): nobody died, so nobody may
 * see FERRY_EOWNERDEAD, or any other error. (On Windows, where the first
 * lock in a process opens the kernel mutex, one of them creates it while
 * another may already be locking it.) */
static void test_first_lock_race(void) {
  enum { ROUNDS = 12, PROCS = 6, LOCKS = 20 };
  int round;
  for (round = 0; round < ROUNDS; round++) {
    char name[64], n[32];
    struct seg s = seg_create(name, sizeof name);
    long pids[PROCS];
    int i;
    snprintf(n, sizeof n, "%d", LOCKS);
    for (i = 0; i < PROCS; i++)
      pids[i] = spawn1("count", name, n);
    wait_for(&s.sh->ready, PROCS);
    atomic_store(&s.sh->go, 1);
    for (i = 0; i < PROCS; i++)
      wait_ok(pids[i]);
    ASSERT_UEQ(s.sh->counter, (uint64_t)PROCS * LOCKS);
    seg_done(&s, name);
  }
}

static void test_busy_and_timeout(void) {
  char name[64];
  struct seg s = seg_create(name, sizeof name);
  long pid = spawn1("hold", name, NULL);
  wait_for(&s.sh->held, 1);
  ASSERT_ERR(ferry_mutex_lock(s.sh->mutex, 0), FERRY_EBUSY);
  ASSERT_ERR(ferry_mutex_lock(s.sh->mutex, 1 * MS), FERRY_ETIMEDOUT);
  ASSERT_ERR(ferry_mutex_lock(s.sh->mutex, 20 * MS), FERRY_ETIMEDOUT);
  /* Only the holder may unlock. */
  ASSERT_ERR(ferry_mutex_unlock(s.sh->mutex), FERRY_EINVAL);
  atomic_store(&s.sh->release, 1);
  wait_ok(pid);
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, 0));
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  seg_done(&s, name);
}

static void test_waiter_gets_lock(void) {
  char name[64];
  struct seg s = seg_create(name, sizeof name);
  long pid;
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, 0));
  pid = spawn1("lock", name, NULL);
  wait_for(&s.sh->waiting, 1);
  s.sh->counter = 41; /* under the lock */
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  wait_ok(pid);
  ASSERT_EQ(atomic_load(&s.sh->result), 0);
  ASSERT_UEQ(s.sh->counter, 42);
  seg_done(&s, name);
}

/* The owner dies (MODE exit or kill); the next locker repairs; everything
 * works as before afterwards, in this process and in another. USED: this
 * process locks and unlocks once before (on Windows it then keeps the
 * kernel mutex open, and sees the owner's death as WAIT_ABANDONED rather
 * than as a mutex created anew while the region names an owner). */
static void owner_dead_recovered(const char *mode, int64_t timeout_ns,
                                 int used) {
  char name[64];
  struct seg s = seg_create(name, sizeof name);
  long pid;
  if (used) {
    ASSERT_OK(ferry_mutex_lock(s.sh->mutex, 0));
    ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  }
  owner_dies(name, s.sh, mode);
  ASSERT_ERR(ferry_mutex_lock(s.sh->mutex, timeout_ns), FERRY_EOWNERDEAD);
  ASSERT_OK(ferry_mutex_consistent(s.sh->mutex));
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, 0));
  ASSERT_ERR(ferry_mutex_consistent(s.sh->mutex), FERRY_EINVAL);
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, long_ns()));
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  pid = spawn1("lock", name, NULL);
  wait_ok(pid);
  ASSERT_EQ(atomic_load(&s.sh->result), 0);
  ASSERT_UEQ(s.sh->counter, 1);
  seg_done(&s, name);
}

static void test_owner_exit_try(void) { owner_dead_recovered("exit", 0, 0); }

static void test_owner_exit_timed(void) {
  owner_dead_recovered("exit", long_ns(), 1);
}

static void test_owner_killed(void) {
  owner_dead_recovered("kill", long_ns(), 0);
}

static void test_owner_killed_used(void) { owner_dead_recovered("kill", 0, 1); }

/* A process already waiting for the lock when its owner dies gets
 * FERRY_EOWNERDEAD (whether it was asleep by then or not). */
static void test_waiter_sees_owner_death(void) {
  char name[64];
  struct seg s = seg_create(name, sizeof name);
  long owner = spawn1("die", name, "exit"), waiter;
  wait_for(&s.sh->held, 1);
  waiter = spawn1("lock", name, NULL);
  wait_for(&s.sh->waiting, 1);
  atomic_store(&s.sh->release, 1);
  wait_ok(owner);
  wait_ok(waiter);
  ASSERT_ERR(atomic_load(&s.sh->result), FERRY_EOWNERDEAD);
  ASSERT_UEQ(s.sh->counter, 1);
  /* The waiter repaired it. */
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, 0));
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  seg_done(&s, name);
}

static void test_not_recoverable(void) {
  char name[64];
  struct seg s = seg_create(name, sizeof name);
  long pid;
  owner_dies(name, s.sh, "kill");
  ASSERT_ERR(ferry_mutex_lock(s.sh->mutex, long_ns()), FERRY_EOWNERDEAD);
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex)); /* without consistent */
  ASSERT_ERR(ferry_mutex_lock(s.sh->mutex, 0), FERRY_ENOTRECOVERABLE);
  ASSERT_CONTAINS(ferry_errmsg(), "ferry_mutex_consistent");
  ASSERT_ERR(ferry_mutex_lock(s.sh->mutex, long_ns()), FERRY_ENOTRECOVERABLE);
  ASSERT_ERR(ferry_mutex_consistent(s.sh->mutex), FERRY_EINVAL);
  ASSERT_ERR(ferry_mutex_unlock(s.sh->mutex), FERRY_EINVAL);
  /* Another process sees the same. */
  pid = spawn1("lock", name, NULL);
  wait_ok(pid);
  ASSERT_ERR(atomic_load(&s.sh->result), FERRY_ENOTRECOVERABLE);
  ASSERT_UEQ(s.sh->counter, 0);
  /* Initialising it again, unused, is the way out. */
  ASSERT_OK(ferry_mutex_init(s.sh->mutex));
  ASSERT_OK(ferry_mutex_lock(s.sh->mutex, 0));
  ASSERT_OK(ferry_mutex_unlock(s.sh->mutex));
  seg_done(&s, name);
}

/* Every call on MEM fails with CODE. */
static void all_fail(void *mem, int code) {
  ASSERT_ERR(ferry_mutex_lock(mem, 0), code);
  ASSERT_ERR(ferry_mutex_lock(mem, 1 * MS), code);
  ASSERT_ERR(ferry_mutex_lock(mem, long_ns()), code);
  ASSERT_ERR(ferry_mutex_consistent(mem), code);
  ASSERT_ERR(ferry_mutex_unlock(mem), code);
}

static void test_not_initialised(void) {
  char name[64];
  struct seg s;
  test_name(name, sizeof name, "mx");
  ASSERT_OK(
      ferry_segment_open(&s.seg, name, FERRY_CREATE | FERRY_EXCL, 4096, NULL));
  /* A new segment is zero-filled: no mutex there yet. */
  all_fail(ferry_segment_data(s.seg), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "not initialised");
  seg_done(&s, name);
}

static uint64_t rng_state = 0x243f6a8885a308d3ull;
static uint64_t rng(void) { /* xorshift64 */
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static void test_garbage_regions(void) {
  _Alignas(FERRY_MUTEX_ALIGN) static unsigned char mem[2 * FERRY_MUTEX_SIZE];
  unsigned char good[FERRY_MUTEX_SIZE];
  int i, j;

  all_fail(NULL, FERRY_EINVAL);
  ASSERT_ERR(ferry_mutex_init(NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_mutex_init(mem + 8), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "aligned");
  all_fail(mem + 8, FERRY_EINVAL);

  memset(mem, 0, sizeof mem);
  all_fail(mem, FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "not initialised");

  for (i = 0; i < 1000; i++) {
    for (j = 0; j < FERRY_MUTEX_SIZE; j += 8) {
      uint64_t r = rng();
      memcpy(mem + j, &r, 8);
    }
    all_fail(mem, FERRY_EINVAL);
  }
  ASSERT_CONTAINS(ferry_errmsg(), "not a ferry mutex");

  /* A real mutex with one header field damaged at a time (the layout is in
   * docs/design.md: magic u32, version u16, kind u16, lock id u64). */
  ASSERT_OK(ferry_mutex_init(mem));
  memcpy(good, mem, sizeof good);
  mem[0] ^= 0x20;
  all_fail(mem, FERRY_EINVAL);
  memcpy(mem, good, sizeof good);
  mem[4] ^= 0x02; /* version */
  all_fail(mem, FERRY_EVERSION);
  memcpy(mem, good, sizeof good);
  mem[6] ^= 0x01; /* kind: another implementation or ABI */
  all_fail(mem, FERRY_ENOTSUP);
  ASSERT_CONTAINS(ferry_errmsg(), "another mutex implementation");
  memcpy(mem, good, sizeof good);
  memset(mem + 8, 0, 8); /* lock id */
  all_fail(mem, FERRY_ECORRUPT);
  memcpy(mem, good, sizeof good);
  ASSERT_OK(ferry_mutex_lock(mem, 0));
  ASSERT_OK(ferry_mutex_unlock(mem));

  /* A valid header over OS storage that the C library rejects: an error
   * (trying only, so that a lock word that looks held cannot make it
   * wait). */
  memset(mem + 16, 0xff, FERRY_MUTEX_SIZE - 16);
  ASSERT_TRUE(ferry_mutex_lock(mem, 0) < 0);
#if defined(__GLIBC__) || defined(_WIN32)
  /* glibc rejects the pthread_mutex_t; Windows, the state word */
  ASSERT_ERR(ferry_mutex_lock(mem, 0), FERRY_ECORRUPT);
#endif
  ASSERT_TRUE(ferry_mutex_unlock(mem) < 0);
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"lock_unlock_one_process", test_lock_unlock_one_process},
      {"other_thread", test_other_thread},
      {"mutual_exclusion", test_mutual_exclusion},
      {"first_lock_race", test_first_lock_race},
      {"busy_and_timeout", test_busy_and_timeout},
      {"waiter_gets_lock", test_waiter_gets_lock},
      {"owner_exit_try", test_owner_exit_try},
      {"owner_exit_timed", test_owner_exit_timed},
      {"owner_killed", test_owner_killed},
      {"owner_killed_used", test_owner_killed_used},
      {"waiter_sees_owner_death", test_waiter_sees_owner_death},
      {"not_recoverable", test_not_recoverable},
      {"not_initialised", test_not_initialised},
      {"garbage_regions", test_garbage_regions},
      {NULL, NULL}};
  static const struct test_role roles[] = {{"count", role_count},
                                           {"hold", role_hold},
                                           {"die", role_die},
                                           {"lock", role_lock},
                                           {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
