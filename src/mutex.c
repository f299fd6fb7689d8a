/* Robust mutexes in shared memory: the portable part. A mutex is a
 * FERRY_MUTEX_SIZE-byte region in a segment: a header that says what the
 * region is, checked on every call, then the OS storage that the OS layer
 * (src/os/os.h, "Robust mutex in shared memory") owns. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "atomics.h"
#include "error.h"
#include "ferry.h"
#include "guard.h"
#include "os/os.h"

#define FERRY_MUTEX_MAGIC 0x58544d46u /* "FMTX" little-endian */
#define FERRY_MUTEX_VERSION 1u

/* The region, layout version 1. Same table in docs/design.md. */
struct ferry_mutex_region {
  _Atomic uint32_t magic; /*  0  FERRY_MUTEX_MAGIC once initialised: stored
                                 last, with release */
  uint16_t version;       /*  4  FERRY_MUTEX_VERSION */
  uint16_t kind;          /*  6  ferry_os_mutex_kind() of the initialiser */
  uint64_t lock_id;       /*  8  non-zero, unique: names the Windows mutex */
  _Alignas(16) unsigned char os[FERRY_OS_MUTEX_SIZE]; /* 16  OS storage */
};

_Static_assert(offsetof(struct ferry_mutex_region, magic) == 0, "magic at 0");
_Static_assert(offsetof(struct ferry_mutex_region, version) == 4,
               "version at 4");
_Static_assert(offsetof(struct ferry_mutex_region, kind) == 6, "kind at 6");
_Static_assert(offsetof(struct ferry_mutex_region, lock_id) == 8,
               "lock_id at 8");
_Static_assert(offsetof(struct ferry_mutex_region, os) == 16, "os at 16");
_Static_assert(sizeof(struct ferry_mutex_region) == FERRY_MUTEX_SIZE,
               "the region is FERRY_MUTEX_SIZE bytes");
_Static_assert(FERRY_MUTEX_ALIGN % 16 == 0, "the OS storage is 16-aligned");

/* 0, or FERRY_EINVAL for an address no mutex can have. */
static int addr_check(const void *mem, const char *what) {
  if (!mem)
    return ferry__err(FERRY_EINVAL, "mutex %s: the address is NULL", what);
  if (((uintptr_t)mem & (FERRY_MUTEX_ALIGN - 1)) != 0)
    return ferry__err(FERRY_EINVAL,
                      "mutex %s: address %p is not %d-byte aligned", what, mem,
                      FERRY_MUTEX_ALIGN);
  return 0;
}

/* 0, or FERRY_ESIZE when the memory of the mutex at MEM itself was lost:
 * another process shrank the segment below it, and an access faulted
 * (src/guard.h). The mutex in this process's view is then private zeros,
 * shared with nobody. A loss elsewhere in the segment leaves the mutex
 * working (and unlockable). */
static int fault_check(const void *mem, const char *what) {
  if (!ferry__addr_lost(mem))
    return 0;
  return ferry__err(FERRY_ESIZE,
                    "mutex %s: the segment holding it was shrunk below it by "
                    "another process while mapped, and this process lost "
                    "its page (ferry_segment_check says more)",
                    what);
}

/* Reads and checks the header of the region at MEM before anything touches
 * the lock: everything in it comes from shared memory and may be garbage.
 * On success *ID is the lock id. */
