/* Process helpers for the ferry CLI: POSIX implementation. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proc.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static char self[PATH_MAX];

void proc_init(const char *argv0) {
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0)
    self[n] = '\0';
  else if (!realpath(argv0, self))
    snprintf(self, sizeof self, "%s", argv0);
}

long proc_spawn_self(const char *const *argv) {
  const char *args[64];
  int n = 0, rc;
  pid_t pid;
  args[n++] = self;
  while (argv && *argv && n < 63)
    args[n++] = *argv++;
  args[n] = NULL;
  fflush(NULL);
  rc = posix_spawn(&pid, self, NULL, NULL, (char *const *)args, environ);
  if (rc != 0) {
    fprintf(stderr, "ferry: cannot start %s: %s\n", self, strerror(rc));
    return -1;
  }
  return (long)pid;
}

int64_t proc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int proc_wait(long pid, int64_t timeout_ms) {
  int64_t deadline = proc_now_ns() + timeout_ms * 1000000;
  int status;
  for (;;) {
    pid_t r = waitpid((pid_t)pid, &status, WNOHANG);
    if (r == (pid_t)pid)
      break;
    if (r < 0 && errno != EINTR)
      return -1;
    if (proc_now_ns() >= deadline)
      return -1;
    {
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 255;
}

void proc_kill(long pid) {
  int status;
  kill((pid_t)pid, SIGKILL);
  waitpid((pid_t)pid, &status, 0);
}
