/* Description: segments across real processes: every create/open mode and its
 * errors, the header info, the create-or-open race, half-initialised and
 * foreign objects, read-only and permission checks, anonymous (inherited, and
 * passed with SCM_RIGHTS or DuplicateHandle) and file-backed segments, more
 * than 4 GiB, up-front reservation, prefault/mlock/huge pages, unlink, list,
 * OS names and Python interop. On Windows also the security descriptor made
 * from the mode. Where POSIX and Windows semantics differ (a Windows section
 * has no name to unlink and goes with its last handle), each side's is
 * checked. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <aclapi.h>
#include <psapi.h>
#include <winternl.h>
#else
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "os/os.h"

/* AddressSanitizer turns mlock() into a no-op (it cannot lock its shadow
 * memory), so VmLck cannot show a lock there. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define HDR_READY 0x59444552u /* "REDY": the header's state word when ready */
#define DATA_OFFSET 4096u     /* user data offset in layout v1.x */
#define GIB (1024ull * 1024ull * 1024ull)
#define MIB (1024ull * 1024ull)
#define NOBODY 65534

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static uint64_t page_size(void) { return ferry_os_caps_get()->page_size; }

static uint8_t pat(uint64_t i, unsigned seed) {
  return (uint8_t)((i * 131u) ^ (i >> 9) ^ (i >> 17) ^ (seed * 29u + 7u));
}

static void fill(void *p, uint64_t n, unsigned seed) {
  uint8_t *b = (uint8_t *)p;
  uint64_t i;
  for (i = 0; i < n; i++)
    b[i] = pat(i, seed);
}

/* 0 when P holds the pattern, else the first bad index + 1. */
static uint64_t mismatch(const void *p, uint64_t n, unsigned seed) {
  const uint8_t *b = (const uint8_t *)p;
  uint64_t i;
  for (i = 0; i < n; i++)
    if (b[i] != pat(i, seed))
      return i + 1;
  return 0;
}

#define ASSERT_PATTERN(p, n, seed)                                             \
  do {                                                                         \
    uint64_t bad_ = mismatch((p), (n), (seed));                                \
    if (bad_)                                                                  \
      TEST_FAIL("pattern %u mismatch at byte %llu of %llu", (unsigned)(seed),  \
                (unsigned long long)(bad_ - 1), (unsigned long long)(n));      \
  } while (0)

static int64_t mono_ms(void) { return ferry_os_monotonic_ns() / 1000000; }

static void pause_us(long us) { ferry_os_sleep_ns((int64_t)us * 1000); }

/* The 32-bit word IDX at the start of SEG's user data. */
static _Atomic uint32_t *word(ferry_segment *seg, size_t idx) {
  return (_Atomic uint32_t *)ferry_segment_data(seg) + idx;
}

/* Polls *P until it is at least WANT, up to TIMEOUT_MS (already scaled).
 * SPIN polls with sched_yield (for start barriers), else sleeps briefly
 * between looks. Returns 1 when reached, 0 on timeout. */
static int poll_u32(_Atomic uint32_t *p, uint32_t want, int64_t timeout_ms,
                    int spin) {
  int64_t deadline = mono_ms() + timeout_ms;
  for (;;) {
    if (atomic_load(p) >= want)
      return 1;
    if (mono_ms() > deadline)
      return 0;
    if (spin)
      sched_yield();
    else
      pause_us(100);
  }
}

static ferry_segment_opts opts_init(void) {
  ferry_segment_opts o = FERRY_SEGMENT_OPTS_INIT;
  return o;
}

static ferry_segment *create_named(const char *name, uint64_t size,
                                   const ferry_segment_opts *o) {
  ferry_segment *s = NULL;
  ASSERT_OK(ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, size, o));
  ASSERT_TRUE(s != NULL);
  return s;
}

static void get_info(const ferry_segment *s, ferry_segment_info *info) {
  memset(info, 0xa5, sizeof *info);
  ASSERT_OK(ferry_segment_get_info(s, info, sizeof *info));
}

static int path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void write_file(const char *path, const void *buf, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f)
    TEST_FAIL("open %s: %s", path, strerror(errno));
  if (fwrite(buf, 1, n, f) != n)
    TEST_FAIL("write %s: %s", path, strerror(errno));
  if (fclose(f) != 0)
    TEST_FAIL("close %s: %s", path, strerror(errno));
}

/* The OS name of named segment NAME, written out here (not asked of ferry):
 * POSIX "/ferry.NAME" (/dev/shm/ferry.NAME on Linux), Windows
 * "Local\ferry.NAME". */
static const char *os_name_of(const char *name, char *buf, size_t cap) {
#ifdef _WIN32
  snprintf(buf, cap, "Local\\ferry.%s", name);
#else
  snprintf(buf, cap, "/ferry.%s", name);
#endif
  return buf;
}

#ifndef _WIN32
static char *shm_file(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "/dev/shm/ferry.%s", name);
  return buf;
}
#endif

/* 1 when the named segment NAME exists: POSIX, /dev/shm/ferry.NAME is
 * there; Windows, some process holds the section open. */
static int named_exists(const char *name) {
  char osname[160];
#ifdef _WIN32
  HANDLE h = OpenFileMappingA(FILE_MAP_READ, FALSE,
                              os_name_of(name, osname, sizeof osname));
  DWORD e = GetLastError();
  if (h) {
    CloseHandle(h);
    return 1;
  }
  if (e != ERROR_FILE_NOT_FOUND)
    TEST_FAIL("OpenFileMapping %s: error %lu", osname, (unsigned long)e);
  return 0;
#else
  return path_exists(shm_file(name, osname, sizeof osname));
#endif
}

/* The size of named segment NAME's object. */
static uint64_t named_size(const char *name) {
  char osname[160];
#ifdef _WIN32
  MEMORY_BASIC_INFORMATION mbi;
  HANDLE h = OpenFileMappingA(FILE_MAP_READ, FALSE,
                              os_name_of(name, osname, sizeof osname));
  void *p;
  if (!h)
    TEST_FAIL("OpenFileMapping %s: error %lu", osname,
              (unsigned long)GetLastError());
  p = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0); /* the whole section */
  ASSERT_TRUE(p != NULL);
  ASSERT_TRUE(VirtualQuery(p, &mbi, sizeof mbi) != 0);
  UnmapViewOfFile(p);
  CloseHandle(h);
  return (uint64_t)mbi.RegionSize;
#else
  struct stat st;
  if (stat(shm_file(name, osname, sizeof osname), &st) != 0)
    TEST_FAIL("stat %s: %s", osname, strerror(errno));
  return (uint64_t)st.st_size;
#endif
}

/* Closes S, the last handle anywhere to the named segment NAME, and removes
 * NAME; the segment is gone afterwards. POSIX keeps the name until it is
 * unlinked; a Windows section goes with its last handle, and unlink then
 * finds nothing. */
static void close_and_remove(ferry_segment *s, const char *name) {
  ASSERT_OK(ferry_segment_close(s));
#ifdef _WIN32
  ASSERT_ERR(ferry_segment_unlink(name, 0), FERRY_ENOENT);
  ASSERT_CONTAINS(ferry_errmsg(), name);
#else
  ASSERT_TRUE(named_exists(name));
  ASSERT_OK(ferry_segment_unlink(name, 0));
#endif
  ASSERT_TRUE(!named_exists(name));
}

/* The size of file PATH, and the bytes of disk allocated to it. */
static uint64_t file_size(const char *path) {
#ifdef _WIN32
  WIN32_FILE_ATTRIBUTE_DATA a;
  if (!GetFileAttributesExA(path, GetFileExInfoStandard, &a))
    TEST_FAIL("GetFileAttributesEx %s: error %lu", path,
              (unsigned long)GetLastError());
  return (uint64_t)a.nFileSizeHigh << 32 | a.nFileSizeLow;
#else
  struct stat st;
  if (stat(path, &st) != 0)
    TEST_FAIL("stat %s: %s", path, strerror(errno));
  return (uint64_t)st.st_size;
#endif
}

static uint64_t file_allocated(const char *path) {
#ifdef _WIN32
  FILE_STANDARD_INFO fsi;
  HANDLE f = CreateFileA(path, FILE_READ_ATTRIBUTES,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  BOOL ok;
  if (f == INVALID_HANDLE_VALUE)
    TEST_FAIL("open %s: error %lu", path, (unsigned long)GetLastError());
  ok = GetFileInformationByHandleEx(f, FileStandardInfo, &fsi, sizeof fsi);
  CloseHandle(f);
  ASSERT_TRUE(ok);
  return (uint64_t)fsi.AllocationSize.QuadPart;
#else
  struct stat st;
  if (stat(path, &st) != 0)
    TEST_FAIL("stat %s: %s", path, strerror(errno));
  return (uint64_t)st.st_blocks * 512;
#endif
}

#ifdef _WIN32
/* 1 when this Windows is Wine (which says so through ntdll). */
static int under_wine(void) {
  HMODULE nt = GetModuleHandleA("ntdll.dll");
  return nt && GetProcAddress(nt, "wine_get_version") != NULL;
}
#endif

/* This process's start time as the OS records it, read here without ferry:
 * Linux, field 22 of /proc/self/stat; Windows, the creation FILETIME. */
static uint64_t self_start_ticks(void) {
#ifdef _WIN32
  FILETIME created, exited, kernel, user;
  ASSERT_TRUE(
      GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user));
  return (uint64_t)created.dwHighDateTime << 32 | created.dwLowDateTime;
#else
  char buf[1024];
  const char *p;
  unsigned long long ticks = 0;
  int field;
  FILE *f = fopen("/proc/self/stat", "r");
  size_t n;
  if (!f)
    TEST_FAIL("open /proc/self/stat: %s", strerror(errno));
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')');
  ASSERT_TRUE(p != NULL);
  p += 2;
  for (field = 3; field < 22 && *p; p++)
    if (*p == ' ')
      field++;
  ASSERT_EQ(field, 22);
  ASSERT_EQ(sscanf(p, "%llu", &ticks), 1);
  return ticks;
#endif
}

/* The id of the process that started this one. */
static uint64_t parent_pid(void) {
#ifdef _WIN32
  typedef LONG(NTAPI * query_fn)(HANDLE, int, PVOID, ULONG, PULONG);
  PROCESS_BASIC_INFORMATION pbi;
  HMODULE nt = GetModuleHandleA("ntdll.dll");
  query_fn q = nt ? (query_fn)(void (*)(void))GetProcAddress(
                        nt, "NtQueryInformationProcess")
                  : NULL;
  ASSERT_TRUE(q != NULL);
  memset(&pbi, 0, sizeof pbi);
  ASSERT_EQ(q(GetCurrentProcess(), 0 /* ProcessBasicInformation */, &pbi,
              sizeof pbi, NULL),
            0);
  return (uint64_t)pbi.InheritedFromUniqueProcessId;
#else
  return (uint64_t)getppid();
#endif
}

/* An object made under the segment name NAME without ferry's segment code
 * (through the OS layer alone), SIZE bytes (a multiple of the page size),
 * zero-filled and mapped read-write: a half-made or foreign object. */
struct raw {
  ferry_os_shm os;
  uint8_t *map;
  uint64_t size;
};

static void raw_create(struct raw *r, const char *name, uint64_t size) {
  char osname[160];
  void *p = NULL;
  ASSERT_OK(ferry_os_shm_create(&r->os, os_name_of(name, osname, sizeof osname),
                                size, 0600, 0));
  ASSERT_OK(ferry_os_map(&r->os, 0, size, FERRY_OS_MAP_WRITE, &p));
  r->map = (uint8_t *)p;
  r->size = size;
}

/* Removes NAME and closes R: unlink first, while the object is still open
 * (a Windows section goes with its last handle; unlink then finds
 * nothing). */
static void raw_remove(struct raw *r, const char *name) {
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_os_unmap(r->map, r->size));
  ferry_os_shm_close(&r->os);
}

#ifdef _WIN32
/* A write access violation ends the process with exit code 128 + SIGSEGV:
 * the Windows counterpart of death by SIGSEGV. Anything else takes the
 * usual way (and so a different exit code). */
static LONG CALLBACK on_fault(EXCEPTION_POINTERS *ep) {
  const EXCEPTION_RECORD *er = ep->ExceptionRecord;
  if (er->ExceptionCode == EXCEPTION_ACCESS_VIOLATION &&
      er->NumberParameters >= 2 && er->ExceptionInformation[0] == 1)
    TerminateProcess(GetCurrentProcess(), 128 + SIGSEGV);
  return EXCEPTION_CONTINUE_SEARCH;
}
#endif

/* Lets a helper die of the signal its bad write raises: no core file, and
 * the default action even under AddressSanitizer's SEGV handler. (Windows:
 * no error dialog or debugger, and the exit code above.) */
static void default_fault_handling(void) {
#ifdef _WIN32
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  ASSERT_TRUE(AddVectoredExceptionHandler(1, on_fault) != NULL);
#else
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
#endif
}

/* Handle H is open in this process. */
static int handle_valid(ferry_handle h) {
#ifdef _WIN32
  DWORD f = 0;
  return GetHandleInformation((HANDLE)h, &f) != 0;
#else
  return fcntl((int)h, F_GETFD) >= 0;
#endif
}

/* Handle H (open) is inherited by child processes: no FD_CLOEXEC, or
 * HANDLE_FLAG_INHERIT. */
static int handle_inherited(ferry_handle h) {
#ifdef _WIN32
  DWORD f = 0;
  ASSERT_TRUE(GetHandleInformation((HANDLE)h, &f));
  return (f & HANDLE_FLAG_INHERIT) != 0;
#else
  int f = fcntl((int)h, F_GETFD);
  ASSERT_TRUE(f >= 0);
  return (f & FD_CLOEXEC) == 0;
#endif
}

#ifndef _WIN32
static void drop_privileges(void) {
  if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
    TEST_FAIL("dropping privileges to uid %d: %s", NOBODY, strerror(errno));
  ASSERT_EQ(geteuid(), NOBODY);
}

static int wait_child(pid_t pid) {
  return test_wait(pid, test_timeout_ms(60000));
}
#endif

/* ---------------------------------------------------------------------- */
/* Helper roles                                                           */

/* exit: does nothing (its pid is then the pid of a dead process). */
static int role_exit(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return 0;
}

