/*
 * The OS contract: everything ferry needs from the operating system, and the
 * only place (with its implementations in src/os/posix/ and src/os/win/)
 * that knows which operating system it runs on.
 *
 * Rules for every function below unless it says otherwise:
 * - It returns 0 on success or a negative FERRY_E* code. OS errors (errno,
 *   GetLastError()) are translated; on failure the function has also set the
 *   thread's detail message (ferry__err), naming the object and the cause.
 * - Sizes and offsets are uint64_t, also in 32-bit processes: the caller
 *   never needs to split them. (Windows splits them into high and low DWORDs
 *   inside the implementation.)
 * - Names passed in are OS names made by ferry_os_object_name(); paths are
 *   plain file-system paths.
 * - Nothing here keeps global mutable state apart from the capability struct,
 *   which is filled once, thread-safely, on first use.
 * - Functions are safe to call from several threads at once. None are
 *   async-signal-safe. After fork() the child may use every function here.
 */
#ifndef FERRY_OS_H
#define FERRY_OS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* A file descriptor on POSIX, a HANDLE on Windows (same width as a pointer). */
typedef intptr_t ferry_os_handle;
#define FERRY_OS_NO_HANDLE ((ferry_os_handle)-1)

/* ---------------------------------------------------------------------- */
/* Capabilities, filled once.                                             */

typedef struct ferry_os_caps {
  uint64_t page_size; /* the VM page size */
  /* Offsets of mapped views must be multiples of this: the page size on
   * POSIX, 64 KiB on Windows (SYSTEM_INFO.dwAllocationGranularity). */
  uint64_t alloc_granularity;
  uint64_t huge_page_size; /* the default huge page size, 0 if unknown */
} ferry_os_caps;

/* Never NULL. */
const ferry_os_caps *ferry_os_caps_get(void);

/* ---------------------------------------------------------------------- */
/* Names                                                                  */

/* Kinds of named kernel objects. Each has its own prefix so that two objects
 * of different kinds can never share an OS name. That matters on Windows,
 * where file mappings, events, mutexes and semaphores share one namespace;
 * on POSIX only segments are named (futexes live in shared memory). */
enum ferry_os_name_kind {
  FERRY_OS_NAME_SEGMENT = 0, /* POSIX "/ferry.NAME"; Win "Local\ferry.NAME" */
  FERRY_OS_NAME_SYNC =
      1 /* POSIX "/ferry-sync.NAME"; Win "Local\ferry-sync.NAME" */
};

/* Writes the OS name of ferry name NAME (already validated) for object kind
 * KIND into BUF of CAP bytes. GLOBAL selects Windows' Global\ namespace
 * (ignored on POSIX). FERRY_EINVAL if it does not fit. */
int ferry_os_object_name(int kind, const char *name, int global, char *buf,
                         size_t cap);

/* ---------------------------------------------------------------------- */
/* Shareable memory objects                                               */

/* An open memory object: a named shared-memory object, an anonymous one, or
 * a file. On POSIX H is the file descriptor for all three. On Windows H is
 * the file-mapping (section) handle and FILE the file handle behind a
 * file-backed section (FERRY_OS_NO_HANDLE otherwise). */
typedef struct ferry_os_shm {
  ferry_os_handle h;
  ferry_os_handle file;
  int writable; /* opened for writing */
  int huge;     /* huge pages in effect: 0 no, 1 reserved (hugetlb /
                   SEC_LARGE_PAGES), 2 transparent (advised at map time) */
} ferry_os_shm;

/* Flags for the create functions. */
enum ferry_os_create_flags {
  FERRY_OS_SPARSE = 1u << 0,  /* files: do not reserve disk blocks */
  FERRY_OS_HUGE = 1u << 1,    /* huge pages, else FERRY_ENOTSUP */
  FERRY_OS_INHERIT = 1u << 2, /* handle inherited by child processes */
  FERRY_OS_GLOBAL = 1u << 3   /* (names only) Windows Global\ namespace */
};

