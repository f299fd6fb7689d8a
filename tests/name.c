/* Description: segment name validation and the OS names derived from it. */
#include "test.h"

#include "error.h"
#include "os/os.h"

#ifdef _WIN32
#include <windows.h>
#endif

static void test_valid_names(void) {
  static const char *const ok[] = {"a",          "Z",       "0",      "cam0",
                                   "cam.frames", "a_b-c.d", "9lives", NULL};
  char longest[FERRY_NAME_MAX + 1];
  const char *const *n;
  for (n = ok; *n; n++)
    ASSERT_OK(ferry_name_check(*n));
  memset(longest, 'x', FERRY_NAME_MAX);
  longest[FERRY_NAME_MAX] = '\0';
  ASSERT_OK(ferry_name_check(longest));
}

static void test_invalid_names(void) {
  static const char *const bad[] = {
      "",        "has space", "a/b", "/abs",  "a\\b", "Global\\x",   "c:d",
      ".hidden", "-dash",     "_u",  "tab\t", "nl\n", "caf\xc3\xa9", "a*b",
      "a?b",     "a\"b",      NULL};
  char toolong[FERRY_NAME_MAX + 2];
  const char *const *n;
  for (n = bad; *n; n++) {
    ferry__err_clear();
    ASSERT_ERR(ferry_name_check(*n), FERRY_EINVAL);
    ASSERT_TRUE(ferry_errmsg()[0] != '\0');
  }
  ASSERT_ERR(ferry_name_check(NULL), FERRY_EINVAL);
  memset(toolong, 'x', FERRY_NAME_MAX + 1);
  toolong[FERRY_NAME_MAX + 1] = '\0';
  ASSERT_ERR(ferry_name_check(toolong), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "limit is 63");
  ASSERT_ERR(ferry_name_check("a b"), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "character 2");
}

