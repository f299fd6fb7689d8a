/* Description: segments across real processes: every create/open mode and its
 * errors, the header info, the create-or-open race, half-initialised and
 * foreign objects, read-only and permission checks, anonymous (inherited and
 * SCM_RIGHTS-passed) and file-backed segments, more than 4 GiB, up-front
 * reservation, prefault/mlock/huge pages, unlink, list, OS names and Python
 * interop. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

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

static char *shm_file(const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "/dev/shm/ferry.%s", name);
  return buf;
}

static uint64_t page_size(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }

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

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_us(long us) {
  struct timespec ts;
  ts.tv_sec = 0;
  ts.tv_nsec = us * 1000;
  nanosleep(&ts, NULL);
}

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
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    TEST_FAIL("open %s: %s", path, strerror(errno));
  if (write(fd, buf, n) != (ssize_t)n)
    TEST_FAIL("write %s: %s", path, strerror(errno));
  close(fd);
}

/* This process's start time (field 22 of /proc/self/stat). */
static uint64_t self_start_ticks(void) {
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
}

/* Makes the shm object /ferry.NAME directly (not through ferry), SIZE bytes,
 * and maps it read-write into *MAP (when SIZE > 0). */
static void raw_shm_create(const char *name, uint64_t size, uint8_t **map) {
  char osname[128];
  int fd;
  snprintf(osname, sizeof osname, "/ferry.%s", name);
  fd = shm_open(osname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    TEST_FAIL("shm_open %s: %s", osname, strerror(errno));
  if (size > 0) {
    void *p;
    ASSERT_EQ(ftruncate(fd, (off_t)size), 0);
    p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
      TEST_FAIL("mmap %s: %s", osname, strerror(errno));
    *map = (uint8_t *)p;
  }
  close(fd);
}

/* Lets a helper die of the signal its bad write raises: no core file, and
 * the default action even under AddressSanitizer's SEGV handler. */
static void default_fault_handling(void) {
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  signal(SIGSEGV, SIG_DFL);
  signal(SIGBUS, SIG_DFL);
}

static void drop_privileges(void) {
  if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
    TEST_FAIL("dropping privileges to uid %d: %s", NOBODY, strerror(errno));
  ASSERT_EQ(geteuid(), NOBODY);
}

static int wait_child(pid_t pid) {
  return test_wait(pid, test_timeout_ms(60000));
}

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
  ASSERT_EQ(info.creator_pid, (uint64_t)getppid());
  ASSERT_EQ(info.creator_alive, 1);
  ASSERT_UEQ(ferry_segment_data_size(s), size);
  ASSERT_PATTERN(ferry_segment_data(s), size, seed);
  if (strcmp(argv[4], "-") != 0)
    fill(ferry_segment_data(s), size, (unsigned)strtoul(argv[4], NULL, 0));
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* create-exit NAME SIZE SEED: creates NAME, fills it, exits. */
static int role_create_exit(int argc, char **argv) {
  ferry_segment *s;
  uint64_t size;
  if (argc < 3)
    return 2;
  size = strtoull(argv[1], NULL, 0);
  s = create_named(argv[0], size, NULL);
  fill(ferry_segment_data(s), size, (unsigned)strtoul(argv[2], NULL, 0));
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* race GO TARGET KIND SIZE: waits on the start barrier in segment GO, then
 * opens-or-creates TARGET (KIND "named" or "file"), checks that it is fully
 * initialised and counts itself in it. Exit 10 = created, 11 = opened. */
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
    ASSERT_EQ(info.creator_pid, (uint64_t)getpid());
  else
    ASSERT_NE(info.creator_pid, (uint64_t)getpid());
  if (!(flags & FERRY_FILE))
    ASSERT_STREQ(info.name, argv[1]);
  atomic_fetch_add(word(s, 0), 1);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_close(go));
  return created ? 10 : 11;
}

/* rdonly-write NAME SIZE SEED: opens NAME read-only, checks the pattern,
 * then writes into the data: it must die of SIGSEGV there. */
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
 * answers in word 2. */
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
  ASSERT_ERR(ferry_segment_open(&again, argv[0], 0, 0, NULL), FERRY_ENOENT);
  ASSERT_PATTERN((uint8_t *)ferry_segment_data(s) + 64, size - 64, 9);
  atomic_store(word(s, 2), 0xbeef);
  ASSERT_OK(ferry_segment_close(s));
  return 0;
}

