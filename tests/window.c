/* Description: windows (ferry_window_*): a 6 GiB sparse file through a
 * 64 MiB window (also from a 32-bit process), content beyond and across
 * 4 GiB and at the last byte; random access that forces remaps; requests
 * straddling a view's end; the max-length and range errors; writes that
 * persist; a sequential walk checked against read(); windows on named and
 * file-backed segments (one over 4 GiB); empty files; a file that shrank
 * (or, on Windows, that the OS refuses to shrink while a view maps it).
 * Runs on POSIX and Windows: the file helpers below are the only
 * OS-specific code. */
#ifndef _WIN32
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef _FILE_OFFSET_BITS
#define _FILE_OFFSET_BITS 64
#endif
#endif
#include "test.h"

#ifdef _WIN32
#include <windows.h>
#include <winioctl.h>
#else
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#endif

#include "header.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define GIB (1024ull * 1024ull * 1024ull)

/* ---------------------------------------------------------------------- */
/* Files, portably: positional reads and writes at 64-bit offsets, sizes,  */
/* sparse files, free space (POSIX fds; Windows file handles)              */

#ifdef _WIN32
typedef HANDLE tfile;
typedef DWORD os_error; /* GetLastError() */
#define OS_ERROR() GetLastError()
#else
typedef int tfile;
typedef int os_error; /* errno */
#define OS_ERROR() errno
#endif

/* "No such file or directory (error 2)". */
static const char *os_msg(os_error e) {
  static char buf[256];
#ifdef _WIN32
  DWORD n = FormatMessageA(
      FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, e,
      MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), buf, (DWORD)sizeof buf, NULL);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  snprintf(buf + n, sizeof buf - n, " (error %lu)", (unsigned long)e);
#else
  snprintf(buf, sizeof buf, "%s (errno %d)", strerror(e), e);
#endif
  return buf;
}

/* Removes file PATH (also a read-only one, as unlink(2) does): 0 or -1. */
static int rm_file(const char *path) {
#ifdef _WIN32
  DWORD a;
  if (DeleteFileA(path))
    return 0;
  if (GetLastError() != ERROR_ACCESS_DENIED)
    return -1;
  a = GetFileAttributesA(path);
  if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_READONLY))
    return -1;
  a &= ~(DWORD)FILE_ATTRIBUTE_READONLY;
  if (!SetFileAttributesA(path, a ? a : FILE_ATTRIBUTE_NORMAL) ||
      !DeleteFileA(path))
    return -1;
  return 0;
#else
  return unlink(path);
#endif
}

/* Makes PATH read-only for its owner (chmod 0400; the read-only attribute
 * on Windows): 0 or -1. */
static int make_readonly(const char *path) {
#ifdef _WIN32
  return SetFileAttributesA(path, FILE_ATTRIBUTE_READONLY) ? 0 : -1;
#else
  return chmod(path, 0400);
#endif
}

/* 1 if the OS lets this process open PATH for writing. Root does so on
 * POSIX whatever the mode, and so does Wine run by root (it turns the
 * read-only attribute into mode bits, which root ignores). */
static int os_opens_for_writing(const char *path) {
#ifdef _WIN32
  HANDLE f = CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  if (f == INVALID_HANDLE_VALUE)
    return 0;
  CloseHandle(f);
#else
  int f = open(path, O_RDWR | O_CLOEXEC);
  if (f < 0)
    return 0;
  close(f);
#endif
  return 1;
}

/* Opens PATH read-write: CREATE makes it (empty) or empties it. Shares
 * everything with the windows that open it meanwhile. */
static tfile tf_open(const char *path, int create) {
#ifdef _WIN32
  HANDLE f = CreateFileA(path, GENERIC_READ | GENERIC_WRITE,
                         FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, create ? CREATE_ALWAYS : OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL, NULL);
  if (f == INVALID_HANDLE_VALUE)
    TEST_FAIL("%s %s: %s", create ? "create" : "open", path,
              os_msg(GetLastError()));
#else
  int f =
      open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0), 0600);
  if (f < 0)
    TEST_FAIL("%s %s: %s", create ? "create" : "open", path, os_msg(errno));
#endif
  return f;
}

static void tf_close(tfile f) {
#ifdef _WIN32
  ASSERT_TRUE(CloseHandle(f));
#else
  ASSERT_EQ(close(f), 0);
#endif
}

/* Reads up to CAP bytes at OFF: the bytes read, 0 at the end. */
static size_t tf_read_some(tfile f, uint64_t off, void *buf, size_t cap) {
#ifdef _WIN32
  OVERLAPPED ov;
  DWORD n = 0;
  memset(&ov, 0, sizeof ov);
  ov.Offset = (DWORD)(off & 0xffffffffu);
  ov.OffsetHigh = (DWORD)(off >> 32);
  if (!ReadFile(f, buf, (DWORD)cap, &n, &ov)) {
    DWORD e = GetLastError();
    if (e == ERROR_HANDLE_EOF)
      return 0;
    TEST_FAIL("read %zu bytes at %llu: %s", cap, (unsigned long long)off,
              os_msg(e));
  }
  return n;
#else
  ssize_t n = pread(f, buf, cap, (off_t)off);
  if (n < 0)
    TEST_FAIL("pread %zu bytes at %llu: %s", cap, (unsigned long long)off,
              os_msg(errno));
  return (size_t)n;
#endif
}

static void read_at(tfile f, uint64_t off, void *buf, size_t len) {
  size_t n = tf_read_some(f, off, buf, len);
  if (n != len)
    TEST_FAIL("read %zu bytes at %llu: %zu (short read)", len,
              (unsigned long long)off, n);
}