static void test_invalid_names_rejected_by_every_entry_point(void) {
  ferry_segment *s = NULL;
  char buf[128];
  ASSERT_ERR(ferry_segment_open(&s, "a b", FERRY_CREATE, 64, NULL),
             FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_open(&s, "", 0, 0, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_open(&s, NULL, 0, 0, NULL), FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_unlink("../etc", 0), FERRY_EINVAL);
  ASSERT_ERR(ferry_segment_os_name("x/y", 0, buf, sizeof buf), FERRY_EINVAL);
  ASSERT_TRUE(s == NULL);
}

#ifdef _WIN32
#define SEG_PREFIX "Local\\ferry."
#define SYNC_PREFIX "Local\\ferry-sync."
#else
#define SEG_PREFIX "/ferry."
#define SYNC_PREFIX "/ferry-sync."
#endif

static void test_os_names_have_documented_prefixes(void) {
  char buf[128];
  ASSERT_OK(ferry_segment_os_name("cam", 0, buf, sizeof buf));
  ASSERT_STREQ(buf, SEG_PREFIX "cam");
  ASSERT_OK(
      ferry_os_object_name(FERRY_OS_NAME_SYNC, "cam", 0, buf, sizeof buf));
  ASSERT_STREQ(buf, SYNC_PREFIX "cam");
  ASSERT_OK(ferry_segment_os_name("cam", FERRY_SEG_GLOBAL, buf, sizeof buf));
#ifdef _WIN32
  ASSERT_STREQ(buf, "Global\\ferry.cam");
#else
  ASSERT_STREQ(buf, "/ferry.cam"); /* one namespace */
#endif
  ASSERT_ERR(ferry_segment_os_name("cam", 0, buf, 5), FERRY_EINVAL);
}

/* A segment's OS name and a sync object's OS name never collide, whatever
 * the two ferry names are: the prefixes differ ("ferry." vs "ferry-") and no
 * ferry name can contain the other prefix's distinguishing character at the
 * start. Wait points add ".INDEX" to their segment's name (Windows), so two
 * of them differ too. Checked over a set of adversarial pairs. */
static void test_segment_and_sync_names_never_collide(void) {
  static const char *const names[] = {
      "x", "sync", "sync.x", "-sync.x", "ferry", "ferry-sync.x", "a.b", NULL};
  const char *const *a, *const *b;
  for (a = names; *a; a++)
    for (b = names; *b; b++) {
      char seg[128], sync[128], wp[128], wpb[128], other[128];
      unsigned i;
      if (ferry_name_check(*a) != 0 || ferry_name_check(*b) != 0)
        continue;
      ASSERT_OK(
          ferry_os_object_name(FERRY_OS_NAME_SEGMENT, *a, 0, seg, sizeof seg));
      ASSERT_OK(
          ferry_os_object_name(FERRY_OS_NAME_SYNC, *b, 0, sync, sizeof sync));
      ASSERT_TRUE(strcmp(seg, sync) != 0);
      ASSERT_TRUE(strncmp(seg, SEG_PREFIX, strlen(SEG_PREFIX)) == 0);
      ASSERT_TRUE(strncmp(sync, SYNC_PREFIX, strlen(SYNC_PREFIX)) == 0);
      for (i = 0; i < 2; i++) { /* wait points 0 and 1 of segment b */
        snprintf(wpb, sizeof wpb, "%s.%u", *b, i);
        ASSERT_OK(
            ferry_os_object_name(FERRY_OS_NAME_SYNC, wpb, 0, wp, sizeof wp));
        ASSERT_TRUE(strcmp(seg, wp) != 0);
        if (strcmp(*a, *b) != 0) { /* no wait point of a equals one of b */
          snprintf(wpb, sizeof wpb, "%s.%u", *a, i);
          ASSERT_OK(ferry_os_object_name(FERRY_OS_NAME_SYNC, wpb, 0, other,
                                         sizeof other));
          ASSERT_TRUE(strcmp(other, wp) != 0);
        }
      }
    }
}

/* ---------------------------------------------------------------------- */
/* Windows: one namespace for sections, mutexes, events and semaphores.    */

#ifdef _WIN32
/* Another program's mutex under OSNAME (kept open until exit). */
static HANDLE squat(const char *osname) {
  HANDLE h = CreateMutexA(NULL, FALSE, osname);
  ASSERT_TRUE(h != NULL);
  ASSERT_TRUE(GetLastError() != ERROR_ALREADY_EXISTS);
  return h;
}
#endif

static void windows_only(void) {
#ifndef _WIN32
  test_skip("Windows kernel-object namespace: POSIX names segments only "
            "(futexes live in the segment), see segment tests for foreign "
            "objects under /dev/shm");
#endif
}

/* A mutex of another program holds a segment's would-be name: create and
 * open say so clearly; nothing is created. */
static void test_win_foreign_object_at_segment_name(void) {
  windows_only();
#ifdef _WIN32
  {
    char n[64], os[128];
    ferry_segment *s = NULL;
    ferry_channel *ch = NULL;
    HANDLE h;
    test_name(n, sizeof n, "clash");
    ASSERT_OK(ferry_segment_os_name(n, 0, os, sizeof os));
    h = squat(os);
    ASSERT_ERR(ferry_segment_open(&s, n, FERRY_CREATE | FERRY_EXCL, 4096, NULL),
               FERRY_EINVAL);
    ASSERT_CONTAINS(ferry_errmsg(), "not a file mapping");
    ASSERT_CONTAINS(ferry_errmsg(), os);
    ASSERT_ERR(ferry_segment_open(&s, n, 0, 0, NULL), FERRY_EINVAL);
    ASSERT_CONTAINS(ferry_errmsg(), "not a file mapping");
    ASSERT_ERR(ferry_segment_open(&s, n, FERRY_CREATE, 4096, NULL),
               FERRY_EINVAL);
    ASSERT_ERR(ferry_channel_open(&ch, n, FERRY_CREATE, FERRY_SENDER, NULL),
               FERRY_EINVAL);
    ASSERT_ERR(ferry_segment_unlink(n, 0), FERRY_EINVAL);
    ASSERT_TRUE(s == NULL && ch == NULL);
    CloseHandle(h); /* the name is free again: ferry can use it */
    ASSERT_OK(ferry_segment_open(&s, n, FERRY_CREATE | FERRY_EXCL, 4096, NULL));
    ASSERT_OK(ferry_segment_close(s));
  }
#endif
}

/* A mutex of another program holds the name of one of a channel's wait
 * points: opening the channel fails with a message naming the object, and
 * the channel works once the name is free. */
static void test_win_foreign_object_at_sync_names(void) {
  windows_only();
#ifdef _WIN32
  {
    unsigned i;
    for (i = 0; i < 2; i++) {
      char n[64], base[96], os[160];
      ferry_channel *ch = NULL, *rx = NULL;
      HANDLE h;
      char buf[8];
      size_t len;
      test_name(n, sizeof n, "wp");
      snprintf(base, sizeof base, "%s.%u", n, i);
      ASSERT_OK(
          ferry_os_object_name(FERRY_OS_NAME_SYNC, base, 0, os, sizeof os));
      h = squat(os);
      ASSERT_ERR(ferry_channel_open(&ch, n, FERRY_CREATE, FERRY_SENDER, NULL),
                 FERRY_EINVAL);
      ASSERT_CONTAINS(ferry_errmsg(), "not a semaphore");
      ASSERT_CONTAINS(ferry_errmsg(), os);
      ASSERT_TRUE(ch == NULL);
      CloseHandle(h);
      ASSERT_OK(ferry_channel_open(&ch, n, FERRY_CREATE, FERRY_SENDER, NULL));
      ASSERT_OK(ferry_channel_open(&rx, n, 0, FERRY_RECEIVER, NULL));
      ASSERT_OK(ferry_channel_send(ch, "ok", 3, 1000000000));
      ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 1000000000));
      ASSERT_STREQ(buf, "ok");
      ASSERT_OK(ferry_channel_close(rx));
      ASSERT_OK(ferry_channel_close(ch));
    }
  }
