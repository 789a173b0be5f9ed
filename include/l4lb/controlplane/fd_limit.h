// File descriptors for health probes (issue 13): each probed target holds
// one socket while its probe runs, and a probe that cannot get one fails,
// which marks a healthy backend down. The process's soft RLIMIT_NOFILE
// (often 1024) is raised towards the hard limit to cover every probe at
// once; a config whose probes even the hard limit cannot cover is refused.
//
// Management core only (RLIMIT_NOFILE is per process). No DPDK, no logging.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "l4lb/config/config.h"

namespace l4lb::controlplane {

// Descriptors kept for everything but probes once the process runs: up to
// 64 metrics connections (MetricsOptions::max_connections) and the
// listener; DPDK telemetry's clients (it allows 10) and sockets; and
// short-lived ones (netlink, neighbour solicitations, files), with room to
// spare.
inline constexpr uint64_t kFdHeadroom = 128;

// Descriptors needed with `open_besides_probes` open now and `probes` probe
// sockets at most (one per probed target, all in flight at once): both plus
// kFdHeadroom.
uint64_t fds_needed(uint64_t open_besides_probes, uint64_t probes);

// RLIMIT_NOFILE; RLIM_INFINITY reads as UINT64_MAX.
struct FdLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;
};
FdLimit fd_limit();

// Raises the soft limit to `needed`, never above the hard limit and never
// lowering it. Returns the limit in force afterwards.
FdLimit raise_fd_limit(uint64_t needed);

// Descriptors open in this process now (entries of /proc/self/fd).
uint64_t count_open_fds();

// Targets a config probes (backends of VIPs whose health type is not none;
// a backend behind two VIPs counts twice).
uint64_t probe_count(const config::Config& config);

// Why a config's probes cannot all have a descriptor under the hard limit
// `hard`: the first backend (in file order) whose probe does not fit, as a
// config key ("vips[2].backends[7]") with its line, and a message with the
// numbers. nullopt when every probe fits.
struct FdShortfall {
  std::string key;
  int line = 0;
  std::string message;
};
std::optional<FdShortfall> probe_fd_shortfall(const config::Config& config, uint64_t open_besides_probes,
                                              uint64_t hard);

}  // namespace l4lb::controlplane
