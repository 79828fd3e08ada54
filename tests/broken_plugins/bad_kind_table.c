/* Fixture: a storage descriptor whose vtable is truncated: its struct_size
 * (and the object itself) covers only struct_size, create, destroy and
 * last_error, not the operations every swh_storage_v1 must have.
 * Expected: refused at load ("kind table too small"); the host must not read
 * past struct_size. */
#include "stub_storage.h"

STUB_CREATE_OK

typedef struct truncated_storage_table {
    uint32_t struct_size;
    swh_status (*create)(const swh_host_api *host, const swh_config *cfg, void **out_handle);
    void (*destroy)(void *handle);
    const char *(*last_error)(void *handle);
} truncated_storage_table;

static const truncated_storage_table table = {sizeof(truncated_storage_table), fixture_create, stub_destroy,
                                              stub_last_error};

static const swh_plugin_descriptor descriptor =
    STUB_DESCRIPTOR("bad_table", SWH_ABI_VERSION_MAJOR, SWH_ABI_VERSION_MINOR, SWH_KIND_STORAGE,
                    SWH_IFACE_STORAGE_V1, &table);

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
