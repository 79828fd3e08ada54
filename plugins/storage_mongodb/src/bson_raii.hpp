// Small RAII owners for the libbson/libmongoc C types the store uses, and
// typed reads of a document's fields. No mongocxx in Debian 12: the C API is
// wrapped here, and nothing else in the plugin frees a driver object.
#pragma once

#include <mongoc/mongoc.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace swh::mongodb {

// A document this code builds or a reply the driver fills. bson_init first:
// the driver's "reply" out-parameters overwrite storage without freeing it,
// and an initialised empty document owns no heap, so nothing leaks either way.
class Doc {
  public:
    Doc() noexcept { bson_init(&doc_); }
    ~Doc() { bson_destroy(&doc_); }
    Doc(const Doc &) = delete;
    Doc &operator=(const Doc &) = delete;

    bson_t *get() noexcept { return &doc_; }
    const bson_t *get() const noexcept { return &doc_; }

    Doc &str(const char *key, std::string_view value) {
        bson_append_utf8(&doc_, key, -1, value.data() != nullptr ? value.data() : "",
                         static_cast<int>(value.size()));
        return *this;
    }
    Doc &i64(const char *key, int64_t value) {
        bson_append_int64(&doc_, key, -1, value);
        return *this;
    }
    Doc &i32(const char *key, int32_t value) {
        bson_append_int32(&doc_, key, -1, value);
        return *this;
    }
    Doc &boolean(const char *key, bool value) {
        bson_append_bool(&doc_, key, -1, value);
        return *this;
    }
    Doc &oid(const char *key, const bson_oid_t &value) {
        bson_append_oid(&doc_, key, -1, &value);
        return *this;
    }
    Doc &date_ms(const char *key, int64_t ms_since_epoch) {
        bson_append_date_time(&doc_, key, -1, ms_since_epoch);
        return *this;
    }
    Doc &doc(const char *key, const Doc &child) {
        bson_append_document(&doc_, key, -1, child.get());
        return *this;
    }
    Doc &array(const char *key, const Doc &child) { // child's keys must be "0", "1", ...
        bson_append_array(&doc_, key, -1, child.get());
        return *this;
    }

  private:
    bson_t doc_;
};

// Reads of a document the driver returned; a missing or differently typed
// field reads as "" / 0 (numbers of any BSON numeric type are accepted).
inline std::string_view text_of(const bson_t *doc, const char *key) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_UTF8(&it)) return {};
    uint32_t length = 0;
    const char *value = bson_iter_utf8(&it, &length);
    return {value, length};
}

inline int64_t int_of(const bson_t *doc, const char *key) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_NUMBER(&it)) return 0;
    return bson_iter_as_int64(&it);
}

// The sub-document `key` of doc (e.g. findAndModify's "value"), or false when
// absent or null.
inline bool child_of(const bson_t *doc, const char *key, bson_t *out) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_DOCUMENT(&it)) return false;
    uint32_t length = 0;
    const uint8_t *data = nullptr;
    bson_iter_document(&it, &length, &data);
    return bson_init_static(out, data, length);
}

struct UriDeleter {
    void operator()(mongoc_uri_t *u) const noexcept { mongoc_uri_destroy(u); }
};
struct PoolDeleter {
    void operator()(mongoc_client_pool_t *p) const noexcept { mongoc_client_pool_destroy(p); }
};
struct CollectionDeleter {
    void operator()(mongoc_collection_t *c) const noexcept { mongoc_collection_destroy(c); }
};
struct CursorDeleter {
    void operator()(mongoc_cursor_t *c) const noexcept { mongoc_cursor_destroy(c); }
};
struct WriteConcernDeleter {
    void operator()(mongoc_write_concern_t *w) const noexcept { mongoc_write_concern_destroy(w); }
};
struct ReadPrefsDeleter {
    void operator()(mongoc_read_prefs_t *r) const noexcept { mongoc_read_prefs_destroy(r); }
};
struct FindAndModifyDeleter {
    void operator()(mongoc_find_and_modify_opts_t *o) const noexcept {
        mongoc_find_and_modify_opts_destroy(o);
    }
};

using Uri = std::unique_ptr<mongoc_uri_t, UriDeleter>;
using ClientPool = std::unique_ptr<mongoc_client_pool_t, PoolDeleter>;
using Collection = std::unique_ptr<mongoc_collection_t, CollectionDeleter>;
using Cursor = std::unique_ptr<mongoc_cursor_t, CursorDeleter>;
using WriteConcern = std::unique_ptr<mongoc_write_concern_t, WriteConcernDeleter>;
using ReadPrefs = std::unique_ptr<mongoc_read_prefs_t, ReadPrefsDeleter>;
using FindAndModifyOpts = std::unique_ptr<mongoc_find_and_modify_opts_t, FindAndModifyDeleter>;

// One client of the pool for the duration of one call (the driver's pool
// blocks while pool_size clients are out, and reconnects them itself).
class Lease {
  public:
    explicit Lease(mongoc_client_pool_t *pool) : pool_(pool), client_(mongoc_client_pool_pop(pool)) {}
    ~Lease() {
        if (client_ != nullptr) mongoc_client_pool_push(pool_, client_);
    }
    Lease(const Lease &) = delete;
    Lease &operator=(const Lease &) = delete;
    mongoc_client_t *get() const noexcept { return client_; }

  private:
    mongoc_client_pool_t *pool_;
    mongoc_client_t *client_;
};

} // namespace swh::mongodb