static void write_at(tfile f, uint64_t off, const void *buf, size_t len) {
#ifdef _WIN32
  OVERLAPPED ov;
  DWORD n = 0;
  memset(&ov, 0, sizeof ov);
  ov.Offset = (DWORD)(off & 0xffffffffu);
  ov.OffsetHigh = (DWORD)(off >> 32);
  if (!WriteFile(f, buf, (DWORD)len, &n, &ov))
    TEST_FAIL("write %zu bytes at %llu: %s", len, (unsigned long long)off,
              os_msg(GetLastError()));
  if (n != len)
    TEST_FAIL("write %zu bytes at %llu: %lu (short write)", len,
              (unsigned long long)off, (unsigned long)n);
#else
  ssize_t n = pwrite(f, buf, len, (off_t)off);
  if (n != (ssize_t)len)
    TEST_FAIL("pwrite %zu bytes at %llu: %s", len, (unsigned long long)off,
              n < 0 ? os_msg(errno) : "short write");
#endif
}

/* Sets the size of F (grows with a hole, or shrinks): 0, or the OS's
 * error (the file is unchanged then). */
static os_error tf_set_size(tfile f, uint64_t size) {
#ifdef _WIN32
  LARGE_INTEGER li;
  li.QuadPart = (LONGLONG)size;
  if (!SetFilePointerEx(f, li, NULL, FILE_BEGIN) || !SetEndOfFile(f))
    return GetLastError();
  return 0;
#else
  return ftruncate(f, (off_t)size) == 0 ? 0 : errno;
#endif
}

static uint64_t tf_size(tfile f) {
#ifdef _WIN32
  LARGE_INTEGER li;
  if (!GetFileSizeEx(f, &li))
    TEST_FAIL("GetFileSizeEx: %s", os_msg(GetLastError()));
  return (uint64_t)li.QuadPart;
#else
  struct stat st;
  if (fstat(f, &st) != 0)
    TEST_FAIL("fstat: %s", os_msg(errno));
  return (uint64_t)st.st_size;
#endif
}

/* The allocation granularity of the OS, as the OS itself says it (the page
 * size on POSIX, 64 KiB on Windows). */
static uint64_t os_granularity(void) {
#ifdef _WIN32
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwAllocationGranularity;
#else
  return (uint64_t)sysconf(_SC_PAGESIZE);
#endif
}

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static uint8_t pat(uint64_t i, unsigned seed) {
  return (uint8_t)((i * 131u) ^ (i >> 9) ^ (i >> 17) ^ (i >> 33) ^
                   (seed * 29u + 7u));
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

/* Files and the named segment a test made, removed at exit also when an
 * assertion failed (after which the test's own removal never runs). */
static char made[16][4200];
static int nmade;
static char made_seg[64];

static void remove_made(void) {
  while (nmade > 0)
    rm_file(made[--nmade]);
  if (made_seg[0])
    ferry_segment_unlink(made_seg, 0);
}

static void tmp_path(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", test_tmpdir(), name);
  if (nmade == 0)
    atexit(remove_made); /* runs before test_tmpdir's rmdir */
  if (nmade < 16)
    snprintf(made[nmade++], sizeof made[0], "%s", buf);
}

/* Skips unless the file system of the scratch directory has NEED bytes. */
static void need_space(uint64_t need) {
  uint64_t avail;
#ifdef _WIN32
  ULARGE_INTEGER a;
  if (!GetDiskFreeSpaceExA(test_tmpdir(), &a, NULL, NULL))
    return;
  avail = a.QuadPart;
#else
  struct statvfs v;
  if (statvfs(test_tmpdir(), &v) != 0)
    return;
  avail = (uint64_t)v.f_bavail * v.f_frsize;
#endif
  if (avail < need)
    test_skip("%s has less than %llu MiB free", test_tmpdir(),
              (unsigned long long)(need / MIB));
}

/* Creates PATH holding SIZE bytes of pat(i, seed), written with write(). */
static void make_pattern_file(const char *path, uint64_t size, unsigned seed) {
  static uint8_t buf[256 * 1024];
  uint64_t off = 0;
  tfile f = tf_open(path, 1);
  while (off < size) {
    size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf, i;
    for (i = 0; i < n; i++)
      buf[i] = pat(off + i, seed);
    write_at(f, off, buf, n);
    off += n;
  }
  tf_close(f);
}

/* Creates PATH as a sparse file of SIZE bytes (open, read-write); skips
 * when the file system cannot hold a file that large. */
static tfile make_sparse(const char *path, uint64_t size) {
  tfile f = tf_open(path, 1);
  os_error e;
#ifdef _WIN32
  DWORD junk;
  if (!DeviceIoControl(f, FSCTL_SET_SPARSE, NULL, 0, NULL, 0, &junk, NULL)) {
    /* not sparse (FAT): SIZE bytes are allocated */
    tf_close(f);
    need_space(size);
    f = tf_open(path, 1);
  }
#endif
  e = tf_set_size(f, size);
  if (e != 0) {
    tf_close(f);
    rm_file(path);
#ifdef _WIN32
    if (e == ERROR_FILE_TOO_LARGE || e == ERROR_INVALID_PARAMETER ||
        e == ERROR_DISK_FULL)
#else
    if (e == EFBIG || e == EINVAL)
#endif
      test_skip("%s cannot hold a %llu-byte file: %s", test_tmpdir(),
                (unsigned long long)size, os_msg(e));
    TEST_FAIL("make %s %llu bytes long: %s", path, (unsigned long long)size,
              os_msg(e));
  }
  return f;
}

/* Checks LEN bytes at window offset OFF against pat(BASE_I + off, seed). */
static void check_at(ferry_window *w, uint64_t off, uint64_t len,
                     uint64_t base_i, unsigned seed) {
  void *p = NULL;
  uint64_t i;
  ASSERT_OK(ferry_window_at(w, off, len, &p));
  ASSERT_TRUE(p != NULL);
  for (i = 0; i < len; i++) {
    uint8_t got = ((const uint8_t *)p)[i];
    if (got != pat(base_i + off + i, seed))
      TEST_FAIL("byte %llu: 0x%02x, expected 0x%02x",
                (unsigned long long)(off + i), got,
                pat(base_i + off + i, seed));
  }
}

static ferry_window_opts wopts(uint64_t window, uint32_t flags) {
  ferry_window_opts o = FERRY_WINDOW_OPTS_INIT;
  o.window = window;
  o.flags = flags;
  return o;
}

/* The allocation granularity (the page size; 64 KiB on Windows): what a
 * window of 1 byte is rounded up to. */
static uint64_t gran(void) {
  static uint64_t g;
  if (!g) {
    char path[4200];
    ferry_window *w = NULL;
    ferry_window_opts o = wopts(1, 0);
    tmp_path(path, sizeof path, "gran.bin");
    make_pattern_file(path, 1, 0);
    ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, &o));
    g = ferry_window_max_len(w);
    ASSERT_OK(ferry_window_close(w));
    ASSERT_EQ(rm_file(path), 0);
    ASSERT_TRUE(g >= 4096 && (g & (g - 1)) == 0);
  }
  return g;
}

