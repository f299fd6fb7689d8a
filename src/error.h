/* Internal error helpers: the thread-local detail message behind
 * ferry_errmsg(). Used on slow paths only; hot paths return a code and touch
 * no thread-local state. */
#ifndef FERRY_ERROR_H
#define FERRY_ERROR_H

#include "ferry.h"

#if defined(__MINGW32__)
#define FERRY_PRINTF(f, a) __attribute__((format(gnu_printf, f, a)))
#elif defined(__GNUC__)
#define FERRY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FERRY_PRINTF(f, a)
#endif

/* Sets the thread's detail message from FMT and returns CODE, so that
 * `return ferry__err(FERRY_EINVAL, "bad %s", x);` reads as one step. */
int ferry__err(int code, const char *fmt, ...) FERRY_PRINTF(2, 3);

/* Prefixes the existing detail message with context ("open 'cam': " + old)
 * as the error travels up, and returns CODE. */
int ferry__err_ctx(int code, const char *fmt, ...) FERRY_PRINTF(2, 3);

/* Clears the detail message (at the start of a slow-path call). */
void ferry__err_clear(void);

/* Formats BYTES as "12 MiB" / "4.5 GiB" / "512 B" into BUF. */
const char *ferry__fmt_bytes(uint64_t bytes, char *buf, size_t cap);

#endif
