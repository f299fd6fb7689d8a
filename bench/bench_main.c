/* Standalone benchmark program: the same as `ferry bench`. */
#include "../tools/ferry/proc.h"
#include "bench.h"

int main(int argc, char **argv) {
  static const char *const prefix[] = {(const char *)0};
  proc_init(argv[0]);
  return ferry_bench_main(argc, argv, prefix);
}
