//! Hand-written Rust declarations of the part of the swarmhost C ABI this
//! plugin uses (sdk/include/swarmhost/abi.h and middleware.h, ABI 1.0-1.3
//! members). Written by hand rather than generated with bindgen so that the
//! crate builds with nothing but rustc and cargo (bindgen needs libclang at
//! build time, or a registry crate). The names are the C names, so each item
//! can be checked against the header line by line; `cargo test` compares
//! every size and member offset with the C compiler's when SWH_C_LAYOUT is
//! set (tests/rust does that).
//!
//! Rules kept from the C headers: every struct is `#[repr(C)]` and starts
//! with `struct_size`; function pointers a host may leave NULL are `Option`;
//! only members this plugin reads need to exist in an older host's table,
//! which `end_of!` checks before use.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_void};

/// (offset, size) of member `$m` in `$t` (std's offset_of! needs Rust 1.77).
macro_rules! member_span {
    ($t:ty, $m:ident) => {{
        let probe = std::mem::MaybeUninit::<$t>::uninit();
        let base = probe.as_ptr();
        // addr_of! takes the address without reading or referencing the
        // uninitialised memory.
        #[allow(unused_unsafe)]
        let member = unsafe { std::ptr::addr_of!((*base).$m) };
        (member as usize - base as usize, size_of_pointee(member))
    }};
}

/// Offset of member `$m` in `$t`.
#[allow(unused_macros)] // used by the layout test
macro_rules! offset_of {
    ($t:ty, $m:ident) => {
        member_span!($t, $m).0
    };
}

/// Offset just past member `$m` of `$t`: a table whose struct_size is at
/// least this has the member (SWH_HAS_MEMBER in abi.h).
macro_rules! end_of {
    ($t:ty, $m:ident) => {{
        let (offset, size) = member_span!($t, $m);
        offset + size
    }};
}

/// Size of what `p` points to, without touching it.
pub fn size_of_pointee<T>(_p: *const T) -> usize {
    std::mem::size_of::<T>()
}

pub const SWH_ABI_VERSION_MAJOR: u16 = 1;

pub type swh_status = i32;
pub const SWH_OK: swh_status = 0;
pub const SWH_E_INVALID: swh_status = 1;
pub const SWH_E_UNSUPPORTED: swh_status = 6;
pub const SWH_E_INTERNAL: swh_status = 8;

pub const SWH_LOG_INFO: i32 = 2;
pub const SWH_KIND_MIDDLEWARE: u32 = 3;
pub const SWH_IFACE_MIDDLEWARE_V1: &[u8] = b"swh.middleware/1\0";

pub const SWH_CFG_STRING: u32 = 1;
pub const SWH_CFG_STRING_LIST: u32 = 5;

pub const SWH_STAGE_USER: u32 = 0x1;
pub const SWH_STAGE_ASSISTANT: u32 = 0x2;

pub type swh_time_us = i64;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct swh_str {
    pub ptr: *const c_char,
    pub len: usize,
}

#[repr(C)]
pub struct swh_config_field {
    pub struct_size: u32,
    pub key: *const c_char,
    pub r#type: u32,
    pub required: u32,
    pub default_json: *const c_char,
    pub description: *const c_char,
}

#[repr(C)]
pub struct swh_message {
    pub struct_size: u32,
    pub id: swh_str,
    pub session_id: swh_str,
    pub role: swh_str,
    pub content: swh_str,
    pub timestamp: swh_time_us,
    pub metadata_json: swh_str,
    pub provider_message_id: swh_str,
    pub provider_metadata_json: swh_str,
    pub structured_json: swh_str, // added in 1.3
}

/// Opaque: this plugin never reads a session row or the config directly.
pub enum swh_session {}
pub enum swh_config {}
pub enum swh_result_sink {}
pub enum swh_http_request {}
pub enum swh_http_sink {}