/* check NAME FLAGS SIZE SEED NEWSEED: opens NAME with FLAGS, checks the size
 * and pattern SEED over all of the data, then (NEWSEED not "-") overwrites
 * it with pattern NEWSEED. */
static int role_check(int argc, char **argv) {
  ferry_segment *s = NULL;
  ferry_segment_info info;
  unsigned flags;
  uint64_t size;
  unsigned seed;
  if (argc < 5)
    return 2;
  flags = (unsigned)strtoul(argv[1], NULL, 0);
  size = strtoull(argv[2], NULL, 0);
  seed = (unsigned)strtoul(argv[3], NULL, 0);
  ASSERT_OK(ferry_segment_open(&s, argv[0], flags, 0, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.readonly, (flags & FERRY_RDONLY) != 0);
  ASSERT_EQ(info.kind,
            (flags & FERRY_FILE) ? FERRY_KIND_FILE : FERRY_KIND_NAMED);
  ASSERT_UEQ(info.creator_pid, parent_pid());
  ASSERT_EQ(info.creator_alive, 1);
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_PATTERN(ferry_segment_data(s), size, seed);
  if (strcmp(argv[4], "-") != 0)
    fill(ferry_segment_data(s), size, (unsigned)strtoul(argv[4], NULL, 0));
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* create-exit NAME SIZE SEED [GO]: creates NAME, fills it, exits. With GO
 * (on Windows, where a section goes with its last handle), it first says so
 * in word 0 of segment GO and waits for word 1: the parent has opened
 * NAME. */
static int role_create_exit(int argc, char **argv) {
  ferry_segment *s, *go = NULL;
  uint64_t size;
  if (argc < 3)
    return 2;
  size = strtoull(argv[1], NULL, 0);
  s = create_named(argv[0], size, NULL);
  fill(ferry_segment_data(s), size, (unsigned)strtoul(argv[2], NULL, 0));
  if (argc >= 4) {
    ASSERT_OK(ferry_segment_open(&go, argv[3], 0, 0, NULL));
    atomic_store(word(go, 0), 1);
    if (!poll_u32(word(go, 1), 1, test_timeout_ms(60000), 0))
      TEST_FAIL("the parent never opened %s", argv[0]);
    ASSERT_OK(ferry_segment_close(go));
  }
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* race GO TARGET KIND SIZE: waits on the start barrier in segment GO (word
 * 0; word 1 counts the helpers there), then opens-or-creates TARGET (KIND
 * "named" or "file"), checks that it is fully initialised and counts itself
 * in it. Then it counts itself done (GO word 2) and keeps TARGET open until
 * the parent has looked at it (GO word 3): a Windows section goes with its
 * last handle. Exit 10 = created, 11 = opened. */
static int role_race(int argc, char **argv) {
  ferry_segment *go = NULL, *s = NULL;
  ferry_segment_info info;
  unsigned flags;
  uint64_t size;
  int created;
  if (argc < 4)
    return 2;
  flags = FERRY_CREATE | (strcmp(argv[2], "file") == 0 ? FERRY_FILE : 0u);
  size = strtoull(argv[3], NULL, 0);
  ASSERT_OK(ferry_segment_open(&go, argv[0], 0, 0, NULL));
  atomic_fetch_add(word(go, 1), 1); /* ready */
  if (!poll_u32(word(go, 0), 1, test_timeout_ms(60000), 1))
    TEST_FAIL("start barrier never opened");
  ASSERT_OK(ferry_segment_open(&s, argv[1], flags, size, NULL));
  get_info(s, &info);
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_UEQ(info.data_size, size);
  ASSERT_EQ(info.version_major, 1);
  ASSERT_EQ(info.version_minor, 0);
  ASSERT_EQ(info.header_size, 256);
  ASSERT_UEQ(info.state, HDR_READY);
  ASSERT_UEQ(info.data_offset, DATA_OFFSET);
  ASSERT_EQ(info.total_size % page_size(), 0);
  ASSERT_TRUE(info.total_size >= info.data_offset + size);
  ASSERT_EQ(info.kind,
            (flags & FERRY_FILE) ? FERRY_KIND_FILE : FERRY_KIND_NAMED);
  ASSERT_NE(info.creator_pid, 0);
  created = info.created;
  if (created)
    ASSERT_UEQ(info.creator_pid, (uint64_t)test_getpid());
  else
    ASSERT_NE(info.creator_pid, (uint64_t)test_getpid());
  if (!(flags & FERRY_FILE))
    ASSERT_STREQ(info.name, argv[1]);
  atomic_fetch_add(word(s, 0), 1);
  atomic_fetch_add(word(go, 2), 1); /* done */
  if (!poll_u32(word(go, 3), 1, test_timeout_ms(60000), 0))
    TEST_FAIL("the parent never looked at %s", argv[1]);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_close(go));
  return created ? 10 : 11;
}

/* rdonly-write NAME SIZE SEED: opens NAME read-only, checks the pattern,
 * then writes into the data: it must die of SIGSEGV there (Windows: of the
 * write access violation, exit code 128 + SIGSEGV). */
static int role_rdonly_write(int argc, char **argv) {
  ferry_segment *s = NULL;
  ferry_segment_info info;
  volatile uint8_t *d;
  uint64_t size;
  if (argc < 3)
    return 2;
  size = strtoull(argv[1], NULL, 0);
  ASSERT_OK(ferry_segment_open(&s, argv[0], FERRY_RDONLY, 0, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.readonly, 1);
  ASSERT_PATTERN(ferry_segment_data(s), size, (unsigned)atoi(argv[2]));
  default_fault_handling();
  d = (volatile uint8_t *)ferry_segment_data(s);
  d[size / 2] = (uint8_t)(d[size / 2] + 1); /* must fault */
  return 3;                                 /* the write went through */
}

/* hold NAME: opens NAME, says so in word 0, waits for word 1 (the parent
 * has unlinked it and written pattern 9 from byte 64), checks the pattern,
 * answers in word 2. After the unlink, NAME no longer opens on POSIX; on
 * Windows, where unlink removes no name, it opens as long as a handle is
 * open, and is the same object. */
static int role_hold(int argc, char **argv) {
  ferry_segment *s = NULL, *again = NULL;
  uint64_t size;
  if (argc < 1)
    return 2;
  ASSERT_OK(ferry_segment_open(&s, argv[0], 0, 0, NULL));
  size = ferry_segment_data_size(s);
  atomic_store(word(s, 0), 1);
  if (!poll_u32(word(s, 1), 1, test_timeout_ms(60000), 0))
    TEST_FAIL("the parent never said it unlinked the segment");
#ifdef _WIN32
  ASSERT_OK(ferry_segment_open(&again, argv[0], 0, 0, NULL));
  ASSERT_PATTERN((uint8_t *)ferry_segment_data(again) + 64, size - 64, 9);
  ASSERT_OK(ferry_segment_close(again));
#else
  ASSERT_ERR(ferry_segment_open(&again, argv[0], 0, 0, NULL), FERRY_ENOENT);
#endif
  ASSERT_PATTERN((uint8_t *)ferry_segment_data(s) + 64, size - 64, 9);
  atomic_store(word(s, 2), 0xbeef);
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* handle FD MODE SIZE SEED NEWSEED: opens the segment behind inherited
 * descriptor (Windows: handle) FD. MODE: "rw" (check pattern SEED, then
 * write NEWSEED), "ro" (read-only, check), "ro-write" (read-only, check,
 * then write: must die of SIGSEGV), "absent" (FD must not be a usable
 * segment handle here). */
static int role_handle(int argc, char **argv) {
  ferry_segment *s = NULL;
  ferry_segment_info info;
  const char *mode;
  ferry_handle fd;
  uint64_t size;
  unsigned seed;
  int rc;
  if (argc < 5)
    return 2;
  fd = (ferry_handle)strtoll(argv[0], NULL, 0);
  mode = argv[1];
  size = strtoull(argv[2], NULL, 0);
  seed = (unsigned)strtoul(argv[3], NULL, 0);
  if (strcmp(mode, "absent") == 0) {
    int open_here = handle_valid(fd);
    rc = ferry_segment_open_handle(&s, fd, 0, NULL);
    if (rc == 0)
      TEST_FAIL("handle %lld was inherited and opened as a segment",
                (long long)fd);
    ASSERT_TRUE(s == NULL);
    if (!open_here) {
      ASSERT_ERR(rc, FERRY_EINVAL);
    } else {
      /* the number is taken by something of this process's own */
#ifdef _WIN32
      HANDLE h = (HANDLE)fd;
      const void *p = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);
      if (p) { /* a section: one of this process's own, not a segment */
        int ferry_seg = memcmp(p, "FERRYSEG", 8) == 0;
        UnmapViewOfFile(p);
        if (ferry_seg)
          TEST_FAIL("handle %lld was inherited: it is a ferry segment",
                    (long long)fd);
      }
#else
      char proc[64], target[256];
      ssize_t n;
      snprintf(proc, sizeof proc, "/proc/self/fd/%d", (int)fd);
      n = readlink(proc, target, sizeof target - 1);
      target[n > 0 ? n : 0] = '\0';
      if (strstr(target, "memfd:"))
        TEST_FAIL("fd %d was inherited: it is %s", (int)fd, target);
#endif
    }
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');
    return 0;
  }
  ASSERT_TRUE(handle_valid(fd));
  ASSERT_OK(ferry_segment_open_handle(
      &s, fd, strncmp(mode, "ro", 2) == 0 ? FERRY_RDONLY : 0u, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_ANON);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(info.creator_pid, parent_pid());
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_PATTERN(ferry_segment_data(s), size, seed);
  if (strcmp(mode, "rw") == 0) {
    ASSERT_EQ(info.readonly, 0);
    fill(ferry_segment_data(s), size, (unsigned)strtoul(argv[4], NULL, 0));
  } else {
    ASSERT_EQ(info.readonly, 1);
    if (strcmp(mode, "ro-write") == 0) {
      volatile uint8_t *d = (volatile uint8_t *)ferry_segment_data(s);
      default_fault_handling();
      d[0] = (uint8_t)(d[0] + 1); /* must fault */
      return 3;
    }
  }
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

#ifdef _WIN32
/* dup-recv GO SIZE SEED NEWSEED: says it runs (word 0 of segment GO), waits
 * for word 1: the parent has put a handle into this process with
 * DuplicateHandle and written its value at byte 64 of GO. Opens the
 * segment behind it, checks pattern SEED and writes pattern NEWSEED. */
static int role_dup_recv(int argc, char **argv) {
  ferry_segment *go = NULL, *s = NULL;
  ferry_segment_info info;
  char value[32];
  ferry_handle h;
  uint64_t size;
  if (argc < 4)
    return 2;
  size = strtoull(argv[1], NULL, 0);
  ASSERT_OK(ferry_segment_open(&go, argv[0], 0, 0, NULL));
  atomic_store(word(go, 0), 1);
  if (!poll_u32(word(go, 1), 1, test_timeout_ms(60000), 0))
    TEST_FAIL("the parent never sent the handle");
  memcpy(value, (char *)ferry_segment_data(go) + 64, sizeof value);
  value[sizeof value - 1] = '\0';
  h = (ferry_handle)strtoll(value, NULL, 10);
  ASSERT_TRUE(handle_valid(h));
  ASSERT_TRUE(!handle_inherited(h));
  ASSERT_OK(ferry_segment_open_handle(&s, h, 0, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_ANON);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_PATTERN(ferry_segment_data(s), size, (unsigned)atoi(argv[2]));
  fill(ferry_segment_data(s), size, (unsigned)atoi(argv[3]));
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_TRUE(CloseHandle((HANDLE)h));
  ASSERT_OK(ferry_segment_close(go));
  return 0;
}
#else
/* scm-recv SOCKPATH SIZE SEED NEWSEED: connects to the parent's Unix socket,
 * receives a descriptor with SCM_RIGHTS, opens the segment behind it, checks
 * pattern SEED and writes pattern NEWSEED. */
static int role_scm_recv(int argc, char **argv) {
  struct sockaddr_un addr;
  struct msghdr msg;
  struct iovec iov;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct cmsghdr *c;
  ferry_segment *s = NULL;
  ferry_segment_info info;
  char byte;
  int sock, fd = -1;
  uint64_t size;
  if (argc < 4)
    return 2;
  size = strtoull(argv[1], NULL, 0);
  sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(sock >= 0);
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[0]);
  if (connect(sock, (struct sockaddr *)&addr, sizeof addr) != 0)
    TEST_FAIL("connect %s: %s", argv[0], strerror(errno));
  memset(&msg, 0, sizeof msg);
  memset(&ctl, 0, sizeof ctl);
  iov.iov_base = &byte;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1)
    TEST_FAIL("recvmsg: %s", strerror(errno));
  for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      memcpy(&fd, CMSG_DATA(c), sizeof fd);
  ASSERT_TRUE(fd >= 0);
  ASSERT_OK(ferry_segment_open_handle(&s, (ferry_handle)fd, 0, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_ANON);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_PATTERN(ferry_segment_data(s), size, (unsigned)atoi(argv[2]));
  fill(ferry_segment_data(s), size, (unsigned)atoi(argv[3]));
  ASSERT_OK(ferry_segment_close(s));
  close(fd);
  close(sock);
  return 0;
}
#endif

/* check-big PATH SIZE: opens the >4 GiB file-backed segment PATH, checks
 * the bytes the parent wrote at 0, 4 GiB + 1 and the end, and writes 0xd4 at
 * 4 GiB + 2. */
static int role_check_big(int argc, char **argv) {
  ferry_segment *s = NULL;
  uint64_t size;
  volatile uint8_t *d;
  if (argc < 2)
    return 2;
  size = strtoull(argv[1], NULL, 0);
  ASSERT_OK(ferry_segment_open(&s, argv[0], FERRY_FILE, 0, NULL));
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  d = (volatile uint8_t *)ferry_segment_data(s);
  ASSERT_EQ(d[0], 0xa1);
  ASSERT_EQ(d[1], 0);
  ASSERT_EQ(d[4 * GIB], 0);
  ASSERT_EQ(d[4 * GIB + 1], 0xb2);
  ASSERT_EQ(d[size - 2], 0);
  ASSERT_EQ(d[size - 1], 0xc3);
  d[4 * GIB + 2] = 0xd4;
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Create and open modes                                                  */

static void test_create_excl(void) {
  char name[80];
  ferry_segment *s, *s2 = (ferry_segment *)&s2;
  ferry_segment_info info;
  test_name(name, sizeof name, "excl");
  ASSERT_TRUE(!named_exists(name));
  s = create_named(name, 1000, NULL);
  ASSERT_TRUE(named_exists(name));
  ASSERT_UEQ(ferry_segment_data_size(s), 1000);
  ASSERT_EQ((uintptr_t)ferry_segment_data(s) % 64, 0);
  get_info(s, &info);
  ASSERT_EQ(info.created, 1);
  ASSERT_EQ(info.readonly, 0);
  ASSERT_EQ(info.kind, FERRY_KIND_NAMED);
  ASSERT_STREQ(info.name, name);
  /* again: the name is taken, and the first segment is untouched */
  ASSERT_ERR(
      ferry_segment_open(&s2, name, FERRY_CREATE | FERRY_EXCL, 1000, NULL),
      FERRY_EEXIST);
  ASSERT_TRUE(s2 == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), name);
  ASSERT_UEQ(named_size(name), info.total_size);
  memset(ferry_segment_data(s), 0x5c, 1000);
  close_and_remove(s, name);
}

static void test_open_existing(void) {
  char name[80];
  ferry_segment *s = (ferry_segment *)&s, *o = NULL;
  ferry_segment_info info;
  uint8_t *a, *b;
  test_name(name, sizeof name, "open");
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 100, NULL), FERRY_ENOENT);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), name);
  s = create_named(name, 5000, NULL);
  a = (uint8_t *)ferry_segment_data(s);
  fill(a, 5000, 1);
  /* SIZE is ignored when opening: 0 and a different size both work */
  ASSERT_OK(ferry_segment_open(&o, name, 0, 0, NULL));
  ASSERT_UEQ(ferry_segment_data_size(o), 5000);
  get_info(o, &info);
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.readonly, 0);
  ASSERT_UEQ(info.creator_pid, (uint64_t)test_getpid());
  b = (uint8_t *)ferry_segment_data(o);
  ASSERT_TRUE(a != b); /* two mappings of one object */
  ASSERT_EQ((uintptr_t)b % 64, 0);
  ASSERT_PATTERN(b, 5000, 1);
  fill(b, 5000, 2); /* and back the other way */
  ASSERT_PATTERN(a, 5000, 2);
  ASSERT_OK(ferry_segment_close(o));
  ASSERT_OK(ferry_segment_open(&o, name, 0, 77777, NULL));
  ASSERT_UEQ(ferry_segment_data_size(o), 5000);
  ASSERT_PATTERN(ferry_segment_data(o), 5000, 2);
  ASSERT_OK(ferry_segment_close(o));
  close_and_remove(s, name);
  ASSERT_ERR(ferry_segment_open(&o, name, 0, 0, NULL), FERRY_ENOENT);
}

