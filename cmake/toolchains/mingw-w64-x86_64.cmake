# Cross-compiling for 64-bit Windows with Debian's mingw-w64 (package
# g++-mingw-w64-x86-64-posix, or the mingw-w64 metapackage):
#   cmake -S <plugin> -B build-win -DCMAKE_TOOLCHAIN_FILE=<swarmhost>/cmake/toolchains/mingw-w64-x86_64.cmake
# The "-posix" compilers use the POSIX thread model (winpthreads), which
# std::thread / std::mutex need in GCC 12; the "-win32" ones lack them.
# swarmhost_add_plugin() links such plugins statically (libgcc, libstdc++,
# winpthreads), so the .dll needs nothing but Windows' own DLLs.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(_swh_mingw x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${_swh_mingw}-gcc-posix)
set(CMAKE_CXX_COMPILER ${_swh_mingw}-g++-posix)
set(CMAKE_RC_COMPILER ${_swh_mingw}-windres)

# Headers and libraries come from the mingw sysroot only: Debian's own
# /usr/include is glibc's and must never leak into a Windows build.
set(CMAKE_FIND_ROOT_PATH /usr/${_swh_mingw})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
