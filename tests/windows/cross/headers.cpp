// The SDK's C headers and the C++ layer's edge helpers compile for Windows
// as C++20.
#include <swarmhost/cpp/edge.hpp>
#include <swarmhost/swarmhost.h>

static_assert(sizeof(swh_str) == 2 * sizeof(void *), "swh_str is {ptr,len} on LLP64 too");
