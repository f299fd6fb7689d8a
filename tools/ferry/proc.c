/* Process helpers for the ferry CLI and the tests (proc.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "proc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

static char self[MAX_PATH * 2];

void proc_init(const char *argv0) {
  DWORD n = GetModuleFileNameA(NULL, self, (DWORD)sizeof self);
  if (n == 0 || n >= sizeof self)
    snprintf(self, sizeof self, "%s", argv0);
}

/* Handles of started processes, until they are waited for. */
#define MAX_CHILDREN 1024
static struct {
  DWORD pid;
  HANDLE h;
} children[MAX_CHILDREN];
static SRWLOCK children_lock = SRWLOCK_INIT;

static HANDLE child_handle(long pid, int take) {
  HANDLE h = NULL;
  int i;
  AcquireSRWLockExclusive(&children_lock);
  for (i = 0; i < MAX_CHILDREN; i++)
    if (children[i].h && children[i].pid == (DWORD)pid) {
      h = children[i].h;
      if (take)
        children[i].h = NULL;
      break;
    }
  ReleaseSRWLockExclusive(&children_lock);
  return h;
}

/* Appends ARG to the command line at CMD (N used of CAP) quoted the way
 * CommandLineToArgvW and the C run-time split it. Returns the new length,
 * or CAP when it does not fit. */
static size_t quote_arg(char *cmd, size_t n, size_t cap, const char *arg) {
  const char *p;
  if (n && n < cap)
    cmd[n++] = ' ';
  if (n < cap)
    cmd[n++] = '"';
  for (p = arg;; p++) {
    size_t bs = 0, k;
    while (*p == '\\') {
      bs++;
      p++;
    }
    if (*p == '\0') { /* double the backslashes before the closing quote */
      for (k = 0; k < 2 * bs && n < cap; k++)
        cmd[n++] = '\\';
      break;
    }
    if (*p == '"') { /* double them, and escape the quote */
      for (k = 0; k < 2 * bs + 1 && n < cap; k++)
        cmd[n++] = '\\';
    } else {
      for (k = 0; k < bs && n < cap; k++)
        cmd[n++] = '\\';
    }
    if (n < cap)
      cmd[n++] = *p;
  }
  if (n < cap)
    cmd[n++] = '"';
  return n < cap ? n : cap;
}

static HANDLE redirect(const char *path, int write) {
  SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, TRUE};
  return CreateFileA(path, write ? GENERIC_WRITE : GENERIC_READ,
                     FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                     &sa, write ? CREATE_ALWAYS : OPEN_EXISTING,
                     FILE_ATTRIBUTE_NORMAL, NULL);
}