/* ---------------------------------------------------------------------- */
/* A 6 GiB file through a 64 MiB window                                   */

struct marker {
  uint64_t off;
  const char *what;
};

static void test_six_gib(void) {
  static const struct marker marks[] = {
      {0, "the first bytes"},
      {2 * GIB - 9, "across 2 GiB (a signed 32-bit off_t)"},
      {4 * GIB - 37, "across 4 GiB"},
      {4 * GIB, "at 4 GiB"},
      {4 * GIB + 12345, "beyond 4 GiB"},
      {5 * GIB + 64 * MIB - 20, "across a 64 MiB boundary beyond 4 GiB"},
      {6 * GIB - 64, "the last 64 bytes"},
  };
  const uint64_t size = 6 * GIB;
  char path[4200];
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(64 * MIB, 0);
  uint8_t rec[64];
  uint8_t *p;
  void *v;
  uint64_t total = 0, pieces = 0, len;
  size_t k, i;
  tfile fd;
  int rc;
  need_space(64 * MIB);
  tmp_path(path, sizeof path, "six.bin");
  fd = make_sparse(path, size);
  for (k = 0; k < sizeof marks / sizeof marks[0]; k++) {
    for (i = 0; i < sizeof rec; i++)
      rec[i] = pat(marks[k].off + i, 3);
    write_at(fd, marks[k].off, rec, sizeof rec);
  }
  rec[0] = 0xee;
  write_at(fd, size - 1, rec, 1); /* the very last byte */

  ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, &o));
  ASSERT_UEQ(ferry_window_size(w), size);
  ASSERT_UEQ(ferry_window_max_len(w), 64 * MIB);
  for (k = 0; k < sizeof marks / sizeof marks[0]; k++) {
    uint64_t off = marks[k].off;
    if (off == size - 64) { /* the last byte was overwritten with 0xee */
      check_at(w, off, 63, 0, 3);
      ASSERT_OK(ferry_window_at(w, size - 1, 1, &v));
      ASSERT_EQ(*(uint8_t *)v, 0xee);
    } else {
      check_at(w, off, 64, 0, 3);
    }
  }
  /* a whole window's worth that straddles 4 GiB, at an unaligned offset */
  ASSERT_OK(ferry_window_at(w, 4 * GIB - 37 - 32 * MIB + 1, 64 * MIB, &v));
  p = (uint8_t *)v + 32 * MIB - 1;
  for (i = 0; i < 64; i++)
    ASSERT_EQ(p[i], pat(4 * GIB - 37 + i, 3));
  ASSERT_EQ(((uint8_t *)v)[0], 0); /* a hole */
  /* holes read as zeroes */
  ASSERT_OK(ferry_window_at(w, 3 * GIB, 4096, &v));
  for (i = 0; i < 4096; i++)
    ASSERT_EQ(((uint8_t *)v)[i], 0);

  /* the errors at the edges */
  ASSERT_OK(ferry_window_at(w, size, 0, &v));
  ASSERT_ERR(ferry_window_at(w, size, 1, &v), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "beyond its end");
  ASSERT_ERR(ferry_window_at(w, size - 1, 2, &v), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_at(w, UINT64_MAX - 1, 4, &v), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_at(w, 8, UINT64_MAX, &v), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "overflowing");
  ASSERT_ERR(ferry_window_at(w, 0, 64 * MIB + 1, &v), FERRY_ETOOBIG);
  ASSERT_CONTAINS(ferry_errmsg(), "larger than the window");
  ASSERT_ERR(ferry_window_at(w, GIB, 5 * GIB, &v), FERRY_ETOOBIG);
  /* still usable after errors */
  check_at(w, 4 * GIB + 12345, 64, 0, 3);

  /* a sequential walk of all 6 GiB: contiguous pieces, each at most a view,
   * the markers where they belong (touching only those pages) */
  while ((rc = ferry_window_next(w, &v, &len)) > 0) {
    ASSERT_TRUE(len > 0 && len <= 64 * MIB);
    for (k = 0; k < sizeof marks / sizeof marks[0]; k++)
      if (marks[k].off >= total && marks[k].off < total + len)
        ASSERT_EQ(((uint8_t *)v)[marks[k].off - total], pat(marks[k].off, 3));
    if (total + len == size)
      ASSERT_EQ(((uint8_t *)v)[len - 1], 0xee);
    total += len;
    pieces++;
  }
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(len, 0);
  ASSERT_UEQ(total, size);
  ASSERT_UEQ(pieces, size / (64 * MIB)); /* views at multiples of 64 MiB */
  ASSERT_OK(ferry_window_close(w));
  tf_close(fd);
  ASSERT_EQ(rm_file(path), 0);
}

