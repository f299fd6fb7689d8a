/* The ferry benchmark (`ferry bench`, `make bench`): floors, baselines and
 * ferry's channels measured in one run, printed as a table or JSON. */
#ifndef FERRY_BENCH_H
#define FERRY_BENCH_H

/* Runs the benchmark with ARGV (argv[0] is the command's name; options
 * --json, --quick, --only LIST (a subset: TRANSPORT, TRANSPORT:TEST or
 * TRANSPORT:TEST:SIZE items), and the internal --role used for helper
 * processes). With --json, stdout holds exactly one JSON object; progress goes
 * to stderr. In "copy" rows msgs_per_s counts copies per second, in
 * "scan" and "scan_4k" rows scans of the whole file per second. Rows asked
 * for that this system cannot measure (the unix rows on Windows) are listed
 * in the table with their reason, and in the JSON object under
 * "unavailable" (transport, test, size, reason), a key present only then.
 * The kernel wake floor row is "futex" on Linux, "semaphore" on Windows
 * (ferry's wait points there). SELF_PREFIX:
 * the arguments that make this program run the benchmark again (e.g. {"bench",
 * NULL} inside the ferry CLI, {NULL} standalone); helper processes are started
 * as SELF SELF_PREFIX... --role ROLE .... Returns the process exit code. */
int ferry_bench_main(int argc, char **argv, const char *const *self_prefix);

#endif