static void test_open_or_create(void) {
  char name[80];
  ferry_segment *a = NULL, *b = NULL, *c = NULL;
  ferry_segment_info info;
  test_name(name, sizeof name, "ooc");
  ASSERT_OK(ferry_segment_open(&a, name, FERRY_CREATE, 3000, NULL));
  get_info(a, &info);
  ASSERT_EQ(info.created, 1);
  ASSERT_UEQ(ferry_segment_data_size(a), 3000);
  fill(ferry_segment_data(a), 3000, 3);
  ASSERT_OK(ferry_segment_open(&b, name, FERRY_CREATE, 9999, NULL));
  get_info(b, &info);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(info.creator_pid, (uint64_t)test_getpid());
  ASSERT_UEQ(ferry_segment_data_size(b), 3000); /* size ignored */
  ASSERT_PATTERN(ferry_segment_data(b), 3000, 3);
  /* size 0 is fine when the segment exists */
  ASSERT_OK(ferry_segment_open(&c, name, FERRY_CREATE, 0, NULL));
  get_info(c, &info);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(c), 3000);
  ASSERT_OK(ferry_segment_close(c));
  ASSERT_OK(ferry_segment_close(b));
  close_and_remove(a, name);
}

static void test_rdonly_open(void) {
  char name[80];
  ferry_segment *s, *r = NULL;
  ferry_segment_info info;
  test_name(name, sizeof name, "ro");
  ASSERT_ERR(ferry_segment_open(&r, name, FERRY_RDONLY, 0, NULL), FERRY_ENOENT);
  s = create_named(name, 4096 * 3, NULL);
  fill(ferry_segment_data(s), 4096 * 3, 4);
  ASSERT_OK(ferry_segment_open(&r, name, FERRY_RDONLY, 0, NULL));
  get_info(r, &info);
  ASSERT_EQ(info.readonly, 1);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(r), 4096 * 3);
  ASSERT_PATTERN(ferry_segment_data(r), 4096 * 3, 4);
  /* later writes by the writer show through the read-only mapping */
  fill(ferry_segment_data(s), 4096 * 3, 5);
  ASSERT_PATTERN(ferry_segment_data(r), 4096 * 3, 5);
  ASSERT_OK(ferry_segment_close(r));
  close_and_remove(s, name);
}

static void test_invalid_arguments(void) {
  char name[80], path[4200];
  ferry_segment *s = (ferry_segment *)&s;
  ferry_segment_opts o;
  ferry_segment_info info;
  test_name(name, sizeof name, "inval");
#define EXPECT_EINVAL(call)                                                    \
  do {                                                                         \
    s = (ferry_segment *)&s;                                                   \
    ASSERT_ERR(call, FERRY_EINVAL);                                            \
    ASSERT_TRUE(s == NULL);                                                    \
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');                                    \
  } while (0)
  /* flag combinations */
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_RDONLY | FERRY_CREATE, 100, NULL));
  EXPECT_EINVAL(ferry_segment_open(
      &s, name, FERRY_RDONLY | FERRY_CREATE | FERRY_EXCL, 100, NULL));
  EXPECT_EINVAL(ferry_segment_open(&s, name, FERRY_EXCL, 100, NULL));
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_EXCL | FERRY_RDONLY, 100, NULL));
  EXPECT_EINVAL(ferry_segment_open(&s, name, 1u << 10, 100, NULL));
  EXPECT_EINVAL(ferry_segment_open(
      &s, name, FERRY_CREATE | FERRY_EXCL | (1u << 31), 100, NULL));
  /* size 0 */
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 0, NULL));
  EXPECT_EINVAL(ferry_segment_open(&s, name, FERRY_CREATE, 0, NULL));
  /* options */
  o = opts_init();
  o.struct_size = 0;
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 100, &o));
  ASSERT_CONTAINS(ferry_errmsg(), "FERRY_SEGMENT_OPTS_INIT");
  o.struct_size = 3;
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 100, &o));
  EXPECT_EINVAL(ferry_segment_open(&s, name, 0, 100, &o));
  o = opts_init();
  o.flags = 1u << 20;
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 100, &o));
  o = opts_init();
  o.mode = 04600;
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 100, &o));
  o = opts_init();
  o.payload = 99;
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 100, &o));
  o = opts_init();
  o.flags = FERRY_SEG_SPARSE; /* file-backed only */
  EXPECT_EINVAL(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 100, &o));
  /* names and pointers */
  ASSERT_ERR(
      ferry_segment_open(NULL, name, FERRY_CREATE | FERRY_EXCL, 100, NULL),
      FERRY_EINVAL);
  EXPECT_EINVAL(
      ferry_segment_open(&s, "a/b", FERRY_CREATE | FERRY_EXCL, 100, NULL));
  EXPECT_EINVAL(ferry_segment_open(&s, NULL, 0, 100, NULL));
  EXPECT_EINVAL(ferry_segment_open(
      &s, "", FERRY_FILE | FERRY_CREATE | FERRY_EXCL, 100, NULL));
  memset(path, 'x', sizeof path - 1);
  path[sizeof path - 1] = '\0';
  EXPECT_EINVAL(ferry_segment_open(
      &s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL, 100, NULL));
  /* anonymous */
  EXPECT_EINVAL(ferry_segment_create_anon(&s, 0, NULL));
  o = opts_init();
  o.struct_size = 0;
  EXPECT_EINVAL(ferry_segment_create_anon(&s, 100, &o));
  o = opts_init();
  o.flags = FERRY_SEG_GLOBAL;
  EXPECT_EINVAL(ferry_segment_create_anon(&s, 100, &o));
  o = opts_init();
  o.flags = FERRY_SEG_SPARSE;
  EXPECT_EINVAL(ferry_segment_create_anon(&s, 100, &o));
  ASSERT_ERR(ferry_segment_create_anon(NULL, 100, NULL), FERRY_EINVAL);
  EXPECT_EINVAL(ferry_segment_open_handle(&s, -1, 0, NULL));
  EXPECT_EINVAL(ferry_segment_open_handle(&s, 0, FERRY_CREATE, NULL));
  /* unlink */
  ASSERT_ERR(ferry_segment_unlink(name, FERRY_CREATE), FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_unlink("a/b", 0), FERRY_EINVAL);
  /* nothing was created by any of it */
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, NULL), FERRY_ENOENT);
  /* a struct_size that covers only struct_size means "all defaults" */
  o = opts_init();
  o.struct_size = sizeof(uint32_t);
  o.mode = 0666; /* beyond struct_size: must be ignored */
  ASSERT_OK(ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 100, &o));
  get_info(s, &info);
  ASSERT_EQ(info.mode, 0600);
  close_and_remove(s, name);
#undef EXPECT_EINVAL
}

static void test_info_fields(void) {
  char name[80], want[160];
  ferry_segment *s, *r = NULL;
  ferry_segment_opts o = opts_init();
  ferry_segment_info info;
#ifndef _WIN32
  char path[160];
  struct stat st;
  mode_t old_umask;
#endif
  uint64_t ps = page_size();
  /* default mode 0600 */
  test_name(name, sizeof name, "info");
  s = create_named(name, 10000, NULL);
  get_info(s, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_NAMED);
  ASSERT_EQ(info.payload, FERRY_PAYLOAD_RAW);
  ASSERT_EQ(info.version_major, 1);
  ASSERT_EQ(info.version_minor, 0);
  ASSERT_EQ(info.header_size, 256);
  ASSERT_UEQ(info.state, HDR_READY);
  ASSERT_EQ(info.mode, 0600);
  ASSERT_EQ(info.seg_flags, 0);
  ASSERT_UEQ(info.data_offset, DATA_OFFSET);
  ASSERT_UEQ(info.data_size, 10000);
  ASSERT_EQ(info.total_size % ps, 0);
  ASSERT_TRUE(info.total_size >= info.data_offset + info.data_size);
  ASSERT_TRUE(info.total_size < info.data_offset + info.data_size + ps);
  ASSERT_UEQ(info.creator_pid, (uint64_t)test_getpid());
  ASSERT_UEQ(info.creator_start, self_start_ticks());
  ASSERT_EQ(info.creator_alive, 1);
  ASSERT_GT(info.created_ns, 0);
  ASSERT_EQ(info.created, 1);
  ASSERT_EQ(info.readonly, 0);
  ASSERT_STREQ(info.name, name);
  ASSERT_STREQ(info.os_name, os_name_of(name, want, sizeof want));
  ASSERT_UEQ(named_size(name), info.total_size);
#ifndef _WIN32 /* Windows: the mode is a security descriptor (see below) */
  shm_file(name, path, sizeof path);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0600);
  ASSERT_EQ(st.st_uid, geteuid());
#endif
  ASSERT_EQ((uintptr_t)ferry_segment_data(s) % 64, 0);
  ASSERT_TRUE((uint8_t *)ferry_segment_data(s) != NULL);
  close_and_remove(s, name);

  /* custom mode applied exactly, whatever the umask; payload recorded */
#ifndef _WIN32
  old_umask = umask(077);
#endif
  test_name(name, sizeof name, "mode");
  o.mode = 0666;
  o.payload = FERRY_PAYLOAD_CHANNEL;
  s = create_named(name, 1, &o);
#ifndef _WIN32
  umask(old_umask);
#endif
  get_info(s, &info);
  ASSERT_EQ(info.mode, 0666);
  ASSERT_EQ(info.payload, FERRY_PAYLOAD_CHANNEL);
  ASSERT_UEQ(info.data_size, 1);
#ifndef _WIN32
  shm_file(name, path, sizeof path);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0666);
#endif
  /* an opener sees the same recorded fields, also after the creator closed
   * (it keeps the object: a Windows section lives while a handle is open) */
  ASSERT_OK(ferry_segment_open(&r, name, FERRY_RDONLY, 0, NULL));
  ASSERT_OK(ferry_segment_close(s));
  get_info(r, &info);
  ASSERT_EQ(info.mode, 0666);
  ASSERT_EQ(info.payload, FERRY_PAYLOAD_CHANNEL);
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.readonly, 1);
  ASSERT_UEQ(info.creator_pid, (uint64_t)test_getpid());
  close_and_remove(r, name);

  o = opts_init();
  o.mode = 0640;
  o.payload = FERRY_PAYLOAD_POOL;
  test_name(name, sizeof name, "mode2");
  s = create_named(name, 3 * ps, &o);
  get_info(s, &info);
  ASSERT_EQ(info.payload, FERRY_PAYLOAD_POOL);
  ASSERT_EQ(info.mode, 0640);
  ASSERT_UEQ(info.total_size, DATA_OFFSET + 3 * ps);
#ifndef _WIN32
  shm_file(name, path, sizeof path);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0640);
#endif
  close_and_remove(s, name);
}

/* A creator that has exited: info says so, and its data is all there. (On
 * Windows the section would go with the creator's last handle: this process
 * opens it before the creator exits, and reads the info after.) */
