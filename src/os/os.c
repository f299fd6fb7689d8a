/* Picks the OS backend. The one translation unit of src/os/ that CMake
 * compiles; the only place in ferry that asks which OS it is built for. */
#ifdef _WIN32
#include "win/os_win.c"
#else
#include "posix/os_posix.c"
#endif
