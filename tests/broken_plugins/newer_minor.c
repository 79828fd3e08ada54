/* Fixture: descriptor built for ABI minor SWH_ABI_VERSION_MINOR + 1, i.e. a
 * plugin newer than the host. Expected: refused (plugin minor > host minor). */
#include "stub_storage.h"

STUB_CREATE_OK
STUB_STORAGE_TABLE(table, stub_last_error);

static const swh_plugin_descriptor descriptor =
    STUB_DESCRIPTOR("newer_minor", SWH_ABI_VERSION_MAJOR, SWH_ABI_VERSION_MINOR + 1, SWH_KIND_STORAGE,
                    SWH_IFACE_STORAGE_V1, &table);

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
