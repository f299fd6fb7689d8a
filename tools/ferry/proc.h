/* Process helpers for the ferry CLI (demo, bench): start this program again
 * with other arguments, wait for it with a timeout, stop it. POSIX now; the
 * Windows port implements the same three functions with CreateProcess. */
#ifndef FERRY_TOOL_PROC_H
#define FERRY_TOOL_PROC_H

#include <stdint.h>

/* Remembers argv[0] so that proc_spawn_self can find this program. */
void proc_init(const char *argv0);

/* Starts this program with ARGV (NULL-terminated; argv[0] is supplied).
 * Returns a process id > 0, or -1 with a message on stderr. Standard
 * input/output/error are inherited. */
long proc_spawn_self(const char *const *argv);

/* Waits up to TIMEOUT_MS for process PID. Returns its exit code, 128 +
 * signal if a signal ended it, or -1 on timeout (the process is left
 * running: call proc_kill). */
int proc_wait(long pid, int64_t timeout_ms);

/* Kills process PID (SIGKILL / TerminateProcess) and reaps it. */
void proc_kill(long pid);

/* Monotonic nanoseconds. */
int64_t proc_now_ns(void);

#endif