static void test_creator_dead_info(void) {
  char name[80];
  const char *args[5];
  ferry_segment *s = NULL;
  ferry_segment_info info;
  long pid;
#ifdef _WIN32
  char go_name[80];
  ferry_segment *go;
#endif
  test_name(name, sizeof name, "gone");
  args[0] = name;
  args[1] = "20000";
  args[2] = "6";
  args[3] = NULL;
#ifdef _WIN32
  test_name(go_name, sizeof go_name, "go");
  go = create_named(go_name, 64, NULL);
  args[3] = go_name;
  args[4] = NULL;
  pid = test_spawn("create-exit", args);
  if (!poll_u32(word(go, 0), 1, test_timeout_ms(30000), 0))
    TEST_FAIL("the creator never made %s", name);
  ASSERT_OK(ferry_segment_open(&s, name, 0, 0, NULL));
  atomic_store(word(go, 1), 1);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  close_and_remove(go, go_name);
#else
  pid = test_spawn("create-exit", args);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_OK(ferry_segment_open(&s, name, 0, 0, NULL));
#endif
  get_info(s, &info);
  ASSERT_UEQ(info.creator_pid, (uint64_t)pid);
  ASSERT_EQ(info.creator_alive, 0);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(s), 20000);
  ASSERT_PATTERN(ferry_segment_data(s), 20000, 6);
  close_and_remove(s, name);
}

/* Data written in one process is seen in another, and back. */
static void test_data_across_processes(void) {
  char name[80], flags_s[16];
  const char *args[6];
  ferry_segment *s;
  const uint64_t size = 256 * 1024 + 17;
  long pid;
  test_name(name, sizeof name, "xproc");
  s = create_named(name, size, NULL);
  fill(ferry_segment_data(s), size, 7);
  snprintf(flags_s, sizeof flags_s, "%u", 0u);
  args[0] = name;
  args[1] = flags_s;
  args[2] = "262161";
  args[3] = "7";
  args[4] = "8";
  args[5] = NULL;
  pid = test_spawn("check", args);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_PATTERN(ferry_segment_data(s), size, 8);
  /* and a read-only opener in another process sees it too */
  snprintf(flags_s, sizeof flags_s, "%u", (unsigned)FERRY_RDONLY);
  args[3] = "8";
  args[4] = "-";
  pid = test_spawn("check", args);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_PATTERN(ferry_segment_data(s), size, 8);
  close_and_remove(s, name);
}

/* ---------------------------------------------------------------------- */
/* The create-or-open race                                                */

#define RACE_ROUNDS 48
#define RACE_PROCS 12

/* Rounds of RACE_PROCS helpers doing open-or-create on one fresh name at
 * once (every other round a file-backed segment): exactly one creates, all
 * succeed and see a complete header, and all of them count in the data.
 * The helpers keep the segment open until this process has looked at it
 * (on Windows a named segment goes with its last handle: a helper that
 * closed early would let a late one create a second segment). */
static void test_create_or_open_race(void) {
  char go_name[80], target[80], path[4096];
  int round, skip_files = 0;
#ifdef _WIN32
  /* Wine's SetEndOfFile grows a file by writing a byte past the new end and
   * cutting it back (server/fd.c, grow_file): an opener racing the creator
   * can see, and map, one byte more than the segment has. Windows sets the
   * size in one step. */
  skip_files = under_wine();
  if (skip_files)
    printf("note: %s: file-backed rounds left out under Wine (its "
           "SetEndOfFile shows a transient size one byte too large)\n",
           "create_or_open_race");
#endif
  for (round = 0; round < RACE_ROUNDS; round++) {
    const int file = round % 2 == 1;
    const char *kind = file ? "file" : "named";
    const unsigned ufl = file ? FERRY_FILE : 0u;
    const char *args[5];
    long pids[RACE_PROCS], bad_pid = 0;
    ferry_segment *go, *s = NULL;
    int i, creators = 0, openers = 0, bad_code = 0, rc;
    uint32_t counted = 0;
    uint64_t seen_size = 0;
    const uint64_t size = 12345 + (uint64_t)round * 4096;
    char size_s[32];
    if (file && skip_files)
      continue;
    test_name(go_name, sizeof go_name, "go");
    test_name(target, sizeof target, "race");
    if (file)
      snprintf(path, sizeof path, "%s/%s", test_tmpdir(), target);
    else
      snprintf(path, sizeof path, "%s", target);
    snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
    go = create_named(go_name, 64, NULL);
    args[0] = go_name;
    args[1] = path;
    args[2] = kind;
    args[3] = size_s;
    args[4] = NULL;
    for (i = 0; i < RACE_PROCS; i++)
      pids[i] = test_spawn("race", args);
    /* every helper is at the barrier: open it */
    if (!poll_u32(word(go, 1), RACE_PROCS, test_timeout_ms(60000), 0))
      TEST_FAIL("round %d: only %u of %d helpers reached the barrier", round,
                (unsigned)atomic_load(word(go, 1)), RACE_PROCS);
    atomic_store(word(go, 0), 1);
    /* every helper has counted itself (a helper that failed never will:
     * its exit code below says why) */
    poll_u32(word(go, 2), RACE_PROCS, test_timeout_ms(60000), 0);
    rc = ferry_segment_open(&s, path, ufl, 0, NULL);
    if (rc == 0) {
      seen_size = ferry_segment_data_size(s);
      counted = atomic_load(word(s, 0));
      ferry_segment_close(s);
    }
    atomic_store(word(go, 3), 1); /* the helpers may close and exit */
    for (i = 0; i < RACE_PROCS; i++) {
      int code = test_wait(pids[i], test_timeout_ms(60000));
      if (code == 10) {
        creators++;
      } else if (code == 11) {
        openers++;
      } else if (!bad_pid) {
        bad_pid = pids[i];
        bad_code = code;
      }
    }
    /* clean up first, so that a failure leaves nothing behind (on Windows,
     * the last close already removed the named ones) */
    ferry_segment_unlink(path, ufl);
    ferry_segment_unlink(go_name, 0);
    ferry_segment_close(go);
    if (bad_pid)
      TEST_FAIL("round %d (%s): helper %ld failed with exit code %d (see its "
                "message above); %d created, %d opened",
                round, kind, bad_pid, bad_code, creators, openers);
    if (creators != 1)
      TEST_FAIL("round %d (%s): %d creators, %d openers", round, kind, creators,
                openers);
    ASSERT_EQ(openers, RACE_PROCS - 1);
    ASSERT_OK(rc);
    ASSERT_UEQ(seen_size, size);
    ASSERT_EQ(counted, RACE_PROCS);
  }
}

/* ---------------------------------------------------------------------- */
/* Objects still being initialised, or left half-made                     */

/* An object that exists but was never sized: the opener waits, then times
 * out, and does not take it over. Then one sized but still all zero. (A
 * Windows section gets its size when it is created, in the same call: only
 * the second case exists there.) */
static void test_open_zero_sized_times_out(void) {
  char name[80];
  ferry_segment *s = (ferry_segment *)&s;
  ferry_segment_opts o = opts_init();
  struct raw r;
  test_name(name, sizeof name, "empty");
#ifndef _WIN32
  {
    char osname[160], path[160];
    struct stat st;
    int fd = shm_open(os_name_of(name, osname, sizeof osname),
                      O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
      TEST_FAIL("shm_open %s: %s", osname, strerror(errno));
    close(fd);
    shm_file(name, path, sizeof path);
    o.timeout_ms = 200;
    ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_ETIMEDOUT);
    ASSERT_TRUE(s == NULL);
    ASSERT_CONTAINS(ferry_errmsg(), name);
    ASSERT_ERR(ferry_segment_open(&s, name, FERRY_RDONLY, 0, &o),
               FERRY_ETIMEDOUT);
    ASSERT_CONTAINS(ferry_errmsg(), name);
    /* open-or-create waits for it too: it does not replace it */
    ASSERT_ERR(ferry_segment_open(&s, name, FERRY_CREATE, 4096, &o),
               FERRY_ETIMEDOUT);
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');
    /* timeout < 0: do not wait at all */
    o.timeout_ms = -1;
    ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_ETIMEDOUT);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_size, 0); /* still the same empty object */
    ASSERT_OK(ferry_segment_unlink(name, 0));
  }
#endif

  /* Sized but all zero, no creator recorded yet: still initialising. */
  raw_create(&r, name, 4096);
  o.timeout_ms = 200;
  s = (ferry_segment *)&s;
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_ETIMEDOUT);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), name);
  ASSERT_ERR(ferry_segment_open(&s, name, FERRY_RDONLY, 0, &o),
             FERRY_ETIMEDOUT);
  ASSERT_CONTAINS(ferry_errmsg(), name);
  /* open-or-create waits for it too: it does not replace it */
  ASSERT_ERR(ferry_segment_open(&s, name, FERRY_CREATE, 4096, &o),
             FERRY_ETIMEDOUT);
  ASSERT_TRUE(ferry_errmsg()[0] != '\0');
  o.timeout_ms = -1;
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_ETIMEDOUT);
  ASSERT_UEQ(named_size(name), 4096); /* still the same object */
  raw_remove(&r, name);
}

/* A header left all-zero by a creator that has died: FERRY_EBADHDR at once,
 * not a wait until the timeout. */
static void test_open_dead_creator(void) {
  char name[80];
  ferry_segment *s = (ferry_segment *)&s;
  ferry_segment_opts o = opts_init();
  struct raw r;
  uint64_t pid, start;
  long child;
  child = test_spawn("exit", NULL);
  ASSERT_EQ(test_wait(child, test_timeout_ms(30000)), 0);
  pid = (uint64_t)child;
  test_name(name, sizeof name, "dead");
  raw_create(&r, name, 4096);
  memcpy(r.map + 64, &pid, sizeof pid);
  /* A long timeout: waiting it out would give FERRY_ETIMEDOUT. */
  o.timeout_ms = test_timeout_ms(120000);
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_EBADHDR);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), "died");
  ASSERT_CONTAINS(ferry_errmsg(), name);
  ASSERT_ERR(ferry_segment_open(&s, name, FERRY_RDONLY, 0, &o), FERRY_EBADHDR);
  ASSERT_ERR(ferry_segment_open(&s, name, FERRY_CREATE, 100, &o),
             FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "died");

  /* A live creator (this process, with its real start time): keep waiting,
   * then time out. */
  pid = (uint64_t)test_getpid();
  start = self_start_ticks();
  memcpy(r.map + 64, &pid, sizeof pid);
  memcpy(r.map + 72, &start, sizeof start);
  o.timeout_ms = 200;
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_ETIMEDOUT);
  ASSERT_CONTAINS(ferry_errmsg(), name);

  /* This pid but another start time: the pid was reused, the creator is
   * gone. */
  start += 12345;
  memcpy(r.map + 72, &start, sizeof start);
  o.timeout_ms = test_timeout_ms(120000);
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "died");
  raw_remove(&r, name);
}

/* ---------------------------------------------------------------------- */
/* Read-only mappings and permissions                                     */

static void test_rdonly_write_faults(void) {
  char name[80], size_s[32];
  const char *args[4];
  ferry_segment *s;
  const uint64_t size = 3 * 4096 + 5;
  long pid;
  int code;
  test_name(name, sizeof name, "rofault");
  s = create_named(name, size, NULL);
  fill(ferry_segment_data(s), size, 10);
  snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
  args[0] = name;
  args[1] = size_s;
  args[2] = "10";
  args[3] = NULL;
  pid = test_spawn("rdonly-write", args);
  code = test_wait(pid, test_timeout_ms(30000));
  if (code != 128 + SIGSEGV)
    TEST_FAIL("read-only writer ended with %d, expected death by SIGSEGV (%d)",
              code, 128 + SIGSEGV);
  /* unchanged, and still writable here */
  ASSERT_PATTERN(ferry_segment_data(s), size, 10);
  fill(ferry_segment_data(s), size, 11);
  ASSERT_PATTERN(ferry_segment_data(s), size, 11);
  close_and_remove(s, name);
}

#define POSIX_USERS                                                            \
  "switches to an unprivileged user (setuid) to check the mode bits against "  \
  "it; on Windows the mode becomes a security descriptor, which "              \
  "security_descriptor_* check"

static void test_permission_denied_named(void) {
#ifdef _WIN32
  test_posix_only(POSIX_USERS);
#else
  char n600[80], n644[80], p600[160], p644[160];
  ferry_segment *a, *b;
  ferry_segment_opts o = opts_init();
  struct stat st;
  pid_t pid;
  if (!test_is_root())
    test_skip("needs root to switch to an unprivileged user");
  test_name(n600, sizeof n600, "perm600");
  test_name(n644, sizeof n644, "perm644");
  shm_file(n600, p600, sizeof p600);
  shm_file(n644, p644, sizeof p644);
  a = create_named(n600, 8192, NULL); /* default mode 0600 */
  fill(ferry_segment_data(a), 8192, 12);
  o.mode = 0644;
  b = create_named(n644, 8192, &o);
  fill(ferry_segment_data(b), 8192, 13);
  ASSERT_EQ(stat("/dev/shm", &st), 0);
  fflush(NULL);
  pid = fork();
  ASSERT_TRUE(pid >= 0);
  if (pid == 0) {
    ferry_segment *s = (ferry_segment *)&s;
    drop_privileges();
    ASSERT_ERR(ferry_segment_open(&s, n600, 0, 0, NULL), FERRY_EACCES);
    ASSERT_TRUE(s == NULL);
    ASSERT_CONTAINS(ferry_errmsg(), p600);
    ASSERT_ERR(ferry_segment_open(&s, n600, FERRY_RDONLY, 0, NULL),
               FERRY_EACCES);
    ASSERT_CONTAINS(ferry_errmsg(), p600);
    /* open-or-create must not turn "exists but forbidden" into anything
     * else */
    ASSERT_ERR(ferry_segment_open(&s, n600, FERRY_CREATE, 100, NULL),
               FERRY_EACCES);
    ASSERT_CONTAINS(ferry_errmsg(), p600);
    /* 0644: reading is allowed, writing is not */
    ASSERT_OK(ferry_segment_open(&s, n644, FERRY_RDONLY, 0, NULL));
    ASSERT_PATTERN(ferry_segment_data(s), 8192, 13);
    ASSERT_OK(ferry_segment_close(s));
    ASSERT_ERR(ferry_segment_open(&s, n644, 0, 0, NULL), FERRY_EACCES);
    ASSERT_CONTAINS(ferry_errmsg(), p644);
    /* /dev/shm is sticky: nobody cannot remove root's segment */
    if (st.st_mode & S_ISVTX) {
      ASSERT_ERR(ferry_segment_unlink(n644, 0), FERRY_EACCES);
      ASSERT_TRUE(ferry_errmsg()[0] != '\0');
    }
    fflush(NULL);
    _exit(0);
  }
  ASSERT_EQ(wait_child(pid), 0);
  /* nothing changed for the owner */
  ASSERT_TRUE(path_exists(p600));
  ASSERT_TRUE(path_exists(p644));
  ASSERT_PATTERN(ferry_segment_data(a), 8192, 12);
  ASSERT_PATTERN(ferry_segment_data(b), 8192, 13);
  ASSERT_OK(ferry_segment_close(a));
  ASSERT_OK(ferry_segment_close(b));
  ASSERT_OK(ferry_segment_unlink(n600, 0));
  ASSERT_OK(ferry_segment_unlink(n644, 0));
#endif
}