static int region_read(void *mem, const char *what, uint64_t *id) {
  const struct ferry_mutex_region *m = (const struct ferry_mutex_region *)mem;
  uint32_t magic;
  uint16_t kind;
  int rc = addr_check(mem, what);
  if (rc != 0)
    return rc;
  magic = ferry__load_acquire(&m->magic);
  if (magic != FERRY_MUTEX_MAGIC) {
    if (magic == 0)
      return ferry__err(FERRY_EINVAL,
                        "mutex %s: the region at %p is not initialised "
                        "(ferry_mutex_init)",
                        what, mem);
    return ferry__err(FERRY_EINVAL,
                      "mutex %s: the region at %p is not a ferry mutex "
                      "(magic 0x%08x)",
                      what, mem, (unsigned)magic);
  }
  if (m->version != FERRY_MUTEX_VERSION)
    return ferry__err(FERRY_EVERSION,
                      "mutex %s: layout version %u, this library knows %u",
                      what, (unsigned)m->version, FERRY_MUTEX_VERSION);
  kind = ferry_os_mutex_kind();
  if (m->kind != kind)
    return ferry__err(FERRY_ENOTSUP,
                      "mutex %s: initialised by a process with another mutex "
                      "implementation (tag 0x%04x; this process 0x%04x): a "
                      "32-bit and a 64-bit process, or two C libraries, "
                      "cannot share a mutex",
                      what, (unsigned)m->kind, (unsigned)kind);
  *id = m->lock_id;
  if (*id == 0)
    return ferry__err(FERRY_ECORRUPT, "mutex %s: the lock id is 0", what);
  return 0;
}

/* region_read, unless what it read was lost to a shrink (zeros). */
static int region_check(void *mem, const char *what, uint64_t *id) {
  int rc = region_read(mem, what, id);
  int f = mem ? fault_check(mem, what) : 0;
  return f != 0 ? f : rc;
}

static uint64_t mix64(uint64_t x) { /* splitmix64's finaliser */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/* A lock id that no other mutex has: process, times, address, counter. */
static uint64_t new_lock_id(const void *mem) {
  static _Atomic uint64_t counter;
  uint64_t x = mix64(ferry_os_pid() + 0x9e3779b97f4a7c15ull);
  x ^= mix64((uint64_t)ferry_os_realtime_ns());
  x ^= mix64((uint64_t)ferry_os_monotonic_ns() +
             atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed));
  x = mix64(x ^ (uint64_t)(uintptr_t)mem);
  return x != 0 ? x : 1;
}

int ferry_mutex_init(void *mem) {
  struct ferry_mutex_region *m = (struct ferry_mutex_region *)mem;
  int rc;
  ferry__err_clear();
  rc = addr_check(mem, "init");
  if (rc != 0)
    return rc;
  /* Unpublish first: a (misbehaving) concurrent user sees "not
   * initialised" rather than a half-written header. */
  ferry__store_release(&m->magic, 0);
  m->version = FERRY_MUTEX_VERSION;
  m->kind = ferry_os_mutex_kind();
  m->lock_id = new_lock_id(mem);
  memset(m->os, 0, sizeof m->os);
  rc = ferry_os_mutex_init(m->os, m->lock_id);
  if (rc != 0)
    return ferry__err_ctx(rc, "mutex init");
  ferry__store_release(&m->magic, FERRY_MUTEX_MAGIC);
  return fault_check(mem, "init"); /* initialised private zeros? */
}

int ferry_mutex_lock(void *mem, int64_t timeout_ns) {
  uint64_t id = 0;
  int rc = region_check(mem, "lock", &id);
  if (rc != 0)
    return rc;
  if (timeout_ns < 0)
    return ferry__err(FERRY_EINVAL, "mutex lock: negative timeout %lld ns",
                      (long long)timeout_ns);
  rc = ferry_os_mutex_lock(((struct ferry_mutex_region *)mem)->os, id,
                           timeout_ns);
  if ((rc == 0 || rc == FERRY_EOWNERDEAD) && ferry__addr_lost(mem)) {
    /* locked a private copy: undo that, and say so */
    ferry_os_mutex_unlock(((struct ferry_mutex_region *)mem)->os, id);
    return fault_check(mem, "lock");
  }
  return rc;
}

int ferry_mutex_consistent(void *mem) {
  uint64_t id = 0;
  int rc = region_check(mem, "consistent", &id);
  if (rc != 0)
    return rc;
  return ferry_os_mutex_consistent(((struct ferry_mutex_region *)mem)->os, id);
}

int ferry_mutex_unlock(void *mem) {
  uint64_t id = 0;
  int rc = region_check(mem, "unlock", &id);
  if (rc != 0)
    return rc;
  return ferry_os_mutex_unlock(((struct ferry_mutex_region *)mem)->os, id);
}
