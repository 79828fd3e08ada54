// The daemon's own routes as data: the dispatcher (http/api.cpp) finds a
// request's route here and nowhere else, and GET /v1/admin/routes reports
// the same table (with each session type's routes), so that a tenancy test
// generated from the report covers a route the day it is added.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swh::http {

enum class RouteId {
    Healthz,
    Metrics,
    Plugins,
    Models,
    ModelGet,
    Providers,
    ProviderGet,
    ProviderPatch,
    AdminReload,
    AdminManifestCheck,
    AdminRoutes,
    AdminTraffic,
    Budgets,
    ChatCompletions,
    AnthropicMessages,
    SessionsCreate,
    SessionsList,
    SessionGet,
    SessionPatch,
    SessionDelete,
    SessionArchive,
    SessionEvents,
    SessionBudget,
    MessagesList,
    MessagesSend,
    // The OpenAI Responses and Conversations doors (http/openai_responses.hpp).
    ResponsesCreate,
    ResponseGet,
    ResponseDelete,
    ResponseInputItems,
    ConversationsCreate,
    ConversationGet,
    ConversationUpdate,
    ConversationDelete,
    ConversationItemsList,
    ConversationItemsCreate,
    ConversationItemGet,
    ConversationItemDelete,
};

// Where a route finds the session it acts on.
enum class SessionScope {
    None,   // no one session
    Path,   // /v1/sessions/{id}/...
    Header, // X-Swarmhost-Session (optional: without it the route stores nothing)
    // The session an OpenAI object id names (conversation/openai_ids.hpp):
    Response,     // /v1/responses/{response_id}: resp_<session><message>
    Conversation, // /v1/conversations/{conversation_id}: conv_<session>
    // The body's previous_response_id or conversation (optional: without
    // them POST /v1/responses starts a new chain).
    Body,
};

// Who may call a route beyond the session rules (docs/security.md).
enum class Caller { Anyone, User, Admin };

struct HostRoute {
    RouteId id;
    std::string_view method;
    std::string_view path; // after the leading '/'; "{name}" matches one segment
    SessionScope session;
    std::string_view action; // SWH_ACTION_* the route needs on its session ("" = none)
    Caller caller;
};

// Segments of the table's paths; "{...}" matches any one segment.
inline constexpr std::array<HostRoute, 37> kHostRoutes{{
    {RouteId::Healthz, "GET", "healthz", SessionScope::None, "", Caller::Anyone},
    {RouteId::Metrics, "GET", "metrics", SessionScope::None, "", Caller::Admin},
    {RouteId::Plugins, "GET", "v1/plugins", SessionScope::None, "", Caller::Admin},
    {RouteId::Models, "GET", "v1/models", SessionScope::None, "", Caller::User},
    {RouteId::ModelGet, "GET", "v1/models/{model_id}", SessionScope::None, "", Caller::User},
    {RouteId::Providers, "GET", "v1/providers", SessionScope::None, "", Caller::Admin},
    {RouteId::ProviderGet, "GET", "v1/providers/{name}", SessionScope::None, "", Caller::Admin},
    {RouteId::ProviderPatch, "PATCH", "v1/providers/{name}", SessionScope::None, "", Caller::Admin},
    {RouteId::AdminReload, "POST", "v1/admin/reload", SessionScope::None, "", Caller::Admin},
    {RouteId::AdminManifestCheck, "POST", "v1/admin/manifest/check", SessionScope::None, "", Caller::Admin},
    {RouteId::AdminRoutes, "GET", "v1/admin/routes", SessionScope::None, "", Caller::Admin},
    {RouteId::AdminTraffic, "GET", "v1/admin/traffic", SessionScope::None, "", Caller::Admin},
    {RouteId::Budgets, "GET", "v1/budgets", SessionScope::None, "", Caller::User},
    {RouteId::ChatCompletions, "POST", "v1/chat/completions", SessionScope::Header, "write", Caller::User},
    {RouteId::AnthropicMessages, "POST", "v1/messages", SessionScope::Header, "write", Caller::User},
    {RouteId::SessionsCreate, "POST", "v1/sessions", SessionScope::None, "", Caller::User},
    {RouteId::SessionsList, "GET", "v1/sessions", SessionScope::None, "", Caller::User},
    {RouteId::SessionGet, "GET", "v1/sessions/{id}", SessionScope::Path, "read", Caller::User},
    {RouteId::SessionPatch, "PATCH", "v1/sessions/{id}", SessionScope::Path, "admin", Caller::User},
    {RouteId::SessionDelete, "DELETE", "v1/sessions/{id}", SessionScope::Path, "admin", Caller::User},
    {RouteId::SessionArchive, "POST", "v1/sessions/{id}/archive", SessionScope::Path, "admin", Caller::User},
    {RouteId::SessionEvents, "GET", "v1/sessions/{id}/events", SessionScope::Path, "read", Caller::User},
    {RouteId::SessionBudget, "GET", "v1/sessions/{id}/budget", SessionScope::Path, "read", Caller::User},
    {RouteId::MessagesList, "GET", "v1/sessions/{id}/messages", SessionScope::Path, "read", Caller::User},
    {RouteId::MessagesSend, "POST", "v1/sessions/{id}/messages", SessionScope::Path, "write", Caller::User},
    {RouteId::ResponsesCreate, "POST", "v1/responses", SessionScope::Body, "write", Caller::User},
    {RouteId::ResponseGet, "GET", "v1/responses/{response_id}", SessionScope::Response, "read", Caller::User},
    {RouteId::ResponseDelete, "DELETE", "v1/responses/{response_id}", SessionScope::Response, "write",
     Caller::User},
    {RouteId::ResponseInputItems, "GET", "v1/responses/{response_id}/input_items", SessionScope::Response,
     "read", Caller::User},
    {RouteId::ConversationsCreate, "POST", "v1/conversations", SessionScope::None, "", Caller::User},
    {RouteId::ConversationGet, "GET", "v1/conversations/{conversation_id}", SessionScope::Conversation,
     "read", Caller::User},
    {RouteId::ConversationUpdate, "POST", "v1/conversations/{conversation_id}", SessionScope::Conversation,
     "write", Caller::User},
    {RouteId::ConversationDelete, "DELETE", "v1/conversations/{conversation_id}", SessionScope::Conversation,
     "write", Caller::User},
    {RouteId::ConversationItemsList, "GET", "v1/conversations/{conversation_id}/items",
     SessionScope::Conversation, "read", Caller::User},
    {RouteId::ConversationItemsCreate, "POST", "v1/conversations/{conversation_id}/items",
     SessionScope::Conversation, "write", Caller::User},
    {RouteId::ConversationItemGet, "GET", "v1/conversations/{conversation_id}/items/{item_id}",
     SessionScope::Conversation, "read", Caller::User},
    {RouteId::ConversationItemDelete, "DELETE", "v1/conversations/{conversation_id}/items/{item_id}",
     SessionScope::Conversation, "write", Caller::User},
}};

struct RouteMatch {
    const HostRoute *route = nullptr; // the route of this method and path
    std::string allowed;              // else: the methods the path has ("" = no such path)
};

// `segments`: the request path split at '/' (each segment decoded).
RouteMatch match_host_route(std::string_view method, const std::vector<std::string> &segments);

std::string_view scope_name(SessionScope scope);
std::string_view caller_name(Caller caller);

} // namespace swh::http