/* Creates the named object OSNAME, exclusively, SIZE bytes long (SIZE a
 * multiple of the page size, and of the huge page size with FERRY_OS_HUGE),
 * with permission bits MODE (applied exactly, not masked by the umask; on
 * Windows turned into a security descriptor: owner, group, everyone).
 * The memory is reserved before it returns (posix_fallocate on the tmpfs;
 * a committed section on Windows), so touching it later never faults for
 * lack of space.
 * Errors: FERRY_EEXIST (an object of that name exists; on Windows also one
 * of another kind), FERRY_ENOSPC (not enough memory/space: the object has
 * been removed again and the message says how much was free), FERRY_EACCES,
 * FERRY_ENOTSUP (FERRY_OS_HUGE unavailable: the message says why).
 * The new object's handle is not inherited by child processes. */
int ferry_os_shm_create(ferry_os_shm *o, const char *osname, uint64_t size,
                        uint32_t mode, unsigned flags);

/* Opens the existing named object OSNAME for reading, or for reading and
 * writing when WRITABLE. FERRY_ENOENT, FERRY_EACCES (with the object's owner
 * and mode in the message where the OS tells them). */
int ferry_os_shm_open(ferry_os_shm *o, const char *osname, int writable);

/* Removes the name OSNAME; open handles and mappings stay valid. On Windows
 * a named section has no name to remove (it lives while a handle is open):
 * the call returns 0 there when the object exists, FERRY_ENOENT when not. */
int ferry_os_shm_unlink(const char *osname);

/* Calls CB(name, ctx) with the ferry name (prefix removed) of every named
 * segment the OS can list. POSIX: the "ferry." entries of /dev/shm. Windows
 * has no documented way to list a namespace: FERRY_ENOTSUP. A non-zero
 * return from CB stops the walk and is returned. */
int ferry_os_shm_list(int (*cb)(const char *name, void *ctx), void *ctx);

/* Creates the file PATH exclusively (O_EXCL / CREATE_NEW), SIZE bytes long,
 * with permission bits MODE, and reserves its disk blocks unless
 * FERRY_OS_SPARSE. On FERRY_ENOSPC the file has been removed again.
 * FERRY_EEXIST, FERRY_EACCES, FERRY_ENOENT (no such directory). */
int ferry_os_file_create(ferry_os_shm *o, const char *path, uint64_t size,
                         uint32_t mode, unsigned flags);

/* Opens the existing file PATH read-only, or read-write when WRITABLE. A
 * read-write open of a file that only allows reading (mode bits, read-only
 * file system, read-only attribute) is FERRY_EACCES with a message that names
 * the file and says to open it read-only. */
int ferry_os_file_open(ferry_os_shm *o, const char *path, int writable);

/* Removes the file PATH. FERRY_ENOENT when it does not exist. */
int ferry_os_file_unlink(const char *path);

/* Creates an anonymous object of SIZE bytes, reserved (Linux: memfd, grown,
 * fallocated, then sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL so no
 * holder can change its size; Windows: unnamed pagefile-backed section).
 * FERRY_OS_INHERIT makes its handle inheritable; FERRY_OS_HUGE asks for huge
 * pages. Shared by inheritance or handle passing. */
int ferry_os_anon_create(ferry_os_shm *o, uint64_t size, unsigned flags);

/* Opens the object behind another handle H of this process by duplicating
 * it (the caller keeps H). WRITABLE as for ferry_os_shm_open: a read-only
 * handle opened writable is FERRY_EACCES. */
int ferry_os_handle_open(ferry_os_shm *o, ferry_os_handle h, int writable);

/* Reads the object's current size into *SIZE and sets *REMOVED to 1 when its
 * name has been removed (POSIX: link count 0; always 0 on Windows). The size
 * of a Windows section is rounded up to the page size. */
int ferry_os_shm_stat(const ferry_os_shm *o, uint64_t *size, int *removed);

/* Closes the handles in O (and sets them to FERRY_OS_NO_HANDLE). Mappings
 * made from it stay valid. Safe on a closed or zeroed-then-closed object. */
void ferry_os_shm_close(ferry_os_shm *o);

/* ---------------------------------------------------------------------- */
/* Mapping                                                                */

enum ferry_os_map_flags {
  FERRY_OS_MAP_WRITE = 1u << 0,    /* read-write; else read-only */
  FERRY_OS_MAP_POPULATE = 1u << 1, /* fault every page in now */
  FERRY_OS_MAP_LOCK = 1u << 2      /* lock the pages in RAM */
};

