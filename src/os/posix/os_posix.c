/* The OS contract (src/os/os.h) on POSIX systems, with Linux specifics
 * (memfd, /proc, huge pages) where Linux has them. Included by src/os/os.c. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64 /* 64-bit off_t in 32-bit processes */
#endif

#include "../os.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

#include "../../error.h"

#define SHM_DIR "/dev/shm"

/* ---------------------------------------------------------------------- */
/* Errors                                                                 */

static int err_from_errno(int e) {
  switch (e) {
  case 0:
    return 0;
  case ENOENT:
  case ENOTDIR:
    return FERRY_ENOENT;
  case EEXIST:
    return FERRY_EEXIST;
  case EACCES:
  case EPERM:
  case EROFS:
  case ETXTBSY:
    return FERRY_EACCES;
  case ENOSPC:
  case EDQUOT:
  case EFBIG:
    return FERRY_ENOSPC;
  case ENOMEM:
  case EMFILE:
  case ENFILE:
    return FERRY_ENOMEM;
  case EINVAL:
  case ENAMETOOLONG:
  case EISDIR:
  case EBADF:
    return FERRY_EINVAL;
  case EAGAIN:
    return FERRY_EAGAIN;
  case EBUSY:
    return FERRY_EBUSY;
  case ETIMEDOUT:
    return FERRY_ETIMEDOUT;
  case ENOSYS:
  case EOPNOTSUPP:
    return FERRY_ENOTSUP;
  case EOVERFLOW:
    return FERRY_ETOOBIG;
  case EOWNERDEAD:
    return FERRY_EOWNERDEAD;
  case ENOTRECOVERABLE:
    return FERRY_ENOTRECOVERABLE;
  default:
    return FERRY_EIO;
  }
}

/* Translates errno E and sets the detail message "WHAT: strerror". */
static int os_err(int e, const char *what) {
  return ferry__err(err_from_errno(e), "%s: %s", what, strerror(e));
}

/* ---------------------------------------------------------------------- */
/* Capabilities                                                           */

static ferry_os_caps caps;
static pthread_once_t caps_once = PTHREAD_ONCE_INIT;

static void caps_init(void) {
  long ps = sysconf(_SC_PAGESIZE);
  FILE *f;
  char line[128];
  caps.page_size = ps > 0 ? (uint64_t)ps : 4096u;
  caps.alloc_granularity = caps.page_size;
  caps.huge_page_size = 0;
  f = fopen("/proc/meminfo", "r");
  if (f) {
    while (fgets(line, sizeof line, f)) {
      unsigned long long kb;
      if (sscanf(line, "Hugepagesize: %llu kB", &kb) == 1)
        caps.huge_page_size = (uint64_t)kb * 1024u;
    }
    fclose(f);
  }
}

const ferry_os_caps *ferry_os_caps_get(void) {
  pthread_once(&caps_once, caps_init);
  return &caps;
}

/* ---------------------------------------------------------------------- */
/* Names                                                                  */

int ferry_os_object_name(int kind, const char *name, int global, char *buf,
                         size_t cap) {
  const char *prefix = kind == FERRY_OS_NAME_SYNC ? "/ferry-sync." : "/ferry.";
  int n;
  (void)global; /* POSIX has one namespace */
  n = snprintf(buf, cap, "%s%s", prefix, name);
  if (n < 0 || (size_t)n >= cap)
    return ferry__err(FERRY_EINVAL, "OS name for '%s' is too long", name);
  return 0;
}