/* ---------------------------------------------------------------------- */
/* Random access                                                          */

static void test_random_access(void) {
  const uint64_t size = 48 * MIB + 777;
  char path[4200];
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(1 * MIB, FERRY_WINDOW_RANDOM);
  void *p, *q;
  int n;
  need_space(2 * size);
  tmp_path(path, sizeof path, "random.bin");
  make_pattern_file(path, size, 5);
  ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, &o));
  ASSERT_UEQ(ferry_window_size(w), size);
  for (n = 0; n < 3000; n++) {
    uint64_t len = rnd() % (n % 10 == 0 ? MIB + 1 : 5000);
    uint64_t off = rnd() % (size - len + 1);
    check_at(w, off, len, 0, 5);
  }
  /* requests that straddle the end of the view just mapped */
  check_at(w, 10 * MIB, 16, 0, 5);
  check_at(w, 10 * MIB + MIB + gran() - 8, 16, 0, 5);
  check_at(w, 10 * MIB + MIB - 1, MIB, 0, 5); /* max len, unaligned */
  check_at(w, size - MIB, MIB, 0, 5);         /* up to the last byte */
  check_at(w, size - 1, 1, 0, 5);
  /* inside the current view: the same view, no remap */
  ASSERT_OK(ferry_window_at(w, 20 * MIB, 100, &p));
  ASSERT_OK(ferry_window_at(w, 20 * MIB + 50, 100, &q));
  ASSERT_TRUE((uint8_t *)q == (uint8_t *)p + 50);
  ASSERT_OK(ferry_window_close(w));

  /* the smallest window: one granule; any request up to it fits */
  o = wopts(1, 0);
  ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, &o));
  ASSERT_UEQ(ferry_window_max_len(w), gran());
  ASSERT_UEQ(gran(), os_granularity());
  for (n = 0; n < 2000; n++) {
    uint64_t len = 1 + rnd() % gran();
    uint64_t off = rnd() % (size - len + 1);
    check_at(w, off, len, 0, 5);
  }
  check_at(w, gran() - 1, gran(), 0, 5);
  ASSERT_ERR(ferry_window_at(w, 0, gran() + 1, &p), FERRY_ETOOBIG);
  ASSERT_OK(ferry_window_close(w));
  ASSERT_EQ(rm_file(path), 0);
}

/* ---------------------------------------------------------------------- */
/* Sequential walk against read()                                         */

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

#define FNV_START 0xcbf29ce484222325ull

/* FNV-1a of what reading F gives from offset OFF to its end. */
static uint64_t read_hash(tfile f, uint64_t off) {
  static uint8_t buf[64 * 1024];
  uint64_t h = FNV_START;
  size_t r;
  while ((r = tf_read_some(f, off, buf, sizeof buf)) > 0) {
    h = fnv(h, buf, r);
    off += r;
  }
  return h;
}

/* Walks W with ferry_window_next() to its end: FNV-1a of the bytes; *TOTAL
 * and *PIECES get the bytes and pieces seen. Every piece is 1 to
 * ferry_window_max_len() bytes. */
static uint64_t walk_hash(ferry_window *w, uint64_t *total, int *pieces) {
  uint64_t h = FNV_START, len;
  void *p;
  int rc;
  *total = 0;
  *pieces = 0;
  while ((rc = ferry_window_next(w, &p, &len)) > 0) {
    ASSERT_TRUE(len > 0 && len <= ferry_window_max_len(w));
    h = fnv(h, (const uint8_t *)p, (size_t)len);
    *total += len;
    ++*pieces;
  }
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(len, 0);
  return h;
}

static void test_sequential(void) {
  const uint64_t size = 40 * MIB + 4097 + 123, mid = 17 * MIB + 3;
  char path[4200];
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(3 * MIB + 5, 0);
  uint64_t whole, rest, total, len;
  void *p;
  tfile fd;
  int pieces;
  need_space(2 * size);
  tmp_path(path, sizeof path, "seq.bin");
  make_pattern_file(path, size, 9);
  fd = tf_open(path, 0);
  whole = read_hash(fd, 0);
  rest = read_hash(fd, mid);

  ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, &o));
  ASSERT_UEQ(walk_hash(w, &total, &pieces), whole);
  ASSERT_UEQ(total, size);
  ASSERT_TRUE(pieces >= 13);
  /* at the end it stays at the end */
  ASSERT_EQ(ferry_window_next(w, &p, &len), 0);
  ASSERT_EQ(len, 0);

  /* seek to an unaligned middle and walk the rest; at() in between does not
   * move the sequential position */
  ASSERT_OK(ferry_window_seek(w, mid));
  ASSERT_OK(ferry_window_at(w, 1, 10, &p));
  ASSERT_UEQ(walk_hash(w, &total, &pieces), rest);
  ASSERT_UEQ(total, size - mid);
  ASSERT_OK(ferry_window_seek(w, size));
  ASSERT_EQ(ferry_window_next(w, &p, &len), 0);
  ASSERT_ERR(ferry_window_seek(w, size + 1), FERRY_EINVAL);

  /* a walk that starts inside a view at() mapped (a granule longer than
   * the window) still gives pieces of at most the window, in order */
  ASSERT_OK(ferry_window_seek(w, 0));
  ASSERT_OK(ferry_window_at(w, 0, 1, &p));
  ASSERT_UEQ(walk_hash(w, &total, &pieces), whole);
  ASSERT_UEQ(total, size);
  ASSERT_OK(ferry_window_close(w));
  tf_close(fd);
  ASSERT_EQ(rm_file(path), 0);
}