/* Maps LEN bytes of O starting at OFFSET (a multiple of
 * caps.alloc_granularity) into *ADDR. A LEN this process cannot address
 * (more than SIZE_MAX, or no address range that large: Windows error 1132
 * or ERROR_NOT_ENOUGH_MEMORY) is FERRY_ETOOBIG. A read-only mapping faults
 * on write (SIGSEGV / access violation), which kills only the writer.
 * FERRY_OS_MAP_LOCK failing is FERRY_ENOMEM or FERRY_EACCES with a message
 * that names the limit (RLIMIT_MEMLOCK, working-set size); the mapping is
 * then undone. Transparent huge pages (O->huge == 2) are advised here. */
int ferry_os_map(const ferry_os_shm *o, uint64_t offset, uint64_t len,
                 unsigned flags, void **addr);

/* Unmaps a mapping made by ferry_os_map with the same ADDR and LEN. */
int ferry_os_unmap(void *addr, uint64_t len);

/* Access hints for ferry_os_advise. */
enum ferry_os_advice {
  FERRY_OS_ADVISE_NORMAL = 0,     /* no particular pattern (the default) */
  FERRY_OS_ADVISE_SEQUENTIAL = 1, /* read once, front to back */
  FERRY_OS_ADVISE_RANDOM = 2      /* scattered reads: no read-ahead */
};

/* Tells the OS how the LEN bytes at ADDR, inside one mapping made by
 * ferry_os_map, will be accessed (ADVICE: FERRY_OS_ADVISE_*). Only a hint:
 * it never changes what the memory holds, and an OS that cannot take it
 * ignores it. Returns 0 (even when the hint was not taken: failures are not
 * worth an error), or FERRY_EINVAL for an unknown ADVICE.
 * POSIX: madvise(MADV_NORMAL / MADV_SEQUENTIAL / MADV_RANDOM). Windows has
 * no such hint for mapped views: nothing to do, return 0. */
int ferry_os_advise(void *addr, uint64_t len, unsigned advice);

/* Makes what was written to the file behind O durable on its storage: the
 * dirty pages of the mapping ADDR/LEN of O (ADDR may be NULL: no mapping),
 * and those of earlier, already unmapped mappings of O and of write() calls.
 * Other processes see writes to a shared mapping at once without this; it
 * is about surviving a crash of the machine. Returns 0, or FERRY_EIO (or
 * what the OS error translates to) with a detail message.
 * POSIX: msync(MS_SYNC) of the range, then fsync(O->h) (a no-op on tmpfs).
 * Windows: FlushViewOfFile(ADDR, LEN) (writes the view's dirty pages), then
 * FlushFileBuffers(O->file) when there is a file (a pagefile-backed section
 * has no storage to flush), which flushes the file's data section, pages
 * dirtied through views unmapped earlier included (if a test shows it does
 * not, ferry_os_unmap must FlushViewOfFile writable views first). */
int ferry_os_sync(const ferry_os_shm *o, void *addr, uint64_t len);

/* ---------------------------------------------------------------------- */
/* Faults on memory that another process cut off                          */

/* 1 when another holder of O can shrink it while this process maps it, so
 * that an access beyond the new end faults: POSIX named objects and files
 * (any process that may write them may ftruncate them). 0 for a memfd
 * sealed with F_SEAL_SHRINK, and on Windows, which refuses to shrink a file
 * or section while a view of it is mapped. */
int ferry_os_shm_can_shrink(const ferry_os_shm *o);

/* With ON, installs the process's handler for faults on mapped memory that
 * has no backing any more (POSIX: SIGBUS with si_code BUS_ADRERR, from an
 * access beyond the end of a shrunk object, or to a page a full file system
 * could not provide): it calls RECOVER(fault address), and the faulting
 * access is retried when RECOVER returns 1. Every other SIGBUS goes to the
 * handler that was installed before (or gets the default action). Without
 * ON, puts that previous handler back if ferry's is still installed.
 * Idempotent. Windows has nothing to install: 0. */
int ferry_os_fault_handler(int on, int (*recover)(void *addr));

/* Async-signal-safe. Replaces the LEN bytes at ADDR (page-aligned, inside
 * one mapping made by ferry_os_map) with private, zero-filled memory,
 * writable when WRITABLE. 0, or -1 when the OS refuses. */