long proc_spawn(const char *path, const char *const *argv, const char *in,
                const char *out, const char *err) {
  static char cmd[32768];
  static SRWLOCK cmd_lock = SRWLOCK_INIT;
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  HANDLE hs[3] = {NULL, NULL, NULL};
  const char *files[3];
  size_t n = 0;
  int i, slot, ok;
  files[0] = in;
  files[1] = out;
  files[2] = err;
  memset(&si, 0, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
  si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
  si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
  for (i = 0; i < 3; i++) {
    if (!files[i])
      continue;
    hs[i] = redirect(files[i], i > 0);
    if (hs[i] == INVALID_HANDLE_VALUE) {
      fprintf(stderr, "cannot open %s: error %lu\n", files[i],
              (unsigned long)GetLastError());
      hs[i] = NULL;
      goto fail;
    }
  }
  if (hs[0])
    si.hStdInput = hs[0];
  if (hs[1])
    si.hStdOutput = hs[1];
  if (hs[2])
    si.hStdError = hs[2];
  AcquireSRWLockExclusive(&cmd_lock);
  for (; argv && *argv; argv++)
    n = quote_arg(cmd, n, sizeof cmd, *argv);
  if (n >= sizeof cmd) {
    ReleaseSRWLockExclusive(&cmd_lock);
    fprintf(stderr, "command line too long for %s\n", path);
    goto fail;
  }
  cmd[n] = '\0';
  fflush(NULL);
  /* Wine (8.0) now and then fails a CreateProcess with ERROR_INTERNAL_ERROR
   * ("failed to map the shared user data"); a new attempt succeeds. */
  for (i = 0;; i++) {
    ok = CreateProcessA(path, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    if (ok || GetLastError() != ERROR_INTERNAL_ERROR || i == 4)
      break;
    Sleep(10);
  }
  ReleaseSRWLockExclusive(&cmd_lock);
  if (!ok) {
    fprintf(stderr, "cannot start %s: error %lu\n", path,
            (unsigned long)GetLastError());
    goto fail;
  }
  CloseHandle(pi.hThread);
  for (i = 0; i < 3; i++)
    if (hs[i])
      CloseHandle(hs[i]);
  AcquireSRWLockExclusive(&children_lock);
  for (slot = 0; slot < MAX_CHILDREN && children[slot].h; slot++)
    ;
  if (slot < MAX_CHILDREN) {
    children[slot].pid = pi.dwProcessId;
    children[slot].h = pi.hProcess;
  }
  ReleaseSRWLockExclusive(&children_lock);
  if (slot == MAX_CHILDREN) {
    fprintf(stderr, "too many child processes\n");
    TerminateProcess(pi.hProcess, 137);
    CloseHandle(pi.hProcess);
    return -1;
  }
  return (long)pi.dwProcessId;
fail:
  for (i = 0; i < 3; i++)
    if (hs[i])
      CloseHandle(hs[i]);
  return -1;
}

int proc_wait(long pid, int64_t timeout_ms) {
  HANDLE h = child_handle(pid, 0);
  DWORD code = 255, r;
  if (!h)
    return -1;
  r = WaitForSingleObject(h, timeout_ms > 0x7ffffffe ? 0x7ffffffe
                                                     : (DWORD)timeout_ms);
  if (r != WAIT_OBJECT_0)
    return -1;
  GetExitCodeProcess(h, &code);
  child_handle(pid, 1);
  CloseHandle(h);
  return (int)(code & 0xff) == (int)code ? (int)code : 255;
}

void proc_kill_nowait(long pid) {
  HANDLE h = child_handle(pid, 0);
  if (h)
    TerminateProcess(h, 137);
}

void proc_kill(long pid) {
  HANDLE h = child_handle(pid, 1);
  if (h) {
    TerminateProcess(h, 137);
    WaitForSingleObject(h, INFINITE); /* a terminated process ends */
    CloseHandle(h);
  }
}

int64_t proc_now_ns(void) {
  LARGE_INTEGER c, f;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return (int64_t)((c.QuadPart / f.QuadPart) * 1000000000 +
                   (c.QuadPart % f.QuadPart) * 1000000000 / f.QuadPart);
}

void proc_sleep_ms(int64_t ms) {
  if (ms > 0)
    Sleep((DWORD)ms);
}

#else /* POSIX */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
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

long proc_spawn(const char *path, const char *const *argv, const char *in,
                const char *out, const char *err) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int rc = 0;
  posix_spawn_file_actions_init(&fa);
  if (in)
    rc = posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0);
  if (rc == 0 && out)
    rc = posix_spawn_file_actions_addopen(&fa, 1, out,
                                          O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (rc == 0 && err)
    rc = posix_spawn_file_actions_addopen(&fa, 2, err,
                                          O_WRONLY | O_CREAT | O_TRUNC, 0600);
  fflush(NULL);
  if (rc == 0)
    rc = posix_spawn(&pid, path, &fa, NULL, (char *const *)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    fprintf(stderr, "cannot start %s: %s\n", path, strerror(rc));
    return -1;
  }
  return (long)pid;
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
    proc_sleep_ms(1);
  }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return 255;
}

void proc_kill_nowait(long pid) { kill((pid_t)pid, SIGKILL); }

void proc_kill(long pid) {
  int status;
  kill((pid_t)pid, SIGKILL);
  waitpid((pid_t)pid, &status, 0);
}

int64_t proc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void proc_sleep_ms(int64_t ms) {
  struct timespec ts;
  if (ms <= 0)
    return;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000;
  nanosleep(&ts, NULL);
}

#endif

const char *proc_self(void) { return self; }

long proc_spawn_self(const char *const *argv) {
  const char *args[64];
  int n = 0;
  args[n++] = self;
  while (argv && *argv && n < 63)
    args[n++] = *argv++;
  args[n] = NULL;
  return proc_spawn(self, args, NULL, NULL, NULL);
}
