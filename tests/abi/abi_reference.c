/* The ABI reference object for `abidiff`: a shared library whose one
 * exported function takes a pointer to every public struct of the SDK, so
 * that abidw records the full layout of each (plugins themselves export only
 * swh_plugin_entry, through which a dump sees the descriptor but not the
 * kind tables behind its `const void *vtable`).
 *
 * Built twice: against the frozen 1.0 headers (tests/abi/sdk-1.0) to make
 * the stored baseline, and against the current headers in every test run;
 * .ci/abi-check compares the two. Never loaded by the daemon. */
#include <swarmhost/swarmhost.h>

__attribute__((visibility("default"))) void
swh_abi_reference(const swh_str *s, const swh_config_field *f, const swh_message *m, const swh_session *se,
                  const swh_result_sink *rs, const swh_host_api *h, const swh_plugin_descriptor *d,
                  const swh_storage_v1 *st, const swh_session_filter *sf, const swh_message_query *mq,
                  const swh_provider_v1 *pv, const swh_provider_request *pr, const swh_provider_sink *ps,
                  const swh_middleware_v1 *mw, const swh_middleware_input *mi, const swh_message_editor *me,
                  const swh_chunk_emitter *ce, const swh_hook_v1 *hk, const swh_event *ev,
                  const swh_session_type_v1 *ty, const swh_route *ro, const swh_route_request *rr,
                  const swh_route_response *rp);

void swh_abi_reference(const swh_str *s, const swh_config_field *f, const swh_message *m,
                       const swh_session *se, const swh_result_sink *rs, const swh_host_api *h,
                       const swh_plugin_descriptor *d, const swh_storage_v1 *st, const swh_session_filter *sf,
                       const swh_message_query *mq, const swh_provider_v1 *pv, const swh_provider_request *pr,
                       const swh_provider_sink *ps, const swh_middleware_v1 *mw,
                       const swh_middleware_input *mi, const swh_message_editor *me,
                       const swh_chunk_emitter *ce, const swh_hook_v1 *hk, const swh_event *ev,
                       const swh_session_type_v1 *ty, const swh_route *ro, const swh_route_request *rr,
                       const swh_route_response *rp) {
    (void)s, (void)f, (void)m, (void)se, (void)rs, (void)h, (void)d, (void)st, (void)sf, (void)mq, (void)pv;
    (void)pr, (void)ps, (void)mw, (void)mi, (void)me, (void)ce, (void)hk, (void)ev, (void)ty, (void)ro;
    (void)rr, (void)rp;
}

/* The structs ABI 1.4 added, in a function of their own: the one above keeps
 * the signature of the stored baselines. */
__attribute__((visibility("default"))) void
swh_abi_reference_1_4(const swh_event_query *q, const swh_event_sink *es, const swh_event_watcher *w);

void swh_abi_reference_1_4(const swh_event_query *q, const swh_event_sink *es, const swh_event_watcher *w) {
    (void)q, (void)es, (void)w;
}

/* The struct ABI 1.5 added (shared limits). */
__attribute__((visibility("default"))) void swh_abi_reference_1_5(const swh_lease *l);

void swh_abi_reference_1_5(const swh_lease *l) {
    (void)l;
}