/* handle FD MODE SIZE SEED NEWSEED: opens the segment behind inherited
 * descriptor FD. MODE: "rw" (check pattern SEED, then write NEWSEED), "ro"
 * (read-only, check), "ro-write" (read-only, check, then write: must die of
 * SIGSEGV), "absent" (FD must not be a usable segment handle here). */
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
  fd = (ferry_handle)strtol(argv[0], NULL, 0);
  mode = argv[1];
  size = strtoull(argv[2], NULL, 0);
  seed = (unsigned)strtoul(argv[3], NULL, 0);
  if (strcmp(mode, "absent") == 0) {
    int open_here = fcntl((int)fd, F_GETFD) >= 0;
    rc = ferry_segment_open_handle(&s, fd, 0, NULL);
    if (rc == 0)
      TEST_FAIL("fd %d was inherited and opened as a segment", (int)fd);
    ASSERT_TRUE(s == NULL);
    if (!open_here) {
      ASSERT_ERR(rc, FERRY_EINVAL);
    } else {
      /* the number is taken by something of this process's own */
      char proc[64], target[256];
      ssize_t n;
      snprintf(proc, sizeof proc, "/proc/self/fd/%d", (int)fd);
      n = readlink(proc, target, sizeof target - 1);
      target[n > 0 ? n : 0] = '\0';
      if (strstr(target, "memfd:"))
        TEST_FAIL("fd %d was inherited: it is %s", (int)fd, target);
    }
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');
    return 0;
  }
  ASSERT_TRUE(fcntl((int)fd, F_GETFD) >= 0);
  ASSERT_OK(ferry_segment_open_handle(
      &s, fd, strncmp(mode, "ro", 2) == 0 ? FERRY_RDONLY : 0u, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.kind, FERRY_KIND_ANON);
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.creator_pid, (uint64_t)getppid());
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
  char name[80], path[160];
  ferry_segment *s, *s2 = (ferry_segment *)&s2;
  ferry_segment_info info;
  struct stat st;
  test_name(name, sizeof name, "excl");
  shm_file(name, path, sizeof path);
  s = create_named(name, 1000, NULL);
  ASSERT_TRUE(path_exists(path));
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
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_UEQ((uint64_t)st.st_size, info.total_size);
  memset(ferry_segment_data(s), 0x5c, 1000);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_TRUE(!path_exists(path));
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
  ASSERT_EQ(info.creator_pid, (uint64_t)getpid());
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
  ASSERT_EQ(info.creator_pid, (uint64_t)getpid());
  ASSERT_UEQ(ferry_segment_data_size(b), 3000); /* size ignored */
  ASSERT_PATTERN(ferry_segment_data(b), 3000, 3);
  /* size 0 is fine when the segment exists */
  ASSERT_OK(ferry_segment_open(&c, name, FERRY_CREATE, 0, NULL));
  get_info(c, &info);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(c), 3000);
  ASSERT_OK(ferry_segment_close(c));
  ASSERT_OK(ferry_segment_close(b));
  ASSERT_OK(ferry_segment_close(a));
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
#undef EXPECT_EINVAL
}

