/* Process helpers shared by the ferry CLI (demo, bench) and the test
 * harness: start a program (or this one again) with arguments and optional
 * redirections, wait for it with a timeout, kill it. POSIX uses posix_spawn
 * and waitpid; Windows uses CreateProcess and the process handle, kept in a
 * table keyed by process id until the process has been waited for. */
#ifndef FERRY_TOOL_PROC_H
#define FERRY_TOOL_PROC_H

#include <stdint.h>

/* Remembers this program's path (from the OS, else ARGV0). */
void proc_init(const char *argv0);

/* This program's path, as proc_init found it. */
const char *proc_self(void);

/* Starts PATH with ARGV (NULL-terminated, argv[0] included). IN, OUT and
 * ERR, when not NULL, name files that become standard input (read), output
 * and error (created or truncated); otherwise they are inherited. Returns a
 * process id > 0, or -1 with a message on stderr. */
long proc_spawn(const char *path, const char *const *argv, const char *in,
                const char *out, const char *err);

/* Starts this program with ARGV (NULL-terminated; argv[0] is supplied),
 * inheriting standard input, output and error. */
long proc_spawn_self(const char *const *argv);

/* Waits up to TIMEOUT_MS for process PID. Returns its exit code, 128 +
 * signal if a signal ended it (a process killed with proc_kill: 137 on
 * every system), or -1 on timeout (the process is left running: call
 * proc_kill). */
int proc_wait(long pid, int64_t timeout_ms);

/* Kills process PID (SIGKILL / TerminateProcess with exit code 137) and
 * reaps it. */
void proc_kill(long pid);

/* Kills process PID like proc_kill but leaves it to proc_wait, which then
 * returns 137. */
void proc_kill_nowait(long pid);

/* Monotonic nanoseconds. */
int64_t proc_now_ns(void);

/* Sleeps about MS milliseconds. */
void proc_sleep_ms(int64_t ms);

#endif
