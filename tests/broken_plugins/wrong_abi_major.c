/* Fixture: descriptor built for ABI major SWH_ABI_VERSION_MAJOR + 1.
 * Expected: refused before any call, naming both versions. */
#include "stub_storage.h"

STUB_CREATE_OK
STUB_STORAGE_TABLE(table, stub_last_error);

static const swh_plugin_descriptor descriptor =
    STUB_DESCRIPTOR("wrong_abi", SWH_ABI_VERSION_MAJOR + 1, SWH_ABI_VERSION_MINOR, SWH_KIND_STORAGE,
                    SWH_IFACE_STORAGE_V1, &table);

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
