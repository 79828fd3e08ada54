/* Fixture: a valid shared object that exports no swh_plugin_entry.
 * Expected: the loader refuses it ("does not export swh_plugin_entry"). */
#include <swarmhost/swarmhost.h>

SWH_EXPORT int swh_not_a_plugin_answer(void);
SWH_EXPORT int swh_not_a_plugin_answer(void) {
    return 42;
}
