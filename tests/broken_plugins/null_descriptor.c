/* Fixture: swh_plugin_entry exists but returns NULL.
 * Expected: refused ("swh_plugin_entry returned NULL"), no crash. */
#include <swarmhost/swarmhost.h>

SWH_EXPORT const swh_plugin_descriptor *swh_plugin_entry(void) {
    return NULL;
}
