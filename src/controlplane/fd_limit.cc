#include "l4lb/controlplane/fd_limit.h"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <limits>

namespace l4lb::controlplane {

namespace {
uint64_t from_rlim(rlim_t value) {
  return value == RLIM_INFINITY ? std::numeric_limits<uint64_t>::max() : static_cast<uint64_t>(value);
}
}  // namespace

uint64_t fds_needed(uint64_t open_besides_probes, uint64_t probes) {
  return open_besides_probes + probes + kFdHeadroom;
}

FdLimit fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  return {from_rlim(limit.rlim_cur), from_rlim(limit.rlim_max)};
}

FdLimit raise_fd_limit(uint64_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  if (from_rlim(limit.rlim_cur) < needed) {
    const uint64_t target = std::min(needed, from_rlim(limit.rlim_max));
    rlimit raised = limit;
    raised.rlim_cur = static_cast<rlim_t>(target);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return {from_rlim(limit.rlim_cur), from_rlim(limit.rlim_max)};
}

uint64_t count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return 0;
  uint64_t n = 0;
  while (const dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n > 0 ? n - 1 : 0;  // not the directory's own descriptor
}

uint64_t probe_count(const config::Config& config) {
  uint64_t n = 0;
  for (const auto& v : config.vips)
    if (v.health.type != config::HealthType::kNone) n += v.backends.size();
  return n;
}

std::optional<FdShortfall> probe_fd_shortfall(const config::Config& config, uint64_t open_besides_probes,
                                              uint64_t hard) {
  const uint64_t total = probe_count(config);
  if (fds_needed(open_besides_probes, total) <= hard) return std::nullopt;
  uint64_t n = 0;
  for (size_t i = 0; i < config.vips.size(); ++i) {
    const auto& v = config.vips[i];
    if (v.health.type == config::HealthType::kNone) continue;
    for (size_t j = 0; j < v.backends.size(); ++j) {
      if (fds_needed(open_besides_probes, ++n) <= hard) continue;
      FdShortfall s;
      s.key = "vips[" + std::to_string(i) + "].backends[" + std::to_string(j) + "]";
      s.line = v.backends[j].line;
      s.message = "health probe " + std::to_string(n) + " of " + std::to_string(total) +
                  " cannot have a file descriptor: the probes need " +
                  std::to_string(fds_needed(open_besides_probes, total)) + " (" + std::to_string(total) +
                  " probes + " + std::to_string(open_besides_probes) + " open + " +
                  std::to_string(kFdHeadroom) + " headroom), above the hard RLIMIT_NOFILE of " +
                  std::to_string(hard) +
                  "; raise it (ulimit -Hn, systemd LimitNOFILE=) or probe fewer backends";
      return s;
    }
  }
  return std::nullopt;  // unreachable: the total did not fit
}

}  // namespace l4lb::controlplane
