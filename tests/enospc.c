/* Description: a full tmpfs is FERRY_ENOSPC at create, with a message that says
 * how much is free and needed, and leaves nothing behind; segments that fit are
 * fully usable (no SIGBUS later). Runs in a private mount namespace with a
 * small tmpfs on /dev/shm (root only). On Windows: a named segment beyond the
 * commit limit (memory plus paging file) is FERRY_ENOSPC the same way. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "test.h"

#define MIB (1024ull * 1024ull)

#ifdef _WIN32
#include <windows.h>

#include "error.h"

/* A named segment far beyond the commit limit: FERRY_ENOSPC at create, with
 * the numbers, and nothing left behind; a segment that fits works. */
static void test_named_enospc(void) {
  char big[80], small[80], have[32];
  ferry_segment *s = (ferry_segment *)&s;
  MEMORYSTATUSEX ms;
  HANDLE probe;
  uint64_t size;
  int rc;
  ms.dwLength = sizeof ms;
  ASSERT_TRUE(GlobalMemoryStatusEx(&ms));
  /* The commit limit (ullTotalPageFile) is RAM plus the paging file, which
   * grows by default to at most three times RAM: four times RAM plus that
   * limit cannot be committed, and neither can 128 TiB (the whole user
   * address space of a 64-bit process) on any machine. */
  size = (4 * (ms.ullTotalPhys + ms.ullTotalPageFile)) & ~(uint64_t)0xfff;
  if (size < (1ull << 47))
    size = 1ull << 47;
  /* Does this system enforce the limit at all? Ask it directly first. */
  probe = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL,
                             PAGE_READWRITE | SEC_COMMIT, (DWORD)(size >> 32),
                             (DWORD)size, NULL);
  if (probe) {
    CloseHandle(probe);
    test_skip("this system does not enforce the commit limit: a %s section "
              "was committed with %s of commit available (Wine reserves no "
              "commit for sections, and its backing file system took a file "
              "this large)",
              ferry__fmt_bytes(size, big, sizeof big),
              ferry__fmt_bytes(ms.ullAvailPageFile, have, sizeof have));
  }
  test_name(big, sizeof big, "big");
  rc = ferry_segment_open(&s, big, FERRY_CREATE | FERRY_EXCL, size, NULL);
  ASSERT_ERR(rc, FERRY_ENOSPC);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), big);
  ASSERT_CONTAINS(ferry_errmsg(), "free");
  ASSERT_CONTAINS(ferry_errmsg(), "needed");
  /* nothing left behind */
  ASSERT_ERR(ferry_segment_open(&s, big, 0, 0, NULL), FERRY_ENOENT);
  /* the same through open-or-create */
  ASSERT_ERR(ferry_segment_open(&s, big, FERRY_CREATE, size, NULL),
             FERRY_ENOSPC);
  ASSERT_CONTAINS(ferry_errmsg(), "needed");
  ASSERT_ERR(ferry_segment_open(&s, big, 0, 0, NULL), FERRY_ENOENT);
  /* 1 MiB fits, and every byte of it can be written */
  test_name(small, sizeof small, "small");
  ASSERT_OK(
      ferry_segment_open(&s, small, FERRY_CREATE | FERRY_EXCL, MIB, NULL));
  memset(ferry_segment_data(s), 0xab, MIB);
  ASSERT_EQ(((uint8_t *)ferry_segment_data(s))[MIB - 1], 0xab);
  ASSERT_OK(ferry_segment_unlink(small, 0));
  ASSERT_OK(ferry_segment_close(s));
}