type ConfigString = unsafe extern "C" fn(*mut c_void, *const swh_config, *const c_char, *mut swh_str) -> swh_status;
type ConfigInt = unsafe extern "C" fn(*mut c_void, *const swh_config, *const c_char, *mut i64) -> swh_status;
type ConfigNumber = unsafe extern "C" fn(*mut c_void, *const swh_config, *const c_char, *mut f64) -> swh_status;
type ConfigBool = unsafe extern "C" fn(*mut c_void, *const swh_config, *const c_char, *mut i32) -> swh_status;
type ConfigListSize = unsafe extern "C" fn(*mut c_void, *const swh_config, *const c_char, *mut usize) -> swh_status;
type ConfigListString =
    unsafe extern "C" fn(*mut c_void, *const swh_config, *const c_char, usize, *mut swh_str) -> swh_status;

#[repr(C)]
pub struct swh_host_api {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub host_ctx: *mut c_void,
    pub log: Option<unsafe extern "C" fn(*mut c_void, i32, swh_str)>,
    pub now_us: Option<unsafe extern "C" fn(*mut c_void) -> swh_time_us>,
    pub new_id: Option<unsafe extern "C" fn(*mut c_void, *mut c_char)>,
    pub config_string: Option<ConfigString>,
    pub config_int: Option<ConfigInt>,
    pub config_number: Option<ConfigNumber>,
    pub config_bool: Option<ConfigBool>,
    pub config_list_size: Option<ConfigListSize>,
    pub config_list_string: Option<ConfigListString>,
    pub config_json: Option<unsafe extern "C" fn(*mut c_void, *const swh_config, *mut swh_str) -> swh_status>,
    pub metric_add: Option<unsafe extern "C" fn(*mut c_void, swh_str, swh_str, f64)>,
    pub publish_event: Option<unsafe extern "C" fn(*mut c_void, swh_str, swh_str)>,
    pub read_session: Option<unsafe extern "C" fn(*mut c_void, swh_str, *const swh_result_sink) -> swh_status>,
    // added in 1.1
    pub http_start: Option<
        unsafe extern "C" fn(*mut c_void, *const swh_http_request, *const swh_http_sink, *mut u64) -> swh_status,
    >,
    pub http_cancel: Option<unsafe extern "C" fn(*mut c_void, u64)>,
}

#[repr(C)]
pub struct swh_middleware_input {
    pub struct_size: u32,
    pub stage: u32,
    pub session: *const swh_session,
    pub message: *const swh_message,
    pub context_json: swh_str,
}

#[repr(C)]
pub struct swh_message_editor {
    pub struct_size: u32,
    pub ctx: *mut c_void,
    pub set_content: Option<unsafe extern "C" fn(*mut c_void, swh_str)>,
    pub merge_metadata: Option<unsafe extern "C" fn(*mut c_void, swh_str)>,
    pub reject: Option<unsafe extern "C" fn(*mut c_void, swh_str)>,
    pub set_structured: Option<unsafe extern "C" fn(*mut c_void, swh_str)>, // added in 1.3
}

#[repr(C)]
pub struct swh_chunk_emitter {
    pub struct_size: u32,
    pub ctx: *mut c_void,
    pub emit: Option<unsafe extern "C" fn(*mut c_void, swh_str)>,
    pub merge_metadata: Option<unsafe extern "C" fn(*mut c_void, swh_str)>,
}

pub type CreateFn = unsafe extern "C" fn(*const swh_host_api, *const swh_config, *mut *mut c_void) -> swh_status;
pub type ProcessFn =
    unsafe extern "C" fn(*mut c_void, *const swh_middleware_input, *const swh_message_editor) -> swh_status;
type OnErrorFn = unsafe extern "C" fn(*mut c_void, *const swh_middleware_input, swh_status, swh_str);
type StreamOpenFn = unsafe extern "C" fn(*mut c_void, *const swh_middleware_input, *mut *mut c_void) -> swh_status;
type StreamChunkFn = unsafe extern "C" fn(*mut c_void, *mut c_void, swh_str, *const swh_chunk_emitter) -> swh_status;
type StreamCloseFn = unsafe extern "C" fn(*mut c_void, *mut c_void, *const swh_chunk_emitter) -> swh_status;

