/* Description: the shared library exports the public API and works on its
 * own (this program links libferry.so, not the static library). */
#include "test.h"

static void test_shared_roundtrip(void) {
  char name[64];
  ferry_segment *a = NULL, *b = NULL;
  ferry_segment_info info;
  test_name(name, sizeof name, "so");
  ASSERT_EQ(ferry_version(), FERRY_VERSION_HEX);
  ASSERT_OK(ferry_segment_open(&a, name, FERRY_CREATE | FERRY_EXCL, 100, NULL));
  memcpy(ferry_segment_data(a), "shared", 7);
  ASSERT_OK(ferry_segment_open(&b, name, FERRY_RDONLY, 0, NULL));
  ASSERT_STREQ((const char *)ferry_segment_data(b), "shared");
  ASSERT_OK(ferry_segment_get_info(b, &info, sizeof info));
  ASSERT_STREQ(info.name, name);
  ASSERT_EQ(info.readonly, 1);
  ASSERT_OK(ferry_segment_close(b));
  /* Unlinked while open (on Windows the object goes with its last handle,
   * so unlink only checks that it exists), then gone on every system. */
  ASSERT_OK(ferry_segment_unlink(name, 0));
  ASSERT_OK(ferry_segment_close(a));
  ASSERT_ERR(ferry_segment_unlink(name, 0), FERRY_ENOENT);
  ASSERT_STREQ(ferry_err_name(FERRY_ENOENT), "FERRY_ENOENT");
}

int main(int argc, char **argv) {
  static const struct test_case tests[] = {
      {"shared_roundtrip", test_shared_roundtrip}, {NULL, NULL}};
  return test_main(argc, argv, tests, NULL);
}