/* /dev/shm path of OS name "/ferry.x", for messages and stat(). */
static void shm_path(const char *osname, char *buf, size_t cap) {
  snprintf(buf, cap, "%s%s", SHM_DIR, osname);
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static void shm_init(ferry_os_shm *o, int fd, int writable) {
  o->h = fd;
  o->file = FERRY_OS_NO_HANDLE;
  o->writable = writable;
  o->huge = 0;
}

/* Explains an EACCES on PATH: who owns it, its mode, who we are. */
static int access_err(const char *path, int writable) {
  struct stat st;
  int e = errno;
  if (stat(path, &st) == 0) {
    if (writable && (st.st_mode & 0222) == 0)
      return ferry__err(FERRY_EACCES,
                        "%s is read-only (mode %04o): open it read-only "
                        "(FERRY_RDONLY / --readonly)",
                        path, (unsigned)(st.st_mode & 07777));
    return ferry__err(FERRY_EACCES,
                      "cannot open %s %s: %s (mode %04o, owner uid %u; this "
                      "process is uid %u)",
                      path, writable ? "read-write" : "read-only", strerror(e),
                      (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
                      (unsigned)geteuid());
  }
  return ferry__err(FERRY_EACCES, "cannot open %s %s: %s", path,
                    writable ? "read-write" : "read-only", strerror(e));
}

/* After a failed reservation: "/dev/shm has 12 MiB free, 64 MiB needed". */
static int nospace_err(int fd, const char *where, uint64_t size, int e) {
  struct statvfs sv;
  char need[32], have[32];
  ferry__fmt_bytes(size, need, sizeof need);
  if (fstatvfs(fd, &sv) == 0) {
    uint64_t free_bytes = (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
    return ferry__err(FERRY_ENOSPC, "%s has %s free, %s needed (%s)", where,
                      ferry__fmt_bytes(free_bytes, have, sizeof have), need,
                      strerror(e));
  }
  return ferry__err(FERRY_ENOSPC, "%s: cannot reserve %s: %s", where, need,
                    strerror(e));
}

/* Sets the size of new object FD and reserves its blocks. */
static int size_and_reserve(int fd, const char *where, uint64_t size,
                            int reserve) {
  int e;
  if ((uint64_t)(off_t)size != size || (off_t)size < 0)
    return ferry__err(FERRY_ETOOBIG, "%s: size %llu does not fit off_t", where,
                      (unsigned long long)size);
  if (ftruncate(fd, (off_t)size) != 0) {
    e = errno;
    if (e == EFBIG || e == ENOSPC || e == EDQUOT)
      return nospace_err(fd, where, size, e);
    return os_err(e, where);
  }
  if (!reserve)
    return 0;
  do
    e = posix_fallocate(fd, 0, (off_t)size);
  while (e == EINTR);
  if (e == 0)
    return 0;
  if (e == ENOSPC || e == EDQUOT || e == EFBIG || e == ENOMEM)
    return nospace_err(fd, where, size, e);
  return ferry__err(err_from_errno(e), "%s: reserving %llu bytes: %s", where,
                    (unsigned long long)size, strerror(e));
}

/* What /proc/mounts says of the huge= option of the tmpfs at DIR. */
static void tmpfs_huge_option(const char *dir, char *buf, size_t cap) {
  FILE *f = fopen("/proc/self/mounts", "r");
  char line[1024];
  snprintf(buf, cap, "never");
  if (!f)
    return;
  while (fgets(line, sizeof line, f)) {
    char dev[256], mnt[256], type[64], opts[512];
    if (sscanf(line, "%255s %255s %63s %511s", dev, mnt, type, opts) != 4)
      continue;
    if (strcmp(mnt, dir) == 0) {
      const char *h = strstr(opts, "huge=");
      snprintf(buf, cap, "never");
      if (h) {
        size_t n = strcspn(h + 5, ",");
        snprintf(buf, cap, "%.*s", (int)n, h + 5);
      }
    }
  }
  fclose(f);
}

static void read_first_line(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  buf[0] = '\0';
  if (f) {
    if (!fgets(buf, (int)cap, f))
      buf[0] = '\0';
    fclose(f);
  }
  buf[strcspn(buf, "\n")] = '\0';
}

/* The selected word of a sysfs "a [b] c" line. */
static void sysfs_choice(const char *path, char *buf, size_t cap) {
  char line[256];
  const char *l, *r;
  size_t n;
  read_first_line(path, line, sizeof line);
  l = strchr(line, '[');
  r = l ? strchr(l, ']') : NULL;
  if (l && r) { /* the word between the brackets */
    l++;
  } else { /* no selection marked: the whole line */
    l = line[0] ? line : "unavailable";
    r = l + strlen(l);
  }
  n = (size_t)(r - l);
  if (n >= cap)
    n = cap - 1; /* sysfs words are short; keep what fits */
  memcpy(buf, l, n);
  buf[n] = '\0';
}

static int thp_mode_ok(const char *mode) {
  return strcmp(mode, "always") == 0 || strcmp(mode, "within_size") == 0 ||
         strcmp(mode, "advise") == 0 || strcmp(mode, "force") == 0;
}

/* ---------------------------------------------------------------------- */
/* Named objects                                                          */

int ferry_os_shm_create(ferry_os_shm *o, const char *osname, uint64_t size,
                        uint32_t mode, unsigned flags) {
  char path[FERRY_PATH_MAX];
  int fd, rc, huge = 0;
  shm_path(osname, path, sizeof path);
  if (flags & FERRY_OS_HUGE) {
    char opt[64], sys[64];
    tmpfs_huge_option(SHM_DIR, opt, sizeof opt);
    sysfs_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled", sys,
                 sizeof sys);
    if (strcmp(sys, "deny") == 0 ||
        (!thp_mode_ok(opt) && strcmp(sys, "force") != 0))
      return ferry__err(
          FERRY_ENOTSUP,
          "huge pages for %s: the tmpfs at " SHM_DIR
          " is mounted huge=%s and shmem_enabled is '%s'; remount it with "
          "huge=within_size or use FERRY_SEG_HUGEPAGES_TRY",
          path, opt, sys);
    huge = 2;
  }
  fd = shm_open(osname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST)
      return ferry__err(FERRY_EEXIST, "%s already exists", path);
    if (errno == EACCES)
      return access_err(path, 1);
    return os_err(errno, path);
  }
  if (fchmod(fd, (mode_t)mode) != 0) {
    rc = os_err(errno, path);
    goto fail;
  }
  rc = size_and_reserve(fd, SHM_DIR, size, 1);
  if (rc != 0)
    goto fail;
  shm_init(o, fd, 1);
  o->huge = huge;
  return 0;
fail:
  close(fd);
  shm_unlink(osname);
  return rc;
}

/* Only regular files (and shm objects, which are regular files on tmpfs)
 * may back a segment. Opening used O_NONBLOCK so that a FIFO planted under a
 * ferry name cannot block us; clear it again here. */
static int check_regular(int fd, const char *path) {
  struct stat st;
  int fl;
  if (fstat(fd, &st) != 0)
    return os_err(errno, path);
  if (!S_ISREG(st.st_mode))
    return ferry__err(FERRY_EINVAL, "%s is not a regular file", path);
  fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  return 0;
}

int ferry_os_shm_open(ferry_os_shm *o, const char *osname, int writable) {
  char path[FERRY_PATH_MAX];
  int fd, e, rc;
  fd = shm_open(osname, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK,
                0);
  e = errno;
  shm_path(osname, path, sizeof path);
  if (fd < 0) {
    if (e == ENOENT)
      return ferry__err(FERRY_ENOENT, "%s does not exist", path);
    if (e == EACCES) {
      errno = e;
      return access_err(path, writable);
    }
    return os_err(e, path);
  }
  rc = check_regular(fd, path);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  shm_init(o, fd, writable);
  return 0;
}

int ferry_os_shm_unlink(const char *osname) {
  char path[FERRY_PATH_MAX];
  shm_path(osname, path, sizeof path);
  if (shm_unlink(osname) != 0) {
    if (errno == ENOENT)
      return ferry__err(FERRY_ENOENT, "%s does not exist", path);
    if (errno == EACCES || errno == EPERM)
      return ferry__err(FERRY_EACCES, "cannot remove %s: %s", path,
                        strerror(errno));
    return os_err(errno, path);
  }
  return 0;
}

int ferry_os_shm_list(int (*cb)(const char *name, void *ctx), void *ctx) {
  DIR *d = opendir(SHM_DIR);
  struct dirent *ent;
  int rc = 0;
  if (!d)
    return os_err(errno, "opendir " SHM_DIR);
  while ((ent = readdir(d)) != NULL) {
    if (strncmp(ent->d_name, "ferry.", 6) != 0 || ent->d_name[6] == '\0')
      continue;
    rc = cb(ent->d_name + 6, ctx);
    if (rc != 0)
      break;
  }
  closedir(d);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                  */

int ferry_os_file_create(ferry_os_shm *o, const char *path, uint64_t size,
                         uint32_t mode, unsigned flags) {
  int fd, rc;
  if (flags & FERRY_OS_HUGE)
    return ferry__err(FERRY_ENOTSUP,
                      "%s: huge pages are not available for file-backed "
                      "segments; use a named or anonymous segment",
                      path);
  fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST)
      return ferry__err(FERRY_EEXIST, "%s already exists", path);
    if (errno == ENOENT)
      return ferry__err(FERRY_ENOENT, "cannot create %s: no such directory",
                        path);
    if (errno == EACCES || errno == EROFS)
      return ferry__err(FERRY_EACCES, "cannot create %s: %s", path,
                        strerror(errno));
    return os_err(errno, path);
  }
  if (fchmod(fd, (mode_t)mode) != 0) {
    rc = os_err(errno, path);
    goto fail;
  }
  rc = size_and_reserve(fd, path, size, !(flags & FERRY_OS_SPARSE));
  if (rc != 0)
    goto fail;
  shm_init(o, fd, 1);
  return 0;
fail:
  close(fd);
  unlink(path);
  return rc;
}

