# Cross-compiling ferry for 64-bit Windows with mingw-w64 (Debian package
# gcc-mingw-w64-x86-64); the test suite then runs under Wine:
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/x86_64-w64-mingw32.cmake
#   ctest --test-dir build-win      (runs every test through wine)
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(FERRY_MINGW_TRIPLE x86_64-w64-mingw32)

find_program(CMAKE_C_COMPILER NAMES ${FERRY_MINGW_TRIPLE}-gcc-win32
                                    ${FERRY_MINGW_TRIPLE}-gcc REQUIRED)
find_program(CMAKE_RC_COMPILER NAMES ${FERRY_MINGW_TRIPLE}-windres)
set(CMAKE_FIND_ROOT_PATH /usr/${FERRY_MINGW_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# ctest and add_custom_command run the .exe files through Wine.
find_program(FERRY_WINE NAMES wine wine64)
if(FERRY_WINE)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${FERRY_WINE})
endif()
