/* Negative control for the export check: a plugin whose entry point lacks
 * SWH_EXPORT. With --exclude-all-symbols (swarmhost_add_plugin) its DLL
 * exports nothing, so the host would report "no exported symbol" instead of
 * ld silently exporting every function. */
#include <swarmhost/swarmhost.h>

const swh_plugin_descriptor *swh_plugin_entry(void);
const swh_plugin_descriptor *swh_plugin_entry(void) {
    return 0;
}