static void test_permission_denied_file(void) {
#ifdef _WIN32
  /* No second user without administrator rights: here only the part about
   * this user's own file made read-only, with the read-only attribute (what
   * chmod 0444 and Explorer set on Windows). */
  char ro[4200];
  ferry_segment *s = (ferry_segment *)&s;
  snprintf(ro, sizeof ro, "%s\\ro.seg", test_tmpdir());
  ASSERT_OK(ferry_segment_open(&s, ro, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                               6000, NULL));
  fill(ferry_segment_data(s), 6000, 14);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_TRUE(SetFileAttributesA(ro, FILE_ATTRIBUTE_READONLY));
  { /* does this system enforce the attribute? ask it directly first */
    HANDLE f = CreateFileA(ro, GENERIC_READ | GENERIC_WRITE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                           OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f != INVALID_HANDLE_VALUE) {
      CloseHandle(f);
      ASSERT_OK(ferry_segment_unlink(ro, FERRY_FILE));
      test_skip("this system opens a file with the read-only attribute for "
                "writing (Wine turns the attribute into mode bits, which a "
                "root user on the host ignores)");
    }
  }
  ASSERT_ERR(ferry_segment_open(&s, ro, FERRY_FILE, 0, NULL), FERRY_EACCES);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), ro);
  ASSERT_CONTAINS(ferry_errmsg(), "read-only");
  ASSERT_ERR(ferry_segment_open(&s, ro, FERRY_FILE | FERRY_CREATE, 6000, NULL),
             FERRY_EACCES);
  ASSERT_OK(ferry_segment_open(&s, ro, FERRY_FILE | FERRY_RDONLY, 0, NULL));
  ASSERT_UEQ(ferry_segment_data_size(s), 6000);
  ASSERT_PATTERN(ferry_segment_data(s), 6000, 14);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(ro, FERRY_FILE));
  ASSERT_TRUE(!path_exists(ro));
#else
  char dir[4096], rootfile[4200], ro[4200];
  ferry_segment *r;
  pid_t pid;
  if (!test_is_root())
    test_skip("needs root to switch to an unprivileged user");
  /* a directory the unprivileged child can reach and write */
  ASSERT_EQ(chmod(test_tmpdir(), 0711), 0);
  snprintf(dir, sizeof dir, "%s/shared", test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0777), 0);
  ASSERT_EQ(chmod(dir, 0777), 0);
  snprintf(rootfile, sizeof rootfile, "%s/root.seg", dir);
  snprintf(ro, sizeof ro, "%s/ro.seg", dir);
  ASSERT_OK(ferry_segment_open(&r, rootfile,
                               FERRY_FILE | FERRY_CREATE | FERRY_EXCL, 4096,
                               NULL)); /* root's, mode 0600 */
  ASSERT_OK(ferry_segment_close(r));
  fflush(NULL);
  pid = fork();
  ASSERT_TRUE(pid >= 0);
  if (pid == 0) {
    ferry_segment *s = (ferry_segment *)&s;
    struct stat st;
    drop_privileges();
    /* root's 0600 file: no access at all */
    ASSERT_ERR(
        ferry_segment_open(&s, rootfile, FERRY_FILE | FERRY_RDONLY, 0, NULL),
        FERRY_EACCES);
    ASSERT_TRUE(s == NULL);
    ASSERT_CONTAINS(ferry_errmsg(), rootfile);
    /* its own file, made read-only */
    ASSERT_OK(ferry_segment_open(&s, ro, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                                 6000, NULL));
    fill(ferry_segment_data(s), 6000, 14);
    ASSERT_OK(ferry_segment_close(s));
    ASSERT_EQ(stat(ro, &st), 0);
    ASSERT_EQ(st.st_uid, NOBODY);
    ASSERT_EQ(st.st_mode & 07777, 0600);
    ASSERT_EQ(chmod(ro, 0444), 0);
    ASSERT_ERR(ferry_segment_open(&s, ro, FERRY_FILE, 0, NULL), FERRY_EACCES);
    ASSERT_TRUE(s == NULL);
    ASSERT_CONTAINS(ferry_errmsg(), ro);
    ASSERT_ERR(
        ferry_segment_open(&s, ro, FERRY_FILE | FERRY_CREATE, 6000, NULL),
        FERRY_EACCES);
    ASSERT_OK(ferry_segment_open(&s, ro, FERRY_FILE | FERRY_RDONLY, 0, NULL));
    ASSERT_UEQ(ferry_segment_data_size(s), 6000);
    ASSERT_PATTERN(ferry_segment_data(s), 6000, 14);
    ASSERT_OK(ferry_segment_close(s));
    ASSERT_OK(ferry_segment_unlink(ro, FERRY_FILE));
    ASSERT_TRUE(!path_exists(ro));
    fflush(NULL);
    _exit(0);
  }
  ASSERT_EQ(wait_child(pid), 0);
  ASSERT_TRUE(!path_exists(ro));
  ASSERT_OK(ferry_segment_unlink(rootfile, FERRY_FILE));
  ASSERT_EQ(rmdir(dir), 0);
  ASSERT_EQ(chmod(test_tmpdir(), 0700), 0);
#endif
}

/* ---------------------------------------------------------------------- */
/* Anonymous segments                                                     */

static long spawn_handle(ferry_handle h, const char *mode, uint64_t size,
                         unsigned seed, unsigned newseed) {
  char fd_s[32], size_s[32], seed_s[16], new_s[16];
  const char *args[6];
  snprintf(fd_s, sizeof fd_s, "%lld", (long long)h);
  snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
  snprintf(seed_s, sizeof seed_s, "%u", seed);
  snprintf(new_s, sizeof new_s, "%u", newseed);
  args[0] = fd_s;
  args[1] = mode;
  args[2] = size_s;
  args[3] = seed_s;
  args[4] = new_s;
  args[5] = NULL;
  return test_spawn("handle", args);
}

static void test_anon_inherit(void) {
  ferry_segment *s = NULL;
  ferry_segment_opts o = opts_init();
  ferry_segment_info info;
  const uint64_t size = 1024 * 1024 + 3;
  ferry_handle h;
  long pid;
  int code;
  o.flags = FERRY_SEG_INHERIT;
  ASSERT_OK(ferry_segment_create_anon(&s, size, &o));
  get_info(s, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_ANON);
  ASSERT_EQ(info.created, 1);
  ASSERT_UEQ(info.data_size, size);
  ASSERT_EQ(info.total_size % page_size(), 0);
  ASSERT_EQ((uintptr_t)ferry_segment_data(s) % 64, 0);
  h = ferry_segment_handle(s);
  ASSERT_TRUE(h >= 0);
  ASSERT_TRUE(handle_inherited(h));
  fill(ferry_segment_data(s), size, 15);
  pid = spawn_handle(h, "rw", size, 15, 16);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_PATTERN(ferry_segment_data(s), size, 16);
  /* read-only through the handle: reads work, a write faults */
  pid = spawn_handle(h, "ro", size, 16, 0);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  pid = spawn_handle(h, "ro-write", size, 16, 0);
  code = test_wait(pid, test_timeout_ms(30000));
  if (code != 128 + SIGSEGV)
    TEST_FAIL("read-only writer ended with %d, expected death by SIGSEGV (%d)",
              code, 128 + SIGSEGV);
  ASSERT_PATTERN(ferry_segment_data(s), size, 16);
  ASSERT_OK(ferry_segment_close(s));
}

static void test_anon_not_inherited(void) {
  ferry_segment *s = NULL;
  ferry_handle h;
  long pid;
  ASSERT_OK(ferry_segment_create_anon(&s, 4096, NULL));
  h = ferry_segment_handle(s);
  ASSERT_TRUE(h >= 0);
  ASSERT_TRUE(!handle_inherited(h));
  fill(ferry_segment_data(s), 4096, 17);
  pid = spawn_handle(h, "absent", 4096, 17, 0);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_PATTERN(ferry_segment_data(s), 4096, 17);
  ASSERT_OK(ferry_segment_close(s));
}

/* The same process opens its anonymous segment again from the handle. */
static void test_anon_open_handle_local(void) {
  ferry_segment *s = NULL, *t = NULL;
  ferry_segment_info info;
  ferry_handle rofd;
  ASSERT_OK(ferry_segment_create_anon(&s, 10000, NULL));
  fill(ferry_segment_data(s), 10000, 18);
  ASSERT_OK(ferry_segment_open_handle(&t, ferry_segment_handle(s), 0, NULL));
  get_info(t, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_ANON);
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.readonly, 0);
  ASSERT_TRUE(ferry_segment_handle(t) != ferry_segment_handle(s)); /* a dup */
  ASSERT_PATTERN(ferry_segment_data(t), 10000, 18);
  fill(ferry_segment_data(t), 10000, 19);
  ASSERT_PATTERN(ferry_segment_data(s), 10000, 19);
  ASSERT_OK(ferry_segment_close(t));
  /* the caller keeps its handle: s still works after t closed */
  ASSERT_TRUE(handle_valid(ferry_segment_handle(s)));
  ASSERT_OK(ferry_segment_open_handle(&t, ferry_segment_handle(s), FERRY_RDONLY,
                                      NULL));
  get_info(t, &info);
  ASSERT_EQ(info.readonly, 1);
  ASSERT_PATTERN(ferry_segment_data(t), 10000, 19);
  ASSERT_OK(ferry_segment_close(t));
  /* a read-only descriptor (handle) cannot be opened read-write */
#ifdef _WIN32
  {
    HANDLE ro = NULL;
    ASSERT_TRUE(DuplicateHandle(
        GetCurrentProcess(), (HANDLE)ferry_segment_handle(s),
        GetCurrentProcess(), &ro, SECTION_QUERY | FILE_MAP_READ, FALSE, 0));
    rofd = (ferry_handle)ro;
  }
#else
  {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d",
             (int)ferry_segment_handle(s));
    rofd = open(proc, O_RDONLY | O_CLOEXEC);
  }
#endif
  ASSERT_TRUE(rofd >= 0);
  t = (ferry_segment *)&t;
  ASSERT_ERR(ferry_segment_open_handle(&t, rofd, 0, NULL), FERRY_EACCES);
  ASSERT_TRUE(t == NULL);
  ASSERT_TRUE(ferry_errmsg()[0] != '\0');
  ASSERT_OK(ferry_segment_open_handle(&t, rofd, FERRY_RDONLY, NULL));
  ASSERT_PATTERN(ferry_segment_data(t), 10000, 19);
  ASSERT_OK(ferry_segment_close(t));
#ifdef _WIN32
  ASSERT_TRUE(CloseHandle((HANDLE)rofd));
#else
  close((int)rofd);
#endif
  ASSERT_OK(ferry_segment_close(s));
}

static void test_anon_sealed(void) {
#ifdef _WIN32
  test_posix_only("memfd seals (F_SEAL_SHRINK/GROW/SEAL) are a Linux "
                  "facility; an unnamed Windows section cannot change its "
                  "size by construction");
#else
  ferry_segment *s = NULL;
  ferry_segment_info info;
  int fd, seals;
  struct stat st;
  ASSERT_OK(ferry_segment_create_anon(&s, 50000, NULL));
  get_info(s, &info);
  fd = (int)ferry_segment_handle(s);
  seals = fcntl(fd, F_GET_SEALS);
  ASSERT_TRUE(seals >= 0);
  ASSERT_TRUE((seals & F_SEAL_SHRINK) && (seals & F_SEAL_GROW) &&
              (seals & F_SEAL_SEAL));
  errno = 0;
  ASSERT_EQ(ftruncate(fd, 4096), -1);
  ASSERT_EQ(errno, EPERM);
  errno = 0;
  ASSERT_EQ(ftruncate(fd, (off_t)info.total_size * 2), -1);
  ASSERT_EQ(errno, EPERM);
  errno = 0;
  ASSERT_EQ(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
  ASSERT_EQ(errno, EPERM);
  ASSERT_EQ(fstat(fd, &st), 0);
  ASSERT_UEQ((uint64_t)st.st_size, info.total_size);
  ASSERT_TRUE((uint64_t)st.st_blocks * 512 >= info.total_size); /* reserved */
  memset(ferry_segment_data(s), 0x77, 50000);
  ASSERT_OK(ferry_segment_close(s));
#endif
}

/* A running process that did not inherit the segment receives its handle:
 * over a Unix socket with SCM_RIGHTS, or on Windows through DuplicateHandle
 * into that process (the value is then passed in a named segment). */
static void test_anon_scm_rights(void) {
#ifdef _WIN32
  char go_name[80], size_s[32], value[32];
  const char *args[5];
  ferry_segment *s = NULL, *go;
  const uint64_t size = 70000;
  HANDLE proc, remote = NULL;
  long pid;
  ASSERT_OK(ferry_segment_create_anon(&s, size, NULL)); /* not inheritable */
  fill(ferry_segment_data(s), size, 20);
  test_name(go_name, sizeof go_name, "go");
  go = create_named(go_name, 256, NULL);
  snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
  args[0] = go_name;
  args[1] = size_s;
  args[2] = "20";
  args[3] = "21";
  args[4] = NULL;
  pid = test_spawn("dup-recv", args);
  if (!poll_u32(word(go, 0), 1, test_timeout_ms(30000), 0))
    TEST_FAIL("the helper never started");
  proc = OpenProcess(PROCESS_DUP_HANDLE, FALSE, (DWORD)pid);
  ASSERT_TRUE(proc != NULL);
  ASSERT_TRUE(DuplicateHandle(GetCurrentProcess(),
                              (HANDLE)ferry_segment_handle(s), proc, &remote, 0,
                              FALSE, DUPLICATE_SAME_ACCESS));
  CloseHandle(proc);
  snprintf(value, sizeof value, "%lld", (long long)(intptr_t)remote);
  memcpy((char *)ferry_segment_data(go) + 64, value, strlen(value) + 1);
  atomic_store(word(go, 1), 1);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_PATTERN(ferry_segment_data(s), size, 21);
  close_and_remove(go, go_name);
  ASSERT_OK(ferry_segment_close(s));
#else
  char sockpath[4200], size_s[32];
  const char *args[5];
  struct sockaddr_un addr;
  struct pollfd pfd;
  struct msghdr msg;
  struct iovec iov;
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } ctl;
  struct cmsghdr *c;
  ferry_segment *s = NULL;
  const uint64_t size = 70000;
  char byte = 'x';
  int lfd, cfd, fd;
  long pid;
  ASSERT_OK(ferry_segment_create_anon(&s, size, NULL)); /* not inheritable */
  fill(ferry_segment_data(s), size, 20);
  snprintf(sockpath, sizeof sockpath, "%s/fd.sock", test_tmpdir());
  if (strlen(sockpath) >= sizeof addr.sun_path)
    test_skip("socket path %s too long", sockpath);
  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_TRUE(lfd >= 0);
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, sockpath, strlen(sockpath) + 1);
  ASSERT_EQ(bind(lfd, (struct sockaddr *)&addr, sizeof addr), 0);
  ASSERT_EQ(listen(lfd, 1), 0);
  snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
  args[0] = sockpath;
  args[1] = size_s;
  args[2] = "20";
  args[3] = "21";
  args[4] = NULL;
  pid = test_spawn("scm-recv", args);
  pfd.fd = lfd;
  pfd.events = POLLIN;
  pfd.revents = 0;
  if (poll(&pfd, 1, (int)test_timeout_ms(30000)) != 1)
    TEST_FAIL("the helper never connected");
  cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  ASSERT_TRUE(cfd >= 0);
  ASSERT_EQ(unlink(sockpath), 0); /* connected: the name is not needed */
  fd = (int)ferry_segment_handle(s);
  memset(&msg, 0, sizeof msg);
  memset(&ctl, 0, sizeof ctl);
  iov.iov_base = &byte;
  iov.iov_len = 1;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctl.buf;
  msg.msg_controllen = sizeof ctl.buf;
  c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ASSERT_EQ(sendmsg(cfd, &msg, 0), 1);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_PATTERN(ferry_segment_data(s), size, 21);
  close(cfd);
  close(lfd);
  ASSERT_OK(ferry_segment_close(s));
