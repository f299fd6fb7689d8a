/* A program outside the ferry tree, built against an installed ferry. */
#include <ferry.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  char name[64];
  ferry_segment *s;
  int rc;
  snprintf(name, sizeof name, "consumer-%ld", (long)getpid());
  rc = ferry_segment_open(&s, name, FERRY_CREATE | FERRY_EXCL, 64, NULL);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", ferry_err_name(rc), ferry_errmsg());
    return 1;
  }
  memcpy(ferry_segment_data(s), "ok", 3);
  printf("ferry %s: %s\n", ferry_version_string(),
         (const char *)ferry_segment_data(s));
  ferry_segment_close(s);
  return ferry_segment_unlink(name, 0) == 0 ? 0 : 1;
}
