//! redact — a swarmhost middleware in Rust (example).
//!
//! Replaces configured words with a replacement text in user messages AND in
//! replies (stages USER and ASSISTANT), recording {"redact":{"replaced":N}}
//! in the message metadata, and refuses a user message that contains a
//! blocked word (HTTP 422 "rejected").
//!
//! What it shows: the C ABI from Rust with no crate but std. The rules of
//! the boundary, as in the C and C++ examples:
//!   - only C types cross it (abi.rs, `#[repr(C)]`, checked against the C
//!     compiler's layout by `cargo test` in tests/rust);
//!   - no panic crosses it: every function the host calls runs its body in
//!     `guard`, which turns a panic into SWH_E_INTERNAL (unwinding into the
//!     host's C++ frames would be undefined behaviour);
//!   - memory is freed where it was allocated: the host copies what
//!     set_content / reject receive, the handle is a Box freed in `destroy`;
//!   - struct sizes are checked before a member is read (`end_of!`).
#[macro_use]
mod abi;
mod redact;

use abi::*;
use redact::{Redactor, Verdict};
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// One configured instance: the handle the host holds.
struct Instance {
    redactor: Redactor,
    /// The last failure, always a static NUL-terminated text, so a reader on
    /// another thread never sees a half-written one.
    error: AtomicPtr<c_char>,
}

impl Instance {
    fn fail(&self, why: &'static [u8], status: swh_status) -> swh_status {
        self.error.store(why.as_ptr() as *mut c_char, Ordering::Relaxed);
        status
    }
}

const NO_ERROR: &[u8] = b"\0";
const PANICKED: &[u8] = b"redact: panicked (caught at the ABI boundary)\0";

/// Runs `body`; None when it panicked (the panic stops here).
fn catch<T>(body: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(body)).ok()
}

/// Runs `body`; a panic becomes SWH_E_INTERNAL (and `last_error` says so).
fn guard(instance: Option<&Instance>, body: impl FnOnce() -> swh_status) -> swh_status {
    match (catch(body), instance) {
        (Some(status), _) => status,
        (None, Some(i)) => i.fail(PANICKED, SWH_E_INTERNAL),
        (None, None) => SWH_E_INTERNAL,
    }
}

// ------------------------------------------------------------------ config

/// A copy of string `key` (NUL-terminated bytes) of the create-only config.
unsafe fn config_string(host: &swh_host_api, cfg: *const swh_config, key: &[u8]) -> Option<Vec<u8>> {
    let get = host.config_string?;
    let mut out = swh_str { ptr: ptr::null(), len: 0 };
    if get(host.host_ctx, cfg, key.as_ptr() as *const c_char, &mut out) != SWH_OK {
        return None;
    }
    Some(bytes(out).to_vec())
}

/// Copies of the items of string-list `key`.
unsafe fn config_list(host: &swh_host_api, cfg: *const swh_config, key: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (size, item) = (host.config_list_size?, host.config_list_string?);
    let mut count = 0usize;
    if size(host.host_ctx, cfg, key.as_ptr() as *const c_char, &mut count) != SWH_OK {
        return None;
    }
    let mut items = Vec::with_capacity(count);
    for i in 0..count {
        let mut out = swh_str { ptr: ptr::null(), len: 0 };
        if item(host.host_ctx, cfg, key.as_ptr() as *const c_char, i, &mut out) != SWH_OK {
            return None;
        }
        items.push(bytes(out).to_vec());
    }
    Some(items)
}

unsafe fn read_config(host: &swh_host_api, cfg: *const swh_config) -> Option<Redactor> {
    Some(Redactor {
        words: config_list(host, cfg, b"words\0")?,
        replacement: config_string(host, cfg, b"replacement\0")?,
        blocked_words: config_list(host, cfg, b"blocked_words\0")?,
        panic_on: config_string(host, cfg, b"panic_on\0")?,
    })
}

// ------------------------------------------------------------------- table

/// Reads the config and logs; Err carries last_error's text and the status.
unsafe fn configure(
    host: *const swh_host_api,
    cfg: *const swh_config,
) -> Result<Redactor, (&'static [u8], swh_status)> {
    // Every member read below is a 1.0 member: an older 1.x host's smaller
    // table is fine as long as it reaches them.
    let host = match host.as_ref() {
        Some(h) if h.struct_size as usize >= end_of!(swh_host_api, config_list_string) => h,
        _ => return Err((b"redact: the host's table lacks the config accessors\0", SWH_E_UNSUPPORTED)),
    };
    let redactor = read_config(host, cfg).ok_or((&b"redact: cannot read the config\0"[..], SWH_E_INVALID))?;
    if let Some(log) = host.log {
        let line =
            format!("redact (Rust) ready: {} words, {} blocked", redactor.words.len(), redactor.blocked_words.len());
        log(host.host_ctx, SWH_LOG_INFO, str_of(line.as_bytes()));
    }
    Ok(redactor)
}