int ferry_os_file_open(ferry_os_shm *o, const char *path, int writable) {
  int rc,
      fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return ferry__err(FERRY_ENOENT, "%s does not exist", path);
    if (errno == EROFS)
      return ferry__err(FERRY_EACCES,
                        "%s is on a read-only file system: open it read-only "
                        "(FERRY_RDONLY / --readonly)",
                        path);
    if (errno == EACCES || errno == EPERM)
      return access_err(path, writable);
    return os_err(errno, path);
  }
  rc = check_regular(fd, path);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  shm_init(o, fd, writable);
  return 0;
}

int ferry_os_file_unlink(const char *path) {
  if (unlink(path) != 0) {
    if (errno == ENOENT)
      return ferry__err(FERRY_ENOENT, "%s does not exist", path);
    return os_err(errno, path);
  }
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Anonymous objects                                                      */

int ferry_os_anon_create(ferry_os_shm *o, uint64_t size, unsigned flags) {
#ifdef __linux__
  unsigned mfd = MFD_ALLOW_SEALING |
                 ((flags & FERRY_OS_INHERIT) ? 0u : (unsigned)MFD_CLOEXEC);
  int fd = -1, rc, huge = 0;
  if (flags & FERRY_OS_HUGE) {
    /* Reserved huge pages first (hugetlb), then transparent ones. */
    char sys[64], why[256];
    fd = memfd_create("ferry.anon", mfd | MFD_HUGETLB);
    if (fd < 0) {
      snprintf(why, sizeof why, "memfd MFD_HUGETLB: %s", strerror(errno));
    } else if (size_and_reserve(fd, "the hugetlb pool", size, 1) != 0) {
      snprintf(why, sizeof why, "%s", ferry_errmsg());
      close(fd);
      fd = -1;
    } else {
      if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) !=
          0) {
        rc = os_err(errno, "sealing the memfd");
        close(fd);
        return rc;
      }
      shm_init(o, fd, 1);
      o->huge = 1;
      return 0;
    }
    sysfs_choice("/sys/kernel/mm/transparent_hugepage/shmem_enabled", sys,
                 sizeof sys);
    if (!thp_mode_ok(sys))
      return ferry__err(FERRY_ENOTSUP,
                        "huge pages: no reserved huge pages (%s; see "
                        "vm.nr_hugepages) and transparent huge pages for "
                        "shared memory are off (shmem_enabled is '%s')",
                        why, sys);
    huge = 2;
  }
  if (fd < 0)
    fd = memfd_create("ferry.anon", mfd);
  if (fd < 0)
    return os_err(errno, "memfd_create");
  rc = size_and_reserve(fd, "anonymous memory", size, 1);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    rc = os_err(errno, "sealing the memfd");
    close(fd);
    return rc;
  }
  shm_init(o, fd, 1);
  o->huge = huge;
  return 0;