static void test_info_fields(void) {
  char name[80], path[160];
  ferry_segment *s;
  ferry_segment_opts o = opts_init();
  ferry_segment_info info;
  struct stat st;
  mode_t old_umask;
  uint64_t ps = page_size();
  /* default mode 0600 */
  test_name(name, sizeof name, "info");
  shm_file(name, path, sizeof path);
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
  ASSERT_UEQ(info.creator_pid, (uint64_t)getpid());
  ASSERT_UEQ(info.creator_start, self_start_ticks());
  ASSERT_EQ(info.creator_alive, 1);
  ASSERT_GT(info.created_ns, 0);
  ASSERT_EQ(info.created, 1);
  ASSERT_EQ(info.readonly, 0);
  ASSERT_STREQ(info.name, name);
  ASSERT_CONTAINS(info.os_name, "/ferry.");
  ASSERT_CONTAINS(info.os_name, name);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0600);
  ASSERT_UEQ((uint64_t)st.st_size, info.total_size);
  ASSERT_EQ(st.st_uid, geteuid());
  ASSERT_EQ((uintptr_t)ferry_segment_data(s) % 64, 0);
  ASSERT_TRUE((uint8_t *)ferry_segment_data(s) != NULL);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));

  /* custom mode applied exactly, whatever the umask; payload recorded */
  old_umask = umask(077);
  test_name(name, sizeof name, "mode");
  shm_file(name, path, sizeof path);
  o.mode = 0666;
  o.payload = FERRY_PAYLOAD_CHANNEL;
  s = create_named(name, 1, &o);
  umask(old_umask);
  get_info(s, &info);
  ASSERT_EQ(info.mode, 0666);
  ASSERT_EQ(info.payload, FERRY_PAYLOAD_CHANNEL);
  ASSERT_UEQ(info.data_size, 1);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0666);
  ASSERT_OK(ferry_segment_close(s));
  /* an opener sees the same recorded fields */
  ASSERT_OK(ferry_segment_open(&s, name, FERRY_RDONLY, 0, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.mode, 0666);
  ASSERT_EQ(info.payload, FERRY_PAYLOAD_CHANNEL);
  ASSERT_EQ(info.created, 0);
  ASSERT_EQ(info.readonly, 1);
  ASSERT_UEQ(info.creator_pid, (uint64_t)getpid());
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));

  o = opts_init();
  o.mode = 0640;
  o.payload = FERRY_PAYLOAD_POOL;
  test_name(name, sizeof name, "mode2");
  shm_file(name, path, sizeof path);
  s = create_named(name, 3 * ps, &o);
  get_info(s, &info);
  ASSERT_EQ(info.payload, FERRY_PAYLOAD_POOL);
  ASSERT_UEQ(info.total_size, DATA_OFFSET + 3 * ps);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0640);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
}

/* A creator that has exited: info says so, and its data is all there. */
static void test_creator_dead_info(void) {
  char name[80];
  const char *args[4];
  ferry_segment *s = NULL;
  ferry_segment_info info;
  long pid;
  test_name(name, sizeof name, "gone");
  args[0] = name;
  args[1] = "20000";
  args[2] = "6";
  args[3] = NULL;
  pid = test_spawn("create-exit", args);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_OK(ferry_segment_open(&s, name, 0, 0, NULL));
  get_info(s, &info);
  ASSERT_UEQ(info.creator_pid, (uint64_t)pid);
  ASSERT_EQ(info.creator_alive, 0);
  ASSERT_EQ(info.created, 0);
  ASSERT_UEQ(ferry_segment_data_size(s), 20000);
  ASSERT_PATTERN(ferry_segment_data(s), 20000, 6);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
}

/* ---------------------------------------------------------------------- */
/* The create-or-open race                                                */

#define RACE_ROUNDS 48
#define RACE_PROCS 12

/* Rounds of RACE_PROCS helpers doing open-or-create on one fresh name at
 * once (every other round a file-backed segment): exactly one creates, all
 * succeed and see a complete header, and all of them count in the data. */
static void test_create_or_open_race(void) {
  char go_name[80], target[80], path[4096];
  int round;
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
    rc = ferry_segment_open(&s, path, ufl, 0, NULL);
    if (rc == 0) {
      seen_size = ferry_segment_data_size(s);
      counted = atomic_load(word(s, 0));
      ferry_segment_close(s);
    }
    /* clean up first, so that a failure leaves nothing behind */
    ferry_segment_unlink(path, ufl);
    ferry_segment_close(go);
    ferry_segment_unlink(go_name, 0);
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
 * out, and does not take it over. */
static void test_open_zero_sized_times_out(void) {
  char name[80], path[160];
  ferry_segment *s = (ferry_segment *)&s;
  ferry_segment_opts o = opts_init();
  uint8_t *map = NULL;
  struct stat st;
  test_name(name, sizeof name, "empty");
  shm_file(name, path, sizeof path);
  raw_shm_create(name, 0, &map);
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

  /* Sized but all zero, no creator recorded yet: still initialising. */
  ASSERT_EQ(truncate(path, 4096), 0);
  o.timeout_ms = 200;
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_ETIMEDOUT);
  ASSERT_CONTAINS(ferry_errmsg(), name);
  ASSERT_OK(ferry_segment_unlink(name, 0));
}

/* A header left all-zero by a creator that has died: FERRY_EBADHDR at once,
 * not a wait until the timeout. */