#[repr(C)]
pub struct swh_middleware_v1 {
    pub struct_size: u32,
    pub create: Option<CreateFn>,
    pub destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    pub last_error: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
    pub stages: Option<unsafe extern "C" fn(*mut c_void) -> u32>,
    pub process: Option<ProcessFn>,
    pub on_error: Option<OnErrorFn>,
    pub stream_open: Option<StreamOpenFn>,
    pub stream_chunk: Option<StreamChunkFn>,
    pub stream_close: Option<StreamCloseFn>,
}

#[repr(C)]
pub struct swh_plugin_descriptor {
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub name: *const c_char,
    pub version: *const c_char,
    pub description: *const c_char,
    pub kind: u32,
    pub interface_id: *const c_char,
    pub config_schema: *const swh_config_field,
    pub config_field_count: usize,
    pub vtable: *const c_void,
}

// The descriptor, schema and table are immutable statics holding pointers to
// other statics; sharing them between threads is what the ABI expects.
unsafe impl Sync for swh_config_field {}
unsafe impl Sync for swh_middleware_v1 {}
unsafe impl Sync for swh_plugin_descriptor {}

/// Bytes of a borrowed swh_str; empty for a NULL pointer.
///
/// # Safety
/// `s` must point to `len` readable bytes for the lifetime the caller picks
/// (the duration of the ABI call that passed it).
pub unsafe fn bytes<'a>(s: swh_str) -> &'a [u8] {
    if s.ptr.is_null() || s.len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(s.ptr as *const u8, s.len)
    }
}

/// A swh_str borrowing `b` (valid while `b` is).
pub fn str_of(b: &[u8]) -> swh_str {
    swh_str { ptr: b.as_ptr() as *const c_char, len: b.len() }
}

#[cfg(test)]
mod layout {
    //! With SWH_C_LAYOUT set to the output of tests/rust/c_layout.c ("name
    //! value" lines: sizeof(T) as "T", offsetof(T, m) as "T.m"), compares
    //! every declaration above with the C compiler's view of the header.
    use super::*;
    use std::collections::HashMap;
    use std::mem::size_of;

    macro_rules! rust_layout {
        ($($t:ident { $($m:ident),* })*) => {{
            let mut out: Vec<(String, usize)> = Vec::new();
            $(
                out.push((stringify!($t).to_string(), size_of::<$t>()));
                $( out.push((format!("{}.{}", stringify!($t), stringify!($m).trim_start_matches("r#")),
                               offset_of!($t, $m))); )*
            )*
            out
        }};
    }

    fn rust_side() -> Vec<(String, usize)> {
        rust_layout! {
            swh_str { ptr, len }
            swh_config_field { key, r#type, required, default_json, description }
            swh_message { id, session_id, role, content, timestamp, metadata_json, provider_message_id,
                          provider_metadata_json, structured_json }
            swh_host_api { abi_major, abi_minor, host_ctx, log, now_us, new_id, config_string, config_int,
                           config_number, config_bool, config_list_size, config_list_string, config_json,
                           metric_add, publish_event, read_session, http_start, http_cancel }
            swh_middleware_input { stage, session, message, context_json }
            swh_message_editor { ctx, set_content, merge_metadata, reject, set_structured }
            swh_chunk_emitter { ctx, emit, merge_metadata }
            swh_middleware_v1 { create, destroy, last_error, stages, process, on_error, stream_open,
                                stream_chunk, stream_close }
            swh_plugin_descriptor { abi_major, abi_minor, name, version, description, kind, interface_id,
                                    config_schema, config_field_count, vtable }
        }
    }

    #[test]
    fn matches_the_c_headers() {
        let path = match std::env::var("SWH_C_LAYOUT") {
            Ok(p) => p,
            Err(_) => {
                eprintln!("SWH_C_LAYOUT not set: layout not compared (tests/rust sets it)");
                return;
            }
        };
        let text = std::fs::read_to_string(&path).expect("read SWH_C_LAYOUT");
        let c: HashMap<String, usize> = text
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                Some((it.next()?.to_string(), it.next()?.parse().ok()?))
            })
            .collect();
        let rust = rust_side();
        for (name, value) in &rust {
            assert_eq!(c.get(name), Some(value), "{}: C says {:?}, Rust {}", name, c.get(name), value);
        }
        assert_eq!(c.len(), rust.len(), "the C side lists items the Rust side does not check");
    }
}