#else
  (void)o;
  (void)size;
  (void)flags;
  return ferry__err(FERRY_ENOTSUP, "anonymous segments need memfd (Linux)");
#endif
}

int ferry_os_handle_open(ferry_os_shm *o, ferry_os_handle h, int writable) {
  int fd, fl;
  if (h < 0 || h > INT32_MAX)
    return ferry__err(FERRY_EINVAL, "handle %lld is not a file descriptor",
                      (long long)h);
  fl = fcntl((int)h, F_GETFL);
  if (fl < 0)
    return ferry__err(FERRY_EINVAL, "fd %d: %s", (int)h, strerror(errno));
  if (writable && (fl & O_ACCMODE) == O_RDONLY)
    return ferry__err(FERRY_EACCES,
                      "fd %d is open read-only: open the segment read-only",
                      (int)h);
  fd = fcntl((int)h, F_DUPFD_CLOEXEC, 0);
  if (fd < 0)
    return os_err(errno, "dup");
  shm_init(o, fd, writable);
  return 0;
}

int ferry_os_shm_stat(const ferry_os_shm *o, uint64_t *size, int *removed) {
  struct stat st;
  if (fstat((int)o->h, &st) != 0)
    return os_err(errno, "fstat");
  *size = (uint64_t)st.st_size;
  *removed = st.st_nlink == 0;
  return 0;
}

void ferry_os_shm_close(ferry_os_shm *o) {
  if (o->h != FERRY_OS_NO_HANDLE)
    close((int)o->h);
  o->h = FERRY_OS_NO_HANDLE;
  o->file = FERRY_OS_NO_HANDLE;
}

/* ---------------------------------------------------------------------- */
/* Mapping                                                                */