/* ---------------------------------------------------------------------- */
/* Writes                                                                 */

static void test_write_persists(void) {
  const uint64_t size = 24 * MIB + 100;
  char path[4200];
  ferry_window *w = NULL, *r = NULL;
  ferry_window_opts o = wopts(MIB, 0);
  uint8_t buf[8192];
  uint64_t off, i, len, total = 0;
  void *p;
  tfile fd;
  int rc, n;
  need_space(2 * size);
  tmp_path(path, sizeof path, "write.bin");
  fd = make_sparse(path, size);
  ASSERT_OK(ferry_window_open(&w, path, 0, &o));
  /* fill everything sequentially through next() */
  while ((rc = ferry_window_next(w, &p, &len)) > 0) {
    for (i = 0; i < len; i++)
      ((uint8_t *)p)[i] = pat(total + i, 11);
    total += len;
  }
  ASSERT_EQ(rc, 0);
  ASSERT_UEQ(total, size);
  /* then overwrite scattered pieces (many across view ends) through at() */
  for (n = 0; n < 500; n++) {
    len = 1 + rnd() % 3000;
    off = n % 5 == 0 ? (rnd() % 24) * MIB - len / 2 : rnd() % (size - len);
    if (off + len > size || off > size)
      off = size - len;
    ASSERT_OK(ferry_window_at(w, off, len, &p));
    for (i = 0; i < len; i++)
      ((uint8_t *)p)[i] = pat(off + i, 12);
  }
  ASSERT_OK(ferry_window_at(w, size - 1, 1, &p));
  *(uint8_t *)p = 0x5a;
  ASSERT_OK(ferry_window_flush(w));
  ASSERT_OK(ferry_window_close(w));

  /* what read() sees is what the window wrote: every byte holds one of the
   * two patterns (the scattered writes overlap one another) */
  for (off = 0; off < size; off += sizeof buf) {
    size_t m = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
    read_at(fd, off, buf, m);
    for (i = 0; i < m; i++) {
      uint8_t b = buf[i];
      if (off + i == size - 1) {
        ASSERT_EQ(b, 0x5a);
      } else if (b != pat(off + i, 11) && b != pat(off + i, 12)) {
        TEST_FAIL("byte %llu: 0x%02x, written 0x%02x or 0x%02x",
                  (unsigned long long)(off + i), b, pat(off + i, 11),
                  pat(off + i, 12));
      }
    }
  }
  /* and another window, opened afterwards, sees the same */
  ASSERT_OK(ferry_window_open(&r, path, FERRY_RDONLY, NULL));
  ASSERT_OK(ferry_window_at(r, size - 1, 1, &p));
  ASSERT_EQ(*(uint8_t *)p, 0x5a);
  read_at(fd, 7 * MIB, buf, 100);
  ASSERT_OK(ferry_window_at(r, 7 * MIB, 100, &p));
  ASSERT_EQ(memcmp(p, buf, 100), 0);
  ASSERT_OK(ferry_window_flush(r)); /* read-only: nothing to do */
  ASSERT_OK(ferry_window_close(r));
  tf_close(fd);
  ASSERT_EQ(rm_file(path), 0);
}

/* Writes land where they were aimed: 4-byte words written through a small
 * window in a scattered order, each holding its own index, and nothing
 * else written. */
static void test_write_exact(void) {
  const uint64_t size = 8 * MIB, n = size / 4, step = 1000003; /* coprime */
  const uint64_t writes = 20000;
  char path[4200];
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(64 * KIB, 0);
  static uint32_t img[8 * MIB / 4];
  uint64_t k;
  uint32_t word;
  void *p;
  tfile fd;
  tmp_path(path, sizeof path, "exact.bin");
  fd = make_sparse(path, size);
  ASSERT_OK(ferry_window_open(&w, path, 0, &o));
  memset(img, 0, sizeof img);
  for (k = 0; k < writes; k++) {
    uint64_t idx = (k * step) % n;
    word = (uint32_t)idx | 0x80000000u;
    img[idx] = word;
    ASSERT_OK(ferry_window_at(w, idx * 4, 4, &p));
    memcpy(p, &word, 4);
  }
  ASSERT_OK(ferry_window_close(w)); /* no flush: unmapping is enough */
  for (k = 0; k < n; k += 4096 / 4) {
    uint32_t page[4096 / 4];
    read_at(fd, k * 4, page, sizeof page);
    if (memcmp(page, img + k, sizeof page) != 0)
      TEST_FAIL("the page at %llu differs from what was written",
                (unsigned long long)(k * 4));
  }
  tf_close(fd);
  ASSERT_EQ(rm_file(path), 0);
}

/* ---------------------------------------------------------------------- */
/* Segments                                                               */

