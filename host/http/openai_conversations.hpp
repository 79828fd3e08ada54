// The OpenAI Conversations door: /v1/conversations and its items, each
// conversation a session of the caller's user (conversation/state.hpp);
// responses.create({conversation}) appends to it (http/openai_responses.cpp).
// docs/http-api.md, "Conversations".
#pragma once

#include "http/openai_responses.hpp"

namespace swh::http::openai {

void conversations_create(const Request &request, std::shared_ptr<Exchange> exchange,
                          const DoorContext &door);
void conversation_retrieve(const std::string &id, std::shared_ptr<Exchange> exchange,
                           const DoorContext &door);
void conversation_update(const std::string &id, const Request &request, std::shared_ptr<Exchange> exchange,
                         const DoorContext &door);
void conversation_delete(const std::string &id, std::shared_ptr<Exchange> exchange, const DoorContext &door);
void conversation_items_list(const std::string &id, const std::map<std::string, std::string> &query,
                             std::shared_ptr<Exchange> exchange, const DoorContext &door);
void conversation_items_create(const std::string &id, const Request &request,
                               std::shared_ptr<Exchange> exchange, const DoorContext &door);
void conversation_item_retrieve(const std::string &id, const std::string &item_id,
                                std::shared_ptr<Exchange> exchange, const DoorContext &door);
void conversation_item_delete(const std::string &id, const std::string &item_id,
                              std::shared_ptr<Exchange> exchange, const DoorContext &door);

} // namespace swh::http::openai