static void test_file_enospc(void) {
  test_posix_only("a small file system needs a tmpfs mounted in a private "
                  "mount namespace; Windows has no unprivileged equivalent (a "
                  "small virtual disk needs administrator rights), and "
                  "filling the real disk would disturb the whole machine");
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {{"named_enospc", test_named_enospc},
                                           {"file_enospc", test_file_enospc},
                                           {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}

#else /* POSIX */

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define TMPFS_OPTS "size=4m"

/* ---------------------------------------------------------------------- */
/* Helpers                                                                */

static uint64_t page_size(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }

static uint64_t free_bytes(const char *dir) {
  struct statvfs sv;
  if (statvfs(dir, &sv) != 0)
    TEST_FAIL("statvfs %s: %s", dir, strerror(errno));
  return (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
}

/* Number of entries in DIR other than "." and "..". */
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  if (!d)
    TEST_FAIL("opendir %s: %s", dir, strerror(errno));
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static int path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Errors that mean "this system does not let us", not a failure. */
static int not_allowed(int e) {
  return e == EPERM || e == EACCES || e == EINVAL || e == ENOSYS;
}

/* Enters a private mount namespace and mounts a 4 MiB tmpfs on DIR. Returns
 * 0, or TEST_SKIP (after saying why) when the system does not allow it.
 * (Anonymous segments live in the kernel's internal tmpfs, which cannot be
 * made small this way: they are not tested here.) */
static int small_tmpfs(const char *dir) {
  const char *what;
  int e;
  what = "unshare(CLONE_NEWNS)";
  if (unshare(CLONE_NEWNS) != 0)
    goto fail;
  what = "making all mounts private";
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
    goto fail;
  what = "mounting a tmpfs (" TMPFS_OPTS ")";
  if (mount("tmpfs", dir, "tmpfs", 0, TMPFS_OPTS) != 0)
    goto fail;
  return 0;
fail:
  e = errno;
  if (!not_allowed(e))
    TEST_FAIL("%s on %s: %s", what, dir, strerror(e));
  printf("skip: %s on %s: %s\n", what, dir, strerror(e));
  return TEST_SKIP;
}

/* A segment whose whole OS object takes TOTAL bytes (a multiple of the page
 * size, at least two pages). */
static uint64_t data_for_total(uint64_t total) { return total - 4096; }

/* ---------------------------------------------------------------------- */
/* Helper roles (they run in a private mount namespace of their own)      */

/* named: /dev/shm is a 4 MiB tmpfs. */
static int role_named(int argc, char **argv) {
  char big[80], small[80], fill_name[80], tiny[80], onebyte[80], path[160];
  ferry_segment *s = (ferry_segment *)&s, *one, *fill_seg, *tiny_seg;
  const uint64_t ps = page_size();
  uint64_t before, avail, fill_size;
  int rc;
  (void)argc;
  (void)argv;
  rc = small_tmpfs("/dev/shm");
  if (rc != 0)
    return rc;
  ASSERT_EQ(dir_entries("/dev/shm"), 0);
  before = free_bytes("/dev/shm");
  ASSERT_TRUE(before <= 4 * MIB && before > 2 * MIB);

  /* 16 MiB cannot fit: FERRY_ENOSPC at create, with the numbers */
  test_name(big, sizeof big, "big");
  snprintf(path, sizeof path, "/dev/shm/ferry.%s", big);
  ASSERT_ERR(
      ferry_segment_open(&s, big, FERRY_CREATE | FERRY_EXCL, 16 * MIB, NULL),
      FERRY_ENOSPC);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), "/dev/shm");
  ASSERT_CONTAINS(ferry_errmsg(), "free");
  ASSERT_CONTAINS(ferry_errmsg(), "needed");
  ASSERT_CONTAINS(ferry_errmsg(), "16 MiB");
  /* nothing left behind: no entry, no space used */
  ASSERT_TRUE(!path_exists(path));
  ASSERT_EQ(dir_entries("/dev/shm"), 0);
  ASSERT_UEQ(free_bytes("/dev/shm"), before);
  /* the same through open-or-create */
  ASSERT_ERR(ferry_segment_open(&s, big, FERRY_CREATE, 16 * MIB, NULL),
             FERRY_ENOSPC);
  ASSERT_CONTAINS(ferry_errmsg(), "needed");
  ASSERT_EQ(dir_entries("/dev/shm"), 0);
  ASSERT_UEQ(free_bytes("/dev/shm"), before);
  ASSERT_ERR(ferry_segment_open(&s, big, 0, 0, NULL), FERRY_ENOENT);

  /* 1 MiB fits, and every byte of it can be written */
  test_name(small, sizeof small, "small");
  ASSERT_OK(
      ferry_segment_open(&one, small, FERRY_CREATE | FERRY_EXCL, MIB, NULL));
  memset(ferry_segment_data(one), 0xab, MIB);
  ASSERT_TRUE(free_bytes("/dev/shm") <= before - MIB);

  /* Fill all but three pages, and write every byte of that. */
  avail = free_bytes("/dev/shm");
  ASSERT_TRUE(avail > 8 * ps);
  ASSERT_EQ(avail % ps, 0);
  fill_size = data_for_total(avail - 3 * ps);
  test_name(fill_name, sizeof fill_name, "fill");
  ASSERT_OK(ferry_segment_open(&fill_seg, fill_name, FERRY_CREATE | FERRY_EXCL,
                               fill_size, NULL));
  memset(ferry_segment_data(fill_seg), 0xcd, fill_size);
  ASSERT_UEQ(free_bytes("/dev/shm"), 3 * ps);

  /* Three pages do not hold a header page plus three data pages. */
  test_name(tiny, sizeof tiny, "tiny");
  ASSERT_ERR(
      ferry_segment_open(&s, tiny, FERRY_CREATE | FERRY_EXCL, 3 * ps, NULL),
      FERRY_ENOSPC);
  ASSERT_CONTAINS(ferry_errmsg(), "/dev/shm");
  ASSERT_CONTAINS(ferry_errmsg(), "free");
  ASSERT_CONTAINS(ferry_errmsg(), "needed");
  ASSERT_EQ(dir_entries("/dev/shm"), 2);
  ASSERT_UEQ(free_bytes("/dev/shm"), 3 * ps);
  /* but a header page plus two data pages do, exactly */
  ASSERT_OK(ferry_segment_open(&tiny_seg, tiny, FERRY_CREATE | FERRY_EXCL,
                               2 * ps, NULL));
  memset(ferry_segment_data(tiny_seg), 0xef, 2 * ps);
  ASSERT_UEQ(free_bytes("/dev/shm"), 0);
  /* now full: even one byte is ENOSPC */
  test_name(onebyte, sizeof onebyte, "onebyte");
  ASSERT_ERR(
      ferry_segment_open(&s, onebyte, FERRY_CREATE | FERRY_EXCL, 1, NULL),
      FERRY_ENOSPC);
  ASSERT_CONTAINS(ferry_errmsg(), "needed");
  ASSERT_EQ(dir_entries("/dev/shm"), 3);

  /* everything written is still there */
  ASSERT_EQ(((uint8_t *)ferry_segment_data(one))[MIB - 1], 0xab);
  ASSERT_EQ(((uint8_t *)ferry_segment_data(fill_seg))[fill_size - 1], 0xcd);
  ASSERT_EQ(((uint8_t *)ferry_segment_data(tiny_seg))[0], 0xef);
  ASSERT_OK(ferry_segment_close(one));
  ASSERT_OK(ferry_segment_close(fill_seg));
  ASSERT_OK(ferry_segment_close(tiny_seg));
  ASSERT_OK(ferry_segment_unlink(small, 0));
  ASSERT_OK(ferry_segment_unlink(fill_name, 0));
  ASSERT_OK(ferry_segment_unlink(tiny, 0));
  ASSERT_EQ(dir_entries("/dev/shm"), 0);
  ASSERT_UEQ(free_bytes("/dev/shm"), before);
  return 0;
}

/* file DIR: DIR (made by the parent) gets a 4 MiB tmpfs. */
static int role_file(int argc, char **argv) {
  char path[4200], ok_path[4200];
  ferry_segment *s = (ferry_segment *)&s;
  uint64_t before;
  int rc;
  if (argc < 1)
    return 2;
  rc = small_tmpfs(argv[0]);
  if (rc != 0)
    return rc;
  before = free_bytes(argv[0]);
  snprintf(path, sizeof path, "%s/big.seg", argv[0]);
  ASSERT_ERR(ferry_segment_open(&s, path,
                                FERRY_FILE | FERRY_CREATE | FERRY_EXCL,
                                16 * MIB, NULL),
             FERRY_ENOSPC);
  ASSERT_TRUE(s == NULL);
  ASSERT_CONTAINS(ferry_errmsg(), path);
  ASSERT_CONTAINS(ferry_errmsg(), "free");
  ASSERT_CONTAINS(ferry_errmsg(), "needed");
  ASSERT_TRUE(!path_exists(path));
  ASSERT_EQ(dir_entries(argv[0]), 0);
  ASSERT_UEQ(free_bytes(argv[0]), before);
  ASSERT_ERR(
      ferry_segment_open(&s, path, FERRY_FILE | FERRY_CREATE, 16 * MIB, NULL),
      FERRY_ENOSPC);
  ASSERT_TRUE(!path_exists(path));
  /* one that fits works, every byte of it */
  snprintf(ok_path, sizeof ok_path, "%s/ok.seg", argv[0]);
  ASSERT_OK(ferry_segment_open(
      &s, ok_path, FERRY_FILE | FERRY_CREATE | FERRY_EXCL, 2 * MIB, NULL));
  memset(ferry_segment_data(s), 0x5a, 2 * MIB);
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(ok_path, FERRY_FILE));
  ASSERT_EQ(dir_entries(argv[0]), 0);
  if (umount(argv[0]) != 0)
    TEST_FAIL("umount %s: %s", argv[0], strerror(errno));
  return 0;
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                  */

#define NEED_ROOT "needs root for a private mount namespace with a small tmpfs"

/* Runs ROLE in a helper process; its exit code. */
static int run_role(const char *role, const char *const *args) {
  long pid = test_spawn(role, args);
  return test_wait(pid, test_timeout_ms(120000));
}

static void test_named_enospc(void) {
  int code;
  if (!test_is_root())
    test_skip(NEED_ROOT);
  code = run_role("named", NULL);
  if (code == TEST_SKIP)
    test_skip("the system does not allow a private tmpfs (see above)");
  ASSERT_EQ(code, 0);
}

static void test_file_enospc(void) {
  char dir[4200];
  const char *args[2];
  int code;
  if (!test_is_root())
    test_skip(NEED_ROOT);
  snprintf(dir, sizeof dir, "%s/small", test_tmpdir());
  ASSERT_EQ(mkdir(dir, 0700), 0);
  args[0] = dir;
  args[1] = NULL;
  code = run_role("file", args);
  /* the tmpfs lived in the helper's namespace only: the directory here is
   * the plain empty one */
  ASSERT_EQ(dir_entries(dir), 0);
  ASSERT_EQ(rmdir(dir), 0);
  if (code == TEST_SKIP)
    test_skip("the system does not allow a private tmpfs (see above)");
  ASSERT_EQ(code, 0);
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {{"named_enospc", test_named_enospc},
                                           {"file_enospc", test_file_enospc},
                                           {NULL, NULL}};
  static const struct test_role roles[] = {
      {"named", role_named}, {"file", role_file}, {NULL, NULL}};
  return test_main(argc, argv, tests, roles);
}

#endif /* POSIX */
