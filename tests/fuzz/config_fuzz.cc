// libFuzzer target for the YAML config loader (issue 8). Any bytes give
// either a Config or a config::ConfigError whose what() is exactly
// "<source>:<line>: <key>: <message>" with a key and a line inside the
// document; nothing else may escape parse_config (config_loader.h: "Throws
// ConfigError; never anything else"). An "internal error" ConfigError (the
// loader's catch-all for a std::exception out of its own checks) counts as a
// finding too: it means a check is missing.
//
// A config the loader accepts must also be what l4lbd can run: its basic
// invariants hold and controlplane::build_snapshot (l4lbd's next step) builds
// from it, with Maglev tables shrunk to 251 slots so an input costs
// microseconds, not the 65537-slot default.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>

#include "l4lb/config/config.h"
#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/maglev/maglev.h"

#define L4LB_FUZZ_CHECK(cond)                                                                          \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      std::fprintf(stderr, "config_fuzz: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                                    \
    }                                                                                                  \
  } while (0)

namespace {

using namespace l4lb;

const std::string kSource = "fuzz.yaml";
constexpr uint32_t kFuzzTableSize = 251;

[[noreturn]] void escaped(const char* what) {
  std::fprintf(stderr, "config_fuzz: parse_config let an exception escape: %s\n", what);
  std::abort();
}

void check_error(const config::ConfigError& e, const std::string& text) {
  const std::string what = e.what();
  L4LB_FUZZ_CHECK(!e.key().empty());
  L4LB_FUZZ_CHECK(!e.message().empty());
  L4LB_FUZZ_CHECK(e.line() >= 0);
  // what() is a C string: it ends at the first NUL the document put in a key
  // or message, so compare up to there.
  const std::string expected = kSource + ":" + std::to_string(e.line()) + ": " + e.key() + ": " + e.message();
  L4LB_FUZZ_CHECK(what == expected.c_str());
  L4LB_FUZZ_CHECK(what.size() > kSource.size() + 3);
  // The line is one of the document's (1-based; 0: the whole document). YAML
  // breaks lines at LF, CR and CRLF; one more for a mark at the very end.
  size_t breaks = 0;
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n'))) ++breaks;
  L4LB_FUZZ_CHECK(static_cast<size_t>(e.line()) <= breaks + 1);
  if (e.message().rfind("internal error", 0) == 0) {
    std::fprintf(stderr, "config_fuzz: %s\n", what.c_str());
    L4LB_FUZZ_CHECK(!"a std::exception escaped the loader's own checks");
  }
}

// What the loader promises about a config it accepts (DESIGN §9, config.h).
void check_config(const config::Config& c) {
  const auto& dp = c.dataplane;
  L4LB_FUZZ_CHECK(dp.workers >= 1 && dp.workers <= 64);
  L4LB_FUZZ_CHECK(dp.snat_port_min >= 1024 && dp.snat_port_min <= dp.snat_port_max);
  L4LB_FUZZ_CHECK(uint32_t{dp.snat_port_max} - dp.snat_port_min + 1 >= dp.workers);
  L4LB_FUZZ_CHECK(!c.ports.empty());
  std::set<uint32_t> own;
  for (const auto& port : c.ports) {
    L4LB_FUZZ_CHECK(!port.name.empty() && !port.addresses.empty() && !port.kernel_iface.empty());
    for (const auto& cidr : port.addresses) {
      L4LB_FUZZ_CHECK(cidr.prefix_len >= 1 && cidr.prefix_len <= 32);
      L4LB_FUZZ_CHECK(own.insert(cidr.address).second);
    }
  }
  std::set<std::tuple<uint32_t, uint16_t, config::Protocol>> services;
  std::set<std::string> names;
  for (const auto& vip : c.vips) {
    L4LB_FUZZ_CHECK(names.insert(vip.name).second);
    L4LB_FUZZ_CHECK(services.insert({vip.address, vip.port, vip.protocol}).second);
    L4LB_FUZZ_CHECK(vip.port != 0 && own.count(vip.address) == 0);
    L4LB_FUZZ_CHECK(is_prime(vip.table_size) && vip.table_size <= kMaxTableSize);
    L4LB_FUZZ_CHECK(!vip.backends.empty() && vip.backends.size() <= vip.table_size);
    L4LB_FUZZ_CHECK(vip.mode == config::NatMode::kFnat ? !vip.snat.empty() : vip.snat.empty());
    L4LB_FUZZ_CHECK(vip.health.timeout_ms < vip.health.interval_ms);
    std::set<std::pair<uint32_t, uint16_t>> backends;
    for (const auto& b : vip.backends) {
      L4LB_FUZZ_CHECK(b.port != 0 && own.count(b.address) == 0);
      L4LB_FUZZ_CHECK(backends.insert({b.address, b.port}).second);
    }
  }
  const auto& t = c.timeouts;
  L4LB_FUZZ_CHECK(t.tcp_syn_s >= 1 && t.tcp_established_s >= 1 && t.tcp_fin_wait_s >= 1 && t.tcp_time_wait_s >= 1 && t.tcp_close_s >= 1 && t.udp_s >= 1);
}

// l4lbd's next step after loading: the first snapshot (mgmt_core.cc), with
// the static neighbours as the only known MACs.
void check_snapshot(config::Config c) {
  for (auto& vip : c.vips) {
    if (vip.backends.size() > kFuzzTableSize) {
      if (vip.table_size > 4093) return;  // too slow to build per input
    } else {
      vip.table_size = kFuzzTableSize;
    }
  }
  controlplane::NeighbourMap neighbours;
  for (const auto& n : c.neighbors) std::memcpy(neighbours[n.address].bytes, n.mac.data(), 6);
  controlplane::BuildState state;
  controlplane::SnapshotInputs in;
  in.config = &c;
  in.neighbours = &neighbours;
  in.tsc_hz = 1000000000;
  in.generation = 1;
  std::unique_ptr<dataplane::Snapshot> snap;
  try {
    snap = controlplane::build_snapshot(in, state);
  } catch (const std::runtime_error& e) {
    // A registry is full (more than 64 SNAT addresses, ...): the loader
    // enforces the same limits (common/limits.h), so it must have refused.
    std::fprintf(stderr, "config_fuzz: the loader accepted a config the snapshot builder refuses: %s\n",
                 e.what());
    L4LB_FUZZ_CHECK(!"build_snapshot refused an accepted config");
  }
  L4LB_FUZZ_CHECK(snap && snap->vips.size() == c.vips.size());
  for (uint32_t i = 0; i < snap->vips.size(); ++i) {
    const auto& v = snap->vips[i];
    L4LB_FUZZ_CHECK(snap->vip_by_service.find(dataplane::service_key(v.ip, v.port, v.proto)) == i);
    L4LB_FUZZ_CHECK(v.maglev && v.maglev->size() == c.vips[i].table_size);
    for (uint16_t slot : *v.maglev)
      L4LB_FUZZ_CHECK(slot == dataplane::kNoBackendSlot || slot < v.backends.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  config::Config config;
  try {
    config = config::parse_config(text, kSource);
  } catch (const config::ConfigError& e) {
    check_error(e, text);
    return 0;
  } catch (const std::exception& e) {
    escaped(e.what());
  } catch (...) {
    escaped("(not a std::exception)");
  }
  check_config(config);
  check_snapshot(config);
  return 0;
}
