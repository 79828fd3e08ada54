// The same ABI layout checks seen from C++20 (what a C++ plugin or the host
// compiles): struct_size is exactly uint32_t at offset 0, and every public
// struct is standard-layout and trivially copyable, so C and C++ agree on it.
#include <swarmhost/swarmhost.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

static_assert(sizeof(swh_status) == 4);
static_assert(std::is_same_v<swh_status, std::int32_t>);
static_assert(std::is_same_v<swh_time_us, std::int64_t>);
static_assert(std::is_standard_layout_v<swh_str> && std::is_trivially_copyable_v<swh_str>);

#define SWH_PUBLIC_STRUCT(T)                                                                                 \
    static_assert(std::is_standard_layout_v<T>, #T " must be standard-layout");                              \
    static_assert(std::is_trivially_copyable_v<T>, #T " must be trivially copyable");                        \
    static_assert(offsetof(T, struct_size) == 0, #T ".struct_size must be at offset 0");                     \
    static_assert(std::is_same_v<decltype(T::struct_size), std::uint32_t>,                                   \
                  #T ".struct_size must be uint32_t");
#include "public_structs.inc"
#undef SWH_PUBLIC_STRUCT

int swh_layout_check_cxx20() {
    return 0;
}
