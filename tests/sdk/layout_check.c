/*
 * Compile-time ABI layout checks, in strict C99 (built as an object library
 * with the tree: a failed check breaks the build, not just a test).
 *
 * C99 has no _Static_assert (C11), and `-std=c99 -pedantic -Werror` rejects
 * it, so SWH_STATIC_ASSERT uses _Static_assert when the compiler is in C11+
 * mode and the negative-array-size typedef otherwise; both fail compilation
 * when the condition is false.
 */
#include <swarmhost/swarmhost.h>

#include <stddef.h>
#include <stdint.h>

#define SWH_CAT2(a, b) a##b
#define SWH_CAT(a, b) SWH_CAT2(a, b)
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define SWH_STATIC_ASSERT(cond, tag) _Static_assert(cond, #tag)
#else
#define SWH_STATIC_ASSERT(cond, tag) typedef char SWH_CAT(swh_static_assert_, tag)[(cond) ? 1 : -1]
#endif

/* swh_status and the fixed-width scalars of the ABI. */
SWH_STATIC_ASSERT(sizeof(swh_status) == 4, swh_status_is_4_bytes);
SWH_STATIC_ASSERT((swh_status)-1 < 0, swh_status_is_signed);
SWH_STATIC_ASSERT(sizeof(swh_time_us) == 8, swh_time_us_is_8_bytes);
SWH_STATIC_ASSERT((swh_time_us)-1 < 0, swh_time_us_is_signed);
SWH_STATIC_ASSERT(SWH_STATUS_LAST >= SWH_E_PERMISSION, status_last_covers_all);
SWH_STATIC_ASSERT(SWH_ABI_VERSION_MAJOR >= 1, abi_major_set);

/* swh_str is {ptr,len}. */
SWH_STATIC_ASSERT(offsetof(swh_str, ptr) == 0, swh_str_ptr_first);
SWH_STATIC_ASSERT(sizeof(((swh_str *)0)->len) == sizeof(size_t), swh_str_len_is_size_t);

/* Every public struct begins with a 4-byte struct_size at offset 0. */
#define SWH_PUBLIC_STRUCT(T)                                                                                 \
    SWH_STATIC_ASSERT(offsetof(T, struct_size) == 0, T##_struct_size_at_offset_0);                           \
    SWH_STATIC_ASSERT(sizeof(((T *)0)->struct_size) == 4, T##_struct_size_is_4_bytes);                       \
    SWH_STATIC_ASSERT((__typeof__(((T *)0)->struct_size))-1 > 0, T##_struct_size_unsigned);
#include "public_structs.inc"
#undef SWH_PUBLIC_STRUCT

/* The type of struct_size is exactly uint32_t: assigning its address to a
 * uint32_t* is a constraint violation (an error under -Werror) otherwise. */
#define SWH_PUBLIC_STRUCT(T)                                                                                 \
    static uint32_t *T##_struct_size_type(T *p) {                                                            \
        return &p->struct_size;                                                                              \
    }
#include "public_structs.inc"
#undef SWH_PUBLIC_STRUCT

/* The host side reads descriptor versions as 16-bit fields. */
SWH_STATIC_ASSERT(sizeof(((swh_plugin_descriptor *)0)->abi_major) == 2, descriptor_abi_major_16);
SWH_STATIC_ASSERT(sizeof(((swh_plugin_descriptor *)0)->abi_minor) == 2, descriptor_abi_minor_16);
SWH_STATIC_ASSERT(sizeof(((swh_host_api *)0)->abi_major) == 2, host_api_abi_major_16);

/* Reference the static helpers so -Wunused-function stays quiet; one external
 * symbol so the object is not an empty translation unit. */
int swh_layout_check_c99(void);
int swh_layout_check_c99(void) {
    int n = 0;
#define SWH_PUBLIC_STRUCT(T)                                                                                 \
    (void)T##_struct_size_type;                                                                              \
    ++n;
#include "public_structs.inc"
#undef SWH_PUBLIC_STRUCT
    return n;
}
