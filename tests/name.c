/* Description: segment name validation and the OS names derived from it. */
#include "test.h"

#include "error.h"
#include "os/os.h"

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

static void test_os_names_have_documented_prefixes(void) {
  char buf[128];
  ASSERT_OK(ferry_segment_os_name("cam", 0, buf, sizeof buf));
  ASSERT_STREQ(buf, "/ferry.cam");
  ASSERT_OK(
      ferry_os_object_name(FERRY_OS_NAME_SYNC, "cam", 0, buf, sizeof buf));
  ASSERT_STREQ(buf, "/ferry-sync.cam");
  ASSERT_ERR(ferry_segment_os_name("cam", 0, buf, 5), FERRY_EINVAL);
}

/* A segment's OS name and a sync object's OS name never collide, whatever
 * the two ferry names are: the prefixes differ ("ferry." vs "ferry-") and no
 * ferry name can contain the other prefix's distinguishing character at the
 * start. Checked over a set of adversarial pairs. */
static void test_segment_and_sync_names_never_collide(void) {
  static const char *const names[] = {
      "x", "sync", "sync.x", "-sync.x", "ferry", "ferry-sync.x", "a.b", NULL};
  const char *const *a, *const *b;
  for (a = names; *a; a++)
    for (b = names; *b; b++) {
      char seg[128], sync[128];
      if (ferry_name_check(*a) != 0 || ferry_name_check(*b) != 0)
        continue;
      ASSERT_OK(
          ferry_os_object_name(FERRY_OS_NAME_SEGMENT, *a, 0, seg, sizeof seg));
      ASSERT_OK(
          ferry_os_object_name(FERRY_OS_NAME_SYNC, *b, 0, sync, sizeof sync));
      ASSERT_TRUE(strcmp(seg, sync) != 0);
      ASSERT_TRUE(strncmp(seg, "/ferry.", 7) == 0);
      ASSERT_TRUE(strncmp(sync, "/ferry-sync.", 12) == 0);
    }
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
      {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