unsafe extern "C" fn create(host: *const swh_host_api, cfg: *const swh_config, out: *mut *mut c_void) -> swh_status {
    if out.is_null() {
        return SWH_E_INVALID;
    }
    let empty =
        Redactor { words: Vec::new(), replacement: Vec::new(), blocked_words: Vec::new(), panic_on: Vec::new() };
    let instance =
        Box::into_raw(Box::new(Instance { redactor: empty, error: AtomicPtr::new(NO_ERROR.as_ptr() as *mut c_char) }));
    *out = instance as *mut c_void; // also on failure: the host reads last_error, then destroys
    let instance = &mut *instance;
    match catch(|| configure(host, cfg)) {
        Some(Ok(redactor)) => {
            instance.redactor = redactor;
            SWH_OK
        }
        Some(Err((why, status))) => instance.fail(why, status),
        None => instance.fail(PANICKED, SWH_E_INTERNAL),
    }
}

unsafe extern "C" fn destroy(handle: *mut c_void) {
    if !handle.is_null() {
        // Allocated by Box in `create`, so freed by Box here.
        guard(None, || {
            drop(Box::from_raw(handle as *mut Instance));
            SWH_OK
        });
    }
}

unsafe extern "C" fn last_error(handle: *mut c_void) -> *const c_char {
    match (handle as *const Instance).as_ref() {
        Some(i) => i.error.load(Ordering::Relaxed),
        None => NO_ERROR.as_ptr() as *const c_char,
    }
}

unsafe extern "C" fn stages(_handle: *mut c_void) -> u32 {
    SWH_STAGE_USER | SWH_STAGE_ASSISTANT
}

/// [any-thread] Reads only the immutable Redactor.
unsafe extern "C" fn process(
    handle: *mut c_void,
    input: *const swh_middleware_input,
    editor: *const swh_message_editor,
) -> swh_status {
    let instance = match (handle as *const Instance).as_ref() {
        Some(i) => i,
        None => return SWH_E_INVALID,
    };
    guard(Some(instance), || {
        let (input, editor) = match (input.as_ref(), editor.as_ref()) {
            (Some(i), Some(e)) if e.struct_size as usize >= end_of!(swh_message_editor, reject) => (i, e),
            _ => return instance.fail(b"redact: no input or a too small editor table\0", SWH_E_INVALID),
        };
        let message = match input.message.as_ref() {
            Some(m) => m,
            None => return instance.fail(b"redact: no message\0", SWH_E_INVALID),
        };
        let verdict = instance.redactor.judge(bytes(message.content), input.stage & SWH_STAGE_USER != 0);
        apply(instance, verdict, editor)
    })
}

/// Hands the verdict to the host's editor (which copies what it receives).
unsafe fn apply(instance: &Instance, verdict: Verdict, editor: &swh_message_editor) -> swh_status {
    let missing = b"redact: the host's editor lacks a callback\0";
    match verdict {
        Verdict::Pass => SWH_OK,
        Verdict::Reject(word) => {
            let reject = match editor.reject {
                Some(f) => f,
                None => return instance.fail(missing, SWH_E_UNSUPPORTED),
            };
            let mut reason = b"contains a blocked word: ".to_vec();
            reason.extend_from_slice(&word);
            reject(editor.ctx, str_of(&reason));
            SWH_OK // a rejection is a result, not a failure
        }
        Verdict::Rewrite(text, count) => {
            let (set_content, merge) = match (editor.set_content, editor.merge_metadata) {
                (Some(s), Some(m)) => (s, m),
                _ => return instance.fail(missing, SWH_E_UNSUPPORTED),
            };
            set_content(editor.ctx, str_of(&text));
            let meta = format!("{{\"redact\":{{\"replaced\":{}}}}}", count);
            merge(editor.ctx, str_of(meta.as_bytes()));
            SWH_OK
        }
    }
}

// -------------------------------------------------------------- descriptor

const fn field(
    key: &'static [u8],
    ty: u32,
    default_json: &'static [u8],
    description: &'static [u8],
) -> swh_config_field {
    swh_config_field {
        struct_size: std::mem::size_of::<swh_config_field>() as u32,
        key: key.as_ptr() as *const c_char,
        r#type: ty,
        required: 0,
        default_json: default_json.as_ptr() as *const c_char,
        description: description.as_ptr() as *const c_char,
    }
}