#endif
}

/* Another program's semaphore squats on a wait point's name with units in
 * it (ferry opens it: same kind). Waits then return early, but ferry re-checks
 * its condition after every wake-up: messages and timeouts stay right. */
static void test_win_foreign_semaphore_is_harmless(void) {
  windows_only();
#ifdef _WIN32
  {
    char n[64], base[96], os[160], buf[16];
    ferry_channel *tx = NULL, *rx = NULL;
    HANDLE h;
    size_t len;
    int i;
    test_name(n, sizeof n, "sem");
    snprintf(base, sizeof base, "%s.0", n);
    ASSERT_OK(ferry_os_object_name(FERRY_OS_NAME_SYNC, base, 0, os, sizeof os));
    h = CreateSemaphoreA(NULL, 500, 1000, os);
    ASSERT_TRUE(h != NULL);
    ASSERT_OK(ferry_channel_open(&tx, n, FERRY_CREATE, FERRY_SENDER, NULL));
    ASSERT_OK(ferry_channel_open(&rx, n, 0, FERRY_RECEIVER, NULL));
    /* Nothing to receive: the spurious units do not produce a message. */
    ASSERT_ERR(ferry_channel_recv(rx, buf, sizeof buf, &len, 20000000),
               FERRY_ETIMEDOUT);
    for (i = 0; i < 100; i++) {
      char m[16];
      snprintf(m, sizeof m, "m%d", i);
      ASSERT_OK(ferry_channel_send(tx, m, strlen(m) + 1, 1000000000));
      ASSERT_OK(ferry_channel_recv(rx, buf, sizeof buf, &len, 1000000000));
      ASSERT_STREQ(buf, m);
    }
    ASSERT_OK(ferry_channel_close(rx));
    ASSERT_OK(ferry_channel_close(tx));
    CloseHandle(h);
  }
#endif
}

/* A segment named like another segment's wait point ("c.0") and the
 * channel "c" live side by side. */
static void test_segment_named_like_a_wait_point(void) {
  char n[64], n0[80];
  ferry_channel *ch = NULL;
  ferry_segment *s = NULL;
  test_name(n, sizeof n, "c");
  snprintf(n0, sizeof n0, "%s.0", n);
  ASSERT_OK(ferry_channel_open(&ch, n, FERRY_CREATE, FERRY_SENDER, NULL));
  ASSERT_OK(ferry_segment_open(&s, n0, FERRY_CREATE | FERRY_EXCL, 4096, NULL));
  ASSERT_OK(ferry_channel_send(ch, "x", 1, 0));
  ASSERT_OK(ferry_segment_unlink(n0, 0)); /* while open: Windows lifetime */
  ASSERT_OK(ferry_segment_close(s));
  ASSERT_OK(ferry_segment_unlink(n, 0));
  ASSERT_OK(ferry_channel_close(ch));
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"valid_names", test_valid_names},
      {"invalid_names", test_invalid_names},
      {"invalid_names_rejected_by_every_entry_point",
       test_invalid_names_rejected_by_every_entry_point},
      {"os_names_have_documented_prefixes",
       test_os_names_have_documented_prefixes},
      {"segment_and_sync_names_never_collide",
       test_segment_and_sync_names_never_collide},
      {"win_foreign_object_at_segment_name",
       test_win_foreign_object_at_segment_name},
      {"win_foreign_object_at_sync_names",
       test_win_foreign_object_at_sync_names},
      {"win_foreign_semaphore_is_harmless",
       test_win_foreign_semaphore_is_harmless},
      {"segment_named_like_a_wait_point", test_segment_named_like_a_wait_point},
      {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