int ferry_os_fault_patch(void *addr, size_t len, int writable);

/* ---------------------------------------------------------------------- */
/* Wait and wake on a 32-bit word in shared memory                        */

/* A wait point: what a process needs, besides the word itself, to sleep on
 * a word in shared memory and to wake sleepers. Linux: nothing (a shared
 * futex on the word's address; H stays FERRY_OS_NO_HANDLE). Windows has no
 * cross-process WaitOnAddress: H is a named semaphore, opened by every
 * process under the sync-object name (FERRY_OS_NAME_SYNC) of the segment
 * plus ".INDEX" ("Local\ferry-sync.NAME.0"). Sync names can never equal a
 * segment name (prefix "ferry-sync." against "ferry."), and two wait points
 * never share one (the index is the last dot-separated part). */
typedef struct ferry_os_waitpoint {
  ferry_os_handle h;
} ferry_os_waitpoint;

/* Opens wait point INDEX of the named segment NAME (a ferry name), in the
 * Windows Global\ namespace when GLOBAL; MODE is the segment's permission
 * bits, which a Windows wait point's security descriptor follows (whoever
 * may open the segment may wait and wake; 0600: the user alone). Linux:
 * always succeeds. Windows: FERRY_EINVAL when another kind of kernel object
 * holds the name. */
int ferry_os_waitpoint_open(ferry_os_waitpoint *wp, const char *name,
                            int global, uint32_t mode, unsigned index);
void ferry_os_waitpoint_close(ferry_os_waitpoint *wp);

/* If *WORD still equals EXPECTED, sleeps until woken through the same word
 * or until TIMEOUT_NS (> 0, relative) has passed. Returns 0 when woken or
 * when the word differed (spurious wake-ups happen: callers re-check their
 * condition), FERRY_ETIMEDOUT when the time ran out. Not cancellable.
 * Windows sleeps in whole milliseconds (at least 1). */
int ferry_os_wait(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t expected, int64_t timeout_ns);

/* Wakes the processes sleeping on WORD; SLEEPERS is how many may be
 * sleeping (the wait queue's count). Linux wakes all of them (FUTEX_WAKE);
 * Windows releases that many units of the semaphore, at most 1024 pending:
 * a counted sleeper that did not sleep leaves its unit behind, which gives a
 * later sleeper one spurious wake-up. */
int ferry_os_wake(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t sleepers);

/* A hint to the CPU inside spin loops (x86 PAUSE, Arm YIELD). */
static inline void ferry_os_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

/* ---------------------------------------------------------------------- */
/* Robust mutex in shared memory                                          */

/* A mutex that processes share through a segment, robust against the death
 * of its owner. Its state is FERRY_OS_MUTEX_SIZE bytes of "OS storage" at a
 * 16-byte-aligned address M in shared memory, mapped read-write by every
 * user; src/mutex.c puts it after a 16-byte header that carries the
 * implementation tag and the lock id (docs/design.md). Each function also
 * gets LOCK_ID, a non-zero 64-bit id unique to the mutex, chosen at init.
 *
 * POSIX: M holds a pthread_mutex_t made PTHREAD_PROCESS_SHARED,
 * PTHREAD_MUTEX_ROBUST and PTHREAD_MUTEX_ERRORCHECK. The kernel's robust
 * futex list marks a mutex whose owning thread dies (exit, kill), across
 * processes, and the next locker gets EOWNERDEAD. Timed waits use
 * pthread_mutex_clocklock on CLOCK_MONOTONIC (glibc 2.30+), else
 * pthread_mutex_timedlock on CLOCK_REALTIME, in slices of at most a day
 * against a monotonic deadline. A try is a timed lock with a deadline in
 * the past, not pthread_mutex_trylock, whose glibc version leaves a
 * not-recoverable mutex locked. LOCK_ID is not used.
 *
 * Windows (planned): a named mutex per lock, "Local\ferry-sync.@mutex-" +
 * LOCK_ID in 16 hex digits (FERRY_OS_NAME_SYNC; '@' cannot start a ferry
 * name, so it never meets a segment's sync objects), opened with
 * CreateMutex on first use and kept open until the process exits, in a
 * process-wide table keyed by LOCK_ID (the one piece of global state besides
 * the capabilities: the API passes only M). WaitForSingleObject gives
 * WAIT_OBJECT_0 (locked), WAIT_TIMEOUT (FERRY_EBUSY / FERRY_ETIMEDOUT) and
 * WAIT_ABANDONED (FERRY_EOWNERDEAD). M holds what a Windows mutex lacks:
 * the owner's pid and thread id and a state word (consistent, inconsistent,
 * not recoverable). Lock sets the state to inconsistent on WAIT_ABANDONED,
 * consistent() resets it, unlock of an inconsistent mutex sets not
 * recoverable, and lock of a not-recoverable one releases it again and
 * returns FERRY_ENOTRECOVERABLE. When every handle to the kernel object was
 * closed (the owner died and nobody else had it open), the mutex is created
 * anew: a lock that acquires it (not abandoned) while M still names an owner
 * treats it as abandoned (every unlock clears the owner before releasing).
 * Owner = calling thread gives FERRY_EBUSY (Windows mutexes are recursive;
 * ferry's are not).
 *
 * Callers lock and unlock on the same thread. */
