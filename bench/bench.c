/* ferry bench: what ferry's channels cost, against the floors the hardware
 * and the kernel set and against the usual alternatives, measured in one run
 * on the same two processes and the same two CPUs.
 *
 * The main process spawns one helper process (this program again, with
 * --role helper, through proc_spawn_self(): no fork()) and drives it through
 * a control segment: for every test it posts a command, the helper sets up
 * its side (opens a channel, ...) and says it is ready, both run the test,
 * and the helper says it is done. The two are pinned to the first two CPUs
 * they may use, when there are two.
 *
 *   floors     spin    rtt_busy   one 8-byte word on one cache line, each
 *                                 side spinning on it
 *              futex   rtt_block  one futex word, FUTEX_WAIT/FUTEX_WAKE, no
 *                                 spinning; a wake only when the peer
 *                                 sleeps (as in ferry). On Windows the row
 *                                 is "semaphore": the same word, each side
 *                                 sleeping on its own named semaphore
 *              memcpy  copy       64 B (libc memcpy, a length the compiler
 *                                 cannot see) and 3 MiB (prefaulted buffers,
 *                                 alternating destinations)
 *   baselines  pipe, unix  rtt_block  64-byte ping-pong
 *                          stream     64-byte messages one way: one write()
 *                                     and one read() of 64 B per message
 *   ferry      rtt_busy   send/recv with timeout 0, retried on EAGAIN
 *              rtt_block  spin_ns = -1: parks at once (futex; Windows:
 *                         its wait point's named semaphore)
 *              stream     64 B send/recv; 3 MiB reserve + memcpy + commit,
 *                         received with peek, every byte read, release
 *              stream_zc  64 B send; peek up to 256, read them, release
 *   ring       rtt_busy, stream   a minimal hand-written SPSC ring (below),
 *                         used exactly like ferry
 *   pool       rtt_busy, rtt_block  the zero-copy hand-off of a 3 MiB frame
 *                         through a pool (ferry_pool_*), measured like the
 *                         64 B ferry round trips it is compared with: main
 *                         allocates a block, writes a header word into it
 *                         and sends its handle (ferry_pool_send); the
 *                         helper takes it (ferry_pool_recv), reads the
 *                         word, answers with a 64 B message and releases
 *                         the block
 *   cost       (table only) each side's time per 64-byte message while the
 *              other side waits, for the ring and for ferry
 *   read, window  scan, scan_4k  one process (after the helper has exited)
 *              sums every 64-bit word of a file in the page cache (1 GiB,
 *              256 MiB with --quick, in $TMPDIR or /tmp): read() into a
 *              128 KiB buffer against a ferry_window walk (64 MiB views,
 *              ferry_window_next). scan_4k: the file as written with 4 KiB
 *              writes, which leaves 4 KiB pages in the page cache; scan:
 *              then dropped from the cache (fdatasync, POSIX_FADV_DONTNEED)
 *              and read back once, as a file read from disk is cached (in
 *              large folios where the file system supports them)
 *
 * Round trips are percentiles of per-iteration samples after a warm-up,
 * taken in chunks that alternate between the tests compared with each
 * other; streams are medians over rounds that alternate likewise, so that
 * drift and left-over state (CPU idle heuristics) hit all of them alike.
 * Goals are printed for information
 * and never fail the run: the exit code is 0, or 1 on a real error (a
 * helper that dies or makes no progress for TIMEOUT_S, a failed call), 2 on
 * bad usage. Segments and channels are named bench-PID-... and unlinked at
 * the end, also on errors and on SIGINT/SIGTERM/SIGHUP.
 *
 * --only LIST runs a subset (TRANSPORT, TRANSPORT:TEST or TRANSPORT:TEST:SIZE
 * items; the cost rows are ring:cost, ferry:cost, ferry:cost_zc), e.g. to
 * count system calls per message from outside:
 *   strace -f -c ./bench_ferry --quick --only ferry:stream
 *   perf stat -e 'syscalls:sys_enter_*' ./bench_ferry --quick --only ...
 *
 * What differs between systems is in one section, "Platform seams":
 * - Linux: futex, sched_setaffinity, SIGALRM, pipes, Unix sockets, /dev/shm
 *   for the signal-time clean-up. The helper inherits its pipe and socket
 *   ends (no O_CLOEXEC) and gets their numbers as arguments.
 * - Windows: the kernel wake floor is what ferry's wait points are there, a
 *   named semaphore per sleeper (the row is called "semaphore"); pinning
 *   with SetThreadAffinityMask; a watchdog thread instead of SIGALRM (it
 *   cancels a blocked pipe call with CancelSynchronousIo once nothing has
 *   moved for TIMEOUT_S); anonymous pipes whose helper ends are inherited,
 *   their handle numbers passed as arguments. The unix rows are n/a: Windows
 *   has no socketpair(), and Wine has no AF_UNIX sockets at all. The share
 *   of the CPUs other processes used is not measured.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
/* after windows.h */
#include <tlhelp32.h>
#else
#include <fcntl.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#endif

#include "../tools/ferry/proc.h"
#include "ferry.h"

#define MIB (1024ull * 1024)
#define MSG 64            /* the small message size */
#define BIG (3 * MIB)     /* the large message size */
#define SMALL_CAP MIB     /* ring bytes for 64-byte streams (the default) */
#define BIG_CAP (8 * MIB) /* ring bytes for 3 MiB messages */
#define RING_DATA 4096    /* the hand-written ring's data offset */
#define ZC_BATCH 256      /* messages per peek */
#define TIMEOUT_S 10      /* every wait gives up after this */
#define TIMEOUT_NS (INT64_C(1000000000) * TIMEOUT_S)
#define HELPER_IDLE_S 300 /* a helper without commands gives up */
#define ROUNDS_MAX 16
#define SCAN_BUF (128 * 1024)  /* read()'s buffer in the scan rows */
#define SCAN_WINDOW (64 * MIB) /* the window's view in the scan rows */
#define POOL_BLOCKS 8          /* blocks of BIG bytes in the round-trip pool */

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

/* ---------------------------------------------------------------------- */
/* Small tools                                                            */

static volatile uint64_t g_sink;
static volatile size_t g_msg_len = MSG; /* a length the compiler cannot see */
static char g_err[512];

static int64_t now(void) { return proc_now_ns(); }

/* The clock for round-trip samples: the TSC on x86 (finer than the
 * monotonic clock on most machines), converted to ns against now() over
 * each whole measurement; elsewhere now() itself. The table's header shows
 * its resolution. */
