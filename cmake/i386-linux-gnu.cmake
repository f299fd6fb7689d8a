# 32-bit x86 (i386) Linux programs from an x86-64 host with gcc-multilib:
#   cmake -S . -B build-32 -DCMAKE_TOOLCHAIN_FILE=cmake/i386-linux-gnu.cmake
# (make build-32 / make test-32). The host runs what this builds, so it is not
# a cross build: ctest, the install test and the 32/64-bit interop test all
# run. Every compile and link gets -m32 (CMake then finds 32-bit libraries in
# the lib32 directories of Debian's multilib layout by itself).
set(CMAKE_C_FLAGS_INIT "-m32")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-m32")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-m32")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-m32")