int ferry_os_map(const ferry_os_shm *o, uint64_t offset, uint64_t len,
                 unsigned flags, void **addr) {
  int prot = PROT_READ | ((flags & FERRY_OS_MAP_WRITE) ? PROT_WRITE : 0);
  int mflags = MAP_SHARED;
  void *p;
  if (len == 0 || len > (uint64_t)SIZE_MAX || (uint64_t)(off_t)offset != offset)
    return ferry__err(FERRY_ETOOBIG,
                      "cannot map %llu bytes at offset %llu in a %u-bit "
                      "process; map it in windows (ferry_window)",
                      (unsigned long long)len, (unsigned long long)offset,
                      (unsigned)(sizeof(void *) * 8));
#ifdef MAP_POPULATE
  if (flags & FERRY_OS_MAP_POPULATE)
    mflags |= MAP_POPULATE;
#endif
  p = mmap(NULL, (size_t)len, prot, mflags, (int)o->h, (off_t)offset);
  if (p == MAP_FAILED) {
    int e = errno;
    if (e == ENOMEM)
      return ferry__err(FERRY_ETOOBIG,
                        "no room to map %llu bytes in this process: %s",
                        (unsigned long long)len, strerror(e));
    if (e == EACCES)
      return ferry__err(FERRY_EACCES, "mmap %s: the handle does not allow it",
                        (flags & FERRY_OS_MAP_WRITE) ? "read-write"
                                                     : "read-only");
    return os_err(e, "mmap");
  }
#ifdef MADV_HUGEPAGE
  if (o->huge == 2)
    (void)madvise(p, (size_t)len, MADV_HUGEPAGE);
#endif
  if (flags & FERRY_OS_MAP_LOCK) {
    if (mlock(p, (size_t)len) != 0) {
      int e = errno;
      struct rlimit rl;
      char lim[32] = "unknown";
      if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        ferry__fmt_bytes((uint64_t)rl.rlim_cur, lim, sizeof lim);
      munmap(p, (size_t)len);
      return ferry__err(e == EPERM ? FERRY_EACCES : FERRY_ENOMEM,
                        "mlock of %llu bytes: %s (RLIMIT_MEMLOCK is %s; raise "
                        "it with ulimit -l or CAP_IPC_LOCK)",
                        (unsigned long long)len, strerror(e), lim);
    }
  }
  *addr = p;
  return 0;
}

int ferry_os_unmap(void *addr, uint64_t len) {
  if (munmap(addr, (size_t)len) != 0)
    return os_err(errno, "munmap");
  return 0;
}

int ferry_os_advise(void *addr, uint64_t len, unsigned advice) {
  int a;
  switch (advice) {
  case FERRY_OS_ADVISE_NORMAL:
    a = MADV_NORMAL;
    break;
  case FERRY_OS_ADVISE_SEQUENTIAL:
    a = MADV_SEQUENTIAL;
    break;
  case FERRY_OS_ADVISE_RANDOM:
    a = MADV_RANDOM;
    break;
  default:
    return ferry__err(FERRY_EINVAL, "unknown access hint %u", advice);
  }
  if (len > 0 && len <= (uint64_t)SIZE_MAX)
    (void)madvise(addr, (size_t)len, a); /* a hint: failure changes nothing */
  return 0;
}

int ferry_os_sync(const ferry_os_shm *o, void *addr, uint64_t len) {
  if (addr && len > 0 && len <= (uint64_t)SIZE_MAX &&
      msync(addr, (size_t)len, MS_SYNC) != 0)
    return os_err(errno, "msync");
  if (fsync((int)o->h) != 0 && errno != EINVAL && errno != EROFS)
    return os_err(errno, "fsync");
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Faults on memory that another process cut off                          */

int ferry_os_shm_can_shrink(const ferry_os_shm *o) {
#ifdef F_GET_SEALS
  int seals = fcntl((int)o->h, F_GET_SEALS);
  if (seals >= 0 && (seals & F_SEAL_SHRINK))
    return 0;
#else
  (void)o;
#endif
  return 1;
}

/* The handler's state. FAULT_PREV is the disposition ferry's handler
 * replaced, which gets every SIGBUS that is not about a ferry mapping;
 * written under fault_lock (and by the handler itself for SA_RESETHAND). */
static struct sigaction fault_prev;
static int (*fault_recover)(void *addr);
static int fault_installed;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

static void fault_on_sigbus(int sig, siginfo_t *si, void *uc);

static int is_ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == fault_on_sigbus;
}

/* A fault that happens again when the access is retried (the default
 * action then follows by itself), as opposed to a sent or asynchronous
 * signal (kill, BUS_MCEERR_AO). */
static int fault_recurs(const siginfo_t *si) {
  if (!si || si->si_code <= 0)
    return 0;
  return si->si_code == BUS_ADRERR || si->si_code == BUS_ADRALN ||
#ifdef BUS_MCEERR_AR
         si->si_code == BUS_MCEERR_AR ||
#endif
         si->si_code == BUS_OBJERR;
}

