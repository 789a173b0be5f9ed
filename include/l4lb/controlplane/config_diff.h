// What a reload changes: the restart-only keys it touches (then it is
// refused) and a one-line summary of VIP and backend changes for the log.
// Pure; management core only.
#pragma once

#include <string>

#include "l4lb/config/config.h"

namespace l4lb::controlplane {

// The first restart-only key (marked so in config/l4lb.example.yaml) whose
// value differs, as a dotted path ("dataplane.workers", "ports[0].address"),
// or "" when a reload may apply `next` over `running`.
std::string restart_only_change(const config::Config& running, const config::Config& next);

// "+vip api, -vip old, web: +1 -0 backends", or "no VIP or backend changes".
std::string describe_diff(const config::Config& running, const config::Config& next);

}  // namespace l4lb::controlplane
