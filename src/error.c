/* Error codes, their names and messages (generated from FERRY_ERRNO_MAP),
 * and the thread-local detail message. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FERRY_ERRMSG_MAX 512

static _Thread_local char errmsg[FERRY_ERRMSG_MAX];

const char *ferry_strerror(int err) {
  switch (err) {
#define FERRY_STRERROR_CASE_(name, value, msg)                                 \
  case FERRY_##name:                                                           \
    return msg;
    FERRY_ERRNO_MAP(FERRY_STRERROR_CASE_)
#undef FERRY_STRERROR_CASE_
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

const char *ferry_err_name(int err) {
  switch (err) {
#define FERRY_ERRNAME_CASE_(name, value, msg)                                  \
  case FERRY_##name:                                                           \
    return "FERRY_" #name;
    FERRY_ERRNO_MAP(FERRY_ERRNAME_CASE_)
#undef FERRY_ERRNAME_CASE_
  case 0:
    return "FERRY_OK";
  default:
    return "FERRY_UNKNOWN";
  }
}

const char *ferry_errmsg(void) { return errmsg; }

void ferry__err_clear(void) { errmsg[0] = '\0'; }

int ferry__err(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errmsg, sizeof errmsg, fmt, ap);
  va_end(ap);
  return code;
}

int ferry__err_ctx(int code, const char *fmt, ...) {
  char old[FERRY_ERRMSG_MAX];
  size_t n;
  va_list ap;
  memcpy(old, errmsg, sizeof old);
  va_start(ap, fmt);
  vsnprintf(errmsg, sizeof errmsg, fmt, ap);
  va_end(ap);
  n = strlen(errmsg);
  if (old[0] != '\0' && n + 3 < sizeof errmsg) {
    size_t room = sizeof errmsg - n - 3, len = strlen(old);
    if (len > room)
      len = room; /* keep the newest context; truncate the oldest detail */
    memcpy(errmsg + n, ": ", 2);
    memcpy(errmsg + n + 2, old, len);
    errmsg[n + 2 + len] = '\0';
  }
  return code;
}

const char *ferry__fmt_bytes(uint64_t bytes, char *buf, size_t cap) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = (double)bytes;
  unsigned u = 0;
  while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
    v /= 1024.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
  else if (v < 10.0 && v != (double)(uint64_t)v)
    snprintf(buf, cap, "%.1f %s", v, units[u]);
  else
    snprintf(buf, cap, "%.0f %s", v, units[u]);
  return buf;
}

unsigned ferry_version(void) { return FERRY_VERSION_HEX; }

const char *ferry_version_string(void) { return FERRY_VERSION_STRING; }