static void test_open_dead_creator(void) {
  char name[80];
  ferry_segment *s = (ferry_segment *)&s;
  ferry_segment_opts o = opts_init();
  uint8_t *map = NULL;
  uint64_t pid, start;
  long child;
  child = test_spawn("exit", NULL);
  ASSERT_EQ(test_wait(child, test_timeout_ms(30000)), 0);
  pid = (uint64_t)child;
  test_name(name, sizeof name, "dead");
  raw_shm_create(name, 4096, &map);
  memcpy(map + 64, &pid, sizeof pid);
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
  pid = (uint64_t)getpid();
  start = self_start_ticks();
  memcpy(map + 64, &pid, sizeof pid);
  memcpy(map + 72, &start, sizeof start);
  o.timeout_ms = 200;
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_ETIMEDOUT);
  ASSERT_CONTAINS(ferry_errmsg(), name);

  /* This pid but another start time: the pid was reused, the creator is
   * gone. */
  start += 12345;
  memcpy(map + 72, &start, sizeof start);
  o.timeout_ms = test_timeout_ms(120000);
  ASSERT_ERR(ferry_segment_open(&s, name, 0, 0, &o), FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "died");
  munmap(map, 4096);
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
}

static void test_permission_denied_named(void) {
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
}

static void test_permission_denied_file(void) {
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
  ASSERT_EQ(fcntl((int)h, F_GETFD) & FD_CLOEXEC, 0);
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
  ASSERT_NE(fcntl((int)h, F_GETFD) & FD_CLOEXEC, 0);
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
  char proc[64];
  int rofd;
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
  ASSERT_TRUE(fcntl((int)ferry_segment_handle(s), F_GETFD) >= 0);
  ASSERT_OK(ferry_segment_open_handle(&t, ferry_segment_handle(s), FERRY_RDONLY,
                                      NULL));
  get_info(t, &info);
  ASSERT_EQ(info.readonly, 1);
  ASSERT_PATTERN(ferry_segment_data(t), 10000, 19);
  ASSERT_OK(ferry_segment_close(t));
  /* a read-only descriptor cannot be opened read-write */
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", (int)ferry_segment_handle(s));
  rofd = open(proc, O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(rofd >= 0);
  t = (ferry_segment *)&t;
  ASSERT_ERR(ferry_segment_open_handle(&t, rofd, 0, NULL), FERRY_EACCES);
  ASSERT_TRUE(t == NULL);
  ASSERT_TRUE(ferry_errmsg()[0] != '\0');
  ASSERT_OK(ferry_segment_open_handle(&t, rofd, FERRY_RDONLY, NULL));
  ASSERT_PATTERN(ferry_segment_data(t), 10000, 19);
  ASSERT_OK(ferry_segment_close(t));
  close(rofd);
  ASSERT_OK(ferry_segment_close(s));
}

static void test_anon_sealed(void) {
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
}

static void test_anon_scm_rights(void) {
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
  ASSERT_EQ(st.st_mode & 07777, 0600);
  ASSERT_TRUE(S_ISREG(st.st_mode));
  ASSERT_UEQ((uint64_t)st.st_size, info.total_size);
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
  struct stat st;
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
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_UEQ((uint64_t)st.st_size, info.total_size);
  /* sparse: nowhere near 5 GiB of blocks */
  ASSERT_TRUE((uint64_t)st.st_blocks * 512 < GIB);
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
  struct stat st;
  snprintf(path, sizeof path, "%s/reserved.seg", test_tmpdir());
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                               64 * MIB, NULL));
  get_info(s, &info);
  ASSERT_EQ(info.seg_flags & FERRY_SEG_SPARSE, 0);
  ASSERT_EQ(stat(path, &st), 0);
  ASSERT_UEQ((uint64_t)st.st_size, info.total_size);
  if ((uint64_t)st.st_blocks * 512 < 64 * MIB)
    TEST_FAIL("%s has %llu bytes of blocks, expected at least 64 MiB reserved",
              path, (unsigned long long)st.st_blocks * 512);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(path, FERRY_FILE));
}

/* ---------------------------------------------------------------------- */
/* Reservation and mapping options                                        */

static void test_named_reserves(void) {
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
}

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