/* Installed with SA_NODEFER, so that SIGBUS is blocked while the previous
 * handler runs only if it asked for that, as it would be without ferry
 * (a handler that longjmps out leaves the mask as it expects). */
static void fault_on_sigbus(int sig, siginfo_t *si, void *uc) {
  int saved = errno;
  struct sigaction prev = fault_prev;
  sigset_t mask, old;
  if (si && si->si_code == BUS_ADRERR && fault_recover &&
      fault_recover(si->si_addr)) {
    errno = saved; /* retried: the access now reaches private zero pages */
    return;
  }
  if (prev.sa_handler == SIG_IGN && !fault_recurs(si)) {
    errno = saved; /* sent, and ignored before ferry came */
    return;
  }
  if (prev.sa_handler == SIG_DFL || prev.sa_handler == SIG_IGN) {
    /* The default action (the kernel forces it on an ignored fault too):
     * a fault recurs when the access is retried, anything else is raised
     * again. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGBUS, &dfl, NULL);
    if (!fault_recurs(si))
      raise(sig);
    errno = saved;
    return;
  }
  if (prev.sa_flags & SA_RESETHAND) { /* one call, then the default */
    memset(&fault_prev, 0, sizeof fault_prev);
    fault_prev.sa_handler = SIG_DFL;
  }
  mask = prev.sa_mask;
  if (!(prev.sa_flags & SA_NODEFER))
    sigaddset(&mask, sig);
  pthread_sigmask(SIG_BLOCK, &mask, &old);
  errno = saved;
  if (prev.sa_flags & SA_SIGINFO)
    prev.sa_sigaction(sig, si, uc);
  else
    prev.sa_handler(sig);
  saved = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = saved;
}

int ferry_os_fault_handler(int on, int (*recover)(void *addr)) {
  struct sigaction sa, cur;
  int rc = 0;
  pthread_mutex_lock(&fault_lock);
  if (on && !fault_installed) {
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    fault_recover = recover;
    /* Learn the current disposition first, so that a SIGBUS arriving
     * between the swap and the bookkeeping finds it; the swap itself is
     * one call, so a handler installed meanwhile is not lost. A disposition
     * that is ferry's own (the program put back what it had saved) keeps
     * the one ferry replaced, so that ferry never calls itself. */
    if (sigaction(SIGBUS, NULL, &cur) == 0 && !is_ours(&cur))
      fault_prev = cur;
    if (sigaction(SIGBUS, &sa, &cur) != 0)
      rc = os_err(errno, "sigaction(SIGBUS)");
    else {
      if (!is_ours(&cur))
        fault_prev = cur;
      fault_installed = 1;
    }
  } else if (!on && fault_installed) {
    /* Put the previous handler back, unless someone replaced ours. */
    if (sigaction(SIGBUS, NULL, &cur) == 0 && is_ours(&cur))
      sigaction(SIGBUS, &fault_prev, NULL);
    fault_installed = 0;
  }
  pthread_mutex_unlock(&fault_lock);
  return rc;
}

int ferry_os_fault_patch(void *addr, size_t len, int writable) {
  void *p = mmap(addr, len, PROT_READ | (writable ? PROT_WRITE : 0),
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  return p == addr ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* Wait and wake                                                          */

int ferry_os_waitpoint_open(ferry_os_waitpoint *wp, const char *name,
                            int global, uint32_t mode, unsigned index) {
  (void)name;
  (void)global;
  (void)mode;
  (void)index;
  wp->h = FERRY_OS_NO_HANDLE;
  return 0;
}

void ferry_os_waitpoint_close(ferry_os_waitpoint *wp) {
  wp->h = FERRY_OS_NO_HANDLE;
}

#ifdef __linux__
/* Shared (not FUTEX_PRIVATE) futexes: the word lives in memory that other
 * processes map, each at its own address. */
int ferry_os_wait(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t expected, int64_t timeout_ns) {
  struct timespec ts;
  long rc;
  (void)wp;
  if (timeout_ns <= 0)
    return FERRY_ETIMEDOUT;
  ts.tv_sec = (time_t)(timeout_ns / 1000000000);
  ts.tv_nsec = (long)(timeout_ns % 1000000000);
  rc = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
  if (rc == 0 || errno == EAGAIN || errno == EINTR)
    return 0;
  if (errno == ETIMEDOUT)
    return FERRY_ETIMEDOUT;
  return FERRY_EIO;
}

int ferry_os_wake(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t sleepers) {
  (void)wp;
  (void)sleepers;
  if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, INT32_MAX, NULL, NULL,
              0) < 0)
    return FERRY_EIO;
  return 0;
}
#else
int ferry_os_wait(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t expected, int64_t timeout_ns) {
  /* Without futexes: a bounded nap; callers re-check their condition. */
  (void)wp;
  if (timeout_ns <= 0)
    return FERRY_ETIMEDOUT;
  if (atomic_load(word) != expected)
    return 0;
  ferry_os_sleep_ns(timeout_ns < 100000 ? timeout_ns : 100000);
  return 0;
}

