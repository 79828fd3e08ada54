// Which providers answer a session's message, in order: the provider (or the
// session's sticky member of a load-balanced group, then the group's other
// members), then the manifest fallbacks of each.
#pragma once

#include "pipeline/pipeline.hpp"

#include <string>
#include <vector>

namespace swh {

std::vector<std::string> provider_chain(const Pipeline &pipeline, const std::string &target,
                                        const std::string &session_id);

} // namespace swh