static void test_prefault_and_mlock(void) {
  char name[80];
  ferry_segment *s, *t = NULL;
  ferry_segment_opts o = opts_init();
  uint64_t before;
  int rc;
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));

  test_name(name, sizeof name, "mlock");
  o.flags = FERRY_SEG_MLOCK | FERRY_SEG_PREFAULT;
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
  ASSERT_OK(ferry_segment_close(t));
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
    ASSERT_OK(ferry_segment_close(s));
    ASSERT_OK(ferry_segment_unlink(name, 0));
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
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
  char a[80], b[80], c[80], pa[160], pc[160];
  ferry_segment *s = (ferry_segment *)&s;
  ferry_segment_opts o = opts_init();
  ferry_segment_info info;
  uint8_t *img, *map = NULL;
  uint64_t total;
  int fd;
  test_name(a, sizeof a, "orig");
  test_name(b, sizeof b, "copy");
  test_name(c, sizeof c, "corrupt");
  shm_file(a, pa, sizeof pa);
  shm_file(c, pc, sizeof pc);
  s = create_named(a, 10000, NULL);
  fill(ferry_segment_data(s), 10000, 25);
  get_info(s, &info);
  total = info.total_size;
  ASSERT_OK(ferry_segment_close(s));

  /* B: a byte-for-byte copy of A under another name */
  fd = open(pa, O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(fd >= 0);
  img = (uint8_t *)malloc((size_t)total);
  ASSERT_TRUE(img != NULL);
  ASSERT_EQ(pread(fd, img, (size_t)total, 0), (ssize_t)total);
  close(fd);
  raw_shm_create(b, total, &map);
  memcpy(map, img, (size_t)total);
  munmap(map, (size_t)total);
  s = (ferry_segment *)&s;
  ASSERT_ERR(ferry_segment_open(&s, b, 0, 0, NULL), FERRY_EBADHDR);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), a); /* the header names A */
  ASSERT_ERR(ferry_segment_open(&s, b, FERRY_CREATE, 10000, NULL),
             FERRY_EBADHDR);

  /* C: a copy of A with a corrupted immutable field, then a future major
   * version */
  raw_shm_create(c, total, &map);
  memcpy(map, img, (size_t)total);
  memcpy(map + 104, c, strlen(c) + 1 <= 64 ? strlen(c) + 1 : 64);
  map[96] = (uint8_t)strlen(c); /* name_len */
  ASSERT_ERR(ferry_segment_open(&s, c, 0, 0, NULL), FERRY_EBADHDR);
  ASSERT_CONTAINS(ferry_errmsg(), "checksum");
  map[12] = 2; /* version_major 2 */
  ASSERT_ERR(ferry_segment_open(&s, c, 0, 0, NULL), FERRY_EVERSION);
  ASSERT_TRUE(ferry_errmsg()[0] != '\0');
  memcpy(map, "NOTFERRY", 8);
  ASSERT_ERR(ferry_segment_open(&s, c, 0, 0, NULL), FERRY_EBADHDR);
  munmap(map, (size_t)total);
  free(img);

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
  ASSERT_ERR(ferry_segment_open(&s, a, FERRY_CREATE, 10000, NULL), FERRY_ESIZE);
  /* A cut to nothing: looks like a creator that has not sized it yet */
  ASSERT_EQ(truncate(pa, 0), 0);
  o.timeout_ms = 200;
  ASSERT_ERR(ferry_segment_open(&s, a, 0, 0, &o), FERRY_ETIMEDOUT);

  ASSERT_OK(ferry_segment_unlink(a, 0));
  ASSERT_OK(ferry_segment_unlink(b, 0));
  ASSERT_OK(ferry_segment_unlink(c, 0));
  ASSERT_TRUE(!path_exists(pa) && !path_exists(pc));
}

/* ---------------------------------------------------------------------- */
/* Unlink                                                                 */