int ferry_os_wake(ferry_os_waitpoint *wp, _Atomic uint32_t *word,
                  uint32_t sleepers) {
  (void)wp;
  (void)word;
  (void)sleepers;
  return 0;
}
#endif

/* ---------------------------------------------------------------------- */
/* Robust mutex                                                           */

_Static_assert(sizeof(pthread_mutex_t) <= FERRY_OS_MUTEX_SIZE,
               "pthread_mutex_t must fit the OS storage of a ferry mutex");
_Static_assert(_Alignof(pthread_mutex_t) <= 16,
               "pthread_mutex_t must fit a 16-byte-aligned slot");

/* Wait at most this long per timed-lock call: the absolute deadline then
 * fits a 32-bit time_t until 2038, and a realtime clock step costs a slice
 * at most (the overall deadline is monotonic). */
#define MUTEX_SLICE_NS (INT64_C(86400) * 1000000000)

uint16_t ferry_os_mutex_kind(void) {
#ifdef __GLIBC__
  unsigned family = 0x1000;
#else
  unsigned family = 0x2000;
#endif
  return (uint16_t)(family | (unsigned)sizeof(void *) << 8 |
                    (unsigned)sizeof(pthread_mutex_t));
}

/* The pthread result E of operation WHAT as a FERRY_E* code. */
static int mutex_err(int e, const char *what) {
  switch (e) {
  case 0:
    return 0;
  case EBUSY:
    return FERRY_EBUSY;
  case ETIMEDOUT:
    return FERRY_ETIMEDOUT;
  case EOWNERDEAD:
    return FERRY_EOWNERDEAD;
  case EDEADLK:
    return ferry__err(FERRY_EBUSY, "mutex %s: the calling thread holds it",
                      what);
  case ENOTRECOVERABLE:
    return ferry__err(FERRY_ENOTRECOVERABLE,
                      "mutex %s: a previous owner died and its successor "
                      "unlocked without ferry_mutex_consistent(); the mutex "
                      "stays unusable until ferry_mutex_init()",
                      what);
  case EPERM:
    return ferry__err(FERRY_EINVAL,
                      "mutex %s: the calling thread does not hold it", what);
  case EINVAL:
    return ferry__err(FERRY_ECORRUPT,
                      "mutex %s: the C library rejects the mutex state in "
                      "shared memory (overwritten?)",
                      what);
  default:
    return ferry__err(err_from_errno(e), "mutex %s: %s", what, strerror(e));
  }
}

int ferry_os_mutex_init(void *m, uint64_t lock_id) {
#ifdef __APPLE__
  (void)m;
  (void)lock_id;
  return ferry__err(FERRY_ENOTSUP, "this system has no robust mutexes");
#else
  pthread_mutexattr_t a;
  int e;
  (void)lock_id;
  e = pthread_mutexattr_init(&a);
  if (e != 0)
    return ferry__err(err_from_errno(e), "pthread_mutexattr_init: %s",
                      strerror(e));
  e = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  if (e == 0)
    e = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (e == 0)
    e = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
  if (e != 0) {
    pthread_mutexattr_destroy(&a);
    return ferry__err(FERRY_ENOTSUP,
                      "robust process-shared mutexes are not supported: %s",
                      strerror(e));
  }
  e = pthread_mutex_init((pthread_mutex_t *)m, &a);
  pthread_mutexattr_destroy(&a);
  if (e != 0)
    return ferry__err(e == EINVAL || e == ENOTSUP ? FERRY_ENOTSUP
                                                  : err_from_errno(e),
                      "pthread_mutex_init: %s", strerror(e));
  return 0;
#endif
}

#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 30))
#define MUTEX_CLOCK CLOCK_MONOTONIC
#define mutex_lock_until(m, ts) pthread_mutex_clocklock(m, CLOCK_MONOTONIC, ts)
#else
#define MUTEX_CLOCK CLOCK_REALTIME
#define mutex_lock_until(m, ts) pthread_mutex_timedlock(m, ts)
#endif