#define FERRY_OS_MUTEX_SIZE 48

/* A 16-bit tag for this process's mutex implementation and memory layout;
 * processes with different tags cannot share a mutex (a 32-bit and a 64-bit
 * process, or glibc and musl, lay out pthread_mutex_t differently). POSIX:
 * 0x1000 with glibc, 0x2000 with another C library, plus pointer size << 8
 * plus sizeof(pthread_mutex_t) (x86_64 glibc: 0x1828). Windows: 0x3000 plus
 * pointer size << 8 plus the bytes of M it uses. */
uint16_t ferry_os_mutex_kind(void);

/* Initialises the unlocked mutex at M (whose contents are undefined before).
 * FERRY_ENOTSUP when the system has no robust process-shared mutexes. */
int ferry_os_mutex_init(void *m, uint64_t lock_id);

/* Locks the mutex at M: TIMEOUT_NS 0 tries once, > 0 waits at most that
 * long (relative; any value up to INT64_MAX). Returns 0 or
 * FERRY_EOWNERDEAD (the caller holds it; its previous owner died), or
 * FERRY_EBUSY (timeout 0 and held, or held by the calling thread),
 * FERRY_ETIMEDOUT, FERRY_ENOTRECOVERABLE, FERRY_ECORRUPT (the OS rejects
 * the contents of M). The first four set no detail message. */
int ferry_os_mutex_lock(void *m, uint64_t lock_id, int64_t timeout_ns);

/* Marks the mutex at M, held after FERRY_EOWNERDEAD, consistent again.
 * FERRY_EINVAL when it is not in that state. */
int ferry_os_mutex_consistent(void *m, uint64_t lock_id);

/* Unlocks the mutex at M held by the calling thread (FERRY_EINVAL if it is
 * not). Unlocking after FERRY_EOWNERDEAD without ferry_os_mutex_consistent
 * makes it not recoverable. */
int ferry_os_mutex_unlock(void *m, uint64_t lock_id);

/* ---------------------------------------------------------------------- */
/* Processes and time                                                     */

/* This process's id. */
uint64_t ferry_os_pid(void);

/* The start time of process PID in OS units (Linux: clock ticks since boot,
 * field 22 of /proc/PID/stat; Windows: creation FILETIME). A pid plus its
 * start time names one process even after the pid is reused.
 * FERRY_ENOENT when no such process runs (a zombie counts as gone);
 * FERRY_EACCES when the OS will not tell. */
int ferry_os_proc_start(uint64_t pid, uint64_t *start);

/* A 64-bit id of the current boot (Linux: hash of
 * /proc/sys/kernel/random/boot_id; Windows: boot time), so that a pid and
 * start time recorded before a reboot are never taken for a live process.
 * 0 if unknown. */
uint64_t ferry_os_boot_id(void);

/* Wall-clock time, ns since the Unix epoch. */
int64_t ferry_os_realtime_ns(void);
/* Monotonic time in ns, for deadlines. */
int64_t ferry_os_monotonic_ns(void);
/* Sleeps for about NS nanoseconds (may wake early on a signal). */
void ferry_os_sleep_ns(int64_t ns);

#endif /* FERRY_OS_H */
