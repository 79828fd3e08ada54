/* Fixture: kind says storage but interface_id says provider.
 * Expected: refused ("interface swh.provider/1 does not match kind storage"). */
#include "stub_storage.h"

STUB_CREATE_OK
STUB_STORAGE_TABLE(table, stub_last_error);

static const swh_plugin_descriptor descriptor =
    STUB_DESCRIPTOR("kind_mismatch", SWH_ABI_VERSION_MAJOR, SWH_ABI_VERSION_MINOR, SWH_KIND_STORAGE,
                    SWH_IFACE_PROVIDER_V1, &table);

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return &descriptor;
}
