/* ferry version numbers. The library's run-time version is ferry_version(). */
#ifndef FERRY_VERSION_H
#define FERRY_VERSION_H

#define FERRY_VERSION_MAJOR 0
#define FERRY_VERSION_MINOR 1
#define FERRY_VERSION_PATCH 0

#define FERRY_VERSION_STRING_(a, b, c) #a "." #b "." #c
#define FERRY_VERSION_STRING_X(a, b, c) FERRY_VERSION_STRING_(a, b, c)
#define FERRY_VERSION_STRING                                                   \
  FERRY_VERSION_STRING_X(FERRY_VERSION_MAJOR, FERRY_VERSION_MINOR,             \
                         FERRY_VERSION_PATCH)

/* (major << 16) | (minor << 8) | patch, as ferry_version() returns it. */
#define FERRY_VERSION_HEX                                                      \
  ((FERRY_VERSION_MAJOR << 16) | (FERRY_VERSION_MINOR << 8) |                  \
   FERRY_VERSION_PATCH)

#endif
