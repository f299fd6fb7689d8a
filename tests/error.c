/* Description: error codes, names, messages and the thread-local detail. */
#include "test.h"

#include <pthread.h>

#include "error.h"

static void test_codes_distinct_and_named(void) {
  static const int codes[] = {
#define X(name, value, msg) FERRY_##name,
      FERRY_ERRNO_MAP(X)
#undef X
  };
  size_t i, j, n = sizeof codes / sizeof codes[0];
  for (i = 0; i < n; i++) {
    ASSERT_LT(codes[i], -1000); /* a range errno never reaches */
    ASSERT_TRUE(strncmp(ferry_err_name(codes[i]), "FERRY_E", 7) == 0);
    ASSERT_TRUE(strcmp(ferry_strerror(codes[i]), "unknown error") != 0);
    for (j = i + 1; j < n; j++)
      ASSERT_NE(codes[i], codes[j]);
  }
  ASSERT_STREQ(ferry_err_name(FERRY_EACCES), "FERRY_EACCES");
  ASSERT_STREQ(ferry_strerror(FERRY_ENOSPC),
               "not enough space for the segment");
  ASSERT_STREQ(ferry_err_name(0), "FERRY_OK");
  ASSERT_STREQ(ferry_err_name(12345), "FERRY_UNKNOWN");
  ASSERT_STREQ(ferry_strerror(-1), "unknown error");
}

static void test_detail_message_and_context(void) {
  ASSERT_EQ(ferry__err(FERRY_ENOSPC, "%s has %d MiB free", "/dev/shm", 12),
            FERRY_ENOSPC);
  ASSERT_STREQ(ferry_errmsg(), "/dev/shm has 12 MiB free");
  ASSERT_EQ(ferry__err_ctx(FERRY_ENOSPC, "create '%s'", "cam"), FERRY_ENOSPC);
  ASSERT_STREQ(ferry_errmsg(), "create 'cam': /dev/shm has 12 MiB free");
  ferry__err_clear();
  ASSERT_STREQ(ferry_errmsg(), "");
}

static void *other_thread(void *arg) {
  (void)arg;
  ferry__err(FERRY_EINVAL, "from the other thread");
  return NULL;
}

static void test_detail_is_thread_local(void) {
  pthread_t t;
  ferry__err(FERRY_EACCES, "mine");
  ASSERT_EQ(pthread_create(&t, NULL, other_thread, NULL), 0);
  ASSERT_EQ(pthread_join(t, NULL), 0);
  ASSERT_STREQ(ferry_errmsg(), "mine");
}

static void test_library_calls_set_detail(void) {
  ferry_segment *s = NULL;
  ASSERT_ERR(ferry_segment_open(&s, "no/such", 0, 0, NULL), FERRY_EINVAL);
  ASSERT_CONTAINS(ferry_errmsg(), "not allowed");
  ASSERT_TRUE(s == NULL);
}

static void test_bytes_format(void) {
  char b[32];
  ASSERT_STREQ(ferry__fmt_bytes(512, b, sizeof b), "512 B");
  ASSERT_STREQ(ferry__fmt_bytes(64ull << 20, b, sizeof b), "64 MiB");
  ASSERT_STREQ(ferry__fmt_bytes(3ull << 29, b, sizeof b), "1.5 GiB");
}

static void test_version(void) {
  ASSERT_EQ(ferry_version(), FERRY_VERSION_HEX);
  ASSERT_STREQ(ferry_version_string(), FERRY_VERSION_STRING);
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"codes_distinct_and_named", test_codes_distinct_and_named},
      {"detail_message_and_context", test_detail_message_and_context},
      {"detail_is_thread_local", test_detail_is_thread_local},
      {"library_calls_set_detail", test_library_calls_set_detail},
      {"bytes_format", test_bytes_format},
      {"version", test_version},
      {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