static void test_named_segment(void) {
  const uint64_t size = 10 * MIB + 17;
  char name[64], absent[64];
  ferry_segment *s = NULL;
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(MIB, 0);
  uint8_t *d;
  uint64_t i, total = 0, len;
  void *p;
  int rc;
  test_name(name, sizeof name, "win");
  ASSERT_OK(
      ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, size, NULL));
  snprintf(made_seg, sizeof made_seg, "%s", name); /* removed at exit */
  d = (uint8_t *)ferry_segment_data(s);
  for (i = 0; i < size; i++)
    d[i] = pat(i, 21);

  ASSERT_OK(ferry_window_open_segment(&w, name, FERRY_RDONLY, &o));
  ASSERT_UEQ(ferry_window_size(w), size); /* the user data, not the object */
  check_at(w, 0, 100, 0, 21);
  check_at(w, 5 * MIB - 3, MIB, 0, 21);
  check_at(w, size - 10, 10, 0, 21);
  ASSERT_ERR(ferry_window_at(w, size - 10, 11, &p), FERRY_EINVAL);
  while ((rc = ferry_window_next(w, &p, &len)) > 0) {
    for (i = 0; i < len; i += 4099)
      ASSERT_EQ(((uint8_t *)p)[i], pat(total + i, 21));
    total += len;
  }
  ASSERT_EQ(rc, 0);
  ASSERT_UEQ(total, size);
  ASSERT_OK(ferry_window_close(w));

  /* read-write: writes show in the segment's mapping */
  ASSERT_OK(ferry_window_open_segment(&w, name, 0, &o));
  ASSERT_OK(ferry_window_at(w, 3 * MIB + 1, 8, &p));
  memcpy(p, "windowed", 8);
  ASSERT_OK(ferry_window_at(w, 0, 1, &p)); /* moves the view */
  *(uint8_t *)p = 0x77;
  ASSERT_EQ(memcmp(d + 3 * MIB + 1, "windowed", 8), 0);
  ASSERT_EQ(d[0], 0x77);
  ASSERT_OK(ferry_window_flush(w));
  ASSERT_OK(ferry_window_close(w));

  /* errors */
  ASSERT_ERR(ferry_window_open_segment(&w, "no/such", 0, NULL), FERRY_EINVAL);
  ASSERT_TRUE(w == NULL);
  test_name(absent, sizeof absent, "absent");
  ASSERT_ERR(ferry_window_open_segment(&w, absent, 0, NULL), FERRY_ENOENT);
  ASSERT_TRUE(w == NULL);
  /* unlinked before the last close (on Windows a named segment exists only
   * while a handle to it is open: unlink there checks that it exists) */
  ASSERT_OK(ferry_segment_unlink(name, 0));
  made_seg[0] = '\0';
  ASSERT_OK(ferry_segment_close(s));
}

static void test_file_segment(void) {
  char path[4200], plain[4200];
  ferry_segment *s = NULL;
  ferry_window *w = NULL;
  uint8_t *d;
  void *p;
  tfile fd;
  tmp_path(path, sizeof path, "win.seg");
  ASSERT_OK(ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                               3 * MIB, NULL));
  d = (uint8_t *)ferry_segment_data(s);
  memcpy(d + 2 * MIB, "file-backed", 11);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(
      ferry_window_open_segment(&w, path, FERRY_FILE | FERRY_RDONLY, NULL));
  ASSERT_UEQ(ferry_window_size(w), 3 * MIB);
  ASSERT_OK(ferry_window_at(w, 2 * MIB, 11, &p));
  ASSERT_EQ(memcmp(p, "file-backed", 11), 0);
  ASSERT_OK(ferry_window_close(w));
  /* a named segment's window refuses a file-backed one's header and back:
   * the kinds differ (here: a plain file is no segment at all) */
  tmp_path(plain, sizeof plain, "plain.bin");
  make_pattern_file(plain, 64 * KIB, 1);
  ASSERT_ERR(ferry_window_open_segment(&w, plain, FERRY_FILE, NULL),
             FERRY_EBADHDR);
  ASSERT_TRUE(w == NULL);
  fd = tf_open(plain, 0);
  ASSERT_EQ(tf_set_size(fd, 0), 0);
  tf_close(fd); /* now empty */
  ASSERT_ERR(ferry_window_open_segment(&w, plain, FERRY_FILE, NULL),
             FERRY_ESIZE);
  ASSERT_EQ(rm_file(plain), 0);
  ASSERT_OK(ferry_segment_unlink(path, FERRY_FILE));
}

/* A file-backed segment of 5 GiB of user data. Its header is made from a
 * small segment's (sizes changed, checksum recomputed), so that this works
 * in a 32-bit process too, which could not create it (create maps it). */
static void test_segment_over_4gib(void) {
  const uint64_t data = 5 * GIB + 3;
  char small[4200], path[4200];
  ferry_segment *s = NULL;
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(64 * MIB, 0);
  struct ferry_hdr h;
  uint64_t total;
  void *p;
  tfile fd;
  need_space(64 * MIB);
  tmp_path(small, sizeof small, "small.seg");
  tmp_path(path, sizeof path, "big.seg");
  ASSERT_OK(ferry_segment_open(
      &s, small, FERRY_FILE | FERRY_CREATE | FERRY_EXCL, 1, NULL));
  ASSERT_OK(ferry_segment_close(s));
  fd = tf_open(small, 0);
  read_at(fd, 0, &h, sizeof h);
  tf_close(fd);
  ASSERT_OK(ferry_segment_unlink(small, FERRY_FILE));
  total = (h.data_offset + data + 4095) / 4096 * 4096;
  h.total_size = total;
  h.data_size = data;
  h.header_crc = ferry__hdr_crc(&h, sizeof h);
  fd = make_sparse(path, total);
  write_at(fd, 0, &h, sizeof h);
  write_at(fd, h.data_offset + 4 * GIB + 1, "past four", 9);
  write_at(fd, h.data_offset + data - 4, "end!", 4);

  ASSERT_OK(ferry_window_open_segment(&w, path, FERRY_FILE, &o));
  ASSERT_UEQ(ferry_window_size(w), data);
  ASSERT_OK(ferry_window_at(w, 4 * GIB + 1, 9, &p));
  ASSERT_EQ(memcmp(p, "past four", 9), 0);
  ASSERT_OK(ferry_window_at(w, data - 4, 4, &p));
  ASSERT_EQ(memcmp(p, "end!", 4), 0);
  ASSERT_ERR(ferry_window_at(w, data - 4, 5, &p), FERRY_EINVAL);
  ASSERT_OK(ferry_window_at(w, 4 * GIB - 2, 4, &p));
  memcpy(p, "ABCD", 4);
  ASSERT_OK(ferry_window_close(w));
  {
    char buf[4];
    read_at(fd, h.data_offset + 4 * GIB - 2, buf, 4);
    ASSERT_EQ(memcmp(buf, "ABCD", 4), 0);
  }
  /* a header that disagrees with the file's size is refused */
  ASSERT_EQ(tf_set_size(fd, total + 4096), 0);
  ASSERT_ERR(ferry_window_open_segment(&w, path, FERRY_FILE, &o), FERRY_ESIZE);
  tf_close(fd);
  ASSERT_EQ(rm_file(path), 0);
}