#endif
}

/* A named segment's handle opens after the name is gone: the process still
 * has the object, and ferry_segment_unlink promises holders keep it. */
static void test_open_handle_after_unlink(void) {
  char name[80];
  ferry_segment *s, *t = NULL;
  ferry_segment_info info;
  test_name(name, sizeof name, "hunlink");
  s = create_named(name, 8000, NULL);
  fill(ferry_segment_data(s), 8000, 22);
  ASSERT_OK(ferry_segment_open_handle(&t, ferry_segment_handle(s), 0, NULL));
  get_info(t, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_NAMED);
  ASSERT_STREQ(info.name, name);
  ASSERT_PATTERN(ferry_segment_data(t), 8000, 22);
  ASSERT_OK(ferry_segment_close(t));
  ASSERT_OK(ferry_segment_unlink(name, 0));
  t = NULL;
  ASSERT_OK(ferry_segment_open_handle(&t, ferry_segment_handle(s), 0, NULL));
  ASSERT_PATTERN(ferry_segment_data(t), 8000, 22);
  ASSERT_OK(ferry_segment_close(t));
  ASSERT_OK(ferry_segment_close(s));
}

/* ---------------------------------------------------------------------- */
/* File-backed segments                                                   */

static void test_file_persistence(void) {
  char path[4200], flags_s[16];
  const char *args[6];
  ferry_segment *s = NULL;
  ferry_segment_info info;
  struct stat st;
  const uint64_t size = 100000;
  long pid;
  snprintf(path, sizeof path, "%s/persist.seg", test_tmpdir());
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                               size, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_FILE);
  ASSERT_EQ(info.created, 1);
  ASSERT_STREQ(info.name, "persist.seg");
  ASSERT_STREQ(info.os_name, path);
  ASSERT_EQ(info.mode, 0600);
  ASSERT_EQ(info.seg_flags & FERRY_SEG_SPARSE, 0);
  ASSERT_EQ(stat(path, &st), 0);
#ifndef _WIN32 /* Windows: the mode is a security descriptor */
  ASSERT_EQ(st.st_mode & 07777, 0600);
#endif
  ASSERT_TRUE(S_ISREG(st.st_mode));
  ASSERT_UEQ(file_size(path), info.total_size);
  fill(ferry_segment_data(s), size, 23);
  ASSERT_OK(ferry_segment_close(s));
  /* exclusive create of the existing file */
  s = (ferry_segment *)&s;
  ASSERT_ERR(ferry_segment_open(
                 &s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL, size, NULL),
             FERRY_EEXIST);
  ASSERT_TRUE(s == NULL);
  /* another process: checks and changes it */
  snprintf(flags_s, sizeof flags_s, "%u", (unsigned)FERRY_FILE);
  args[0] = path;
  args[1] = flags_s;
  args[2] = "100000";
  args[3] = "23";
  args[4] = "24";
  args[5] = NULL;
  pid = test_spawn("check", args);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  /* re-opened afterwards: the change persisted */
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE, 0, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.kind, FERRY_KIND_FILE);
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_PATTERN(ferry_segment_data(s), size, 24);
  ASSERT_OK(ferry_segment_close(s));
  /* open-or-create opens the existing file */
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE, 5, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_OK(ferry_segment_close(s));
  /* a file-backed segment is not a named one */
  ASSERT_ERR(ferry_segment_open(&s, "persist.seg", 0, 0, NULL), FERRY_ENOENT);
  ASSERT_OK(ferry_segment_unlink(path, FERRY_FILE));
  ASSERT_TRUE(!path_exists(path));
  ASSERT_ERR(ferry_segment_unlink(path, FERRY_FILE), FERRY_ENOENT);
  ASSERT_ERR(ferry_segment_open(&s, path, FERRY_FILE, 0, NULL), FERRY_ENOENT);
  ASSERT_CONTAINS(ferry_errmsg(), path);
}

static void test_file_over_4gib(void) {
  char path[4200], size_s[32];
  const char *args[3];
  ferry_segment *s = NULL;
  ferry_segment_opts o = opts_init();
  ferry_segment_info info;
  const uint64_t size = 5 * GIB + 123;
  volatile uint8_t *d;
  long pid;
  if (sizeof(void *) < 8)
    test_skip("a 32-bit process cannot map 5 GiB at once");
  snprintf(path, sizeof path, "%s/big.seg", test_tmpdir());
  o.flags = FERRY_SEG_SPARSE;
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                               size, &o));
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  get_info(s, &info);
  ASSERT_UEQ(info.data_size, size);
  ASSERT_TRUE(info.total_size > 4 * GIB);
  ASSERT_TRUE(info.total_size >= info.data_offset + size);
  ASSERT_EQ(info.total_size % page_size(), 0);
  ASSERT_NE(info.seg_flags & FERRY_SEG_SPARSE, 0);
  d = (volatile uint8_t *)ferry_segment_data(s);
  d[0] = 0xa1;
  d[4 * GIB + 1] = 0xb2;
  d[size - 1] = 0xc3;
  ASSERT_UEQ(file_size(path), info.total_size);
  /* sparse: nowhere near 5 GiB of blocks */
  ASSERT_TRUE(file_allocated(path) < GIB);
  snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
  args[0] = path;
  args[1] = size_s;
  args[2] = NULL;
  pid = test_spawn("check-big", args);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(60000)), 0);
  ASSERT_EQ(d[4 * GIB + 2], 0xd4);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(path, FERRY_FILE));
  ASSERT_TRUE(!path_exists(path));
}

static void test_file_reserved(void) {
  char path[4200];
  ferry_segment *s = NULL;
  ferry_segment_info info;
  uint64_t allocated;
  snprintf(path, sizeof path, "%s/reserved.seg", test_tmpdir());
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                               64 * MIB, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.seg_flags & FERRY_SEG_SPARSE, 0);
  ASSERT_UEQ(file_size(path), info.total_size);
  allocated = file_allocated(path);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(path, FERRY_FILE));
  if (allocated < 64 * MIB) {
#ifdef _WIN32
    if (under_wine())
      test_skip("Wine extends a file with ftruncate(), which leaves it sparse "
                "on the host (and setting FileAllocationInfo fails there), "
                "where NTFS allocates every cluster: %s got %llu bytes "
                "allocated",
                path, (unsigned long long)allocated);
#endif
    TEST_FAIL("%s has %llu bytes of blocks, expected at least 64 MiB reserved",
              path, (unsigned long long)allocated);
  }
}

/* ---------------------------------------------------------------------- */
/* Reservation and mapping options                                        */

static void test_named_reserves(void) {
#ifdef _WIN32
  test_posix_only("a Windows section reserves commit charge, which shows "
                  "only system-wide (GetPerformanceInfo), where every other "
                  "process moves it too; the commit limit itself is checked "
                  "by enospc.c");
#else
  char name[80], path[160];
  ferry_segment *s;
  ferry_segment_info info;
  struct stat st;
  test_name(name, sizeof name, "reserve");
  shm_file(name, path, sizeof path);
  s = create_named(name, 32 * MIB, NULL);
  get_info(s, &info);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_UEQ((uint64_t)st.st_size, info.total_size);
  /* nothing touched yet, and still all of it allocated */
  if ((uint64_t)st.st_blocks * 512 < 32 * MIB)
    TEST_FAIL("%s has %llu bytes of blocks, expected at least 32 MiB reserved",
              path, (unsigned long long)st.st_blocks * 512);
  close_and_remove(s, name);
#endif
}

#ifdef _WIN32
/* 1 when every page of [P, P + LEN) is locked in this process's working set
 * (QueryWorkingSetEx). */
static int pages_locked(const void *p, uint64_t len) {
  uint64_t off;
  for (off = 0; off < len; off += page_size()) {
    PSAPI_WORKING_SET_EX_INFORMATION wi;
    memset(&wi, 0, sizeof wi);
    wi.VirtualAddress = (PVOID)((const uint8_t *)p + off);
    if (!QueryWorkingSetEx(GetCurrentProcess(), &wi, sizeof wi))
      TEST_FAIL("QueryWorkingSetEx: error %lu", (unsigned long)GetLastError());
    if (!wi.VirtualAttributes.Valid || !wi.VirtualAttributes.Locked)
      return 0;
  }
  return 1;
}
#else
/* VmLck of this process, in bytes. */
static uint64_t locked_bytes(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long kb = 0;
  ASSERT_TRUE(f != NULL);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmLck: %llu kB", &kb) == 1)
      break;
  fclose(f);
  return (uint64_t)kb * 1024;
}
#endif

static void test_prefault_and_mlock(void) {
  char name[80];
  ferry_segment *s, *t = NULL;
  ferry_segment_opts o = opts_init();
  int rc;
#ifndef _WIN32
  uint64_t before;
#endif
  test_name(name, sizeof name, "prefault");
  o.flags = FERRY_SEG_PREFAULT;
  s = create_named(name, 4 * MIB, &o);
  memset(ferry_segment_data(s), 0x3c, 4 * MIB);
  ASSERT_OK(ferry_segment_open(&t, name, 0, 0, &o));
  ASSERT_EQ(((uint8_t *)ferry_segment_data(t))[4 * MIB - 1], 0x3c);
  ASSERT_OK(ferry_segment_close(t));
  ASSERT_OK(ferry_segment_open(&t, name, FERRY_RDONLY, 0, &o));
  ASSERT_EQ(((uint8_t *)ferry_segment_data(t))[0], 0x3c);
  ASSERT_OK(ferry_segment_close(t));
  close_and_remove(s, name);

  test_name(name, sizeof name, "mlock");
  o.flags = FERRY_SEG_MLOCK | FERRY_SEG_PREFAULT;
#ifdef _WIN32
  /* A process locks at most its minimum working set (200 KiB by default):
   * make room for the two 1 MiB mappings below plus the header pages. */
  ASSERT_TRUE(
      SetProcessWorkingSetSize(GetCurrentProcess(), 16 * MIB, 64 * MIB));
  rc = ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, MIB, &o);
  ASSERT_OK(rc);
  /* Wine's QueryWorkingSetEx reports no page as locked (nor resident) */
  if (!under_wine())
    ASSERT_TRUE(pages_locked(ferry_segment_data(s), MIB));
  memset(ferry_segment_data(s), 0x4d, MIB);
  o.flags = FERRY_SEG_MLOCK;
  ASSERT_OK(ferry_segment_open(&t, name, 0, 0, &o));
  ASSERT_EQ(((uint8_t *)ferry_segment_data(t))[MIB - 1], 0x4d);
  if (!under_wine())
    ASSERT_TRUE(pages_locked(ferry_segment_data(t), MIB));
#else
  before = locked_bytes();
  rc = ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, MIB, &o);
  if (!test_is_root() && rc != 0) {
    /* the memlock limit may forbid it: then say so, and leave nothing */
    if (rc != FERRY_ENOMEM && rc != FERRY_EACCES)
      TEST_FAIL("mlock create: %s: %s", ferry_err_name(rc), ferry_errmsg());
    ASSERT_CONTAINS(ferry_errmsg(), "RLIMIT_MEMLOCK");
    ASSERT_ERR(ferry_segment_open(&t, name, 0, 0, NULL), FERRY_ENOENT);
    test_skip("not root and the memlock limit forbids 1 MiB");
  }
  ASSERT_OK(rc);
  if (!UNDER_ASAN)
    ASSERT_TRUE(locked_bytes() >= before + MIB);
  memset(ferry_segment_data(s), 0x4d, MIB);
  o.flags = FERRY_SEG_MLOCK;
  ASSERT_OK(ferry_segment_open(&t, name, 0, 0, &o));
  ASSERT_EQ(((uint8_t *)ferry_segment_data(t))[MIB - 1], 0x4d);
  if (!UNDER_ASAN)
    ASSERT_TRUE(locked_bytes() >= before + 2 * MIB);
#endif
  ASSERT_OK(ferry_segment_close(t));
  close_and_remove(s, name);
}

