/* Prints the C compiler's layout of the structs the Rust example declares by
 * hand (examples/middleware_rust_redact/src/abi.rs): "T size" and "T.m
 * offset" lines, read by that crate's layout test through SWH_C_LAYOUT. */
#include <swarmhost/swarmhost.h>

#include <stdio.h>

#define SIZE(t) printf("%s %zu\n", #t, sizeof(t))
#define AT(t, m) printf("%s.%s %zu\n", #t, #m, offsetof(t, m))

int main(void) {
    SIZE(swh_str);
    AT(swh_str, ptr);
    AT(swh_str, len);
    SIZE(swh_config_field);
    AT(swh_config_field, key);
    AT(swh_config_field, type);
    AT(swh_config_field, required);
    AT(swh_config_field, default_json);
    AT(swh_config_field, description);
    SIZE(swh_message);
    AT(swh_message, id);
    AT(swh_message, session_id);
    AT(swh_message, role);
    AT(swh_message, content);
    AT(swh_message, timestamp);
    AT(swh_message, metadata_json);
    AT(swh_message, provider_message_id);
    AT(swh_message, provider_metadata_json);
    AT(swh_message, structured_json);
    SIZE(swh_host_api);
    AT(swh_host_api, abi_major);
    AT(swh_host_api, abi_minor);
    AT(swh_host_api, host_ctx);
    AT(swh_host_api, log);
    AT(swh_host_api, now_us);
    AT(swh_host_api, new_id);
    AT(swh_host_api, config_string);
    AT(swh_host_api, config_int);
    AT(swh_host_api, config_number);
    AT(swh_host_api, config_bool);
    AT(swh_host_api, config_list_size);
    AT(swh_host_api, config_list_string);
    AT(swh_host_api, config_json);
    AT(swh_host_api, metric_add);
    AT(swh_host_api, publish_event);
    AT(swh_host_api, read_session);
    AT(swh_host_api, http_start);
    AT(swh_host_api, http_cancel);
    SIZE(swh_middleware_input);
    AT(swh_middleware_input, stage);
    AT(swh_middleware_input, session);
    AT(swh_middleware_input, message);
    AT(swh_middleware_input, context_json);
    SIZE(swh_message_editor);
    AT(swh_message_editor, ctx);
    AT(swh_message_editor, set_content);
    AT(swh_message_editor, merge_metadata);
    AT(swh_message_editor, reject);
    AT(swh_message_editor, set_structured);
    SIZE(swh_chunk_emitter);
    AT(swh_chunk_emitter, ctx);
    AT(swh_chunk_emitter, emit);
    AT(swh_chunk_emitter, merge_metadata);
    SIZE(swh_middleware_v1);
    AT(swh_middleware_v1, create);
    AT(swh_middleware_v1, destroy);
    AT(swh_middleware_v1, last_error);
    AT(swh_middleware_v1, stages);
    AT(swh_middleware_v1, process);
    AT(swh_middleware_v1, on_error);
    AT(swh_middleware_v1, stream_open);
    AT(swh_middleware_v1, stream_chunk);
    AT(swh_middleware_v1, stream_close);
    SIZE(swh_plugin_descriptor);
    AT(swh_plugin_descriptor, abi_major);
    AT(swh_plugin_descriptor, abi_minor);
    AT(swh_plugin_descriptor, name);
    AT(swh_plugin_descriptor, version);
    AT(swh_plugin_descriptor, description);
    AT(swh_plugin_descriptor, kind);
    AT(swh_plugin_descriptor, interface_id);
    AT(swh_plugin_descriptor, config_schema);
    AT(swh_plugin_descriptor, config_field_count);
    AT(swh_plugin_descriptor, vtable);
    return 0;
}