/* ---------------------------------------------------------------------- */
/* Edges and errors                                                       */

static void test_empty_file(void) {
  char path[4200];
  ferry_window *w = NULL;
  uint64_t len = 99;
  void *p = NULL;
  tfile fd;
  tmp_path(path, sizeof path, "empty.bin");
  fd = tf_open(path, 1);
  ASSERT_UEQ(tf_size(fd), 0);
  tf_close(fd);
  ASSERT_OK(ferry_window_open(&w, path, 0, NULL));
  ASSERT_UEQ(ferry_window_size(w), 0);
  ASSERT_UEQ(ferry_window_max_len(w), 64 * MIB); /* the default */
  ASSERT_OK(ferry_window_at(w, 0, 0, &p));
  ASSERT_TRUE(p != NULL);
  ASSERT_ERR(ferry_window_at(w, 0, 1, &p), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_at(w, 1, 0, &p), FERRY_EINVAL);
  ASSERT_EQ(ferry_window_next(w, &p, &len), 0);
  ASSERT_EQ(len, 0);
  ASSERT_OK(ferry_window_seek(w, 0));
  ASSERT_ERR(ferry_window_seek(w, 1), FERRY_EINVAL);
  ASSERT_OK(ferry_window_flush(w));
  ASSERT_OK(ferry_window_close(w));
  ASSERT_EQ(rm_file(path), 0);
}

static void test_shrunk_file(void) {
  char path[4200];
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(MIB, 0);
  void *p;
  tfile fd;
  os_error e;
  tmp_path(path, sizeof path, "shrink.bin");
  make_pattern_file(path, 8 * MIB, 2);
  ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, &o));
  check_at(w, 0, 10, 0, 2); /* a view is mapped */
  fd = tf_open(path, 0);
  e = tf_set_size(fd, 2 * MIB);
#ifdef _WIN32
  if (e != 0) {
    /* Windows refuses to shrink a file while a view of it is mapped (Wine
     * allows it): then no access can fault. The whole file is still there
     * and the window serves all of it; once the window is closed, the file
     * shrinks. */
    ASSERT_EQ(e, ERROR_USER_MAPPED_FILE);
    ASSERT_UEQ(tf_size(fd), 8 * MIB);
    check_at(w, 6 * MIB, 10, 0, 2);
    check_at(w, 2 * MIB - 100, 10, 0, 2);
    check_at(w, 8 * MIB - MIB, MIB, 0, 2);
    check_at(w, MIB - 7, 100, 0, 2);
    ASSERT_UEQ(ferry_window_size(w), 8 * MIB);
    ASSERT_OK(ferry_window_close(w));
    ASSERT_EQ(tf_set_size(fd, 2 * MIB), 0);
    ASSERT_UEQ(tf_size(fd), 2 * MIB);
    tf_close(fd);
    ASSERT_EQ(rm_file(path), 0);
    return;
  }
#endif
  if (e != 0)
    TEST_FAIL("shrink %s to 2 MiB: %s", path, os_msg(e));
  ASSERT_UEQ(tf_size(fd), 2 * MIB);
  /* a view beyond the new end: an error, not SIGBUS */
  ASSERT_ERR(ferry_window_at(w, 6 * MIB, 10, &p), FERRY_ESIZE);
  ASSERT_CONTAINS(ferry_errmsg(), "shrank");
  ASSERT_ERR(ferry_window_at(w, 2 * MIB - 100, 10, &p), FERRY_ESIZE);
  /* views inside what is left still work; the size stays as at open */
  check_at(w, MIB - 7, 100, 0, 2);
  ASSERT_UEQ(ferry_window_size(w), 8 * MIB);
  ASSERT_OK(ferry_window_close(w));
  tf_close(fd);
  ASSERT_EQ(rm_file(path), 0);
}

/* Another process truncates the file while a view reaches past the new
 * end, and the caller reads through the view's pointer: zeros, not SIGBUS
 * (POSIX); the next call on the window says what happened, drops the view,
 * and later calls map views inside what is left. Windows refuses the
 * truncation. */
static void test_truncated_under_view(void) {
  char path[4200];
  ferry_window *w = NULL;
  ferry_window_opts o = wopts(4 * MIB, 0);
  volatile const uint8_t *v;
  void *p = NULL;
  int e;
  tmp_path(path, sizeof path, "cut.bin");
  make_pattern_file(path, 8 * MIB, 5);
  ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, &o));
  ASSERT_OK(ferry_window_at(w, 4 * MIB, 10, &p)); /* maps [4, 8) MiB */
  v = (volatile const uint8_t *)p;
  e = test_set_size_other(path, 5 * MIB);