static void test_hugepages(void) {
  char name[80], path[4200];
  ferry_segment *s = NULL, *t = NULL;
  ferry_segment_opts o = opts_init();
  ferry_segment_info info;
  const uint64_t size = 3 * MIB;
  int rc;
  /* named, strict: works, or says why not and leaves nothing */
  test_name(name, sizeof name, "huge");
  o.flags = FERRY_SEG_HUGEPAGES;
  rc = ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, size, &o);
  if (rc == 0) {
    get_info(s, &info);
    ASSERT_NE(info.seg_flags & FERRY_SEG_HUGEPAGES, 0);
    memset(ferry_segment_data(s), 1, size);
    close_and_remove(s, name);
  } else {
    ASSERT_ERR(rc, FERRY_ENOTSUP);
    ASSERT_TRUE(s == NULL);
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');
    ASSERT_ERR(ferry_segment_open(&t, name, 0, 0, NULL), FERRY_ENOENT);
  }
  /* named, try: always works */
  test_name(name, sizeof name, "hugetry");
  o.flags = FERRY_SEG_HUGEPAGES_TRY;
  s = create_named(name, size, &o);
  memset(ferry_segment_data(s), 2, size);
  ASSERT_OK(ferry_segment_open(&t, name, 0, 0, NULL));
  ASSERT_EQ(((uint8_t *)ferry_segment_data(t))[size - 1], 2);
  ASSERT_OK(ferry_segment_close(t));
  close_and_remove(s, name);
  /* anonymous */
  o.flags = FERRY_SEG_HUGEPAGES;
  s = NULL;
  rc = ferry_segment_create_anon(&s, size, &o);
  if (rc == 0) {
    get_info(s, &info);
    ASSERT_NE(info.seg_flags & FERRY_SEG_HUGEPAGES, 0);
    memset(ferry_segment_data(s), 3, size);
    ASSERT_OK(ferry_segment_close(s));
  } else {
    ASSERT_ERR(rc, FERRY_ENOTSUP);
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');
  }
  o.flags = FERRY_SEG_HUGEPAGES_TRY;
  ASSERT_OK(ferry_segment_create_anon(&s, size, &o));
  memset(ferry_segment_data(s), 4, size);
  ASSERT_OK(ferry_segment_close(s));
  /* file-backed: strict is not supported, try falls back */
  snprintf(path, sizeof path, "%s/huge.seg", test_tmpdir());
  o.flags = FERRY_SEG_HUGEPAGES;
  s = NULL;
  rc = ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                          size, &o);
  if (rc == 0) {
    ASSERT_OK(ferry_segment_close(s));
    ASSERT_OK(ferry_segment_unlink(path, FERRY_FILE));
  } else {
    ASSERT_ERR(rc, FERRY_ENOTSUP);
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');
    ASSERT_TRUE(!path_exists(path));
  }
  o.flags = FERRY_SEG_HUGEPAGES_TRY;
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                               size, &o));
  memset(ferry_segment_data(s), 5, size);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(path, FERRY_FILE));
}

/* ---------------------------------------------------------------------- */
/* Size and header checks against the real object                         */

static void test_size_and_header_checks(void) {
  char a[80], b[80], c[80];
  ferry_segment *s = (ferry_segment *)&s, *orig;
  ferry_segment_info info;
  struct raw rb, rc;
  uint8_t *img;
  uint64_t total;
  test_name(a, sizeof a, "orig");
  test_name(b, sizeof b, "copy");
  test_name(c, sizeof c, "corrupt");
  orig = create_named(a, 10000, NULL);
  fill(ferry_segment_data(orig), 10000, 25);
  get_info(orig, &info);
  total = info.total_size;
  /* A's whole object, as any process that maps it sees it */
  img = (uint8_t *)malloc((size_t)total);
  ASSERT_TRUE(img != NULL);
  memcpy(img, (uint8_t *)ferry_segment_data(orig) - info.data_offset,
         (size_t)total);

  /* B: a byte-for-byte copy of A under another name */
  raw_create(&rb, b, total);
  memcpy(rb.map, img, (size_t)total);
  s = (ferry_segment *)&s;
  ASSERT_ERR(ferry_segment_open(&s, b, 0, 0, NULL), FERRY_EBADHDR);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), a); /* the header names A */
  ASSERT_ERR(ferry_segment_open(&s, b, FERRY_CREATE, 10000, NULL),
             FERRY_EBADHDR);

  /* C: a copy of A with a corrupted immutable field, then a future major
   * version */
  raw_create(&rc, c, total);
  memcpy(rc.map, img, (size_t)total);
  memcpy(rc.map + 104, c, strlen(c) + 1 <= 64 ? strlen(c) + 1 : 64);
  rc.map[96] = (uint8_t)strlen(c); /* name_len */
  ASSERT_ERR(ferry_segment_open(&s, c, 0, 0, NULL), FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "checksum");
  rc.map[12] = 2; /* version_major 2 */
  ASSERT_ERR(ferry_segment_open(&s, c, 0, 0, NULL), FERRY_EVERSION);
  ASSERT_TRUE(ferry_errmsg()[0] != '\0');
  memcpy(rc.map, "NOTFERRY", 8);
  ASSERT_ERR(ferry_segment_open(&s, c, 0, 0, NULL), FERRY_EBADHDR);
  raw_remove(&rb, b);
  raw_remove(&rc, c);

#ifdef _WIN32
  /* A section's size is fixed at creation and whole pages, the header
   * page at least: A changed size is a new section under A's name holding
   * A's image, one page longer, then one page shorter. (No section ends
   * inside the header page, or is empty: those cases are POSIX only.) */
  close_and_remove(orig, a);
  {
    const uint64_t sizes[2] = {total + 4096, total - 4096};
    int k;
    for (k = 0; k < 2; k++) {
      struct raw ra;
      raw_create(&ra, a, sizes[k]);
      memcpy(ra.map, img, (size_t)(sizes[k] < total ? sizes[k] : total));
      ASSERT_ERR(ferry_segment_open(&s, a, 0, 0, NULL), FERRY_ESIZE);
      ASSERT_TRUE(s == NULL);
      ASSERT_CONTAINS(ferry_errmsg(), a);
      ASSERT_ERR(ferry_segment_open(&s, a, FERRY_RDONLY, 0, NULL), FERRY_ESIZE);
      ASSERT_ERR(ferry_segment_open(&s, a, FERRY_CREATE, 10000, NULL),
                 FERRY_ESIZE);
      raw_remove(&ra, a);
    }
  }
#else
  {
    char pa[160];
    ferry_segment_opts o = opts_init();
    ASSERT_OK(ferry_segment_close(orig));
    shm_file(a, pa, sizeof pa);
    /* A grown behind ferry's back */
    ASSERT_EQ(truncate(pa, (off_t)(total + 4096)), 0);
    ASSERT_ERR(ferry_segment_open(&s, a, 0, 0, NULL), FERRY_ESIZE);
    ASSERT_TRUE(s == NULL);
    ASSERT_CONTAINS(ferry_errmsg(), a);
    ASSERT_ERR(ferry_segment_open(&s, a, FERRY_RDONLY, 0, NULL), FERRY_ESIZE);
    /* A shrunk to cut off part of the data (the header intact) */
    ASSERT_EQ(truncate(pa, (off_t)(total - 4096)), 0);
    ASSERT_ERR(ferry_segment_open(&s, a, 0, 0, NULL), FERRY_ESIZE);
    ASSERT_CONTAINS(ferry_errmsg(), a);
    /* A shrunk below its header */
    ASSERT_EQ(truncate(pa, 100), 0);
    ASSERT_ERR(ferry_segment_open(&s, a, 0, 0, NULL), FERRY_ESIZE);
    ASSERT_CONTAINS(ferry_errmsg(), a);
    ASSERT_ERR(ferry_segment_open(&s, a, FERRY_CREATE, 10000, NULL),
               FERRY_ESIZE);
    /* A cut to nothing: looks like a creator that has not sized it yet */
    ASSERT_EQ(truncate(pa, 0), 0);
    o.timeout_ms = 200;
    ASSERT_ERR(ferry_segment_open(&s, a, 0, 0, &o), FERRY_ETIMEDOUT);
    ASSERT_OK(ferry_segment_unlink(a, 0));
  }
#endif
  free(img);
  ASSERT_TRUE(!named_exists(a) && !named_exists(b) && !named_exists(c));
}

/* ---------------------------------------------------------------------- */
/* Unlink                                                                 */

/* Unlink while another process has the segment open. POSIX: the name goes
 * at once, the holders keep their mappings, and the name is free for a new
 * segment. Windows: a section has no name to remove; unlink only checks that
 * it exists, the segment stays (and opens) while a handle is open, and goes
 * with the last one, which frees the name. */
static void test_unlink(void) {
  char name[80];
  const char *args[2];
  ferry_segment *s, *t = (ferry_segment *)&t;
  const uint64_t size = 64 * 1024;
  long pid;
  test_name(name, sizeof name, "unlink");
  s = create_named(name, size, NULL);
  args[0] = name;
  args[1] = NULL;
  pid = test_spawn("hold", args);
  if (!poll_u32(word(s, 0), 1, test_timeout_ms(30000), 0))
    TEST_FAIL("the helper never opened the segment");
  ASSERT_OK(ferry_segment_unlink(name, 0));
#ifdef _WIN32
  ASSERT_TRUE(named_exists(name));
  ASSERT_OK(ferry_segment_open(&t, name, 0, 0, NULL));
  atomic_store(word(t, 3), 7); /* the same object */
  ASSERT_EQ(atomic_load(word(s, 3)), 7);
  ASSERT_OK(ferry_segment_close(t));
  ASSERT_OK(ferry_segment_unlink(name, 0));
  t = (ferry_segment *)&t;
  ASSERT_ERR(
      ferry_segment_open(&t, name, FERRY_CREATE | FERRY_EXCL, size, NULL),
      FERRY_EEXIST);
  ASSERT_TRUE(t == NULL);
#else
  ASSERT_TRUE(!named_exists(name));
  ASSERT_ERR(ferry_segment_open(&t, name, 0, 0, NULL), FERRY_ENOENT);
  ASSERT_TRUE(t == NULL);
  ASSERT_ERR(ferry_segment_unlink(name, 0), FERRY_ENOENT);
  ASSERT_CONTAINS(ferry_errmsg(), name);
#endif
  /* both mappings still work, across processes */
  fill((uint8_t *)ferry_segment_data(s) + 64, size - 64, 9);
  atomic_store(word(s, 1), 1);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_EQ(atomic_load(word(s, 2)), 0xbeef);
#ifdef _WIN32
  /* the helper has exited: this is the last handle */
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_TRUE(!named_exists(name));
  ASSERT_ERR(ferry_segment_open(&t, name, 0, 0, NULL), FERRY_ENOENT);
  ASSERT_TRUE(t == NULL);
  ASSERT_ERR(ferry_segment_unlink(name, 0), FERRY_ENOENT);
  ASSERT_CONTAINS(ferry_errmsg(), name);
  /* the name is free again, for a new and separate segment */
  ASSERT_OK(
      ferry_segment_open(&t, name, FERRY_CREATE | FERRY_EXCL, size, NULL));
  ASSERT_EQ(atomic_load(word(t, 2)), 0);
  ASSERT_EQ(atomic_load(word(t, 3)), 0);
  close_and_remove(t, name);
#else
  /* the name is free again, for a new and separate segment */
  ASSERT_OK(
      ferry_segment_open(&t, name, FERRY_CREATE | FERRY_EXCL, size, NULL));
  ASSERT_EQ(atomic_load(word(t, 2)), 0);
  atomic_store(word(t, 2), 1);
  ASSERT_EQ(atomic_load(word(s, 2)), 0xbeef);
  ASSERT_OK(ferry_segment_close(t));
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
#endif
}

static void test_unlink_file_checks(void) {
  char notes[4200], tiny[4200], missing[4200];
  snprintf(notes, sizeof notes, "%s/notes.txt", test_tmpdir());
  snprintf(tiny, sizeof tiny, "%s/tiny.txt", test_tmpdir());
  snprintf(missing, sizeof missing, "%s/missing.seg", test_tmpdir());
  write_file(notes, "hello world", 11);
  ASSERT_ERR(ferry_segment_unlink(notes, FERRY_FILE), FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), notes);
  ASSERT_TRUE(path_exists(notes));
  write_file(tiny, "hi\n", 3);
  ASSERT_ERR(ferry_segment_unlink(tiny, FERRY_FILE), FERRY_EBADHDR);
  ASSERT_TRUE(path_exists(tiny));
  ASSERT_ERR(ferry_segment_unlink(missing, FERRY_FILE), FERRY_ENOENT);
  ASSERT_EQ(remove(notes), 0);
  ASSERT_EQ(remove(tiny), 0);
}

/* ---------------------------------------------------------------------- */
/* List and names                                                         */

struct list_ctx {
  const char *want[3];
  int seen[3];
  int total;
  int invalid; /* names ferry_name_check rejects */
};

static int list_cb(const char *name, void *vctx) {
  struct list_ctx *ctx = (struct list_ctx *)vctx;
  int i;
  ctx->total++;
  if (ferry_name_check(name) != 0)
    ctx->invalid++;
  for (i = 0; i < 3; i++)
    if (ctx->want[i] && strcmp(name, ctx->want[i]) == 0)
      ctx->seen[i]++;
  return 0;
}

static int stop_cb(const char *name, void *vctx) {
  (void)name;
  ++*(int *)vctx;
  return 42;
}

static void test_list(void) {
  char n[3][80];
  struct list_ctx ctx;
  ferry_segment *s[3];
  int i, calls = 0;
  for (i = 0; i < 3; i++) {
    test_name(n[i], sizeof n[i], "list");
    s[i] = create_named(n[i], 100, NULL);
  }
  memset(&ctx, 0, sizeof ctx);
  for (i = 0; i < 3; i++)
    ctx.want[i] = n[i];
  ASSERT_OK(ferry_segment_list(list_cb, &ctx));
  for (i = 0; i < 3; i++)
    ASSERT_EQ(ctx.seen[i], 1);
  ASSERT_TRUE(ctx.total >= 3);
  close_and_remove(s[1], n[1]);
  memset(ctx.seen, 0, sizeof ctx.seen);
  ASSERT_OK(ferry_segment_list(list_cb, &ctx));
  ASSERT_EQ(ctx.seen[0], 1);
  ASSERT_EQ(ctx.seen[1], 0);
  ASSERT_EQ(ctx.seen[2], 1);
  /* a non-zero return stops the walk and comes back */
  ASSERT_EQ(ferry_segment_list(stop_cb, &calls), 42);
  ASSERT_EQ(calls, 1);
  ASSERT_ERR(ferry_segment_list(NULL, NULL), FERRY_EINVAL);
  close_and_remove(s[0], n[0]);
  close_and_remove(s[2], n[2]);
  memset(ctx.seen, 0, sizeof ctx.seen);
  ASSERT_OK(ferry_segment_list(list_cb, &ctx));
  ASSERT_EQ(ctx.seen[0] + ctx.seen[1] + ctx.seen[2], 0);
}

