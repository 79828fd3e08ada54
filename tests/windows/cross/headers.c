/* The SDK's C headers compile for Windows as C99 (-pedantic -Werror), and
 * SWH_EXPORT is the DLL export attribute there. */
#include <swarmhost/swarmhost.h>

#ifndef _WIN32
#error "this file is only built by the mingw-w64 cross build"
#endif

SWH_EXPORT int swh_win_headers_c(void);
SWH_EXPORT int swh_win_headers_c(void) {
    return SWH_ABI_VERSION_MAJOR;
}