static inline int64_t ticks(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  return (int64_t)__builtin_ia32_rdtsc();
#else
  return now();
#endif
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

/* Makes the compiler believe *P is read: the copies into it stay. */
static inline void use(void *p) {
#if defined(__GNUC__)
  __asm__ __volatile__("" : : "r"(p) : "memory");
#else
  g_sink += *(volatile unsigned char *)p;
#endif
}

/* Records the first error (later ones are consequences) and returns -1. */
static int fail(const char *fmt, ...) {
  va_list ap;
  if (g_err[0])
    return -1;
  va_start(ap, fmt);
  vsnprintf(g_err, sizeof g_err, fmt, ap);
  va_end(ap);
  return -1;
}

static int fail_ferry(const char *what, const char *name, int rc) {
  const char *m = ferry_errmsg();
  return fail("%s%s%s: %s%s%s", what, name ? " " : "", name ? name : "",
              ferry_err_name(rc), m[0] ? ": " : "", m);
}

/* ---------------------------------------------------------------------- */
/* Platform seams: everything that differs between Linux and Windows      */
/*                                                                        */
/* - the kernel wake floor: sleep_on() and wake_up() on a 32-bit word in  */
/*   shared memory (futex; a named semaphore per sleeper on Windows)      */
/* - the watchdog that bounds blocking pipe and socket calls              */
/* - byte streams (pipes, Unix sockets) and how the helper gets its ends  */
/* - CPU pinning, the parent process, the machine's CPU time              */

/* Who sleeps on a word (the Windows semaphores are per sleeper). */
enum { WAKE_MAIN, WAKE_HELPER, WAKE_CMD, WAKE_COUNT };

/* A byte stream's end: a file descriptor, or a HANDLE on Windows. */
typedef intptr_t bstream;
#define NO_STREAM ((bstream)-1)

#ifdef _WIN32

#define WAKE_FLOOR "semaphore"   /* the wake floor's row */
#define UNIX_NA "n/a on Windows" /* why the unix rows are missing */
#define UNIX_NA_NOTE                                                           \
  "unix: n/a on Windows: no socketpair(), and Wine has no AF_UNIX sockets "    \
  "at all.\n"                                                                  \
  "read/window scan: n/a on Windows: the rows drop the file from the page "    \
  "cache with posix_fadvise, which Windows lacks (tests/window.c runs under "  \
  "Wine).\n"
#define SCAN_NA "n/a on Windows" /* why the scan rows are missing */

static _Atomic int g_ticks;    /* the watchdog thread's: one a second */
static _Atomic int g_progress; /* g_ticks at the last progress */

static int stalled(void) { return g_ticks - g_progress > TIMEOUT_S; }

/* The last Windows error, as text. */
static const char *err_text(void) {
  static char buf[64];
  snprintf(buf, sizeof buf, "Windows error %lu", (unsigned long)GetLastError());
  return buf;
}

/* Ferry's wait points on Windows are named semaphores, woken with one
 * ReleaseSemaphore per sleeper; the floor is the same: a semaphore per
 * side that sleeps, named after BASE. WAKE_CMD holds at most one unit (an
 * event, in effect). Main creates them before it starts the helper, which
 * opens them; they go with the last handle. */
static HANDLE g_wake[WAKE_COUNT];

static int wake_open(const char *base) {
  static const char *const who[WAKE_COUNT] = {"main", "helper", "cmd"};
  char name[128];
  int i;
  for (i = 0; i < WAKE_COUNT; i++) {
    snprintf(name, sizeof name, "Local\\ferry-bench.%s.%s", base, who[i]);
    g_wake[i] = CreateSemaphoreA(NULL, 0, i == WAKE_CMD ? 1 : 1024, name);
    if (!g_wake[i])
      return fail("CreateSemaphore %s: %s", name, err_text());
  }
  return 0;
}

static void wake_close(void) {
  int i;
  for (i = 0; i < WAKE_COUNT; i++)
    if (g_wake[i])
      CloseHandle(g_wake[i]);
}

/* Sleeps as WHO while W holds V, up to NS: 0 when woken, 1 on timeout, -1
 * otherwise (W changed). A unit left by a wake that came after the sleeper
 * had counted itself but before it slept makes the next sleep return at
 * once; callers re-check W. */
static int sleep_on(int who, _Atomic uint32_t *w, uint32_t v, int64_t ns) {
  DWORD r;
  if (atomic_load(w) != v)
    return -1;
  r = WaitForSingleObject(g_wake[who], (DWORD)((ns + 999999) / 1000000));
  return r == WAIT_OBJECT_0 ? 0 : r == WAIT_TIMEOUT ? 1 : -1;
}

static void wake_up(int who, _Atomic uint32_t *w) {
  (void)w;
  ReleaseSemaphore(g_wake[who], 1, NULL); /* fails when WAKE_CMD is up */
}

/* Pipe calls block; a watchdog thread counts the seconds while armed and,
 * once nothing has moved for TIMEOUT_S, cancels the blocked call every
 * second (CancelSynchronousIo: the call fails with ERROR_OPERATION_ABORTED,
 * and read_full / write_full give up). Unlike SIGALRM it interrupts nothing
 * before that: a cancelled write may have written part of a message. Only
 * armed around pipe tests. */
static _Atomic int g_armed;
static HANDLE g_io_thread; /* the thread whose calls are bounded */

static DWORD WINAPI watchdog_thread(void *arg) {
  (void)arg;
  for (;;) {
    Sleep(1000);
    if (!g_armed)
      continue;
    g_ticks++;
    if (stalled())
      CancelSynchronousIo(g_io_thread);
  }
  return 0;
}

static void watchdog(int on) {
  if (on && !g_io_thread) {
    HANDLE t;
    DuplicateHandle(GetCurrentProcess(), GetCurrentThread(),
                    GetCurrentProcess(), &g_io_thread, 0, FALSE,
                    DUPLICATE_SAME_ACCESS);
    t = CreateThread(NULL, 0, watchdog_thread, NULL, 0, NULL);
    if (t)
      CloseHandle(t);
  }
  g_progress = g_ticks;
  g_armed = on;
}

/* Nothing to install: the watchdog is a thread, and a write to a pipe
 * without a reader fails with an error, no signal. */
static void signals_init(void) {}

static long bs_write(bstream s, const void *p, size_t len) {
  DWORD n;
  return WriteFile((HANDLE)s, p, (DWORD)len, &n, NULL) ? (long)n : -1;
}

static long bs_read(bstream s, void *p, size_t len) {
  DWORD n;
  if (ReadFile((HANDLE)s, p, (DWORD)len, &n, NULL))
    return (long)n;
  return GetLastError() == ERROR_BROKEN_PIPE ? 0 : -1; /* writer gone */
}

/* Did the watchdog interrupt the failed call? */
static int bs_interrupted(void) {
  return GetLastError() == ERROR_OPERATION_ABORTED;
}

static void bs_close(bstream s) {
  if (s != NO_STREAM)
    CloseHandle((HANDLE)s);
}

/* Two anonymous pipes (64 KiB, as on Linux), main -> helper and helper ->
 * main: MINE gets main's write and read ends, HELPER the helper's read and
 * write ends, inheritable (proc_spawn lets the helper inherit them); no
 * socket (UNIX_NA). */
static int make_fds(bstream mine[3], bstream helper[3]) {
  HANDLE a[2], b[2]; /* read end, write end */
  if (!CreatePipe(&a[0], &a[1], NULL, 65536))
    return fail("CreatePipe: %s", err_text());
  if (!CreatePipe(&b[0], &b[1], NULL, 65536)) {
    fail("CreatePipe: %s", err_text());
    CloseHandle(a[0]);
    CloseHandle(a[1]);
    return -1;
  }
  SetHandleInformation(a[0], HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
  SetHandleInformation(b[1], HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
  mine[0] = (bstream)a[1];
  mine[1] = (bstream)b[0];
  mine[2] = NO_STREAM;
  helper[0] = (bstream)a[0];
  helper[1] = (bstream)b[1];
  helper[2] = NO_STREAM;
  return 0;
}

/* CPU pinning: main on the first CPU it may use, the helper on the second.
 * With CPU < 0: fills CPUS[2] with the first two CPUs this process may run
 * on and returns 2, or fewer when there are fewer (then nothing is pinned).
 * With CPU >= 0: pins the calling thread to it; 0 or -1. */
static int pin(int cpu, int cpus[2]) {
  DWORD_PTR mask, sys;
  int i, n = 0;
  if (cpu >= 0)
    return cpu < (int)(8 * sizeof mask) &&
                   SetThreadAffinityMask(GetCurrentThread(),
                                         (DWORD_PTR)1 << cpu)
               ? 0
               : -1;
  if (!GetProcessAffinityMask(GetCurrentProcess(), &mask, &sys))
    return 0;
  for (i = 0; i < (int)(8 * sizeof mask) && n < 2; i++)
    if (mask >> i & 1)
      cpus[n++] = i;
  return n;
}

/* The process that started this one (the helper's main), to notice when it
 * is gone: from a process snapshot, then a handle to wait on. */
static HANDLE g_parent;

static void parent_init(void) {
  DWORD me = GetCurrentProcessId(), ppid = 0;
  PROCESSENTRY32 e;
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  BOOL more;
  if (snap == INVALID_HANDLE_VALUE)
    return;
  e.dwSize = sizeof e;
  for (more = Process32First(snap, &e); more; more = Process32Next(snap, &e))
    if (e.th32ProcessID == me) {
      ppid = e.th32ParentProcessID;
      break;
    }
  CloseHandle(snap);
  if (ppid)
    g_parent = OpenProcess(SYNCHRONIZE, FALSE, ppid);
}

static int parent_gone(void) {
  return g_parent && WaitForSingleObject(g_parent, 0) == WAIT_OBJECT_0;
}

static long self_pid(void) { return (long)GetCurrentProcessId(); }

/* The machine's CPU time is not measured on Windows (the helper's cannot
 * be told from the others' once it is reaped): unknown. */
static void machine_cpu(double *busy, double *steal) { *busy = *steal = -1; }
static double own_cpu(void) { return 0; }
static double cpus_online(void) { return 0; }

#else /* Linux */

#define WAKE_FLOOR "futex"
#define UNIX_NA ((const char *)0) /* the unix rows exist */
#define SCAN_NA ((const char *)0) /* and the scan rows */
#define UNIX_NA_NOTE ""

static volatile sig_atomic_t g_ticks; /* SIGALRMs: one a second */
static sig_atomic_t g_progress;       /* g_ticks at the last progress */

static int stalled(void) { return g_ticks - g_progress > TIMEOUT_S; }

static const char *err_text(void) { return strerror(errno); }

/* The futex words need nothing set up. */
static int wake_open(const char *base) {
  (void)base;
  return 0;
}

static void wake_close(void) {}

/* Sleeps while W holds V, up to NS: 0 when woken, 1 on timeout, -1
 * otherwise (W changed, a signal). */
static int sleep_on(int who, _Atomic uint32_t *w, uint32_t v, int64_t ns) {
  struct timespec ts;
  (void)who;
  ts.tv_sec = (time_t)(ns / 1000000000);
  ts.tv_nsec = (long)(ns % 1000000000);
  if (syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, v, &ts, NULL, 0) == 0)
    return 0;
  return errno == ETIMEDOUT ? 1 : -1;
}

static void wake_up(int who, _Atomic uint32_t *w) {
  (void)who;
  syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void on_alarm(int sig) {
  (void)sig;
  g_ticks++;
}

/* Pipe and socket calls block; a timer interrupts them once a second
 * (SIGALRM is installed without SA_RESTART, so the call returns EINTR) and
 * they give up after TIMEOUT_S seconds without progress. No extra system
 * call per message, and a tick that lands between two calls is followed by
 * another one. Only armed around pipe and socket tests. */
static void watchdog(int on) {
  struct itimerval it;
  memset(&it, 0, sizeof it);
  if (on) {
    it.it_interval.tv_sec = 1;
    it.it_value.tv_sec = 1;
  }
  g_progress = g_ticks;
  setitimer(ITIMER_REAL, &it, NULL);
}

static void signals_init(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm; /* no SA_RESTART: blocked calls return EINTR */
  sigaction(SIGALRM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static long bs_write(bstream s, const void *p, size_t len) {
  return (long)write((int)s, p, len);
}

static long bs_read(bstream s, void *p, size_t len) {
  return (long)read((int)s, p, len);
}

/* Did the watchdog interrupt the failed call? */
static int bs_interrupted(void) { return errno == EINTR; }

static void bs_close(bstream s) {
  if (s >= 0)
    close((int)s);
}

/* Two pipes, main -> helper and helper -> main, and a Unix socket pair:
 * MINE gets main's pipe write end, pipe read end and socket, HELPER the
 * helper's, without close-on-exec (the helper inherits them). */
static int make_fds(bstream mine[3], bstream helper[3]) {
  int a[2], b[2], s[2];
  if (pipe2(a, O_CLOEXEC) != 0)
    return fail("pipe: %s", strerror(errno));
  if (pipe2(b, O_CLOEXEC) != 0) {
    close(a[0]);
    close(a[1]);
    return fail("pipe: %s", strerror(errno));
  }
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) {
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    return fail("socketpair: %s", strerror(errno));
  }
  /* the helper's ends are inherited: no close-on-exec for them */
  fcntl(a[0], F_SETFD, 0);
  fcntl(b[1], F_SETFD, 0);
  fcntl(s[1], F_SETFD, 0);
  mine[0] = a[1];
  mine[1] = b[0];
  mine[2] = s[0];
  helper[0] = a[0];
  helper[1] = b[1];
  helper[2] = s[1];
  return 0;
}

/* CPU pinning: main on the first CPU it may use, the helper on the second.
 * With CPU < 0: fills CPUS[2] with the first two CPUs this process may run
 * on and returns 2, or fewer when there are fewer (then nothing is pinned).
 * With CPU >= 0: pins the calling process to it; 0 or -1. */
static int pin(int cpu, int cpus[2]) {
  cpu_set_t set;
  int i, n = 0;
  if (cpu >= 0) {
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -1;
  }
  if (sched_getaffinity(0, sizeof set, &set) != 0)
    return 0;
  for (i = 0; i < CPU_SETSIZE && n < 2; i++)
    if (CPU_ISSET(i, &set))
      cpus[n++] = i;
  return n;
}

/* The process that started this one (the helper's main), to notice when it
 * is gone: its parent changes. */
static pid_t g_parent;

static void parent_init(void) { g_parent = getppid(); }

static int parent_gone(void) { return getppid() != g_parent; }

static long self_pid(void) { return (long)getpid(); }

/* CPU time of the whole machine so far, from /proc/stat: busy (user, nice,
 * system, irq, softirq) and stolen, in seconds; -1 when unknown. */
static void machine_cpu(double *busy, double *steal) {
  unsigned long long v[8] = {0};
  double hz = (double)sysconf(_SC_CLK_TCK);
  FILE *f = fopen("/proc/stat", "r");
  *busy = *steal = -1;
  if (!f)
    return;
  if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
             &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8 &&
      hz > 0) {
    *busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
    *steal = (double)v[7] / hz;
  }
  fclose(f);
}

/* CPU time of this process and its reaped children, seconds. */
static double own_cpu(void) {
  struct rusage a, b;
  getrusage(RUSAGE_SELF, &a);
  getrusage(RUSAGE_CHILDREN, &b);
  return (double)(a.ru_utime.tv_sec + a.ru_stime.tv_sec + b.ru_utime.tv_sec +
                  b.ru_stime.tv_sec) +
         (double)(a.ru_utime.tv_usec + a.ru_stime.tv_usec + b.ru_utime.tv_usec +
                  b.ru_stime.tv_usec) /
             1e6;
}

static double cpus_online(void) {
  return (double)sysconf(_SC_NPROCESSORS_ONLN);
}

#endif

/* A spin loop's bound: the clock is read only every 4096 rounds, and the
 * first read starts the TIMEOUT_NS count, so the fast path has no clock. */
struct spinner {
  unsigned n;
  int64_t deadline;
};

static int spin_tick(struct spinner *s) {
  relax();
  if ((++s->n & 4095) == 0) {
    int64_t t = now();
    if (s->deadline == 0)
      s->deadline = t + TIMEOUT_NS;
    else if (t > s->deadline)
      return -1;
  }
  return 0;
}

static int spin_until64(_Atomic uint64_t *w, uint64_t v, const char *what) {
  struct spinner sp = {0, 0};
  while (atomic_load_explicit(w, memory_order_acquire) != v)
    if (spin_tick(&sp))
      return fail("%s: no answer within %d s", what, TIMEOUT_S);
  return 0;
}

static int spin_until32(_Atomic uint32_t *w, uint32_t v, const char *what) {
  struct spinner sp = {0, 0};
  while (atomic_load_explicit(w, memory_order_acquire) != v)
    if (spin_tick(&sp))
      return fail("%s: no answer within %d s", what, TIMEOUT_S);
  return 0;
}

/* The kernel wake floor's ping-pong: publish V in W and wake the peer only
 * if it sleeps. SLEEPERS counts the sleepers; every access is sequentially
 * consistent, so either the waker sees the sleeper or the sleeper sees V.
 * Ferry's wait queues work the same way, so both make the same system
 * calls: one wait and one wake (FUTEX_WAIT and FUTEX_WAKE; on Windows
 * WaitForSingleObject and ReleaseSemaphore) per hand-over when the receiver
 * sleeps. PEER is the side that sleeps on W (WAKE_MAIN or WAKE_HELPER). */
static void futex_post(int peer, _Atomic uint32_t *w,
                       _Atomic uint32_t *sleepers, uint32_t v) {
  atomic_store(w, v);
  if (atomic_load(sleepers) != 0)
    wake_up(peer, w);
}

static uint64_t g_futex_sleeps; /* waits that slept until woken */

/* Sleeps until W holds V; no spinning. ME is the calling side. */
static int futex_until(int me, _Atomic uint32_t *w, _Atomic uint32_t *sleepers,
                       uint32_t v, const char *what) {
  uint32_t cur;
  int slices = 0;
  while ((cur = atomic_load(w)) != v) {
    int r;
    atomic_fetch_add(sleepers, 1);
    if (atomic_load(w) != cur) {
      atomic_fetch_sub(sleepers, 1);
      continue;
    }
    r = sleep_on(me, w, cur, 100000000);
    atomic_fetch_sub(sleepers, 1);
    g_futex_sleeps += r == 0;
    if (r == 1 && ++slices > TIMEOUT_S * 10)
      return fail("%s: no answer within %d s", what, TIMEOUT_S);
  }
  return 0;
}

static int write_full(bstream s, const void *buf, size_t len) {
  const unsigned char *p = (const unsigned char *)buf;
  while (len > 0) {
    long n = bs_write(s, p, len);
    if (n < 0) {
      int intr = bs_interrupted();
      if (intr && !stalled())
        continue;
      return fail("write: %s", intr ? "no progress" : err_text());
    }
    g_progress = g_ticks;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int read_full(bstream s, void *buf, size_t len) {
  unsigned char *p = (unsigned char *)buf;
  while (len > 0) {
    long n = bs_read(s, p, len);
    if (n <= 0) {
      int intr = n < 0 && bs_interrupted();
      if (intr && !stalled())
        continue;
      return fail("read: %s", n == 0 ? "end of file (peer gone)"
                              : intr ? "no progress"
                                     : err_text());
    }
    g_progress = g_ticks;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads every byte: sums 64-bit words (LEN a multiple of 8, P 8-aligned). */
static uint64_t read_all(const void *p, size_t len) {
  const uint64_t *w = (const uint64_t *)p;
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i, n = len / 8;
  for (i = 0; i + 4 <= n; i += 4) {
    a += w[i];
    b += w[i + 1];
    c += w[i + 2];
    d += w[i + 3];
  }
  for (; i < n; i++)
    a += w[i];
  return a + b + c + d;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Nearest-rank percentile P of N sorted samples. */
static double pct(const double *s, size_t n, double p) {
  size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (k < 1)
    k = 1;
  if (k > n)
    k = n;
  return s[k - 1];
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_dbl);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---------------------------------------------------------------------- */
/* Shared state: the control segment                                      */

enum op {
  OP_EXIT = 1,
  OP_SPIN,
  OP_FUTEX,
  OP_PIPE_RTT,
  OP_UNIX_RTT,
  OP_PIPE_STREAM,
  OP_UNIX_STREAM,
  OP_FERRY_RTT, /* spin_ns says busy (timeout 0) or blocking */
  OP_FERRY_STREAM,
  OP_FERRY_STREAM_ZC,
  OP_FERRY_BIG,
  OP_RING_STREAM,
  OP_RING_BIG,
  OP_RING_RTT,
  OP_FERRY_COST, /* one side at a time: batches of ctl.batch messages */
  OP_FERRY_COST_ZC,
  OP_RING_COST,
  OP_POOL_RTT /* spin_ns says busy (timeout 0) or blocking */
};

/* Ops that go through pipes or sockets (bounded by watchdog()). */
static int uses_fds(uint32_t op) {
  return op == OP_PIPE_RTT || op == OP_UNIX_RTT || op == OP_PIPE_STREAM ||
         op == OP_UNIX_STREAM;
}

/* Ops whose helper side says ready itself, after its set-up. */
static int op_has_setup(uint32_t op) {
  return op == OP_FERRY_RTT || op == OP_POOL_RTT || op == OP_FERRY_STREAM ||
         op == OP_FERRY_STREAM_ZC || op == OP_FERRY_BIG ||
         op == OP_FERRY_COST || op == OP_FERRY_COST_ZC || op == OP_RING_COST;
}

struct ctl {
  /* line 0: the command, written by main before it bumps cmd_seq */
  _Alignas(64) _Atomic uint32_t cmd_seq; /* also a futex word */
  uint32_t op;
  uint32_t chan; /* channel number: NAME-cN (and NAME-cN+1) */
  uint32_t busy; /* OP_FERRY_RTT: poll with timeout 0 */
  uint64_t n;    /* iterations or messages, warm-up included */
  uint64_t size; /* message size */
  int64_t spin_ns;
  uint64_t batch; /* OP_*_COST: messages per batch */
  /* line 1: the helper's answers */
  _Alignas(64) _Atomic uint32_t ready_seq;
  _Atomic uint32_t done_seq;
  _Atomic int32_t status; /* 0, or -1 with msg */
  /* line 2: the spin ping-pong word */
  _Alignas(64) _Atomic uint64_t spin;
  /* line 3: the futex ping-pong word, and how many sleep on it */
  _Alignas(64) _Atomic uint32_t futex;
  _Atomic uint32_t futex_sleepers;
  /* line 4: OP_*_COST batches: main fills one, then the helper drains it */
  _Alignas(64) _Atomic uint32_t batch_go; /* batches filled */
  _Atomic uint32_t batch_done;            /* batches drained */
  _Atomic int64_t batch_ns;               /* the helper's last drain time */
  /* the helper's error message */
  _Alignas(64) char msg[512];
};

/* ---------------------------------------------------------------------- */
/* A minimal hand-written SPSC ring: the reference for 64-byte streaming. */
/* Records are an 8-byte length and the payload padded to 8; a record never
 * wraps (a PAD record fills the end of the ring). Head and tail live on
 * separate cache lines; each side caches the other's index and reloads it
 * (acquire) only when it seems to be out of room or out of messages, and
 * publishes its own with a release store per message. Its functions are
 * not inlined, and get the length at run time, as ferry's do. */

#define RING_PAD UINT64_MAX

struct ring_hdr {
  _Alignas(64) _Atomic uint64_t tail;
  _Alignas(64) _Atomic uint64_t head;
  _Alignas(64) uint64_t cap; /* set by main while the helper is idle */
};

struct ring {
  struct ring_hdr *h;
  uint8_t *data;
  uint64_t cap, mask;
  uint64_t pos;    /* producer: tail; consumer: head */
  uint64_t cached; /* producer: the head seen; consumer: the tail seen */
  uint64_t res;    /* producer: size of the reserved record */
};

static void ring_view(struct ring *r, void *base) {
  r->h = (struct ring_hdr *)base;
  r->data = (uint8_t *)base + RING_DATA;
  r->cap = r->h->cap;
  r->mask = r->cap - 1;
  r->pos = 0;
  r->cached = 0;
  r->res = 0;
}

/* Round trips use two rings: ping at BASE, pong after it. */
static void *ring_pong(void *base) {
  return (uint8_t *)base + RING_DATA + SMALL_CAP;
}

/* Empties the ring at BASE (only while nobody uses it). */
static void ring_reset(void *base, uint64_t cap) {
  struct ring_hdr *h = (struct ring_hdr *)base;
  atomic_store(&h->head, 0);
  atomic_store(&h->tail, 0);
  h->cap = cap;
}

static NOINLINE void *ring_reserve(struct ring *r, size_t len) {
  uint64_t need = 8 + ((len + 7) & ~(uint64_t)7);
  uint64_t idx = r->pos & r->mask;
  uint64_t pad = idx + need > r->cap ? r->cap - idx : 0;
  if (r->pos + pad + need - r->cached > r->cap) {
    struct spinner sp = {0, 0};
    for (;;) {
      r->cached = atomic_load_explicit(&r->h->head, memory_order_acquire);
      if (r->pos + pad + need - r->cached <= r->cap)
        break;
      if (spin_tick(&sp)) {
        fail("ring: no room within %d s", TIMEOUT_S);
        return NULL;
      }
    }
  }
  if (pad) {
    memcpy(r->data + idx, &(uint64_t){RING_PAD}, 8);
    r->pos += pad;
    idx = 0;
  }
  memcpy(r->data + idx, &(uint64_t){len}, 8);
  r->res = need;
  return r->data + idx + 8;
}

static NOINLINE void ring_commit(struct ring *r) {
  r->pos += r->res;
  atomic_store_explicit(&r->h->tail, r->pos, memory_order_release);
}

static NOINLINE int ring_send(struct ring *r, const void *msg, size_t len) {
  void *p = ring_reserve(r, len);
  if (!p)
    return -1;
  memcpy(p, msg, len);
  ring_commit(r);
  return 0;
}

static NOINLINE const void *ring_peek(struct ring *r, size_t *len) {
  for (;;) {
    uint64_t idx, hdr;
    if (r->pos == r->cached) {
      struct spinner sp = {0, 0};
      while ((r->cached = atomic_load_explicit(&r->h->tail,
                                               memory_order_acquire)) == r->pos)
        if (spin_tick(&sp)) {
          fail("ring: no message within %d s", TIMEOUT_S);
          return NULL;
        }
    }
    idx = r->pos & r->mask;
    memcpy(&hdr, r->data + idx, 8);
    if (hdr == RING_PAD) {
      r->pos += r->cap - idx;
      continue;
    }
    *len = (size_t)hdr;
    return r->data + idx + 8;
  }
}

static NOINLINE void ring_release(struct ring *r, size_t len) {
  r->pos += 8 + ((len + 7) & ~(uint64_t)7);
  atomic_store_explicit(&r->h->head, r->pos, memory_order_release);
}

static NOINLINE int ring_recv(struct ring *r, void *buf, size_t cap,
                              size_t *len) {
  const void *p = ring_peek(r, len);
  if (!p)
    return -1;
  if (*len > cap)
    return fail("ring: %zu-byte message, buffer %zu", *len, cap);
  memcpy(buf, p, *len);
  ring_release(r, *len);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Names and channels                                                     */

static char g_base[40]; /* bench-PID */

static void seg_name(char *buf, size_t cap, const char *what) {
  snprintf(buf, cap, "%s-%s", g_base, what);
}

static void chan_name(char *buf, size_t cap, uint32_t k) {
  snprintf(buf, cap, "%s-c%u", g_base, (unsigned)k);
}

/* Opens channel number K as ROLE; main creates it (CREATE|EXCL). */
static int chan_open(ferry_channel **ch, uint32_t k, unsigned role, int create,
                     uint64_t cap, int64_t spin_ns) {
  ferry_channel_opts o = FERRY_CHANNEL_OPTS_INIT;
  char name[64];
  int rc;
  chan_name(name, sizeof name, k);
  o.kind = FERRY_CHANNEL_SPSC;
  o.capacity = cap;
  o.seg_flags = FERRY_SEG_PREFAULT;
  o.spin_ns = spin_ns;
  o.open_timeout_ms = TIMEOUT_S * 1000;
  rc = ferry_channel_open(ch, name, create ? FERRY_CREATE | FERRY_EXCL : 0,
                          role, &o);
  if (rc != 0) {
    *ch = NULL;
    return fail_ferry(create ? "create channel" : "open channel", name, rc);
  }
  return 0;
}

/* Opens the pool of channel pair K (BIG-byte blocks); main creates it. */
static int pool_open(ferry_pool **p, uint32_t k, int create, int64_t spin_ns) {
  ferry_pool_opts o = FERRY_POOL_OPTS_INIT;
  char name[64];
  int rc;
  snprintf(name, sizeof name, "%s-p%u", g_base, (unsigned)k);
  o.block_size = BIG;
  o.block_count = POOL_BLOCKS;
  o.max_peers = 2;
  o.seg_flags = FERRY_SEG_PREFAULT;
  o.spin_ns = spin_ns;
  o.open_timeout_ms = TIMEOUT_S * 1000;
  rc = ferry_pool_open(p, name, create ? FERRY_CREATE | FERRY_EXCL : 0, &o);
  if (rc != 0) {
    *p = NULL;
    return fail_ferry(create ? "create pool" : "open pool", name, rc);
  }
  return 0;
}

static void pool_unlink(uint32_t k) {
  char name[64];
  snprintf(name, sizeof name, "%s-p%u", g_base, (unsigned)k);
  ferry_segment_unlink(name, 0);
}

/* ---------------------------------------------------------------------- */
/* The helper process                                                     */

struct helper {
  struct ctl *ctl;
  void *ring_base;
  bstream fd_pipe_r, fd_pipe_w, fd_sock;
};

/* Tells main that the helper's side of the current command is set up. */
static void h_ready(struct helper *h) {
  atomic_store_explicit(
      &h->ctl->ready_seq,
      atomic_load_explicit(&h->ctl->cmd_seq, memory_order_relaxed),
      memory_order_release);
}

static int h_spin(struct helper *h, uint64_t n) {
  uint64_t i;
  for (i = 0; i < n; i++) {
    if (spin_until64(&h->ctl->spin, 2 * i + 1, "spin ping"))
      return -1;
    atomic_store_explicit(&h->ctl->spin, 2 * i + 2, memory_order_release);
  }
  return 0;
}

static int h_futex(struct helper *h, uint64_t n) {
  uint64_t i;
  for (i = 0; i < n; i++) {
    if (futex_until(WAKE_HELPER, &h->ctl->futex, &h->ctl->futex_sleepers,
                    (uint32_t)(2 * i + 1), WAKE_FLOOR " ping"))
      return -1;
    futex_post(WAKE_MAIN, &h->ctl->futex, &h->ctl->futex_sleepers,
               (uint32_t)(2 * i + 2));
  }
  return 0;
}

static int h_fd_rtt(bstream rfd, bstream wfd, uint64_t n) {
  unsigned char buf[MSG];
  uint64_t i;
  for (i = 0; i < n; i++)
    if (read_full(rfd, buf, MSG) || write_full(wfd, buf, MSG))
      return -1;
  return 0;
}

static int check_seq(const void *p, uint64_t i) {
  uint64_t s;
  memcpy(&s, p, 8);
  if (s != i)
    return fail("message %llu arrived as number %llu", (unsigned long long)i,
                (unsigned long long)s);
  return 0;
}

static int h_fd_stream(bstream rfd, uint64_t n) {
  _Alignas(64) unsigned char buf[MSG];
  uint64_t i;
  for (i = 0; i < n; i++)
    if (read_full(rfd, buf, MSG) || check_seq(buf, i))
      return -1;
  return 0;
}

/* OP_FERRY_RTT: answer each 64 B ping with it. OP_POOL_RTT (WITH_POOL):
 * take each block whose handle arrives, read its header word, answer with
 * a 64 B message, release the block. */
static int h_ferry_rtt(struct helper *h, uint64_t n, int with_pool) {
  ferry_channel *rx = NULL, *tx = NULL;
  ferry_pool *pool = NULL;
  _Alignas(64) unsigned char buf[MSG];
  int64_t t = h->ctl->busy ? 0 : TIMEOUT_NS;
  uint64_t i;
  int rc = -1;
  if ((with_pool && pool_open(&pool, h->ctl->chan, 0, h->ctl->spin_ns)) ||
      chan_open(&rx, h->ctl->chan, FERRY_RECEIVER, 0, 0, h->ctl->spin_ns) ||
      chan_open(&tx, h->ctl->chan + 1, FERRY_SENDER, 0, 0, h->ctl->spin_ns))
    goto out;
  h_ready(h);
  memset(buf, 0, sizeof buf);
  for (i = 0; i < n; i++) {
    struct spinner sp = {0, 0};
    uint64_t blk = 0;
    size_t len = MSG;
    void *d;
    int r;
    while ((r = with_pool
                    ? ferry_pool_recv(pool, rx, &blk, &d, NULL, 0, NULL, t)
                    : ferry_channel_recv(rx, buf, sizeof buf, &len, t)) ==
           FERRY_EAGAIN)
      if (spin_tick(&sp)) {
        r = FERRY_ETIMEDOUT;
        break;
      }
    if (r != 0) {
      fail_ferry("recv ping", NULL, r);
      goto out;
    }
    if (with_pool)
      memcpy(buf, d, 8); /* the header word, read in place */
    sp.n = 0;
    sp.deadline = 0;
    while ((r = ferry_channel_send(tx, buf, len, t)) == FERRY_EAGAIN)
      if (spin_tick(&sp)) {
        r = FERRY_ETIMEDOUT;
        break;
      }
    if (r != 0) {
      fail_ferry("send pong", NULL, r);
      goto out;
    }
    if (with_pool && (r = ferry_pool_release(pool, blk)) != 0) {
      fail_ferry("pool release", NULL, r);
      goto out;
    }
  }
  rc = 0;
out:
  ferry_channel_close(rx);
  ferry_channel_close(tx);
  ferry_pool_close(pool);
  return rc;
}

static int h_ferry_stream(struct helper *h, uint64_t n, int how) {
  ferry_channel *ch = NULL;
  _Alignas(64) unsigned char buf[MSG];
  ferry_msg m[ZC_BATCH];
  uint64_t i = 0, sum = 0;
  int rc = -1;
  if (chan_open(&ch, h->ctl->chan, FERRY_RECEIVER, 0, 0, h->ctl->spin_ns))
    goto out;
  h_ready(h);
  while (i < n) {
    int k, got;
    if (how == OP_FERRY_STREAM) {
      size_t len;
      int r = ferry_channel_recv(ch, buf, sizeof buf, &len, TIMEOUT_NS);
      if (r != 0) {
        fail_ferry("recv", NULL, r);
        goto out;
      }
      if (len != MSG || check_seq(buf, i))
        goto out;
      i++;
      continue;
    }
    got = ferry_channel_peek(ch, m, how == OP_FERRY_BIG ? 1 : ZC_BATCH,
                             TIMEOUT_NS);
    if (got < 0) {
      fail_ferry("peek", NULL, got);
      goto out;
    }
    for (k = 0; k < got; k++, i++) {
      if (m[k].len != h->ctl->size) {
        fail("message %llu has %zu bytes, expected %llu", (unsigned long long)i,
             m[k].len, (unsigned long long)h->ctl->size);
        goto out;
      }
      sum += read_all(m[k].data, m[k].len);
      if (check_seq(m[k].data, i))
        goto out;
    }
    got = ferry_channel_release(ch);
    if (got != 0) {
      fail_ferry("release", NULL, got);
      goto out;
    }
  }
  g_sink = sum;
  rc = 0;
out:
  ferry_channel_close(ch);
  return rc;
}

static int h_ring_stream(struct helper *h, uint64_t n, int big) {
  struct ring r;
  _Alignas(64) unsigned char buf[MSG];
  uint64_t i, sum = 0;
  ring_view(&r, h->ring_base);
  for (i = 0; i < n; i++) {
    size_t len;
    if (!big) {
      if (ring_recv(&r, buf, sizeof buf, &len))
        return -1;
      if (len != MSG || check_seq(buf, i))
        return fail("ring: bad message %llu", (unsigned long long)i);
    } else {
      const void *p = ring_peek(&r, &len);
      if (!p)
        return -1;
      if (len != h->ctl->size)
        return fail("ring: message %llu has %zu bytes", (unsigned long long)i,
                    len);
      sum += read_all(p, len);
      if (check_seq(p, i))
        return -1;
      ring_release(&r, len);
    }
  }
  g_sink = sum;
  return 0;
}

static int h_ring_rtt(struct helper *h, uint64_t n) {
  struct ring ping, pong;
  _Alignas(64) unsigned char buf[MSG];
  uint64_t i;
  ring_view(&ping, h->ring_base);
  ring_view(&pong, ring_pong(h->ring_base));
  for (i = 0; i < n; i++) {
    size_t len;
    if (ring_recv(&ping, buf, sizeof buf, &len) || ring_send(&pong, buf, len))
      return -1;
  }
  return 0;
}

/* OP_*_COST: drains each batch once main has filled it, and reports how
 * long that took. */
static int h_cost(struct helper *h, uint64_t batches, uint32_t op) {
  ferry_channel *ch = NULL;
  struct ring r;
  _Alignas(64) unsigned char buf[MSG];
  ferry_msg m[ZC_BATCH];
  uint64_t b, i = 0, k = h->ctl->batch, sum = 0;
  int rc = -1;
  if (op == OP_RING_COST)
    ring_view(&r, h->ring_base);
  else if (chan_open(&ch, h->ctl->chan, FERRY_RECEIVER, 0, 0, 0))
    return -1;
  h_ready(h);
  for (b = 0; b < batches; b++) {
    uint64_t end = (b + 1) * k;
    int64_t t0;
    if (spin_until32(&h->ctl->batch_go, (uint32_t)(b + 1), "batch"))
      goto out;
    t0 = now();
    while (i < end) {
      size_t len;
      int got, j;
      if (op == OP_RING_COST) {
        if (ring_recv(&r, buf, sizeof buf, &len) || check_seq(buf, i))
          goto out;
        i++;
        continue;
      }
      if (op == OP_FERRY_COST) {
        got = ferry_channel_recv(ch, buf, sizeof buf, &len, TIMEOUT_NS);
        if (got != 0) {
          fail_ferry("recv", NULL, got);
          goto out;
        }
        if (check_seq(buf, i))
          goto out;
        i++;
        continue;
      }
      got = ferry_channel_peek(ch, m, ZC_BATCH, TIMEOUT_NS);
      if (got < 0) {
        fail_ferry("peek", NULL, got);
        goto out;
      }
      for (j = 0; j < got; j++, i++) {
        sum += read_all(m[j].data, m[j].len);
        if (check_seq(m[j].data, i))
          goto out;
      }
      got = ferry_channel_release(ch);
      if (got != 0) {
        fail_ferry("release", NULL, got);
        goto out;
      }
    }
    atomic_store_explicit(&h->ctl->batch_ns, now() - t0, memory_order_relaxed);
    atomic_store_explicit(&h->ctl->batch_done, (uint32_t)(b + 1),
                          memory_order_release);
  }
  g_sink = sum;
  rc = 0;
out:
  ferry_channel_close(ch);
  return rc;
}

/* Waits for the next command: spins a little, then sleeps (WAKE_CMD).
 * Gives up when the parent is gone or nothing comes for HELPER_IDLE_S. */
static int h_next(struct helper *h, uint32_t last) {
  int64_t start = now();
  unsigned i;
  for (i = 0; i < 20000; i++) {
    if (atomic_load_explicit(&h->ctl->cmd_seq, memory_order_acquire) != last)
      return 0;
    relax();
  }
  while (atomic_load_explicit(&h->ctl->cmd_seq, memory_order_acquire) == last) {
    sleep_on(WAKE_CMD, &h->ctl->cmd_seq, last, 100000000);
    if (parent_gone())
      return fail("the main process is gone");
    if (now() - start > INT64_C(1000000000) * HELPER_IDLE_S)
      return fail("no command for %d s", HELPER_IDLE_S);
  }
  return 0;
}

static int helper_main(const char *base, int cpu, const bstream fds[3]) {
  struct helper h;
  ferry_segment *ctl_seg = NULL, *ring_seg = NULL;
  char name[64];
  uint32_t seq = 0;
  int rc;

  signals_init();
  memset(&h, 0, sizeof h);
  parent_init();
  h.fd_pipe_r = fds[0];
  h.fd_pipe_w = fds[1];
  h.fd_sock = fds[2];
  snprintf(g_base, sizeof g_base, "%s", base);
  if (cpu >= 0 && pin(cpu, NULL) != 0)
    fprintf(stderr, "ferry bench: helper: cannot pin to CPU %d: %s\n", cpu,
            err_text());
  if (wake_open(base)) {
    fprintf(stderr, "ferry bench: helper: %s\n", g_err);
    wake_close();
    return 1;
  }
  seg_name(name, sizeof name, "ctl");
  rc = ferry_segment_open(&ctl_seg, name, 0, 0, NULL);
  if (rc != 0) {
    fail_ferry("open", name, rc);
    fprintf(stderr, "ferry bench: helper: %s\n", g_err);
    wake_close();
    return 1;
  }
  h.ctl = (struct ctl *)ferry_segment_data(ctl_seg);
  seg_name(name, sizeof name, "ring");
  rc = ferry_segment_open(&ring_seg, name, 0, 0, NULL);
  if (rc != 0) {
    fail_ferry("open", name, rc);
    goto report;
  }
  h.ring_base = ferry_segment_data(ring_seg);

  for (;;) {
    uint64_t n;
    if (h_next(&h, seq)) {
      rc = -1;
      break;
    }
    seq = atomic_load_explicit(&h.ctl->cmd_seq, memory_order_acquire);
    n = h.ctl->n;
    if (h.ctl->op == OP_EXIT) {
      rc = 0;
      break;
    }
    watchdog(uses_fds(h.ctl->op));
    /* the ops with set-up say ready themselves */
    if (!op_has_setup(h.ctl->op))
      atomic_store_explicit(&h.ctl->ready_seq, seq, memory_order_release);
    switch (h.ctl->op) {
    case OP_SPIN:
      rc = h_spin(&h, n);
      break;
    case OP_FUTEX:
      rc = h_futex(&h, n);
      break;
    case OP_PIPE_RTT:
      rc = h_fd_rtt(h.fd_pipe_r, h.fd_pipe_w, n);
      break;
    case OP_UNIX_RTT:
      rc = h_fd_rtt(h.fd_sock, h.fd_sock, n);
      break;
    case OP_PIPE_STREAM:
      rc = h_fd_stream(h.fd_pipe_r, n);
      break;
    case OP_UNIX_STREAM:
      rc = h_fd_stream(h.fd_sock, n);
      break;
    case OP_FERRY_RTT:
    case OP_POOL_RTT:
      rc = h_ferry_rtt(&h, n, h.ctl->op == OP_POOL_RTT);
      break;
    case OP_FERRY_STREAM:
    case OP_FERRY_STREAM_ZC:
    case OP_FERRY_BIG:
      rc = h_ferry_stream(&h, n, (int)h.ctl->op);
      break;
    case OP_RING_STREAM:
    case OP_RING_BIG:
      rc = h_ring_stream(&h, n, h.ctl->op == OP_RING_BIG);
      break;
    case OP_RING_RTT:
      rc = h_ring_rtt(&h, n);
      break;
    case OP_FERRY_COST:
    case OP_FERRY_COST_ZC:
    case OP_RING_COST:
      rc = h_cost(&h, n, h.ctl->op);
      break;
    default:
      rc = fail("unknown command %u", (unsigned)h.ctl->op);
    }
    watchdog(0);
    if (rc != 0)
      break;
    atomic_store_explicit(&h.ctl->done_seq, seq, memory_order_release);
  }
report:
  if (rc != 0) {
    snprintf(h.ctl->msg, sizeof h.ctl->msg, "%s", g_err);
    atomic_store_explicit(&h.ctl->status, -1, memory_order_relaxed);
    atomic_store_explicit(&h.ctl->done_seq, seq, memory_order_release);
    atomic_store_explicit(&h.ctl->ready_seq, seq, memory_order_release);
    fprintf(stderr, "ferry bench: helper: %s\n", g_err);
  }
  ferry_segment_close(ring_seg);
  ferry_segment_close(ctl_seg);
  wake_close();
  return rc != 0;
}

/* ---------------------------------------------------------------------- */
/* The main process: results                                              */

enum row {
  R_SPIN,
  R_FUTEX,
  R_COPY_SMALL,
  R_COPY_BIG,
  R_PIPE_RTT,
  R_UNIX_RTT,
  R_PIPE_STREAM,
  R_UNIX_STREAM,
  R_FERRY_BUSY,
  R_FERRY_BLOCK,
  R_FERRY_STREAM,
  R_FERRY_ZC,
  R_FERRY_BIG,
  R_RING_BUSY,
  R_RING_STREAM,
  R_RING_BIG,
  R_POOL_BUSY,
  R_POOL_BLOCK,
  R_READ_SCAN4K,
  R_WINDOW_SCAN4K,
  R_READ_SCAN,
  R_WINDOW_SCAN,
  R_COUNT
};

/* The scan rows' size is set at start (--quick scans a smaller file). */
static struct {
  const char *transport, *test;
  uint64_t size;
} g_rows[R_COUNT] = {
    {"spin", "rtt_busy", 8},    {WAKE_FLOOR, "rtt_block", 4},
    {"memcpy", "copy", MSG},    {"memcpy", "copy", BIG},
    {"pipe", "rtt_block", MSG}, {"unix", "rtt_block", MSG},
    {"pipe", "stream", MSG},    {"unix", "stream", MSG},
    {"ferry", "rtt_busy", MSG}, {"ferry", "rtt_block", MSG},
    {"ferry", "stream", MSG},   {"ferry", "stream_zc", MSG},
    {"ferry", "stream", BIG},   {"ring", "rtt_busy", MSG},
    {"ring", "stream", MSG},    {"ring", "stream", BIG},
    {"pool", "rtt_busy", BIG},  {"pool", "rtt_block", BIG},
    {"read", "scan_4k", 0},     {"window", "scan_4k", 0},
    {"read", "scan", 0},        {"window", "scan", 0},
};

struct result {
  int valid;
  double p50, p99; /* round trip, ns (rtt rows) */
  double rate;     /* messages (copies) per second */
  double bytes;    /* bytes per second */
  double lo, hi;   /* streams: the slowest and the fastest round */
  uint64_t iters;  /* samples, or messages per round */
  int rounds;
};

/* Per-message cost of one side while the other waits (OP_*_COST). */
enum { C_RING, C_FERRY, C_FERRY_ZC, C_COUNT };
static const char *const g_cost_names[C_COUNT] = {
    "ring send / recv", "ferry send / recv", "ferry send / peek+release"};
struct cost {
  int valid;
  double send_ns, recv_ns; /* medians per message */
};

struct params {
  uint64_t spin_n, block_n, copy_small_n, copy_big_n, fd_stream_n,
      small_stream_n, big_stream_n, cost_batches, scan_size;
  int rounds;
};

static struct {
  struct params p;
  struct result res[R_COUNT];
  struct cost cost[C_COUNT];
  const char *only;
  struct ctl *ctl;
  ferry_segment *ctl_seg, *ring_seg;
  void *ring_base;
  long helper;
  uint32_t seq;
  uint32_t next_chan;
  bstream fd_pipe_w, fd_pipe_r, fd_sock; /* main's ends */
  unsigned char *big_src;
  int json, quick;
  uint64_t futex_iters; /* wake floor round trips, warm-ups included */
  double others, steal; /* shares of the CPUs' time during the run */
} g;

static void progress(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ferry bench: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

/* Is TRANSPORT's TEST with messages of SIZE asked for? --only takes
 * TRANSPORT, TRANSPORT:TEST or TRANSPORT:TEST:SIZE items. */
static int wanted3(const char *transport, const char *test, uint64_t size) {
  char a[64], b[96];
  const char *p = g.only;
  if (!p)
    return 1;
  snprintf(a, sizeof a, "%s:%s", transport, test);
  snprintf(b, sizeof b, "%s:%llu", a, (unsigned long long)size);
  while (*p) {
    size_t len = strcspn(p, ",");
    if ((strlen(transport) == len && strncmp(p, transport, len) == 0) ||
        (strlen(a) == len && strncmp(p, a, len) == 0) ||
        (strlen(b) == len && strncmp(p, b, len) == 0))
      return 1;
    p += len;
    if (*p == ',')
      p++;
  }
  return 0;
}

/* Why row R cannot be measured on this system, or NULL. */
static const char *row_na(int r) {
  if (r == R_UNIX_RTT || r == R_UNIX_STREAM)
    return UNIX_NA;
  if (r >= R_READ_SCAN4K && r <= R_WINDOW_SCAN)
    return SCAN_NA;
  return NULL;
}

/* The same as text: "n/a" at least. */
static const char *row_na_text(int r) {
  const char *why = row_na(r);
  return why ? why : "n/a";
}

static int wanted(int r) {
  return !row_na(r) &&
         wanted3(g_rows[r].transport, g_rows[r].test, g_rows[r].size);
}

/* Was row R asked for but cannot be measured here? */
static int wanted_na(int r) {
  return row_na(r) &&
         wanted3(g_rows[r].transport, g_rows[r].test, g_rows[r].size);
}

/* ---------------------------------------------------------------------- */
/* The main process: talking to the helper                                */

/* Waits until the helper has set W to the current command's number; fails
 * when the helper reports an error, dies, or takes longer than TIMEOUT_S. */
static int wait_helper(_Atomic uint32_t *w) {
  unsigned i = 0;
  int64_t start = 0, last_check = 0;
  while (atomic_load_explicit(w, memory_order_acquire) != g.seq) {
    if (atomic_load_explicit(&g.ctl->done_seq, memory_order_acquire) == g.seq &&
        atomic_load_explicit(&g.ctl->status, memory_order_relaxed) != 0)
      return fail("helper: %s", g.ctl->msg);
    relax();
    if ((++i & 1023) == 0) {
      int64_t t = now();
      if (start == 0)
        start = last_check = t;
      if (t - last_check > 10000000) { /* every 10 ms: still alive? */
        int code = proc_wait(g.helper, 0);
        last_check = t;
        if (code >= 0) {
          g.helper = -1; /* reaped */
          if (atomic_load_explicit(&g.ctl->status, memory_order_acquire))
            return fail("helper: %s", g.ctl->msg);
          return fail("the helper process ended (exit code %d)", code);
        }
      }
      if (t - start > TIMEOUT_NS)
        return fail("the helper did not answer within %d s", TIMEOUT_S);
    }
  }
  return 0;
}

/* Posts a command and waits until the helper is ready for it. */
static int cmd(uint32_t op, uint64_t n, uint64_t size, uint32_t chan,
               int64_t spin_ns, int busy) {
  g.ctl->op = op;
  g.ctl->n = n;
  g.ctl->size = size;
  g.ctl->chan = chan;
  g.ctl->spin_ns = spin_ns;
  g.ctl->busy = (uint32_t)busy;
  atomic_store_explicit(&g.ctl->cmd_seq, ++g.seq, memory_order_release);
  wake_up(WAKE_CMD, &g.ctl->cmd_seq);
  return op == OP_EXIT ? 0 : wait_helper(&g.ctl->ready_seq);
}

static int cmd_done(void) { return wait_helper(&g.ctl->done_seq); }

/* Channel names in use, unlinked at the end whatever happens. */
static void chan_unlink(uint32_t k) {
  char name[64];
  chan_name(name, sizeof name, k);
  ferry_segment_unlink(name, 0);
}

/* ---------------------------------------------------------------------- */
/* The main process: round trips                                          */

struct rtt {
  bstream wfd, rfd;
  ferry_channel *tx, *rx;
  ferry_pool *pool;
  struct ring ping, pong;
  int busy;
  _Alignas(64) unsigned char buf[MSG];
};

typedef int (*rtt_fn)(struct rtt *c, uint64_t i);

static int rtt_spin(struct rtt *c, uint64_t i) {
  (void)c;
  atomic_store_explicit(&g.ctl->spin, 2 * i + 1, memory_order_release);
  return spin_until64(&g.ctl->spin, 2 * i + 2, "spin pong");
}

static int rtt_futex(struct rtt *c, uint64_t i) {
  (void)c;
  futex_post(WAKE_HELPER, &g.ctl->futex, &g.ctl->futex_sleepers,
             (uint32_t)(2 * i + 1));
  return futex_until(WAKE_MAIN, &g.ctl->futex, &g.ctl->futex_sleepers,
                     (uint32_t)(2 * i + 2), WAKE_FLOOR " pong");
}

static int rtt_fd(struct rtt *c, uint64_t i) {
  memcpy(c->buf, &i, 8);
  if (write_full(c->wfd, c->buf, MSG) || read_full(c->rfd, c->buf, MSG))
    return -1;
  return check_seq(c->buf, i);
}

/* Receives the 64 B pong of round trip I. */
static int recv_pong(struct rtt *c, uint64_t i) {
  int64_t t = c->busy ? 0 : TIMEOUT_NS;
  struct spinner sp = {0, 0};
  size_t len;
  int r;
  while ((r = ferry_channel_recv(c->rx, c->buf, MSG, &len, t)) == FERRY_EAGAIN)
    if (spin_tick(&sp))
      return fail("recv pong: nothing within %d s", TIMEOUT_S);
  if (r != 0)
    return fail_ferry("recv pong", NULL, r);
  if (len != MSG)
    return fail("pong of %zu bytes", len);
  return check_seq(c->buf, i);
}

static int rtt_ferry(struct rtt *c, uint64_t i) {
  int64_t t = c->busy ? 0 : TIMEOUT_NS;
  struct spinner sp = {0, 0};
  int r;
  memcpy(c->buf, &i, 8);
  while ((r = ferry_channel_send(c->tx, c->buf, MSG, t)) == FERRY_EAGAIN)
    if (spin_tick(&sp))
      return fail("send ping: no room within %d s", TIMEOUT_S);
  if (r != 0)
    return fail_ferry("send ping", NULL, r);
  return recv_pong(c, i);
}

/* A 3 MiB frame handed over through the pool, and a 64 B answer. */
static int rtt_pool(struct rtt *c, uint64_t i) {
  int64_t t = c->busy ? 0 : TIMEOUT_NS;
  struct spinner sp = {0, 0};
  uint64_t blk;
  void *d;
  int r;
  while ((r = ferry_pool_alloc(c->pool, &blk, &d, t)) == FERRY_EAGAIN)
    if (spin_tick(&sp))
      return fail("pool alloc: no block within %d s", TIMEOUT_S);
  if (r != 0)
    return fail_ferry("pool alloc", NULL, r);
  memcpy(d, &i, 8); /* the frame's header word, written in place */
  r = ferry_pool_send(c->pool, c->tx, blk, NULL, 0, TIMEOUT_NS);
  if (r != 0)
    return fail_ferry("pool send", NULL, r);
  return recv_pong(c, i);
}

static int rtt_ring(struct rtt *c, uint64_t i) {
  size_t len;
  memcpy(c->buf, &i, 8);
  if (ring_send(&c->ping, c->buf, g_msg_len) ||
      ring_recv(&c->pong, c->buf, MSG, &len))
    return -1;
  if (len != MSG)
    return fail("ring pong of %zu bytes", len);
  return check_seq(c->buf, i);
}

/* Runs WARM + N round trips and stores the last N, in ns, in OUT. */
static int rtt_loop(rtt_fn fn, struct rtt *c, uint64_t warm, uint64_t n,
                    double *out) {
  int64_t *s = (int64_t *)malloc((size_t)n * sizeof *s), ns0, tk0;
  double per_tick;
  uint64_t i;
  if (!s)
    return fail("out of memory");
  for (i = 0; i < warm; i++)
    if (fn(c, i)) {
      free(s);
      return -1;
    }
  ns0 = now();
  tk0 = ticks();
  for (i = 0; i < n; i++) {
    int64_t t0 = ticks();
    if (fn(c, warm + i)) {
      free(s);
      return -1;
    }
    s[i] = ticks() - t0;
  }
  per_tick = (double)(now() - ns0) / (double)(ticks() - tk0);
  for (i = 0; i < n; i++)
    out[i] = (double)s[i] * per_tick;
  free(s);
  return 0;
}

/* One chunk of ROW's round trips: set-up, N / 10 to warm up, N measured
 * into OUT, tear-down. */
static int rtt_chunk(int row, uint64_t n, double *out) {
  uint32_t op = row == R_SPIN                               ? OP_SPIN
                : row == R_FUTEX                            ? OP_FUTEX
                : row == R_PIPE_RTT                         ? OP_PIPE_RTT
                : row == R_UNIX_RTT                         ? OP_UNIX_RTT
                : row == R_RING_BUSY                        ? OP_RING_RTT
                : row == R_POOL_BUSY || row == R_POOL_BLOCK ? OP_POOL_RTT
                                                            : OP_FERRY_RTT;
  uint64_t warm = n / 10;
  struct rtt c;
  int rc;
  memset(&c, 0, sizeof c);
  atomic_store(&g.ctl->spin, 0);
  atomic_store(&g.ctl->futex, 0);
  atomic_store(&g.ctl->futex_sleepers, 0);
  watchdog(uses_fds(op));
  if (op == OP_FERRY_RTT || op == OP_POOL_RTT) {
    uint32_t k = g.next_chan;
    int busy = row == R_FERRY_BUSY || row == R_POOL_BUSY;
    int64_t spin = busy ? 0 : -1;
    g.next_chan += 2;
    c.busy = busy;
    rc = chan_open(&c.tx, k, FERRY_SENDER, 1, 0, spin);
    if (rc == 0)
      rc = chan_open(&c.rx, k + 1, FERRY_RECEIVER, 1, 0, spin);
    if (rc == 0 && op == OP_POOL_RTT)
      rc = pool_open(&c.pool, k, 1, spin);
    if (rc == 0)
      rc = cmd(op, warm + n, MSG, k, spin, busy);
    if (rc == 0)
      rc = rtt_loop(op == OP_POOL_RTT ? rtt_pool : rtt_ferry, &c, warm, n, out);
    if (rc == 0)
      rc = cmd_done();
    if (c.pool)
      ferry_pool_forget(c.pool, c.tx);
    ferry_pool_close(c.pool);
    ferry_channel_close(c.tx);
    ferry_channel_close(c.rx);
    chan_unlink(k);
    chan_unlink(k + 1);
    if (op == OP_POOL_RTT)
      pool_unlink(k);
  } else {
    rtt_fn fn = op == OP_SPIN       ? rtt_spin
                : op == OP_FUTEX    ? rtt_futex
                : op == OP_RING_RTT ? rtt_ring
                                    : rtt_fd;
    if (op == OP_RING_RTT) {
      ring_reset(g.ring_base, SMALL_CAP);
      ring_reset(ring_pong(g.ring_base), SMALL_CAP);
      ring_view(&c.ping, g.ring_base);
      ring_view(&c.pong, ring_pong(g.ring_base));
    }
    c.wfd = op == OP_PIPE_RTT ? g.fd_pipe_w : g.fd_sock;
    c.rfd = op == OP_PIPE_RTT ? g.fd_pipe_r : g.fd_sock;
    if (op == OP_FUTEX)
      g.futex_iters += warm + n;
    rc = cmd(op, warm + n, MSG, 0, 0, 0);
    if (rc == 0)
      rc = rtt_loop(fn, &c, warm, n, out);
    if (rc == 0)
      rc = cmd_done();
  }
  watchdog(0);
  return rc;
}

/* Round trips of the rows in ROWS: N samples each, taken in CHUNKS chunks
 * that alternate between the rows (A B C, C B A, A B C, ...), so that what
 * one test leaves behind (CPU idle-state heuristics: the virtual CPU's halt
 * polling adapts to recent wake-ups) affects every row alike. */
static int run_rtt_group(const int *rows, int nrows, uint64_t n, int chunks) {
  double *s[R_COUNT];
  uint64_t per = n / (uint64_t)chunks;
  int c, j, rc = 0;
  for (j = 0; j < nrows; j++) {
    s[j] = NULL;
    if (!wanted(rows[j]))
      continue;
    progress("%s %s (%llu round trips in %d chunks)", g_rows[rows[j]].transport,
             g_rows[rows[j]].test, (unsigned long long)(per * chunks), chunks);
    s[j] = (double *)malloc((size_t)(per * chunks) * sizeof(double));
    if (!s[j])
      rc = fail("out of memory");
  }
  for (c = 0; rc == 0 && c < chunks; c++)
    for (j = 0; rc == 0 && j < nrows; j++) {
      int k = c % 2 ? nrows - 1 - j : j;
      if (s[k])
        rc = rtt_chunk(rows[k], per, s[k] + (uint64_t)c * per);
    }
  for (j = 0; j < nrows; j++) {
    struct result *r = &g.res[rows[j]];
    size_t m = (size_t)(per * chunks);
    if (!s[j])
      continue;
    if (rc == 0) {
      qsort(s[j], m, sizeof(double), cmp_dbl);
      r->valid = 1;
      r->p50 = pct(s[j], m, 50);
      r->p99 = pct(s[j], m, 99);
      r->iters = m;
      r->rounds = chunks;
    }
    free(s[j]);
  }
  return rc;
}

/* ---------------------------------------------------------------------- */
/* The main process: streams                                              */

/* One round of a one-way stream: main sends WARM + N messages of SIZE, the
 * helper receives (and reads, and checks) them; the clock runs from the
 * first message after the warm-up until the helper has the last. */
static int stream_round(int row, uint64_t n, double *rate) {
  uint64_t size = g_rows[row].size, warm = n / 10, i;
  _Alignas(64) unsigned char msg[MSG];
  ferry_channel *ch = NULL;
  struct ring rg;
  uint32_t op, k = 0;
  int64_t t0 = 0, t1;
  bstream fd = NO_STREAM;
  int rc = 0;
  memset(msg, 0xa5, sizeof msg);
  switch (row) {
  case R_PIPE_STREAM:
    op = OP_PIPE_STREAM;
    fd = g.fd_pipe_w;
    break;
  case R_UNIX_STREAM:
    op = OP_UNIX_STREAM;
    fd = g.fd_sock;
    break;
  case R_FERRY_STREAM:
    op = OP_FERRY_STREAM;
    break;
  case R_FERRY_ZC:
    op = OP_FERRY_STREAM_ZC;
    break;
  case R_FERRY_BIG:
    op = OP_FERRY_BIG;
    break;
  case R_RING_STREAM:
    op = OP_RING_STREAM;
    break;
  default:
    op = OP_RING_BIG;
  }
  if (op == OP_FERRY_STREAM || op == OP_FERRY_STREAM_ZC || op == OP_FERRY_BIG) {
    k = g.next_chan++;
    rc = chan_open(&ch, k, FERRY_SENDER, 1,
                   op == OP_FERRY_BIG ? BIG_CAP : SMALL_CAP, 0);
  } else if (op == OP_RING_STREAM || op == OP_RING_BIG) {
    ring_reset(g.ring_base, op == OP_RING_BIG ? BIG_CAP : SMALL_CAP);
    ring_view(&rg, g.ring_base);
  }
  watchdog(uses_fds(op));
  if (rc == 0)
    rc = cmd(op, warm + n, size, k, 0, 0);
  for (i = 0; rc == 0 && i < warm + n; i++) {
    if (i == warm)
      t0 = now();
    if (size == MSG)
      memcpy(msg, &i, 8);
    switch (op) {
    case OP_PIPE_STREAM:
    case OP_UNIX_STREAM:
      rc = write_full(fd, msg, MSG);
      break;
    case OP_FERRY_STREAM:
    case OP_FERRY_STREAM_ZC:
      rc = ferry_channel_send(ch, msg, MSG, TIMEOUT_NS);
      if (rc != 0)
        rc = fail_ferry("send", NULL, rc);
      break;
    case OP_FERRY_BIG: {
      void *p;
      rc = ferry_channel_reserve(ch, (size_t)size, &p, TIMEOUT_NS);
      if (rc != 0) {
        rc = fail_ferry("reserve", NULL, rc);
        break;
      }
      memcpy(p, g.big_src, (size_t)size);
      memcpy(p, &i, 8);
      rc = ferry_channel_commit(ch, (size_t)size);
      if (rc != 0)
        rc = fail_ferry("commit", NULL, rc);
      break;
    }
    case OP_RING_STREAM:
      rc = ring_send(&rg, msg, g_msg_len);
      break;
    default: {
      void *p = ring_reserve(&rg, (size_t)size);
      if (!p) {
        rc = -1;
        break;
      }
      memcpy(p, g.big_src, (size_t)size);
      memcpy(p, &i, 8);
      ring_commit(&rg);
    }
    }
  }
  if (rc == 0)
    rc = cmd_done();
  t1 = now();
  watchdog(0);
  ferry_channel_close(ch);
  if (op == OP_FERRY_STREAM || op == OP_FERRY_STREAM_ZC || op == OP_FERRY_BIG)
    chan_unlink(k);
  if (rc == 0)
    *rate = (double)n * 1e9 / (double)(t1 - t0);
  return rc;
}

/* Rounds of the rows in ROWS, interleaved; each row's figure is the median
 * over the rounds. */
static int run_streams(const int *rows, int nrows, uint64_t n) {
  double v[R_COUNT][ROUNDS_MAX];
  int round, j, any = 0;
  for (j = 0; j < nrows; j++)
    any |= wanted(rows[j]);
  if (!any)
    return 0;
  for (j = 0; j < nrows; j++)
    if (wanted(rows[j]))
      progress("%s %s %llu B (%d rounds of %llu messages)",
               g_rows[rows[j]].transport, g_rows[rows[j]].test,
               (unsigned long long)g_rows[rows[j]].size, g.p.rounds,
               (unsigned long long)n);
  for (round = 0; round < g.p.rounds; round++)
    for (j = 0; j < nrows; j++) {
      if (!wanted(rows[j]))
        continue;
      if (stream_round(rows[j], n, &v[j][round]))
        return -1;
      progress("  round %d: %s %s %llu B: %.4g M msgs/s", round + 1,
               g_rows[rows[j]].transport, g_rows[rows[j]].test,
               (unsigned long long)g_rows[rows[j]].size, v[j][round] / 1e6);
    }
  for (j = 0; j < nrows; j++) {
    struct result *r = &g.res[rows[j]];
    if (!wanted(rows[j]))
      continue;
    r->valid = 1;
    r->rate = median(v[j], g.p.rounds); /* sorts v[j] */
    r->lo = v[j][0];
    r->hi = v[j][g.p.rounds - 1];
    r->bytes = r->rate * (double)g_rows[rows[j]].size;
    r->iters = n;
    r->rounds = g.p.rounds;
  }
  return 0;
}

/* One side at a time: main sends a batch of 64-byte messages while the
 * helper waits, then the helper drains it while main waits; each side times
 * its own part. A stream's rate depends on how the two sides interleave
 * (see the notes printed with the table); these per-message costs do not. */
static int run_cost(int which) {
  static const char *const tests[C_COUNT] = {"cost", "cost", "cost_zc"};
  const char *tr = which == C_RING ? "ring" : "ferry";
  uint64_t batch = 8192, nb = g.p.cost_batches, b, i = 0;
  uint32_t op = which == C_RING    ? OP_RING_COST
                : which == C_FERRY ? OP_FERRY_COST
                                   : OP_FERRY_COST_ZC;
  _Alignas(64) unsigned char msg[MSG];
  double *sv, *rv;
  ferry_channel *ch = NULL;
  struct ring rg;
  uint32_t k = 0;
  int rc = 0;
  if (!wanted3(tr, tests[which], MSG))
    return 0;
  progress("%s: per-message cost (%llu batches of %llu)", g_cost_names[which],
           (unsigned long long)nb, (unsigned long long)batch);
  sv = (double *)calloc((size_t)nb * 2, sizeof *sv);
  if (!sv)
    return fail("out of memory");
  rv = sv + nb;
  memset(msg, 0xa5, sizeof msg);
  if (op == OP_RING_COST) {
    ring_reset(g.ring_base, SMALL_CAP);
    ring_view(&rg, g.ring_base);
  } else {
    k = g.next_chan++;
    rc = chan_open(&ch, k, FERRY_SENDER, 1, SMALL_CAP, 0);
  }
  atomic_store(&g.ctl->batch_go, 0);
  atomic_store(&g.ctl->batch_done, 0);
  g.ctl->batch = batch;
  if (rc == 0)
    rc = cmd(op, nb, MSG, k, 0, 0);
  for (b = 0; rc == 0 && b < nb; b++) {
    int64_t t0 = now();
    for (; rc == 0 && i < (b + 1) * batch; i++) {
      memcpy(msg, &i, 8);
      if (op == OP_RING_COST)
        rc = ring_send(&rg, msg, g_msg_len);
      else if ((rc = ferry_channel_send(ch, msg, MSG, TIMEOUT_NS)) != 0)
        rc = fail_ferry("send", NULL, rc);
    }
    if (rc != 0)
      break;
    sv[b] = (double)(now() - t0) / (double)batch;
    atomic_store_explicit(&g.ctl->batch_go, (uint32_t)(b + 1),
                          memory_order_release);
    rc = spin_until32(&g.ctl->batch_done, (uint32_t)(b + 1), "batch drain");
    rv[b] =
        (double)atomic_load_explicit(&g.ctl->batch_ns, memory_order_relaxed) /
        (double)batch;
  }
  if (rc == 0)
    rc = cmd_done();
  ferry_channel_close(ch);
  if (op != OP_RING_COST)
    chan_unlink(k);
  if (rc == 0) { /* the first two batches warm up */
    g.cost[which].valid = 1;
    g.cost[which].send_ns = median(sv + 2, (int)nb - 2);
    g.cost[which].recv_ns = median(rv + 2, (int)nb - 2);
  }
  free(sv);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* The main process: memcpy floors (no helper involved)                   */

static int run_copy(int row, uint64_t n) {
  uint64_t size = g_rows[row].size, i;
  double v[ROUNDS_MAX];
  size_t region = size == MSG ? 256 * 1024 : (size_t)size;
  unsigned char *src, *dst[2];
  int round;
  if (!wanted(row))
    return 0;
  progress("memcpy %llu B (%d rounds of %llu copies)", (unsigned long long)size,
           g.p.rounds, (unsigned long long)n);
  src = size == MSG ? (unsigned char *)malloc(region) : g.big_src;
  dst[0] = (unsigned char *)malloc(region);
  dst[1] = (unsigned char *)malloc(region);
  if (!src || !dst[0] || !dst[1]) {
    if (size == MSG)
      free(src);
    free(dst[0]);
    free(dst[1]);
    return fail("out of memory");
  }
  /* prefault (and fill) every page first */
  if (size == MSG)
    memset(src, 0x5a, region);
  memset(dst[0], 0, region);
  memset(dst[1], 0, region);
  for (round = 0; round < g.p.rounds; round++) {
    int64_t t0;
    if (size == MSG) {
      size_t len = g_msg_len, mask = region - 1;
      for (i = 0; i < n / 10; i++) /* warm-up */
        memcpy(dst[0] + ((i * MSG) & mask), src + ((i * MSG) & mask), len);
      t0 = now();
      for (i = 0; i < n; i++) {
        unsigned char *d = dst[0] + ((i * MSG) & mask);
        memcpy(d, src + (((i + 7) * MSG) & mask), len);
        use(d);
      }
    } else {
      memcpy(dst[0], src, region); /* warm-up */
      memcpy(dst[1], src, region);
      t0 = now();
      for (i = 0; i < n; i++) {
        unsigned char *d = dst[i & 1];
        memcpy(d, src, region);
        use(d);
      }
    }
    v[round] = (double)n * 1e9 / (double)(now() - t0);
  }
  g.res[row].valid = 1;
  g.res[row].rate = median(v, g.p.rounds);
  g.res[row].bytes = g.res[row].rate * (double)size;
  g.res[row].iters = n;
  g.res[row].rounds = g.p.rounds;
  if (size == MSG)
    free(src);
  free(dst[0]);
  free(dst[1]);
  return 0;
}

static char g_scan_path[4200]; /* scan rows' file: removed at the end */

#ifndef _WIN32
/* ---------------------------------------------------------------------- */
/* The main process: scanning a file, read() against a window             */

/* One scan of PATH with read(): the sum of its 64-bit words. */
static int scan_read(const char *path, unsigned char *buf, uint64_t *sum,
                     uint64_t *bytes) {
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return fail("open %s: %s", path, strerror(errno));
  *sum = *bytes = 0;
  while ((n = read(fd, buf, SCAN_BUF)) > 0) {
    *sum += read_all(buf, (size_t)n);
    *bytes += (uint64_t)n;
  }
  close(fd);
  if (n < 0)
    return fail("read %s: %s", path, strerror(errno));
  return 0;
}

/* One scan of PATH through a read-only window. */
static int scan_window(const char *path, uint64_t *sum, uint64_t *bytes) {
  ferry_window_opts o = FERRY_WINDOW_OPTS_INIT;
  ferry_window *w;
  void *p;
  uint64_t len;
  int rc;
  o.window = SCAN_WINDOW;
  rc = ferry_window_open(&w, path, FERRY_RDONLY, &o);
  if (rc != 0)
    return fail_ferry("window", path, rc);
  *sum = *bytes = 0;
  while ((rc = ferry_window_next(w, &p, &len)) > 0) {
    *sum += read_all(p, (size_t)len);
    *bytes += len;
  }
  ferry_window_close(w);
  if (rc < 0)
    return fail_ferry("window next", path, rc);
  return 0;
}

/* Rounds of the read row RR and the window row RW, alternating which goes
 * first, on the file as it is cached now. */
static int scan_rows(int rr, int rw, unsigned char *buf, uint64_t size) {
  double v[2][ROUNDS_MAX];
  uint64_t sums[2], bytes[2];
  int round, k, rows[2];
  rows[0] = rr;
  rows[1] = rw;
  if (!wanted(rr) && !wanted(rw))
    return 0;
  progress("%s: read() and window scans of %llu MiB (%d rounds)",
           g_rows[rw].test, (unsigned long long)(size / MIB), g.p.rounds);
  for (round = 0; round < g.p.rounds; round++) {
    for (k = 0; k < 2; k++) {
      int j = round % 2 ? 1 - k : k, rc;
      int64_t t0 = now();
      rc = j == 0 ? scan_read(g_scan_path, buf, &sums[0], &bytes[0])
                  : scan_window(g_scan_path, &sums[1], &bytes[1]);
      if (rc)
        return rc;
      v[j][round] = 1e9 / (double)(now() - t0); /* scans per second */
      if (bytes[j] != size)
        return fail("%s scan read %llu bytes of %llu", j ? "window" : "read",
                    (unsigned long long)bytes[j], (unsigned long long)size);
    }
    if (sums[0] != sums[1])
      return fail("the window's sum differs from read()'s");
  }
  for (k = 0; k < 2; k++) {
    struct result *r = &g.res[rows[k]];
    r->valid = 1;
    r->rate = median(v[k], g.p.rounds);
    r->bytes = r->rate * (double)size;
    r->iters = 1;
    r->rounds = g.p.rounds;
  }
  return 0;
}

/* Writes a file of scan_size bytes in 4 KiB writes and runs the scan rows
 * on it twice: as written (4 KiB pages in the page cache), then after
 * dropping it from the cache and reading it back once. */
static int run_scan(void) {
  const uint64_t size = g.p.scan_size;
  const char *dir = getenv("TMPDIR");
  unsigned char *buf;
  struct statvfs vfs;
  uint64_t off, x = 0x9e3779b97f4a7c15ull, sum, bytes;
  size_t i;
  int fd, e, rc = 0;
  if (!wanted(R_READ_SCAN) && !wanted(R_WINDOW_SCAN) &&
      !wanted(R_READ_SCAN4K) && !wanted(R_WINDOW_SCAN4K))
    return 0;
  if (!dir || !dir[0])
    dir = "/tmp";
  if (statvfs(dir, &vfs) == 0 &&
      (uint64_t)vfs.f_bavail * vfs.f_frsize < size + 256 * MIB) {
    progress("scan rows skipped: %s has less than %llu MiB free", dir,
             (unsigned long long)((size + 256 * MIB) / MIB));
    return 0;
  }
  snprintf(g_scan_path, sizeof g_scan_path, "%s/ferry-%s-scan.bin", dir,
           g_base);
  buf = (unsigned char *)aligned_alloc(4096, SCAN_BUF);
  if (!buf)
    return fail("out of memory");
  fd = open(g_scan_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = fail("create %s: %s", g_scan_path, strerror(errno));
    g_scan_path[0] = '\0';
    free(buf);
    return rc;
  }
  progress("writing %llu MiB to %s in 4 KiB writes",
           (unsigned long long)(size / MIB), g_scan_path);
  for (off = 0; off < size && rc == 0; off += 4096) {
    for (i = 0; i < 4096; i += 8) { /* xorshift: no page like another */
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      memcpy(buf + i, &x, 8);
    }
    rc = write_full(fd, buf, 4096);
  }
  /* into the page cache, in the 4 KiB pages written, then the scans */
  if (rc == 0)
    rc = scan_read(g_scan_path, buf, &sum, &bytes);
  if (rc == 0)
    rc = scan_rows(R_READ_SCAN4K, R_WINDOW_SCAN4K, buf, size);
  /* out of the page cache and back in, as a file read from disk */
  if (rc == 0 && fdatasync(fd) != 0)
    rc = fail("fdatasync %s: %s", g_scan_path, strerror(errno));
  if (rc == 0 && (e = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) != 0)
    rc = fail("drop %s from the page cache: %s", g_scan_path, strerror(e));
  if (rc == 0)
    rc = scan_read(g_scan_path, buf, &sum, &bytes);
  if (rc == 0)
    rc = scan_rows(R_READ_SCAN, R_WINDOW_SCAN, buf, size);
  close(fd);
  unlink(g_scan_path);
  g_scan_path[0] = '\0';
  free(buf);
  return rc;
}

#else
static int run_scan(void) { return 0; } /* SCAN_NA */
#endif

/* ---------------------------------------------------------------------- */
/* The main process: output                                               */

static void fmt_ns(char *b, size_t cap, double ns) {
  if (ns <= 0)
    snprintf(b, cap, "-");
  else if (ns < 1e3)
    snprintf(b, cap, "%.1f ns", ns);
  else if (ns < 1e6)
    snprintf(b, cap, "%.2f us", ns / 1e3);
  else
    snprintf(b, cap, "%.2f ms", ns / 1e6);
}

static void fmt_size(char *b, size_t cap, uint64_t s) {
  if (s >= MIB && s % MIB == 0)
    snprintf(b, cap, "%llu MiB", (unsigned long long)(s / MIB));
  else
    snprintf(b, cap, "%llu B", (unsigned long long)s);
}

static int ok(int r) { return g.res[r].valid; }

/* Time per frame of row R over time per copy of the 3 MiB memcpy. */
static double big_ratio(int r) {
  return g.res[R_COPY_BIG].rate / g.res[r].rate;
}

static void ratio_text(int r, char *b, size_t cap) {
  const struct result *x = &g.res[r];
  b[0] = '\0';
  switch (r) {
  case R_FUTEX:
    /* main sleeps once per round trip unless the answer beat it */
    snprintf(b, cap, "floor; main slept in %.0f%% of round trips",
             g.futex_iters
                 ? 100.0 * (double)g_futex_sleeps / (double)g.futex_iters
                 : 0.0);
    break;
  case R_SPIN:
  case R_COPY_SMALL:
  case R_COPY_BIG:
    snprintf(b, cap, "floor");
    break;
  case R_RING_STREAM:
    snprintf(b, cap, "reference for 64 B streams");
    break;
  case R_FERRY_BUSY:
  case R_RING_BUSY:
    if (ok(R_SPIN))
      snprintf(b, cap, "p50 %.2fx, p99 %.2fx spin", x->p50 / g.res[R_SPIN].p50,
               x->p99 / g.res[R_SPIN].p99);
    break;
  case R_POOL_BUSY:
  case R_POOL_BLOCK: {
    int base = r == R_POOL_BUSY ? R_FERRY_BUSY : R_FERRY_BLOCK;
    if (ok(base))
      snprintf(b, cap, "p50 %.2fx, p99 %.2fx ferry %s 64 B",
               x->p50 / g.res[base].p50, x->p99 / g.res[base].p99,
               g_rows[base].test);
    break;
  }
  case R_PIPE_RTT:
  case R_UNIX_RTT:
  case R_FERRY_BLOCK:
    if (ok(R_FUTEX))
      snprintf(b, cap, "p50 %.2fx, p99 %.2fx %s", x->p50 / g.res[R_FUTEX].p50,
               x->p99 / g.res[R_FUTEX].p99, g_rows[R_FUTEX].transport);
    break;
  case R_PIPE_STREAM:
  case R_UNIX_STREAM:
  case R_FERRY_STREAM:
  case R_FERRY_ZC:
    if (ok(R_RING_STREAM))
      snprintf(b, cap, "rate %.3gx ring", x->rate / g.res[R_RING_STREAM].rate);
    if (ok(R_UNIX_STREAM) && r != R_UNIX_STREAM) {
      size_t l = strlen(b);
      snprintf(b + l, cap - l, "%s%.0fx unix", l ? ", " : "rate ",
               x->rate / g.res[R_UNIX_STREAM].rate);
    }
    {
      size_t l = strlen(b);
      snprintf(b + l, cap - l, "%srounds %.3g-%.3g M", l ? "; " : "",
               x->lo / 1e6, x->hi / 1e6);
    }
    break;
  case R_FERRY_BIG:
  case R_RING_BIG:
    if (ok(R_COPY_BIG))
      snprintf(b, cap, "time %.2fx memcpy", big_ratio(r));
    break;
  case R_READ_SCAN:
  case R_READ_SCAN4K:
    snprintf(b, cap, "reference (%d KiB buffer)", SCAN_BUF / 1024);
    break;
  case R_WINDOW_SCAN:
  case R_WINDOW_SCAN4K:
    if (ok(r - 1))
      snprintf(b, cap, "rate %.2fx read() (%llu MiB views)",
               x->rate / g.res[r - 1].rate,
               (unsigned long long)(SCAN_WINDOW / MIB));
    break;
  }
}

/* The goals, evaluated for information: row A's figure over row B's. */
static const struct goal {
  const char *what;
  int a, b;
  double goal;
  int at_most; /* met when the ratio is <= goal (else >= goal) */
} g_goals[] = {
    {"busy-poll RTT p50 <= 1.2x spin ping-pong", R_FERRY_BUSY, R_SPIN, 1.2, 1},
    {"blocking RTT p50 <= 1.1x " WAKE_FLOOR " ping-pong", R_FERRY_BLOCK,
     R_FUTEX, 1.1, 1},
    {"64 B stream >= 200x Unix socket stream", R_FERRY_STREAM, R_UNIX_STREAM,
     200, 0},
    {"64 B stream >= 0.7x hand-written ring", R_FERRY_STREAM, R_RING_STREAM,
     0.7, 0},
    {"3 MiB recv-and-read <= 1.2x one memcpy per frame", R_FERRY_BIG,
     R_COPY_BIG, 1.2, 1},
    {"window scan >= 0.9x read() (file as read from disk)", R_WINDOW_SCAN,
     R_READ_SCAN, 0.9, 0},
    {"window scan >= 0.9x read() (4 KiB page cache)", R_WINDOW_SCAN4K,
     R_READ_SCAN4K, 0.9, 0},
    {"3 MiB pool hand-off RTT p50 <= 1.2x 64 B (busy)", R_POOL_BUSY,
     R_FERRY_BUSY, 1.2, 1},
    {"3 MiB pool hand-off RTT p50 <= 1.2x 64 B (blocking)", R_POOL_BLOCK,
     R_FERRY_BLOCK, 1.2, 1},
};

static void print_table(double secs, int cpus[2], int ncpu, int pinned,
                        double clock_ns) {
  int r, na = 0, tw = 7; /* tw: "transp." or the longest transport */
  for (r = 0; r < R_COUNT; r++)
    if ((int)strlen(g_rows[r].transport) > tw)
      tw = (int)strlen(g_rows[r].transport);
  printf("ferry bench%s: main on CPU %d, helper on CPU %d (%s); %d rounds "
         "per stream;\nclock resolution %.0f ns",
         g.quick ? " --quick" : "", ncpu >= 2 ? cpus[0] : -1,
         ncpu >= 2 ? cpus[1] : -1, pinned ? "pinned" : "not pinned", g.p.rounds,
         clock_ns);
  if (g.others >= 0)
    printf("; other processes used %.0f%% of the CPUs, the hypervisor "
           "stole %.0f%%",
           100 * g.others, 100 * g.steal);
  printf("\n");
  if (g.others > 0.05 || g.steal > 0.05)
    printf("WARNING: the benchmark shared the CPUs; figures are unreliable\n");
  printf("%-*s %-10s %6s %10s %10s %10s %11s %10s  %s\n", tw, "transp.", "test",
         "size", "rtt p50", "rtt p99", "time/msg", "msgs/s", "MB/s", "ratio");
  for (r = 0; r < R_COUNT; r++) {
    const struct result *x = &g.res[r];
    char sz[32], a[32], b[32], c[32], rate[32], mb[32], ratio[128];
    if (!x->valid && !wanted_na(r))
      continue;
    fmt_size(sz, sizeof sz, g_rows[r].size);
    if (!x->valid) { /* asked for, but not on this system */
      printf("%-*s %-10s %6s %10s %10s %10s %11s %10s  %s\n", tw,
             g_rows[r].transport, g_rows[r].test, sz, "-", "-", "-", "-", "-",
             row_na_text(r));
      na = 1;
      continue;
    }
    fmt_ns(a, sizeof a, x->p50);
    fmt_ns(b, sizeof b, x->p99);
    fmt_ns(c, sizeof c, x->rate > 0 ? 1e9 / x->rate : 0);
    if (x->rate > 0 && r >= R_READ_SCAN4K) /* whole-file scans */
      snprintf(rate, sizeof rate, "%.3g", x->rate);
    else if (x->rate > 0)
      snprintf(rate, sizeof rate, "%.4g M", x->rate / 1e6);
    else
      snprintf(rate, sizeof rate, "-");
    if (x->bytes > 0)
      snprintf(mb, sizeof mb, "%.0f", x->bytes / 1e6);
    else
      snprintf(mb, sizeof mb, "-");
    ratio_text(r, ratio, sizeof ratio);
    printf("%-*s %-10s %6s %10s %10s %10s %11s %10s  %s\n", tw,
           g_rows[r].transport, g_rows[r].test, sz, a, b, c, rate, mb, ratio);
  }
  printf("\ngoals (information only, never a failure):\n");
  for (r = 0; r < (int)(sizeof g_goals / sizeof g_goals[0]); r++) {
    const struct goal *gl = &g_goals[r];
    double v;
    if (row_na(gl->a) || row_na(gl->b)) {
      int m = row_na(gl->a) ? gl->a : gl->b;
      printf("  %-50s n/a (%s: %s)\n", gl->what, g_rows[m].transport,
             row_na_text(m));
      continue;
    }
    if (!ok(gl->a) || !ok(gl->b)) {
      printf("  %-52s n/a (not measured)\n", gl->what);
      continue;
    }
    if (gl->a == R_FERRY_BUSY || gl->a == R_FERRY_BLOCK ||
        gl->a == R_POOL_BUSY || gl->a == R_POOL_BLOCK)
      v = g.res[gl->a].p50 / g.res[gl->b].p50;
    else if (gl->a == R_FERRY_BIG)
      v = big_ratio(gl->a);
    else
      v = g.res[gl->a].rate / g.res[gl->b].rate;
    printf("  %-52s %8.*fx  %s\n", gl->what, v >= 10 ? 0 : 2, v,
           (gl->at_most ? v <= gl->goal : v >= gl->goal) ? "met" : "MISSED");
  }
  if (ok(R_FERRY_ZC) && ok(R_RING_STREAM) && ok(R_UNIX_STREAM))
    printf("  (zero-copy receive: %.3gx ring, %.0fx unix)\n",
           g.res[R_FERRY_ZC].rate / g.res[R_RING_STREAM].rate,
           g.res[R_FERRY_ZC].rate / g.res[R_UNIX_STREAM].rate);
  if (na)
    printf("\n%s", UNIX_NA_NOTE);
  for (r = 0; r < R_COUNT; r++)
    if ((r == R_FERRY_STREAM || r == R_FERRY_ZC || r == R_RING_STREAM) &&
        g.res[r].valid && g.res[r].hi > 1.5 * g.res[r].lo)
      break;
  if (r < R_COUNT)
    printf("\nnote: some 64 B ring or ferry stream rounds differ by more "
           "than 1.5x. A stream\n"
           "settles in one of two ways: the receiver keeps up, polls the "
           "lines the sender\n"
           "is writing and slows it down, or it lags and reads whole "
           "batches at full\n"
           "speed. Which one happens depends on the two sides' speeds and "
           "on chance; the\n"
           "per-message costs below do not.\n");
  if (g.cost[C_RING].valid || g.cost[C_FERRY].valid ||
      g.cost[C_FERRY_ZC].valid) {
    printf("\nper-message cost of each side alone (64 B, batches of 8192 sent "
           "while the\nreceiver waits, then received while the sender "
           "waits; medians):\n");
    for (r = 0; r < C_COUNT; r++) {
      const struct cost *c = &g.cost[r];
      if (!c->valid)
        continue;
      printf("  %-27s send %6.1f ns  recv %6.1f ns", g_cost_names[r],
             c->send_ns, c->recv_ns);
      if (r != C_RING && g.cost[C_RING].valid)
        printf("  (%.2fx / %.2fx ring)", c->send_ns / g.cost[C_RING].send_ns,
               c->recv_ns / g.cost[C_RING].recv_ns);
      printf("\n");
    }
  }
  printf("\nround trips: %llu busy / %llu blocking samples per row, after "
         "warm-ups, in %d chunks\nalternating between the rows; streams: "
         "median of %d rounds (64 B: %llu messages,\npipe/unix %llu, 3 MiB: "
         "%llu frames), each after a tenth as many to warm up.\n"
         "total %.1f s\n",
         (unsigned long long)g.p.spin_n, (unsigned long long)g.p.block_n,
         g.p.rounds + 1, g.p.rounds, (unsigned long long)g.p.small_stream_n,
         (unsigned long long)g.p.fd_stream_n,
         (unsigned long long)g.p.big_stream_n, secs);
}

static void print_json(void) {
  int r, first = 1;
  printf("{\"results\":[");
  for (r = 0; r < R_COUNT; r++) {
    const struct result *x = &g.res[r];
    if (!x->valid)
      continue;
    printf("%s{\"transport\":\"%s\",\"test\":\"%s\",\"size\":%llu",
           first ? "" : ",", g_rows[r].transport, g_rows[r].test,
           (unsigned long long)g_rows[r].size);
    if (x->p50 > 0)
      printf(",\"rtt_ns_p50\":%.1f,\"rtt_ns_p99\":%.1f", x->p50, x->p99);
    if (x->rate > 0)
      printf(",\"msgs_per_s\":%.0f", x->rate);
    if (x->bytes > 0)
      printf(",\"bytes_per_s\":%.0f", x->bytes);
    printf("}");
    first = 0;
  }
  printf("]");
  first = 1; /* rows asked for that this system cannot measure */
  for (r = 0; r < R_COUNT; r++) {
    if (!wanted_na(r))
      continue;
    printf("%s{\"transport\":\"%s\",\"test\":\"%s\",\"size\":%llu,"
           "\"reason\":\"%s\"}",
           first ? ",\"unavailable\":[" : ",", g_rows[r].transport,
           g_rows[r].test, (unsigned long long)g_rows[r].size, row_na_text(r));
    first = 0;
  }
  printf("%s}\n", first ? "" : "]");
}

/* ---------------------------------------------------------------------- */
/* The main process                                                       */

/* The resolution of the round-trip clock in ns: the median gap between two
 * consecutive different readings (the read's own cost included). Samples
 * are multiples of it where the clock moves in steps (10 ns on some virtual
 * machines, TSC included). */
static double clock_step(void) {
  int64_t gap[1001], n0 = now(), k0 = ticks(), n1;
  int i;
  for (i = 0; i < 1001; i++) {
    int64_t a = ticks(), b;
    while ((b = ticks()) == a)
      ;
    gap[i] = b - a;
  }
  while ((n1 = now()) - n0 < 2000000)
    ;
  qsort(gap, 1001, sizeof gap[0], cmp_i64);
  return (double)gap[500] * (double)(n1 - n0) / (double)(ticks() - k0);
}

static int bench_run(const char *const *self_prefix) {
  static const int small_rows[] = {R_RING_STREAM, R_FERRY_STREAM, R_FERRY_ZC};
  static const int big_rows[] = {R_RING_BIG, R_FERRY_BIG};
  static const int fd_rows[] = {R_PIPE_STREAM, R_UNIX_STREAM};
  static const int busy_rows[] = {R_SPIN, R_FERRY_BUSY, R_RING_BUSY,
                                  R_POOL_BUSY};
  static const int block_rows[] = {R_FUTEX, R_FERRY_BLOCK, R_PIPE_RTT,
                                   R_UNIX_RTT, R_POOL_BLOCK};
  ferry_segment_opts so = FERRY_SEGMENT_OPTS_INIT;
  char name[64], fdarg[64], cpuarg[16];
  const char *argv[64];
  bstream mine[3] = {NO_STREAM, NO_STREAM, NO_STREAM};
  bstream hfds[3] = {NO_STREAM, NO_STREAM, NO_STREAM};
  int cpus[2] = {-1, -1}, ncpu, pinned = 0, rc, i, na;
  int64_t t_start = now();
  double busy0, steal0, own0 = own_cpu();
  double clock_ns;

  ncpu = pin(-1, cpus);
  machine_cpu(&busy0, &steal0);
  so.flags = FERRY_SEG_PREFAULT;
  seg_name(name, sizeof name, "ctl");
  rc = ferry_segment_open(&g.ctl_seg, name, FERRY_CREATE | FERRY_EXCL,
                          sizeof(struct ctl), &so);
  if (rc != 0)
    return fail_ferry("create", name, rc);
  g.ctl = (struct ctl *)ferry_segment_data(g.ctl_seg);
  seg_name(name, sizeof name, "ring");
  rc = ferry_segment_open(&g.ring_seg, name, FERRY_CREATE | FERRY_EXCL,
                          RING_DATA + BIG_CAP, &so);
  if (rc != 0)
    return fail_ferry("create", name, rc);
  g.ring_base = ferry_segment_data(g.ring_seg);
  g.big_src = (unsigned char *)malloc(BIG);
  if (!g.big_src)
    return fail("out of memory");
  for (i = 0; i < (int)BIG; i++)
    g.big_src[i] = (unsigned char)(i * 31 + 7);
  if (wake_open(g_base) || make_fds(mine, hfds))
    return -1;
  g.fd_pipe_w = mine[0];
  g.fd_pipe_r = mine[1];
  g.fd_sock = mine[2];

  /* start the helper: SELF PREFIX... --role helper --base B --fds ... */
  na = 0;
  for (i = 0; self_prefix && self_prefix[i] && na < 48; i++)
    argv[na++] = self_prefix[i];
  snprintf(fdarg, sizeof fdarg, "%lld,%lld,%lld", (long long)hfds[0],
           (long long)hfds[1], (long long)hfds[2]);
  snprintf(cpuarg, sizeof cpuarg, "%d", ncpu >= 2 ? cpus[1] : -1);
  argv[na++] = "--role";
  argv[na++] = "helper";
  argv[na++] = "--base";
  argv[na++] = g_base;
  argv[na++] = "--fds";
  argv[na++] = fdarg;
  argv[na++] = "--cpu";
  argv[na++] = cpuarg;
  argv[na] = NULL;
  g.helper = proc_spawn_self(argv);
  for (i = 0; i < 3; i++)
    bs_close(hfds[i]);
  if (g.helper < 0)
    return fail("cannot start the helper process");
  if (ncpu >= 2) {
    if (pin(cpus[0], NULL) == 0)
      pinned = 1;
    else
      progress("cannot pin to CPU %d: %s", cpus[0], err_text());
  }
  clock_ns = clock_step();

  /* pairs measured next to each other, so that drift hits both alike */
  if (run_rtt_group(busy_rows, 4, g.p.spin_n, g.p.rounds + 1) ||
      run_rtt_group(block_rows, 5, g.p.block_n, g.p.rounds + 1) ||
      run_streams(fd_rows, 2, g.p.fd_stream_n) ||
      run_streams(small_rows, 3, g.p.small_stream_n) || run_cost(C_RING) ||
      run_cost(C_FERRY) || run_cost(C_FERRY_ZC) ||
      run_copy(R_COPY_SMALL, g.p.copy_small_n) ||
      run_copy(R_COPY_BIG, g.p.copy_big_n) ||
      run_streams(big_rows, 2, g.p.big_stream_n))
    return -1;

  cmd(OP_EXIT, 0, 0, 0, 0, 0);
  rc = proc_wait(g.helper, TIMEOUT_S * 1000);
  if (rc != 0)
    return fail(rc < 0 ? "the helper did not exit" : "the helper failed (%d)",
                rc);
  g.helper = -1;
  if (run_scan())
    return -1;
  { /* what others used meanwhile: the machine's busy time minus ours */
    double busy1, steal1, wall = (double)(now() - t_start) / 1e9;
    double online = cpus_online();
    machine_cpu(&busy1, &steal1);
    g.others = g.steal = -1;
    if (busy0 >= 0 && busy1 >= 0 && wall > 0 && online > 0) {
      g.others = (busy1 - busy0 - (own_cpu() - own0)) / (wall * online);
      g.steal = (steal1 - steal0) / (wall * online);
      if (g.others < 0)
        g.others = 0;
    }
  }
  if (g.json)
    print_json();
  else
    print_table((double)(now() - t_start) / 1e9, cpus, ncpu, pinned, clock_ns);
  return 0;
}

static void cleanup(void) {
  char name[64];
  uint32_t k;
  if (g.helper > 0)
    proc_kill(g.helper);
  g.helper = -1;
  for (k = 0; k < g.next_chan; k++) {
    chan_unlink(k); /* normally gone already: FERRY_ENOENT */
    pool_unlink(k);
  }
  ferry_segment_close(g.ring_seg);
  ferry_segment_close(g.ctl_seg);
  seg_name(name, sizeof name, "ring");
  ferry_segment_unlink(name, 0);
  seg_name(name, sizeof name, "ctl");
  ferry_segment_unlink(name, 0);
  bs_close(g.fd_pipe_w);
  bs_close(g.fd_pipe_r);
  bs_close(g.fd_sock);
  wake_close();
  free(g.big_src);
  if (g_scan_path[0])
    remove(g_scan_path);
}

#ifdef _WIN32
/* Ctrl-C, Ctrl-Break, the console closing: kill the helper, then let the
 * default handler end this process. There is nothing to unlink: sections
 * and semaphores go with their last handle. */
static BOOL WINAPI on_interrupt(DWORD event) {
  (void)event;
  if (g.helper > 0)
    proc_kill_nowait(g.helper);
  return FALSE;
}

static void catch_interrupts(void) { SetConsoleCtrlHandler(on_interrupt, 1); }
#else
/* Ctrl-C or kill: the same clean-up with async-signal-safe calls only,
 * then die of the signal. Segment files are found under /dev/shm. */
static char g_shm_prefix[128]; /* "/dev/shm/ferry.bench-PID-" */

static void unlink_suffix(const char *suffix, uint32_t k, int numbered) {
  char path[192], digits[12];
  size_t l = strlen(g_shm_prefix), d = 0;
  memcpy(path, g_shm_prefix, l);
  while (*suffix)
    path[l++] = *suffix++;
  if (numbered) {
    do
      digits[d++] = (char)('0' + k % 10);
    while ((k /= 10) != 0);
    while (d > 0)
      path[l++] = digits[--d];
  }
  path[l] = '\0';
  unlink(path);
}

static void on_interrupt(int sig) {
  uint32_t k;
  if (g.helper > 0)
    kill((pid_t)g.helper, SIGKILL);
  if (g_shm_prefix[0]) {
    unlink_suffix("ctl", 0, 0);
    unlink_suffix("ring", 0, 0);
    for (k = 0; k < g.next_chan; k++) {
      unlink_suffix("c", k, 1);
      unlink_suffix("p", k, 1);
    }
  }
  if (g_scan_path[0])
    unlink(g_scan_path);
  signal(sig, SIG_DFL);
  raise(sig);
}

static void catch_interrupts(void) {
  char name[64], os[96];
  seg_name(name, sizeof name, "");
  if (ferry_segment_os_name(name, 0, os, sizeof os) == 0 && os[0] == '/' &&
      strchr(os + 1, '/') == NULL)
    snprintf(g_shm_prefix, sizeof g_shm_prefix, "/dev/shm%s", os);
  signal(SIGINT, on_interrupt);
  signal(SIGTERM, on_interrupt);
  signal(SIGHUP, on_interrupt);
}
#endif

static int usage(const char *cmdname) {
  fprintf(stderr,
          "usage: %s [--json] [--quick] [--only LIST]\n"
          "  --json   one JSON object on stdout, nothing else\n"
          "  --quick  fewer iterations (well under 30 s)\n"
          "  --only   a subset: comma-separated TRANSPORT, TRANSPORT:TEST or\n"
          "           TRANSPORT:TEST:SIZE items (transports spin " WAKE_FLOOR
          " memcpy\n"
          "           pipe unix ferry ring read window; e.g. ferry:stream:64,\n"
          "           unix, window:scan)\n",
          cmdname);
  return 2;
}

int ferry_bench_main(int argc, char **argv, const char *const *self_prefix) {
  const char *role = NULL, *base = NULL, *fds = NULL;
  int quick = 0, cpu = -1, i, rc;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (strcmp(a, "--json") == 0)
      g.json = 1;
    else if (strcmp(a, "--quick") == 0)
      quick = g.quick = 1;
    else if (strcmp(a, "--only") == 0 && has)
      g.only = argv[++i];
    else if (strcmp(a, "--role") == 0 && has)
      role = argv[++i];
    else if (strcmp(a, "--base") == 0 && has)
      base = argv[++i];
    else if (strcmp(a, "--fds") == 0 && has)
      fds = argv[++i];
    else if (strcmp(a, "--cpu") == 0 && has)
      cpu = atoi(argv[++i]);
    else
      return usage(argv[0]);
  }
  if (role) {
    long long f[3];
    bstream ends[3];
    if (strcmp(role, "helper") != 0 || !base || !fds ||
        sscanf(fds, "%lld,%lld,%lld", &f[0], &f[1], &f[2]) != 3)
      return usage(argv[0]);
    for (i = 0; i < 3; i++)
      ends[i] = (bstream)f[i];
    return helper_main(base, cpu, ends);
  }

  g.fd_pipe_w = g.fd_pipe_r = g.fd_sock = NO_STREAM;
  g.helper = -1;
  snprintf(g_base, sizeof g_base, "bench-%ld", self_pid());
  if (quick) { /* ~5 s on a 2-CPU virtual machine */
    g.p.spin_n = 200000;
    g.p.block_n = 10000;
    g.p.copy_small_n = 5000000;
    g.p.copy_big_n = 200;
    g.p.fd_stream_n = 200000;
    g.p.small_stream_n = 5000000;
    g.p.big_stream_n = 200;
    g.p.cost_batches = 40;
    g.p.scan_size = 256 * MIB;
    g.p.rounds = 3;
  } else { /* ~25 s */
    g.p.spin_n = 1000000;
    g.p.block_n = 50000;
    g.p.copy_small_n = 20000000;
    g.p.copy_big_n = 1000;
    g.p.fd_stream_n = 1000000;
    g.p.small_stream_n = 20000000;
    g.p.big_stream_n = 1000;
    g.p.cost_batches = 200;
    g.p.scan_size = 1024 * MIB;
    g.p.rounds = 5;
  }
  signals_init();
  for (i = R_READ_SCAN4K; i <= R_WINDOW_SCAN; i++)
    g_rows[i].size = g.p.scan_size;
  catch_interrupts();

  rc = bench_run(self_prefix);
  if (rc != 0)
    fprintf(stderr, "ferry bench: error: %s\n", g_err);
  cleanup();
  return rc != 0;
}