/* ferry.h: "Names are passed as found, even ones that are not valid ferry
 * names": a foreign object under the ferry. prefix is listed (so `ferry ls`
 * can show it with an error) rather than hidden. */
static void test_list_passes_foreign_names(void) {
  char base[80], bad1[160], bad2[160], os1[200], os2[200], good[80];
  struct list_ctx ctx;
  ferry_segment *s;
  ferry_os_shm o1, o2;
  test_name(base, sizeof base, "x");
  snprintf(bad1, sizeof bad1, "-%s", base);    /* leading '-' */
  snprintf(bad2, sizeof bad2, "%s bad", base); /* a space */
  /* made through the OS layer alone: ferry itself refuses these names */
  ASSERT_OK(ferry_os_shm_create(&o1, os_name_of(bad1, os1, sizeof os1), 4096,
                                0600, 0));
  ASSERT_OK(ferry_os_shm_create(&o2, os_name_of(bad2, os2, sizeof os2), 4096,
                                0600, 0));
  test_name(good, sizeof good, "good");
  s = create_named(good, 100, NULL);
  memset(&ctx, 0, sizeof ctx);
  ctx.want[0] = good;
  ctx.want[1] = bad1;
  ctx.want[2] = bad2;
  ASSERT_OK(ferry_segment_list(list_cb, &ctx));
  ASSERT_OK(ferry_os_shm_unlink(os1));
  ASSERT_OK(ferry_os_shm_unlink(os2));
  ferry_os_shm_close(&o1);
  ferry_os_shm_close(&o2);
  close_and_remove(s, good);
  ASSERT_EQ(ctx.seen[0], 1);
  ASSERT_EQ(ctx.seen[1], 1);
  ASSERT_EQ(ctx.seen[2], 1);
  ASSERT_GE(ctx.invalid, 2); /* they fail ferry_name_check, yet are listed */
}

static void test_os_name(void) {
  char name[80], buf[FERRY_PATH_MAX], want[128];
#ifdef _WIN32
  char want_global[128];
  test_name(name, sizeof name, "osname");
  snprintf(want, sizeof want, "Local\\ferry.%s", name);
  snprintf(want_global, sizeof want_global, "Global\\ferry.%s", name);
  ASSERT_OK(ferry_segment_os_name(name, 0, buf, sizeof buf));
  ASSERT_STREQ(buf, want);
  ASSERT_OK(ferry_segment_os_name(name, FERRY_SEG_GLOBAL, buf, sizeof buf));
  ASSERT_STREQ(buf, want_global); /* the session-wide namespace */
#else
  test_name(name, sizeof name, "osname");
  snprintf(want, sizeof want, "/ferry.%s", name);
  ASSERT_OK(ferry_segment_os_name(name, 0, buf, sizeof buf));
  ASSERT_STREQ(buf, want);
  ASSERT_OK(ferry_segment_os_name(name, FERRY_SEG_GLOBAL, buf, sizeof buf));
  ASSERT_STREQ(buf, want); /* one namespace on POSIX */
#endif
  ASSERT_OK(ferry_segment_os_name(name, 0, buf, strlen(want) + 1));
  ASSERT_STREQ(buf, want);
  ASSERT_ERR(ferry_segment_os_name(name, 0, buf, strlen(want)), FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_os_name(name, 0, NULL, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_os_name("bad name", 0, buf, sizeof buf),
             FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_os_name("", 0, buf, sizeof buf), FERRY_EINVAL);
}

static void test_python_interop(void) {
  char name[80], cmd[1024], out[256], err[4096];
  ferry_segment *s;
  ferry_segment_info info;
  int rc;
  test_posix_only("opens the segment as /dev/shm/ferry.NAME from python3 "
                  "(multiprocessing.shared_memory), run through /bin/sh");
  if (test_run("command -v python3", NULL, 0, NULL, 0,
               test_timeout_ms(30000)) != 0)
    test_skip("python3 is not installed");
  test_name(name, sizeof name, "py");
  s = create_named(name, 4096, NULL);
  get_info(s, &info);
  ASSERT_UEQ(info.data_offset, 4096);
  memcpy(ferry_segment_data(s), "hello", 5);
  /* Python's resource tracker would unlink the segment when Python exits
   * (before 3.13 even for segments it only opened): unregister it. */
  snprintf(cmd, sizeof cmd,
           "python3 -c \"from multiprocessing import shared_memory as s\n"
           "m = s.SharedMemory('ferry.%s')\n"
           "try:\n"
           "  from multiprocessing import resource_tracker as r\n"
           "  r.unregister(m._name, 'shared_memory')\n"
           "except Exception:\n"
           "  pass\n"
           "print(bytes(m.buf[4096:4101]).decode())\n"
           "m.buf[4101:4106] = b'PyOK!'\n"
           "m.close()\"",
           name);
  rc = test_run(cmd, out, sizeof out, err, sizeof err, test_timeout_ms(60000));
  if (rc != 0)
    TEST_FAIL("python3 exited with %d: %s", rc, err);
  ASSERT_STREQ(out, "hello\n");
  ASSERT_TRUE(memcmp((uint8_t *)ferry_segment_data(s) + 5, "PyOK!", 5) == 0);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
}

#ifdef _WIN32
/* ---------------------------------------------------------------------- */
/* Windows: the security descriptor made from the mode                    */

/* The DACL of named segment NAME's section, read back from the kernel, and
 * its descriptor's control bits. LocalFree(*SD) afterwards. */
static PACL section_dacl(const char *name, PSECURITY_DESCRIPTOR *sd,
                         SECURITY_DESCRIPTOR_CONTROL *control) {
  char osname[160];
  HANDLE h = OpenFileMappingA(READ_CONTROL, FALSE,
                              os_name_of(name, osname, sizeof osname));
  PACL dacl = NULL;
  DWORD rev = 0, e;
  if (!h)
    TEST_FAIL("OpenFileMapping %s for READ_CONTROL: error %lu", osname,
              (unsigned long)GetLastError());
  e = GetSecurityInfo(h, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL,
                      NULL, &dacl, NULL, sd);
  CloseHandle(h);
  if (e != ERROR_SUCCESS)
    TEST_FAIL("GetSecurityInfo %s: error %lu", osname, (unsigned long)e);
  ASSERT_TRUE(dacl != NULL);
  ASSERT_TRUE(GetSecurityDescriptorControl(*sd, control, &rev));
  return dacl;
}

/* This process's user (TokenUser) or primary group SID, copied into BUF. */
static PSID token_sid(TOKEN_INFORMATION_CLASS cls, void *buf, DWORD cap) {
  union {
    TOKEN_USER user;
    TOKEN_PRIMARY_GROUP group;
    unsigned char raw[512];
  } info;
  HANDLE tok;
  DWORD n = 0;
  ASSERT_TRUE(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok));
  ASSERT_TRUE(GetTokenInformation(tok, cls, &info, sizeof info, &n));
  CloseHandle(tok);
  ASSERT_TRUE(
      CopySid(cap, buf,
              cls == TokenUser ? info.user.User.Sid : info.group.PrimaryGroup));
  return (PSID)buf;
}

/* The mask of the access-allowed ACE for SID in DACL into *MASK: 1, or 0
 * when there is none. Every ACE must be an access-allowed one. */
static int ace_mask(PACL dacl, PSID sid, ACCESS_MASK *mask) {
  DWORD i;
  for (i = 0; i < dacl->AceCount; i++) {
    ACCESS_ALLOWED_ACE *ace = NULL;
    ASSERT_TRUE(GetAce(dacl, i, (LPVOID *)&ace));
    ASSERT_EQ(ace->Header.AceType, ACCESS_ALLOWED_ACE_TYPE);
    if (EqualSid((PSID)&ace->SidStart, sid)) {
      *mask = ace->Mask;
      return 1;
    }
  }
  return 0;
}

#define MAP_RW (SECTION_MAP_READ | SECTION_MAP_WRITE)

/* Mode 0600 (the default): a protected DACL (nothing inherited) with one
 * ACE, which lets this process's user read and write. */
static void test_security_descriptor_default(void) {
  char name[80];
  unsigned char user_buf[SECURITY_MAX_SID_SIZE];
  PSID user = token_sid(TokenUser, user_buf, sizeof user_buf);
  PSECURITY_DESCRIPTOR sd = NULL;
  SECURITY_DESCRIPTOR_CONTROL control = 0;
  ACCESS_MASK m = 0;
  ferry_segment *s;
  PACL dacl;
  test_name(name, sizeof name, "sd600");
  s = create_named(name, 4096, NULL);
  dacl = section_dacl(name, &sd, &control);
  ASSERT_NE(control & SE_DACL_PROTECTED, 0);
  ASSERT_EQ(dacl->AceCount, 1);
  ASSERT_TRUE(ace_mask(dacl, user, &m));
  ASSERT_EQ(m & MAP_RW, MAP_RW);
  LocalFree(sd);
  close_and_remove(s, name);
}

/* Mode 0644: this process's user reads and writes; its primary group and
 * Everyone (S-1-1-0) only read: no ACE but the owner's has
 * SECTION_MAP_WRITE. */
static void test_security_descriptor_0644(void) {
  char name[80];
  unsigned char user_buf[SECURITY_MAX_SID_SIZE],
      group_buf[SECURITY_MAX_SID_SIZE];
  unsigned char world_buf[SECURITY_MAX_SID_SIZE];
  PSID user = token_sid(TokenUser, user_buf, sizeof user_buf);
  PSID group = token_sid(TokenPrimaryGroup, group_buf, sizeof group_buf);
  PSID world = (PSID)world_buf;
  DWORD n = sizeof world_buf, i;
  PSECURITY_DESCRIPTOR sd = NULL;
  SECURITY_DESCRIPTOR_CONTROL control = 0;
  ferry_segment_opts o = opts_init();
  ACCESS_MASK m = 0;
  ferry_segment *s;
  PACL dacl;
  ASSERT_TRUE(CreateWellKnownSid(WinWorldSid, NULL, world, &n));
  test_name(name, sizeof name, "sd644");
  o.mode = 0644;
  s = create_named(name, 4096, &o);
  dacl = section_dacl(name, &sd, &control);
  ASSERT_NE(control & SE_DACL_PROTECTED, 0);
  ASSERT_EQ(dacl->AceCount, 3); /* owner, group, other */
  ASSERT_TRUE(ace_mask(dacl, user, &m));
  ASSERT_EQ(m & MAP_RW, MAP_RW);
  ASSERT_TRUE(ace_mask(dacl, world, &m));
  ASSERT_EQ(m & MAP_RW, SECTION_MAP_READ);
  if (!EqualSid(group, user)) {
    ASSERT_TRUE(ace_mask(dacl, group, &m));
    ASSERT_EQ(m & MAP_RW, SECTION_MAP_READ);
  }
  for (i = 0; i < dacl->AceCount; i++) {
    ACCESS_ALLOWED_ACE *ace = NULL;
    ASSERT_TRUE(GetAce(dacl, i, (LPVOID *)&ace));
    if (!EqualSid((PSID)&ace->SidStart, user))
      ASSERT_EQ(ace->Mask & SECTION_MAP_WRITE, 0);
  }
  LocalFree(sd);
  close_and_remove(s, name);
}
#endif

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"create_excl", test_create_excl},
      {"open_existing", test_open_existing},
      {"open_or_create", test_open_or_create},
      {"rdonly_open", test_rdonly_open},
      {"invalid_arguments", test_invalid_arguments},
      {"info_fields", test_info_fields},
      {"creator_dead_info", test_creator_dead_info},
      {"data_across_processes", test_data_across_processes},
      {"create_or_open_race", test_create_or_open_race},
      {"open_zero_sized_times_out", test_open_zero_sized_times_out},
      {"open_dead_creator", test_open_dead_creator},
      {"rdonly_write_faults", test_rdonly_write_faults},
      {"permission_denied_named", test_permission_denied_named},
      {"permission_denied_file", test_permission_denied_file},
      {"anon_inherit", test_anon_inherit},
      {"anon_not_inherited", test_anon_not_inherited},
      {"anon_open_handle_local", test_anon_open_handle_local},
      {"anon_sealed", test_anon_sealed},
      {"anon_scm_rights", test_anon_scm_rights},
      {"open_handle_after_unlink", test_open_handle_after_unlink},
      {"file_persistence", test_file_persistence},
      {"file_over_4gib", test_file_over_4gib},
      {"file_reserved", test_file_reserved},
      {"named_reserves", test_named_reserves},
      {"prefault_and_mlock", test_prefault_and_mlock},
      {"hugepages", test_hugepages},
      {"size_and_header_checks", test_size_and_header_checks},
      {"unlink", test_unlink},
      {"unlink_file_checks", test_unlink_file_checks},
      {"list", test_list},
      {"list_passes_foreign_names", test_list_passes_foreign_names},
      {"os_name", test_os_name},
      {"python_interop", test_python_interop},
#ifdef _WIN32
      {"security_descriptor_default", test_security_descriptor_default},
      {"security_descriptor_0644", test_security_descriptor_0644},
#endif
      {NULL, NULL}};
  static const struct test_role roles[] = {{"exit", role_exit},
                                           {"check", role_check},
                                           {"create-exit", role_create_exit},
                                           {"race", role_race},
                                           {"rdonly-write", role_rdonly_write},
                                           {"hold", role_hold},
                                           {"handle", role_handle},
#ifdef _WIN32
                                           {"dup-recv", role_dup_recv},
#else
                                           {"scm-recv", role_scm_recv},
#endif
                                           {"check-big", role_check_big},
                                           {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