static void test_unlink(void) {
  char name[80], path[160];
  const char *args[2];
  ferry_segment *s, *t = (ferry_segment *)&t;
  const uint64_t size = 64 * 1024;
  long pid;
  test_name(name, sizeof name, "unlink");
  shm_file(name, path, sizeof path);
  s = create_named(name, size, NULL);
  args[0] = name;
  args[1] = NULL;
  pid = test_spawn("hold", args);
  if (!poll_u32(word(s, 0), 1, test_timeout_ms(30000), 0))
    TEST_FAIL("the helper never opened the segment");
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_TRUE(!path_exists(path));
  ASSERT_ERR(ferry_segment_open(&t, name, 0, 0, NULL), FERRY_ENOENT);
  ASSERT_TRUE(t == NULL);
  ASSERT_ERR(ferry_segment_unlink(name, 0), FERRY_ENOENT);
  ASSERT_CONTAINS(ferry_errmsg(), name);
  /* both mappings still work, across processes */
  fill((uint8_t *)ferry_segment_data(s) + 64, size - 64, 9);
  atomic_store(word(s, 1), 1);
  ASSERT_EQ(test_wait(pid, test_timeout_ms(30000)), 0);
  ASSERT_EQ(atomic_load(word(s, 2)), 0xbeef);
  /* the name is free again, for a new and separate segment */
  ASSERT_OK(
      ferry_segment_open(&t, name, FERRY_CREATE | FERRY_EXCL, size, NULL));
  ASSERT_EQ(atomic_load(word(t, 2)), 0);
  atomic_store(word(t, 2), 1);
  ASSERT_EQ(atomic_load(word(s, 2)), 0xbeef);
  ASSERT_OK(ferry_segment_close(t));
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(name, 0));
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
  ASSERT_EQ(unlink(notes), 0);
  ASSERT_EQ(unlink(tiny), 0);
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
  ASSERT_OK(ferry_segment_close(s[1]));
  ASSERT_OK(ferry_segment_unlink(n[1], 0));
  memset(ctx.seen, 0, sizeof ctx.seen);
  ASSERT_OK(ferry_segment_list(list_cb, &ctx));
  ASSERT_EQ(ctx.seen[0], 1);
  ASSERT_EQ(ctx.seen[1], 0);
  ASSERT_EQ(ctx.seen[2], 1);
  /* a non-zero return stops the walk and comes back */
  ASSERT_EQ(ferry_segment_list(stop_cb, &calls), 42);
  ASSERT_EQ(calls, 1);
  ASSERT_ERR(ferry_segment_list(NULL, NULL), FERRY_EINVAL);
  ASSERT_OK(ferry_segment_close(s[0]));
  ASSERT_OK(ferry_segment_close(s[2]));
  ASSERT_OK(ferry_segment_unlink(n[0], 0));
  ASSERT_OK(ferry_segment_unlink(n[2], 0));
  memset(ctx.seen, 0, sizeof ctx.seen);
  ASSERT_OK(ferry_segment_list(list_cb, &ctx));
  ASSERT_EQ(ctx.seen[0] + ctx.seen[1] + ctx.seen[2], 0);
}

/* ferry.h: "Names are passed as found, even ones that are not valid ferry
 * names": a foreign object under the ferry. prefix is listed (so `ferry ls`
 * can show it with an error) rather than hidden. */
static void test_list_passes_foreign_names(void) {
  char base[80], bad1[160], bad2[160], good[80];
  struct list_ctx ctx;
  ferry_segment *s;
  int fd1, fd2;
  test_name(base, sizeof base, "x");
  snprintf(bad1, sizeof bad1, "/ferry.-%s", base);    /* leading '-' */
  snprintf(bad2, sizeof bad2, "/ferry.%s bad", base); /* a space */
  fd1 = shm_open(bad1, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  fd2 = shm_open(bad2, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_TRUE(fd1 >= 0 && fd2 >= 0);
  close(fd1);
  close(fd2);
  test_name(good, sizeof good, "good");
  s = create_named(good, 100, NULL);
  memset(&ctx, 0, sizeof ctx);
  ctx.want[0] = good;
  ctx.want[1] = bad1 + 7;
  ctx.want[2] = bad2 + 7;
  ASSERT_OK(ferry_segment_list(list_cb, &ctx));
  shm_unlink(bad1);
  shm_unlink(bad2);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(good, 0));
  ASSERT_EQ(ctx.seen[0], 1);
  ASSERT_EQ(ctx.seen[1], 1);
  ASSERT_EQ(ctx.seen[2], 1);
  ASSERT_GE(ctx.invalid, 2); /* they fail ferry_name_check, yet are listed */
}

static void test_os_name(void) {
  char name[80], buf[FERRY_PATH_MAX], want[128];
  test_name(name, sizeof name, "osname");
  snprintf(want, sizeof want, "/ferry.%s", name);
  ASSERT_OK(ferry_segment_os_name(name, 0, buf, sizeof buf));
  ASSERT_STREQ(buf, want);
  ASSERT_OK(ferry_segment_os_name(name, FERRY_SEG_GLOBAL, buf, sizeof buf));
  ASSERT_STREQ(buf, want); /* one namespace on POSIX */
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
      {NULL, NULL}};
  static const struct test_role roles[] = {{"exit", role_exit},
                                           {"check", role_check},
                                           {"create-exit", role_create_exit},
                                           {"race", role_race},
                                           {"rdonly-write", role_rdonly_write},
                                           {"hold", role_hold},
                                           {"handle", role_handle},
                                           {"scm-recv", role_scm_recv},
                                           {"check-big", role_check_big},
                                           {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}
