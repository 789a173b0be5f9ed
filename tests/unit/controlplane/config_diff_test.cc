// Which reloads are refused (restart-only keys) and how changes are logged.
#include <gtest/gtest.h>

#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/config_diff.h"

using l4lb::config::parse_config;
using l4lb::controlplane::describe_diff;
using l4lb::controlplane::restart_only_change;

namespace {

const std::string kBase = R"(dataplane: {workers: 1}
ports:
  - {name: net_tap0, address: 10.99.0.1/24}
vips:
  - name: web
    address: 10.99.0.100
    port: 8080
    snat: [10.99.0.1]
    backends:
      - {address: 10.99.0.21, port: 8080}
      - {address: 10.99.0.22, port: 8080}
)";

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(ConfigDiff, ReloadableChangesAreAllowed) {
  const auto base = parse_config(kBase);
  EXPECT_EQ(restart_only_change(base, base), "");
  const auto more = parse_config(kBase + "      - {address: 10.99.0.23, port: 8080}\n" +
                                 "timeouts: {tcp_established_s: 60}\n");
  EXPECT_EQ(restart_only_change(base, more), "");
  EXPECT_EQ(describe_diff(base, more), "web: +1 -0 backends");
  EXPECT_EQ(describe_diff(base, base), "no VIP or backend changes");
}

TEST(ConfigDiff, RestartOnlyKeysAreNamed) {
  const auto base = parse_config(kBase);
  const struct {
    std::string from, to, key;
  } cases[] = {
      {"workers: 1", "workers: 2", "dataplane.workers"},
      {"workers: 1", "workers: 1, flows_per_worker: 2048", "dataplane.flows_per_worker"},
      {"workers: 1", "workers: 1, mbufs: 4096", "dataplane.mbufs"},
      {"workers: 1", "workers: 1, idle_sleep_us: 10", "dataplane.idle_sleep_us"},
      {"workers: 1", "workers: 1, table_full: refuse", "dataplane.table_full"},
      {"workers: 1", "workers: 1, snat_port_range: [20000, 30000]", "dataplane.snat_port_range"},
      {"10.99.0.1/24}", "10.99.0.1/16}", "ports[0].address"},
      {"name: net_tap0", "name: net_tap1", "ports[0]"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(restart_only_change(base, parse_config(replaced(kBase, c.from, c.to))), c.key) << c.to;
  EXPECT_EQ(restart_only_change(base, parse_config(kBase + "metrics: {listen: 127.0.0.1:9100}\n")), "metrics.listen");
}

TEST(ConfigDiff, VipsAddedRemovedAndBackendsSwapped) {
  const auto base = parse_config(kBase);
  const auto next = parse_config(replaced(replaced(kBase, "name: web", "name: api"), "10.99.0.22", "10.99.0.32"));
  EXPECT_EQ(describe_diff(base, next), "+vip api, -vip web");
  const auto swapped = parse_config(replaced(kBase, "10.99.0.22", "10.99.0.32"));
  EXPECT_EQ(describe_diff(base, swapped), "web: +1 -1 backends");
}

}  // namespace