#ifdef _WIN32
  if (e == 0) {
    ferry_window_close(w);
    test_skip("this Windows (Wine) let another process truncate a mapped "
              "file; Windows refuses that (ERROR_USER_MAPPED_FILE), so "
              "ferry does not guard Windows views");
  }
  if (e != ERROR_USER_MAPPED_FILE && e != ERROR_SHARING_VIOLATION)
    TEST_FAIL("truncating a mapped file: error %d", e);
  ASSERT_EQ(v[3 * MIB], pat(7 * MIB, 5)); /* all still there */
  check_at(w, 7 * MIB, 100, 0, 5);
#else
  ASSERT_EQ(e, 0);
  ASSERT_EQ(v[MIB / 2], pat(4 * MIB + MIB / 2, 5)); /* before the new end */
  ASSERT_EQ(v[2 * MIB], 0);                         /* beyond it: zeros */
  ASSERT_EQ(v[3 * MIB], 0);
  ASSERT_ERR(ferry_window_at(w, 4 * MIB, 10, &p), FERRY_ESIZE);
  ASSERT_CONTAINS(ferry_errmsg(), "truncated by another process");
  ASSERT_CONTAINS(ferry_errmsg(), "cut.bin");
  /* the view is gone; what is left can be read through new views */
  check_at(w, 0, 100, 0, 5);
  check_at(w, MIB - 3, 200, 0, 5);
  ASSERT_ERR(ferry_window_at(w, 6 * MIB, 10, &p), FERRY_ESIZE); /* too short */
  ASSERT_CONTAINS(ferry_errmsg(), "shrank");
#endif
  ASSERT_OK(ferry_window_close(w));
  ASSERT_EQ(rm_file(path), 0);
}

static void test_invalid_arguments(void) {
  char path[4200], missing[4200];
  ferry_window *w = NULL;
  ferry_window_opts o = FERRY_WINDOW_OPTS_INIT;
  uint64_t len;
  void *p;
  tmp_path(path, sizeof path, "args.bin");
  tmp_path(missing, sizeof missing, "missing.bin");
  make_pattern_file(path, 100 * KIB, 4);
  ASSERT_ERR(ferry_window_open(NULL, path, 0, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_open(&w, NULL, 0, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_open(&w, "", 0, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_open(&w, path, FERRY_CREATE, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_open(&w, missing, 0, NULL), FERRY_ENOENT);
  ASSERT_CONTAINS(ferry_errmsg(), "missing.bin");
  ASSERT_ERR(ferry_window_open(&w, test_tmpdir(), FERRY_RDONLY, NULL),
             FERRY_EINVAL); /* a directory */
  o.flags = 1u << 20;
  ASSERT_ERR(ferry_window_open(&w, path, 0, &o), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "unknown window flags");
  o = wopts(0, 0);
  o.seg_flags = FERRY_SEG_GLOBAL;
  ASSERT_ERR(ferry_window_open(&w, path, 0, &o), FERRY_EINVAL);
  o = wopts(UINT64_MAX, 0);
  ASSERT_ERR(ferry_window_open(&w, path, 0, &o), FERRY_ETOOBIG);
  if (sizeof(void *) == 4) { /* more than half of a 32-bit address space */
    o = wopts(3 * GIB, 0);
    ASSERT_ERR(ferry_window_open(&w, path, 0, &o), FERRY_ETOOBIG);
    ASSERT_CONTAINS(ferry_errmsg(), "32-bit");
  }
  o = wopts(0, 0);
  o.struct_size = 0;
  ASSERT_ERR(ferry_window_open(&w, path, 0, &o), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "FERRY_WINDOW_OPTS_INIT");
  ASSERT_ERR(ferry_window_open_segment(&w, path, FERRY_CREATE, NULL),
             FERRY_EINVAL);
  ASSERT_TRUE(w == NULL);

  ASSERT_OK(ferry_window_open(&w, path, 0, NULL));
  ASSERT_ERR(ferry_window_at(NULL, 0, 1, &p), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_at(w, 0, 1, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_next(w, NULL, &len), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_next(w, &p, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_seek(NULL, 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_window_flush(NULL), FERRY_EINVAL);
  ASSERT_UEQ(ferry_window_size(NULL), 0);
  ASSERT_UEQ(ferry_window_max_len(NULL), 0);
  ASSERT_OK(ferry_window_close(NULL));
  ASSERT_OK(ferry_window_close(w));

  /* a read-write window on a file that only allows reading */
  ASSERT_EQ(make_readonly(path), 0);
  if (!os_opens_for_writing(path)) {
    ASSERT_ERR(ferry_window_open(&w, path, 0, NULL), FERRY_EACCES);
    ASSERT_CONTAINS(ferry_errmsg(), "args.bin");
  }
  ASSERT_OK(ferry_window_open(&w, path, FERRY_RDONLY, NULL));
  check_at(w, 99 * KIB, KIB, 0, 4);
  ASSERT_OK(ferry_window_close(w));
  ASSERT_EQ(rm_file(path), 0);
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"six_gib", test_six_gib},
      {"random_access", test_random_access},
      {"sequential", test_sequential},
      {"write_persists", test_write_persists},
      {"write_exact", test_write_exact},
      {"named_segment", test_named_segment},
      {"file_segment", test_file_segment},
      {"segment_over_4gib", test_segment_over_4gib},
      {"empty_file", test_empty_file},
      {"shrunk_file", test_shrunk_file},
      {"truncated_under_view", test_truncated_under_view},
      {"invalid_arguments", test_invalid_arguments},
      {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