static SCHEMA: [swh_config_field; 4] = [
    field(
        b"words\0",
        SWH_CFG_STRING_LIST,
        b"[]\0",
        b"Replace these (ASCII case-insensitive) in user messages and replies\0",
    ),
    field(b"replacement\0", SWH_CFG_STRING, b"\"[redacted]\"\0", b"Text that replaces each of `words`\0"),
    field(
        b"blocked_words\0",
        SWH_CFG_STRING_LIST,
        b"[]\0",
        b"Reject a user message containing any of these (case-insensitive)\0",
    ),
    field(
        b"panic_on\0",
        SWH_CFG_STRING,
        b"\"\"\0",
        b"Test hook: panic inside process on a message containing this (empty = off)\0",
    ),
];

static TABLE: swh_middleware_v1 = swh_middleware_v1 {
    struct_size: std::mem::size_of::<swh_middleware_v1>() as u32,
    create: Some(create),
    destroy: Some(destroy),
    last_error: Some(last_error),
    stages: Some(stages),
    process: Some(process),
    on_error: None,
    // No stream hooks: the host runs `process` on a streamed reply once it is complete.
    stream_open: None,
    stream_chunk: None,
    stream_close: None,
};

static DESCRIPTOR: swh_plugin_descriptor = swh_plugin_descriptor {
    struct_size: std::mem::size_of::<swh_plugin_descriptor>() as u32,
    abi_major: SWH_ABI_VERSION_MAJOR,
    abi_minor: 0, // the lowest minor whose members this plugin uses: only 1.0 ones
    name: b"redact\0".as_ptr() as *const c_char,
    version: b"0.1.0\0".as_ptr() as *const c_char,
    description: b"Redacts words in messages and replies, rejects blocked ones (Rust example)\0".as_ptr()
        as *const c_char,
    kind: SWH_KIND_MIDDLEWARE,
    interface_id: SWH_IFACE_MIDDLEWARE_V1.as_ptr() as *const c_char,
    config_schema: &SCHEMA as *const [swh_config_field; 4] as *const swh_config_field,
    config_field_count: 4,
    vtable: &TABLE as *const swh_middleware_v1 as *const c_void,
};

/// The one exported symbol. [main-thread] Allocates nothing, calls nothing.
#[no_mangle]
pub extern "C" fn swh_plugin_entry() -> *const swh_plugin_descriptor {
    &DESCRIPTOR
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(panic_on: &[u8]) -> Instance {
        let redactor = Redactor {
            words: vec![b"x".to_vec()],
            replacement: b"y".to_vec(),
            blocked_words: Vec::new(),
            panic_on: panic_on.to_vec(),
        };
        Instance { redactor, error: AtomicPtr::new(NO_ERROR.as_ptr() as *mut c_char) }
    }

    unsafe fn error_text(i: &Instance) -> String {
        std::ffi::CStr::from_ptr(last_error(i as *const Instance as *mut c_void)).to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_in_process_is_an_internal_error_not_an_unwind() {
        let i = instance(b"boom");
        let message = swh_message {
            struct_size: std::mem::size_of::<swh_message>() as u32,
            id: str_of(b""),
            session_id: str_of(b""),
            role: str_of(b"user"),
            content: str_of(b"say boom"),
            timestamp: 0,
            metadata_json: str_of(b"{}"),
            provider_message_id: str_of(b""),
            provider_metadata_json: str_of(b"{}"),
            structured_json: str_of(b""),
        };
        let input = swh_middleware_input {
            struct_size: std::mem::size_of::<swh_middleware_input>() as u32,
            stage: SWH_STAGE_USER,
            session: ptr::null(),
            message: &message,
            context_json: str_of(b"{}"),
        };
        let editor = swh_message_editor {
            struct_size: std::mem::size_of::<swh_message_editor>() as u32,
            ctx: ptr::null_mut(),
            set_content: None,
            merge_metadata: None,
            reject: None,
            set_structured: None,
        };
        unsafe {
            assert_eq!(error_text(&i), "");
            let status = process(&i as *const Instance as *mut c_void, &input, &editor);
            assert_eq!(status, SWH_E_INTERNAL);
            assert_eq!(error_text(&i), "redact: panicked (caught at the ABI boundary)");
        }
    }

    #[test]
    fn the_descriptor_names_a_middleware_with_its_schema() {
        let d = unsafe { &*swh_plugin_entry() };
        assert_eq!(d.kind, SWH_KIND_MIDDLEWARE);
        assert_eq!(d.config_field_count, SCHEMA.len());
        let name = unsafe { std::ffi::CStr::from_ptr(d.name) };
        assert_eq!(name.to_bytes(), b"redact");
    }
}