/* One attempt that waits at most SLICE_NS (> 0). */
static int mutex_lock_for(pthread_mutex_t *m, int64_t slice_ns) {
  struct timespec ts;
  int64_t t;
  clock_gettime(MUTEX_CLOCK, &ts);
  t = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + slice_ns;
  ts.tv_sec = (time_t)(t / 1000000000);
  ts.tv_nsec = (long)(t % 1000000000);
  return mutex_lock_until(m, &ts);
}

int ferry_os_mutex_lock(void *m, uint64_t lock_id, int64_t timeout_ns) {
  pthread_mutex_t *pm = (pthread_mutex_t *)m;
  int64_t end, left;
  int e;
  (void)lock_id;
  if (timeout_ns <= 0) {
    /* Not pthread_mutex_trylock: on a not-recoverable robust mutex glibc's
     * (2.36 at least) returns ENOTRECOVERABLE but leaves the lock word
     * held, so every later locker would time out. The timed lock gets that
     * case right, and with a deadline in the past it only tries (glibc
     * returns ETIMEDOUT for a negative one without a system call). */
    struct timespec past;
    past.tv_sec = -1;
    past.tv_nsec = 0;
    e = mutex_lock_until(pm, &past);
    return e == ETIMEDOUT ? FERRY_EBUSY : mutex_err(e, "lock");
  }
  end = ferry_os_monotonic_ns();
  end = timeout_ns > INT64_MAX - end ? INT64_MAX : end + timeout_ns;
  for (;;) {
    left = end - ferry_os_monotonic_ns();
    if (left <= 0)
      left = 1; /* waited out: one last attempt, which takes a free mutex */
    e = mutex_lock_for(pm, left < MUTEX_SLICE_NS ? left : MUTEX_SLICE_NS);
    if (e != ETIMEDOUT)
      return mutex_err(e, "lock");
    if (ferry_os_monotonic_ns() >= end)
      return FERRY_ETIMEDOUT;
  }
}

int ferry_os_mutex_consistent(void *m, uint64_t lock_id) {
  int e;
  (void)lock_id;
  e = pthread_mutex_consistent((pthread_mutex_t *)m);
  if (e == EINVAL)
    return ferry__err(FERRY_EINVAL,
                      "mutex consistent: the mutex is not held after "
                      "FERRY_EOWNERDEAD");
  return mutex_err(e, "consistent");
}

int ferry_os_mutex_unlock(void *m, uint64_t lock_id) {
  (void)lock_id;
  return mutex_err(pthread_mutex_unlock((pthread_mutex_t *)m), "unlock");
}

/* ---------------------------------------------------------------------- */
/* Processes and time                                                     */

uint64_t ferry_os_pid(void) { return (uint64_t)getpid(); }

int ferry_os_proc_start(uint64_t pid, uint64_t *start) {
#ifdef __linux__
  char path[64], buf[1024];
  const char *p;
  FILE *f;
  size_t n;
  unsigned long long ticks = 0;
  char state;
  int field;
  if (pid == 0 || pid > INT32_MAX)
    return FERRY_ENOENT;
  snprintf(path, sizeof path, "/proc/%llu/stat", (unsigned long long)pid);
  f = fopen(path, "r");
  if (!f)
    return errno == ENOENT ? FERRY_ENOENT : FERRY_EACCES;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
   * parse from the last ')'. starttime is field 22; state is field 3. */
  p = strrchr(buf, ')');
  if (!p || p[1] != ' ')
    return FERRY_EACCES;
  p += 2;
  state = *p;
  if (state == 'Z' || state == 'X')
    return FERRY_ENOENT;
  for (field = 3; field < 22 && *p; p++)
    if (*p == ' ')
      field++;
  if (field != 22 || sscanf(p, "%llu", &ticks) != 1)
    return FERRY_EACCES;
  *start = ticks;
  return 0;
#else
  (void)pid;
  (void)start;
  return FERRY_EACCES;
#endif
}

uint64_t ferry_os_boot_id(void) {
  char line[128];
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  const char *p;
  read_first_line("/proc/sys/kernel/random/boot_id", line, sizeof line);
  if (line[0] == '\0')
    return 0;
  for (p = line; *p; p++) {
    h ^= (unsigned char)*p;
    h *= 1099511628211ull;
  }
  return h;
}

int64_t ferry_os_realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t ferry_os_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ferry_os_sleep_ns(int64_t ns) {
  struct timespec ts;
  if (ns <= 0)
    return;
  ts.tv_sec = (time_t)(ns / 1000000000);
  ts.tv_nsec = (long)(ns % 1000000000);
  nanosleep(&ts, NULL);
}
