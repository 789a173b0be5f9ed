// The schema's tables. Rows are in the order unknown-key errors list them;
// the defaults are those of config.h's structs, spelled as in the file
// (tests/unit/config/schema_test.cc holds the two together).
#include "l4lb/config/schema.h"

#include <array>
#include <stdexcept>

#include "l4lb/common/limits.h"
#include "l4lb/common/prime.h"

namespace l4lb::config::schema {
namespace {

using K = ValueKind;

constexpr uint64_t kMaxTimeoutS = 86400;
constexpr uint64_t kMinSnatPort = 1024;  // below are privileged, well-known ports
constexpr uint64_t kMinTableSize = 7;
constexpr uint64_t kMaxSnatPoolsPerWorker = 65535;  // a pool's index is 16 bits

// The order of each list is that of the enum in config.h it maps to.
constexpr std::array<std::string_view, 2> kTableFull = {"evict_embryonic", "refuse"};
constexpr std::array<std::string_view, 2> kClosedVipPorts = {"drop", "reject"};
constexpr std::array<std::string_view, 2> kIcmpErrors = {"translate", "ignore"};
constexpr std::array<std::string_view, 2> kProtocols = {"tcp", "udp"};
constexpr std::array<std::string_view, 2> kModes = {"fnat", "dnat"};
constexpr std::array<std::string_view, 2> kTcpMiss = {"forward", "drop"};
constexpr std::array<std::string_view, 2> kDnatReverse = {"flow", "stateless"};
constexpr std::array<std::string_view, 2> kDownPolicies = {"keep", "reset"};
constexpr std::array<std::string_view, 3> kHealthTypes = {"none", "tcp", "http"};
constexpr std::array<std::string_view, 2> kBooleans = {"false", "true"};
constexpr std::array<std::string_view, 2> kNoBackendPolicies = {"withdraw", "announce"};
constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

const Key kDataplaneKeys[] = {
    {"workers", K::kInteger, false, 1, kMaxWorkers, {}, "1"},
    {"flows_per_worker", K::kInteger, false, 1024, 67108864, {}, "1048576"},
    {"mbufs", K::kInteger, false, 1024, 16777216, {}, "65536"},
    {"snat_port_range", K::kPortRange, false, kMinSnatPort, 65535, {}, "[10240, 32767]"},
    {"idle_sleep_us", K::kInteger, false, 0, 10000, {}, "0"},
    {"table_full", K::kChoice, false, 0, 0, kTableFull, "evict_embryonic"},
    {"closed_vip_ports", K::kChoice, false, 0, 0, kClosedVipPorts, "drop"},
    {"icmp_errors", K::kChoice, false, 0, 0, kIcmpErrors, "translate"},
    {"snat_pools_per_worker", K::kInteger, false, 1, kMaxSnatPoolsPerWorker, {}, "1024"},
    {"shutdown_drain_s", K::kInteger, false, 0, 3600, {}, "0"},
};
const Section kDataplane{"dataplane", kDataplaneKeys};

const Key kPortKeys[] = {
    {"name", K::kName, true},
    {"address", K::kCidrList, true},
    {"gateway", K::kUnicastIpv4},
    {"kernel_iface", K::kInterfaceName, false, 0, 0, {}, "l4lbk<index>"},
};
const Section kPort{"ports[]", kPortKeys};

const Key kHealthKeys[] = {
    {"type", K::kChoice, false, 0, 0, kHealthTypes, "none"},
    {"interval_ms", K::kInteger, false, 10, 3600000, {}, "1000"},
    {"timeout_ms", K::kInteger, false, 1, 3600000, {}, "500"},
    {"rise", K::kInteger, false, 1, 100, {}, "2"},
    {"fall", K::kInteger, false, 1, 100, {}, "3"},
    {"path", K::kHttpPath, false, 0, 0, {}, "/"},
    {"expect", K::kInteger, false, 100, 599, {}, "200"},
};
const Section kHealth{"vips[].health", kHealthKeys};

const Key kBackendKeys[] = {
    {"address", K::kUnicastIpv4, true},
    {"port", K::kInteger, true, 1, 65535},
    {"weight", K::kInteger, false, 0, 65535, {}, "1"},
};
const Section kBackend{"vips[].backends[]", kBackendKeys};

const Key kVipKeys[] = {
    {"name", K::kName, true},
    {"address", K::kUnicastIpv4, true},
    {"port", K::kInteger, true, 1, 65535},
    {"protocol", K::kChoice, false, 0, 0, kProtocols, "tcp"},
    {"mode", K::kChoice, false, 0, 0, kModes, "fnat"},
    {"snat", K::kIpv4List},  // required for mode fnat, refused for dnat (config_checks)
    {"table_size", K::kInteger, false, kMinTableSize, kMaxTableSize, {}, "65537"},
    {"tcp_miss", K::kChoice, false, 0, 0, kTcpMiss, "forward"},
    {"dnat_reverse", K::kChoice, false, 0, 0, kDnatReverse, "flow"},  // mode dnat only
    {"down_policy", K::kChoice, false, 0, 0, kDownPolicies, "keep"},
    {"max_embryonic", K::kInteger, false, 0, 67108864, {}, "0"},
    {"health", K::kSection, false, 0, 0, {}, {}, &kHealth},
    {"backends", K::kSectionList, true, 0, 0, {}, {}, &kBackend},
};
const Section kVip{"vips[]", kVipKeys};

const Key kNeighborKeys[] = {
    {"address", K::kUnicastIpv4, true},
    {"mac", K::kMac, true},
};
const Section kNeighbor{"neighbors[]", kNeighborKeys};

const Key kTimeoutKeys[] = {
    {"tcp_syn_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "3"},
    {"tcp_syn_recv_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "10"},
    {"tcp_established_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "900"},
    {"tcp_fin_wait_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "7"},
    {"tcp_time_wait_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "7"},
    {"tcp_close_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "3"},
    // The older key: sets fin_wait, time_wait and close where their own are absent.
    {"tcp_closing_s", K::kInteger, false, 1, kMaxTimeoutS},
    {"udp_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "120"},
    {"udp_unreplied_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "10"},
    {"snat_port_hold_s", K::kInteger, false, 1, kMaxTimeoutS, {}, "60"},
};
const Section kTimeouts{"timeouts", kTimeoutKeys};

const Key kLoggingKeys[] = {
    {"level", K::kChoice, false, 0, 0, kLogLevels, "info"},
};
const Section kLogging{"logging", kLoggingKeys};

const Key kMetricsKeys[] = {
    {"listen", K::kListenAddress},  // absent: no metrics endpoint
};
const Section kMetrics{"metrics", kMetricsKeys};

// sun_path holds 108 bytes with the terminating NUL.
constexpr uint64_t kMaxSocketPath = 107;
constexpr uint64_t kMaxFilePath = 4095;

const Key kBgpKeys[] = {
    {"enabled", K::kChoice, false, 0, 0, kBooleans, "false"},
    {"bird_socket", K::kAbsolutePath, false, 0, kMaxSocketPath, {}, "/run/bird/bird.ctl"},
    {"routes_file", K::kAbsolutePath, false, 0, kMaxFilePath, {}, "/run/l4lb/bird-routes.conf"},
    {"peers", K::kIpv4List},       // absent: none
    {"appliances", K::kIpv4List},  // absent: none
    {"announce_snat", K::kChoice, false, 0, 0, kBooleans, "true"},
    {"when_no_backend", K::kChoice, false, 0, 0, kNoBackendPolicies, "withdraw"},
    {"withdraw_wait_ms", K::kInteger, false, 0, 60000, {}, "1000"},
};
const Section kBgp{"bgp", kBgpKeys};

const Key kRootKeys[] = {
    {"dataplane", K::kSection, false, 0, 0, {}, {}, &kDataplane},
    {"ports", K::kSectionList, true, 0, 0, {}, {}, &kPort},
    {"vips", K::kSectionList, false, 0, 0, {}, {}, &kVip},
    {"neighbors", K::kSectionList, false, 0, 0, {}, {}, &kNeighbor},
    {"timeouts", K::kSection, false, 0, 0, {}, {}, &kTimeouts},
    {"logging", K::kSection, false, 0, 0, {}, {}, &kLogging},
    {"metrics", K::kSection, false, 0, 0, {}, {}, &kMetrics},
    {"bgp", K::kSection, false, 0, 0, {}, {}, &kBgp},
};
const Section kRoot{"", kRootKeys};

void append_paths(const Section& section, const std::string& prefix, std::vector<std::string>& out) {
  for (const Key& key : section.keys) {
    const std::string path = prefix + std::string(key.name);
    out.push_back(path);
    if (key.kind == K::kSection) append_paths(*key.section, path + ".", out);
    if (key.kind == K::kSectionList) append_paths(*key.section, path + "[].", out);
  }
}

}  // namespace

const Key* Section::find(std::string_view key_name) const {
  for (const Key& key : keys) {
    if (key.name == key_name) return &key;
  }
  return nullptr;
}

const Key& Section::key(std::string_view key_name) const {
  if (const Key* found = find(key_name)) return *found;
  throw std::out_of_range("config schema: section '" + std::string(name) + "' has no key '" +
                          std::string(key_name) + "'");
}

std::string Section::key_list() const {
  std::string names;
  for (const Key& key : keys) names += (names.empty() ? "" : ", ") + std::string(key.name);
  return names;
}

const Section& root() {
  return kRoot;
}

std::vector<std::string> all_key_paths() {
  std::vector<std::string> paths;
  append_paths(kRoot, "", paths);
  return paths;
}

}  // namespace l4lb::config::schema
