// Tests for the YAML config loader (DESIGN §9): every field round-trips,
// defaults apply, and every validation rule reports the exact key path and
// 1-based line it blames.
#include "l4lb/config/config_loader.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "../../common/limit_configs.h"
#include "l4lb/common/limits.h"

namespace l4lb::config {
namespace {

uint32_t ip(const char* text) {
  uint32_t address = 0;
  EXPECT_TRUE(parse_ipv4(text, address)) << text;
  return address;
}

// Parses text that must be rejected and returns the error.
ConfigError expect_error(const std::string& yaml) {
  try {
    parse_config(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e;
  } catch (...) {
    ADD_FAILURE() << "threw something other than ConfigError for:\n" << yaml;
    return ConfigError("test.yaml", "<wrong exception>", -1, "");
  }
  ADD_FAILURE() << "accepted:\n" << yaml;
  return ConfigError("test.yaml", "<accepted>", -1, "");
}

// Smallest valid document: lines 1-2.
const std::string kPorts = "ports:\n  - {name: p0, address: 10.0.0.1/24}\n";
// A VIP on lines 3-7; a case appends its own lines from line 8.
const std::string kVipHead =
    "vips:\n"
    "  - name: web\n"
    "    address: 10.0.0.100\n"
    "    port: 80\n"
    "    snat: [10.0.0.1]\n";
const std::string kBackends = "    backends: [{address: 10.0.0.21, port: 80}]\n";

// ---------------------------------------------------------------------------
// Accepted documents.

TEST(ConfigLoader, FullConfigRoundTripsEveryField) {
  const std::string yaml = R"(dataplane:
  workers: 4
  flows_per_worker: 2048
  mbufs: 4096
  snat_port_range: [20000, 20999]
ports:
  - name: net_tap0
    address: [10.99.0.1/24, 10.98.0.1/16]
    gateway: 10.98.200.1
    kernel_iface: tap-ex.0
  - name: "0000:3b:00.0"
    address: 192.168.1.7
vips:
  - name: web
    address: 10.99.0.100
    port: 8080
    protocol: tcp
    mode: fnat
    snat: [10.99.0.1, 10.98.0.1]
    table_size: 251
    tcp_miss: drop
    health: {type: http, interval_ms: 700, timeout_ms: 650, rise: 4, fall: 5, path: /healthz, expect: 204}
    backends:
      - {address: 10.99.0.21, port: 8081, weight: 7}
      - {address: 10.99.0.22, port: 8082, weight: 0}
  - name: dns
    address: 10.99.0.101
    port: 53
    protocol: udp
    mode: dnat
    health: {type: tcp, interval_ms: 10, timeout_ms: 9}
    backends:
      - {address: 10.99.0.31, port: 5353}
neighbors:
  - {address: 10.99.0.21, mac: "02:aB:00:00:00:21"}
  - address: 10.99.0.22
    mac: 0a:00:00:00:00:22
timeouts: {tcp_syn_s: 5, tcp_established_s: 86400, tcp_closing_s: 1, udp_s: 33}
logging: {level: debug}
metrics: {listen: 0.0.0.0:9100}
)";
  const Config c = parse_config(yaml, "full.yaml");

  EXPECT_EQ(c.dataplane.workers, 4u);
  EXPECT_EQ(c.dataplane.flows_per_worker, 2048u);
  EXPECT_EQ(c.dataplane.mbufs, 4096u);
  EXPECT_EQ(c.dataplane.snat_port_min, 20000);
  EXPECT_EQ(c.dataplane.snat_port_max, 20999);

  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "net_tap0");
  ASSERT_EQ(c.ports[0].addresses.size(), 2u);
  EXPECT_EQ(c.ports[0].addresses[0].address, ip("10.99.0.1"));
  EXPECT_EQ(c.ports[0].addresses[0].prefix_len, 24);
  EXPECT_EQ(c.ports[0].addresses[1].address, ip("10.98.0.1"));
  EXPECT_EQ(c.ports[0].addresses[1].prefix_len, 16);
  ASSERT_TRUE(c.ports[0].gateway.has_value());
  EXPECT_EQ(*c.ports[0].gateway, ip("10.98.200.1"));
  EXPECT_EQ(c.ports[0].kernel_iface, "tap-ex.0");
  EXPECT_EQ(c.ports[0].line, 7);
  EXPECT_EQ(c.ports[1].name, "0000:3b:00.0");
  ASSERT_EQ(c.ports[1].addresses.size(), 1u);
  EXPECT_EQ(c.ports[1].addresses[0].address, ip("192.168.1.7"));
  EXPECT_EQ(c.ports[1].addresses[0].prefix_len, 32);  // bare address
  EXPECT_FALSE(c.ports[1].gateway.has_value());
  EXPECT_EQ(c.ports[1].kernel_iface, "l4lbk1");  // default follows the index
  EXPECT_EQ(c.ports[1].line, 11);

  ASSERT_EQ(c.vips.size(), 2u);
  const VipConfig& web = c.vips[0];
  EXPECT_EQ(web.name, "web");
  EXPECT_EQ(web.address, ip("10.99.0.100"));
  EXPECT_EQ(web.port, 8080);
  EXPECT_EQ(web.protocol, Protocol::kTcp);
  EXPECT_EQ(web.mode, NatMode::kFnat);
  EXPECT_EQ(web.snat, (std::vector<uint32_t>{ip("10.99.0.1"), ip("10.98.0.1")}));
  EXPECT_EQ(web.table_size, 251u);
  EXPECT_EQ(web.tcp_miss, TcpMissPolicy::kDrop);
  EXPECT_EQ(web.health.type, HealthType::kHttp);
  EXPECT_EQ(web.health.interval_ms, 700u);
  EXPECT_EQ(web.health.timeout_ms, 650u);
  EXPECT_EQ(web.health.rise, 4u);
  EXPECT_EQ(web.health.fall, 5u);
  EXPECT_EQ(web.health.path, "/healthz");
  EXPECT_EQ(web.health.expect, 204u);
  EXPECT_EQ(web.line, 14);
  ASSERT_EQ(web.backends.size(), 2u);
  EXPECT_EQ(web.backends[0].address, ip("10.99.0.21"));
  EXPECT_EQ(web.backends[0].port, 8081);
  EXPECT_EQ(web.backends[0].weight, 7u);
  EXPECT_EQ(web.backends[0].line, 24);
  EXPECT_EQ(web.backends[1].address, ip("10.99.0.22"));
  EXPECT_EQ(web.backends[1].port, 8082);
  EXPECT_EQ(web.backends[1].weight, 0u);
  EXPECT_EQ(web.backends[1].line, 25);

  const VipConfig& dns = c.vips[1];
  EXPECT_EQ(dns.name, "dns");
  EXPECT_EQ(dns.protocol, Protocol::kUdp);
  EXPECT_EQ(dns.mode, NatMode::kDnat);
  EXPECT_TRUE(dns.snat.empty());
  EXPECT_EQ(dns.health.type, HealthType::kTcp);
  EXPECT_EQ(dns.health.interval_ms, 10u);
  EXPECT_EQ(dns.health.timeout_ms, 9u);
  EXPECT_EQ(dns.line, 26);
  ASSERT_EQ(dns.backends.size(), 1u);
  EXPECT_EQ(dns.backends[0].port, 5353);
  EXPECT_EQ(dns.backends[0].weight, 1u);
  EXPECT_EQ(dns.backends[0].line, 33);

  ASSERT_EQ(c.neighbors.size(), 2u);
  EXPECT_EQ(c.neighbors[0].address, ip("10.99.0.21"));
  EXPECT_EQ(c.neighbors[0].mac, (std::array<uint8_t, 6>{0x02, 0xab, 0, 0, 0, 0x21}));
  EXPECT_EQ(c.neighbors[0].line, 35);
  EXPECT_EQ(c.neighbors[1].address, ip("10.99.0.22"));
  EXPECT_EQ(c.neighbors[1].mac, (std::array<uint8_t, 6>{0x0a, 0, 0, 0, 0, 0x22}));
  EXPECT_EQ(c.neighbors[1].line, 36);

  EXPECT_EQ(c.timeouts.tcp_syn_s, 5u);
  EXPECT_EQ(c.timeouts.tcp_established_s, 86400u);
  // The old key sets the three closing states where their own keys are absent.
  EXPECT_EQ(c.timeouts.tcp_fin_wait_s, 1u);
  EXPECT_EQ(c.timeouts.tcp_time_wait_s, 1u);
  EXPECT_EQ(c.timeouts.tcp_close_s, 1u);
  EXPECT_EQ(c.timeouts.udp_s, 33u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.metrics_listen, "0.0.0.0:9100");
}

// yaml-cpp 0.7 loops forever, growing, on a ',' outside any flow collection
// (found by tests/fuzz/config_fuzz): the loader must answer with an error
// that names the ',' and its line. (After a block mapping yaml-cpp itself
// reports the ','.)
TEST(ConfigLoader, StrayCommaIsAnErrorNotAHang) {
  const std::string stray = "YAML syntax error: unexpected ',' outside a flow collection ([ ] or { })";
  const struct {
    std::string text;
    int line;
    std::string message;
  } cases[] = {
      {",", 1, stray},
      {"[a]\n,", 2, stray},
      {"  &x ,\n", 1, stray},
      {"# comment\n{a: 1}, \n", 2, stray},
      {"[a]\n---\n,\n", 3, stray},                            // a second document, but the ',' is the error
      {"\xEF\xBB\xBFports: []\r\n---\r\n  ,\r\n", 3, stray},  // UTF-8 BOM, CRLF
      {kPorts + ",\n", 3, "YAML syntax error: end of map not found"},
  };
  for (const auto& c : cases) {
    const ConfigError e = expect_error(c.text);
    EXPECT_EQ(e.key(), "(document)") << c.text;
    EXPECT_EQ(e.line(), c.line) << c.text;
    EXPECT_EQ(e.message(), c.message) << c.text;
  }
}

// The guard against that loop must not take a real second document for a
// stray ',' or the other way round: same shapes, different errors.
TEST(ConfigLoader, SecondDocumentAndStrayCommaAreToldApart) {
  const std::string two = "more than one YAML document; expected exactly one";
  const std::string stray = "YAML syntax error: unexpected ',' outside a flow collection ([ ] or { })";
  const struct {
    std::string text;
    int line;
    std::string message;
  } cases[] = {
      {"[a]\n---\n[b]\n", 3, two},
      {"[a]\n,\n", 2, stray},
      {kPorts + "---\n" + kPorts, 4, two},
      {kPorts + "...\n" + kPorts, 4, two},   // text after "..." is a new document
      {"[a]\n--- [b, c]\n", 2, two},         // a ',' inside a flow collection is not stray
      {"[a]\n---\n[b]\n---\n[c\n", 3, two},  // a broken third document: still the second is reported
      {"{a: 1},\n", 1, stray},
  };
  for (const auto& c : cases) {
    const ConfigError e = expect_error(c.text);
    EXPECT_EQ(e.line(), c.line) << c.text;
    EXPECT_EQ(e.message(), c.message) << c.text;
  }
}

TEST(ConfigLoader, IdleSleep) {
  EXPECT_EQ(parse_config(kPorts).dataplane.idle_sleep_us, 0u);
  EXPECT_EQ(parse_config("dataplane: {idle_sleep_us: 250}\n" + kPorts).dataplane.idle_sleep_us, 250u);
  EXPECT_THROW(parse_config("dataplane: {idle_sleep_us: 20000}\n" + kPorts), ConfigError);
}

// A drain is optional and bounded: an hour at most.
TEST(ConfigLoader, ShutdownDrain) {
  EXPECT_EQ(parse_config(kPorts).dataplane.shutdown_drain_s, 0u);
  EXPECT_EQ(parse_config("dataplane: {shutdown_drain_s: 30}\n" + kPorts).dataplane.shutdown_drain_s, 30u);
  EXPECT_THROW(parse_config("dataplane: {shutdown_drain_s: 3601}\n" + kPorts), ConfigError);
}

TEST(ConfigLoader, OverloadPolicies) {
  const Config defaults = parse_config(kPorts + kVipHead + kBackends);
  EXPECT_EQ(defaults.dataplane.table_full, TableFullPolicy::kEvictEmbryonic);
  EXPECT_EQ(defaults.vips.at(0).max_embryonic, 0u);
  const Config c = parse_config("dataplane: {table_full: refuse}\n" + kPorts + kVipHead +
                                "    max_embryonic: 5000\n" + kBackends);
  EXPECT_EQ(c.dataplane.table_full, TableFullPolicy::kRefuse);
  EXPECT_EQ(c.vips.at(0).max_embryonic, 5000u);
  try {
    parse_config(kPorts + kVipHead + "    protocol: udp\n    max_embryonic: 5\n" + kBackends);
    FAIL() << "max_embryonic on a UDP VIP must be refused";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "vips[0].max_embryonic");
    EXPECT_EQ(e.line(), 9);
  }
}

TEST(ConfigLoader, DownPolicyReset) {
  const Config c = parse_config(kPorts + kVipHead + "    down_policy: reset\n" + kBackends);
  EXPECT_EQ(c.vips.at(0).down_policy, DownPolicy::kReset);
}

TEST(ConfigLoader, DefaultsApplyWhenKeysAreOmitted) {
  const Config c = parse_config(kPorts + kVipHead + kBackends);
  const Config defaults;
  const HealthConfig health_defaults;
  EXPECT_EQ(c.dataplane.workers, 1u);
  EXPECT_EQ(c.dataplane.flows_per_worker, 1048576u);
  EXPECT_EQ(c.dataplane.mbufs, 65536u);
  EXPECT_EQ(c.dataplane.snat_port_min, 10240);
  EXPECT_EQ(c.dataplane.snat_port_max, 32767);
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].kernel_iface, "l4lbk0");
  EXPECT_FALSE(c.ports[0].gateway.has_value());
  ASSERT_EQ(c.vips.size(), 1u);
  const VipConfig& vip = c.vips[0];
  EXPECT_EQ(vip.protocol, Protocol::kTcp);
  EXPECT_EQ(vip.mode, NatMode::kFnat);
  EXPECT_EQ(vip.table_size, 65537u);
  EXPECT_EQ(vip.tcp_miss, TcpMissPolicy::kForward);
  EXPECT_EQ(vip.down_policy, DownPolicy::kKeep);
  EXPECT_EQ(vip.health.type, HealthType::kNone);
  EXPECT_EQ(vip.health.interval_ms, health_defaults.interval_ms);
  EXPECT_EQ(vip.health.timeout_ms, health_defaults.timeout_ms);
  EXPECT_EQ(vip.health.rise, 2u);
  EXPECT_EQ(vip.health.fall, 3u);
  EXPECT_EQ(vip.health.path, "/");
  EXPECT_EQ(vip.health.expect, 200u);
  ASSERT_EQ(vip.backends.size(), 1u);
  EXPECT_EQ(vip.backends[0].weight, 1u);
  EXPECT_TRUE(c.neighbors.empty());
  EXPECT_EQ(c.timeouts.tcp_syn_s, 3u);
  EXPECT_EQ(c.timeouts.tcp_syn_recv_s, 10u);
  EXPECT_EQ(c.timeouts.tcp_established_s, 900u);
  EXPECT_EQ(c.timeouts.tcp_fin_wait_s, 7u);
  EXPECT_EQ(c.timeouts.tcp_time_wait_s, 7u);
  EXPECT_EQ(c.timeouts.tcp_close_s, 3u);
  EXPECT_EQ(c.timeouts.udp_s, 120u);
  EXPECT_EQ(c.timeouts.udp_unreplied_s, 10u);
  EXPECT_EQ(c.timeouts.snat_port_hold_s, 60u);
  EXPECT_EQ(c.dataplane.closed_vip_ports, ClosedVipPortPolicy::kDrop);
  EXPECT_EQ(c.dataplane.snat_pools_per_worker, 1024u);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.metrics_listen, "");
  EXPECT_EQ(c.log_level, defaults.log_level);
}

TEST(ConfigLoader, OnlyPortsIsRequired) {
  const Config c = parse_config(kPorts);
  EXPECT_EQ(c.ports.size(), 1u);
  EXPECT_TRUE(c.vips.empty());
}

TEST(ConfigLoader, EmptySectionsAndSingleValueForms) {
  // Every list entry commented out leaves a null value: an empty list, not an error.
  const Config c = parse_config(kPorts + "vips:\nneighbors:\n");
  EXPECT_TRUE(c.vips.empty());
  EXPECT_TRUE(c.neighbors.empty());

  const Config single = parse_config(
      "ports: [{name: p0, address: 10.0.0.1}]\n"
      "vips: [{name: v, address: 10.0.0.100, port: 80, snat: 10.0.0.1, backends: [{address: 10.0.0.2, port: 80}]}]\n");
  EXPECT_EQ(single.ports[0].addresses[0].prefix_len, 32);
  EXPECT_EQ(single.vips[0].snat, std::vector<uint32_t>{ip("10.0.0.1")});
}

TEST(ConfigLoader, SameAddressAndPortWithDifferentProtocolIsAllowed) {
  const Config c = parse_config(kPorts + R"(vips:
  - {name: a, address: 10.0.0.100, port: 53, protocol: tcp, snat: 10.0.0.1, backends: [{address: 10.0.0.2, port: 53}]}
  - {name: b, address: 10.0.0.100, port: 53, protocol: udp, snat: 10.0.0.1, backends: [{address: 10.0.0.2, port: 53}]}
)");
  EXPECT_EQ(c.vips.size(), 2u);
}

TEST(ConfigLoader, ExampleFileLoads) {
  const std::string path = std::string(L4LB_SOURCE_DIR) + "/config/l4lb.example.yaml";
  const Config c = load_config_file(path);
  EXPECT_EQ(c.dataplane.workers, 2u);
  ASSERT_EQ(c.ports.size(), 1u);
  EXPECT_EQ(c.ports[0].addresses.size(), 2u);
  ASSERT_EQ(c.vips.size(), 2u);
  EXPECT_EQ(c.vips[0].health.type, HealthType::kHttp);
  EXPECT_EQ(c.vips[1].mode, NatMode::kDnat);
  EXPECT_EQ(c.neighbors.size(), 2u);
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9100");
}

// ---------------------------------------------------------------------------
// Error reporting mechanics.

TEST(ConfigError, WhatReadsSourceLineKeyMessage) {
  const ConfigError e("a.yaml", "vips[0].port", 12, "must be in 1..65535, got 0");
  EXPECT_STREQ(e.what(), "a.yaml:12: vips[0].port: must be in 1..65535, got 0");
  EXPECT_EQ(e.key(), "vips[0].port");
  EXPECT_EQ(e.line(), 12);
  EXPECT_EQ(e.message(), "must be in 1..65535, got 0");
}

TEST(ConfigLoader, ErrorNamesSourceKeyAndLine) {
  try {
    parse_config("dataplane:\n  workers: 0\n" + kPorts, "l4lb.yaml");
    FAIL() << "accepted workers: 0";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "l4lb.yaml:2: dataplane.workers: must be in 1..64, got 0");
  }
}

TEST(ConfigLoader, MissingFileIsAConfigError) {
  try {
    load_config_file("/nonexistent/l4lb.yaml");
    FAIL() << "loaded a missing file";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "(document)");
    EXPECT_EQ(e.line(), 0);
    EXPECT_NE(std::string(e.what()).find("/nonexistent/l4lb.yaml:0: (document): cannot open"), std::string::npos)
        << e.what();
  }
}

TEST(ConfigLoader, DirectoryIsAConfigError) {
  try {
    load_config_file(L4LB_SOURCE_DIR);
    FAIL() << "loaded a directory";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.message(), "is a directory");
  }
}

// Whatever the input, the loader either accepts it or throws ConfigError:
// every prefix of the example file and many single-byte corruptions of it.
TEST(ConfigLoader, NeverThrowsAnythingButConfigError) {
  std::ifstream in(std::string(L4LB_SOURCE_DIR) + "/config/l4lb.example.yaml");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  auto check = [](const std::string& input) {
    try {
      parse_config(input);
    } catch (const ConfigError&) {
    } catch (...) {
      ADD_FAILURE() << "non-ConfigError exception for input:\n" << input;
    }
  };
  for (size_t n = 0; n <= text.size(); n += 7) check(text.substr(0, n));
  std::mt19937 rng(12345);  // fixed seed: failures must reproduce
  const std::string alphabet = "-:[]{}#&*!|>'\"%@`,? \n\t0a9/.~";
  for (int i = 0; i < 2000; ++i) {
    std::string mutated = text;
    mutated[rng() % mutated.size()] = alphabet[rng() % alphabet.size()];
    check(mutated);
  }
}

// ---------------------------------------------------------------------------
// One case per validation rule: the exact key and line blamed.

struct ErrorCase {
  std::string name;
  std::string yaml;
  std::string key;
  int line;
  std::string message_part;  // a fragment the message must contain
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& c) { return os << c.name; }

std::string case_name(const testing::TestParamInfo<ErrorCase>& param_info) { return param_info.param.name; }

class ConfigErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, ReportsKeyAndLine) {
  const ErrorCase& c = GetParam();
  const ConfigError e = expect_error(c.yaml);
  EXPECT_EQ(e.key(), c.key) << e.what();
  EXPECT_EQ(e.line(), c.line) << e.what();
  EXPECT_NE(e.message().find(c.message_part), std::string::npos)
      << "message '" << e.message() << "' lacks '" << c.message_part << "'";
  EXPECT_EQ(std::string(e.what()),
            "test.yaml:" + std::to_string(c.line) + ": " + c.key + ": " + e.message());
}

const std::string kDoc = "(document)";

const ErrorCase kDocumentCases[] = {
    {"EmptyDocument", "", kDoc, 0, "empty document"},
    {"OnlyComments", "# nothing here\n\n", kDoc, 0, "empty document"},
    {"TopLevelList", "- a\n- b\n", kDoc, 1, "expected a mapping"},
    {"TopLevelScalar", "\nhello\n", kDoc, 2, "expected a mapping"},
    {"SyntaxError", "ports: [a\nvips: 1\n", kDoc, 2, "YAML syntax error"},
    {"BadIndentation", kPorts + "vips:\n  - name: a\n   port: 1\n", kDoc, 5, "YAML syntax error"},
    {"TwoDocuments", "---\n" + kPorts + "---\nlogging: {}\n", kDoc, 5, "more than one YAML document"},
    {"UnknownTopLevelKey", kPorts + "portz: []\n", "portz", 3, "unknown key"},
    {"MergeKeyIsUnknown", kPorts + "logging:\n  <<: {level: info}\n", "logging.<<", 4, "unknown key"},
    {"DuplicateTopLevelKey", kPorts + "logging: {level: info}\nlogging: {level: warn}\n", "logging", 4,
     "duplicate key (first on line 3)"},
    {"NonStringKey", kPorts + "? [a]\n: 1\n", kDoc, 3, "keys must be plain strings"},
    {"MissingPorts", "\nlogging: {level: info}\n", "ports", 2, "missing required key"},
    {"PortsEmpty", "ports: []\n", "ports", 1, "at least one port"},
    {"PortsNotAList", "ports: {name: p0}\n", "ports", 1, "expected a list, got a mapping"},
    {"PortsNull", "ports:\n", "ports", 1, "expected a list, got nothing"},
};
INSTANTIATE_TEST_SUITE_P(Document, ConfigErrorTest, testing::ValuesIn(kDocumentCases),
                         case_name);

const std::string kDp = "dataplane:\n";  // line 1; the case's key on line 2, ports on 3-4

const ErrorCase kDataplaneCases[] = {
    {"WorkersZero", kDp + "  workers: 0\n" + kPorts, "dataplane.workers", 2, "must be in 1..64, got 0"},
    {"WorkersTooMany", kDp + "  workers: 65\n" + kPorts, "dataplane.workers", 2, "must be in 1..64"},
    {"WorkersNegative", kDp + "  workers: -1\n" + kPorts, "dataplane.workers", 2, "expected an integer"},
    {"WorkersFloat", kDp + "  workers: 1.5\n" + kPorts, "dataplane.workers", 2, "expected an integer"},
    {"WorkersFloatWhole", kDp + "  workers: 2.0\n" + kPorts, "dataplane.workers", 2, "expected an integer"},
    {"WorkersString", kDp + "  workers: two\n" + kPorts, "dataplane.workers", 2, "got 'two'"},
    {"WorkersQuoted", kDp + "  workers: \"2\"\n" + kPorts, "dataplane.workers", 2, "quoted string"},
    {"WorkersHex", kDp + "  workers: 0x10\n" + kPorts, "dataplane.workers", 2, "expected an integer"},
    {"WorkersPlusSign", kDp + "  workers: +2\n" + kPorts, "dataplane.workers", 2, "expected an integer"},
    {"WorkersLeadingZero", kDp + "  workers: 010\n" + kPorts, "dataplane.workers", 2, "leading zeros"},
    {"WorkersList", kDp + "  workers: [1]\n" + kPorts, "dataplane.workers", 2, "got a list"},
    {"WorkersNull", kDp + "  workers:\n" + kPorts, "dataplane.workers", 2, "got nothing"},
    {"WorkersHuge", kDp + "  workers: 99999999999999999999999\n" + kPorts, "dataplane.workers", 2,
     "must be in 1..64"},
    {"FlowsTooFew", kDp + "  flows_per_worker: 1023\n" + kPorts, "dataplane.flows_per_worker", 2,
     "must be in 1024..67108864"},
    {"FlowsTooMany", kDp + "  flows_per_worker: 67108865\n" + kPorts, "dataplane.flows_per_worker", 2,
     "must be in 1024..67108864"},
    {"MbufsTooMany", kDp + "  mbufs: 16777217\n" + kPorts, "dataplane.mbufs", 2, "must be in 1024..16777216"},
    {"SnatRangeBelow1024", kDp + "  snat_port_range: [1000, 2000]\n" + kPorts, "dataplane.snat_port_range[0]",
     2, "must be in 1024..65535"},
    {"SnatRangeAbove65535", kDp + "  snat_port_range: [2000, 65536]\n" + kPorts,
     "dataplane.snat_port_range[1]", 2, "must be in 1024..65535"},
    {"SnatRangeReversed", kDp + "  snat_port_range: [3000, 2000]\n" + kPorts, "dataplane.snat_port_range", 2,
     "min must not exceed max"},
    {"SnatRangeOneValue", kDp + "  snat_port_range: [3000]\n" + kPorts, "dataplane.snat_port_range", 2,
     "expected two ports"},
    {"SnatRangeNotAList", kDp + "  snat_port_range: 3000\n" + kPorts, "dataplane.snat_port_range", 2,
     "expected a list"},
    {"SnatRangeBlockList", kDp + "  snat_port_range:\n    - 3000\n    - x\n" + kPorts,
     "dataplane.snat_port_range[1]", 4, "expected an integer"},
    {"SnatRangeSmallerThanWorkers", kDp + "  workers: 64\n  snat_port_range: [1024, 1050]\n" + kPorts,
     "dataplane.snat_port_range", 3, "fewer than the 64 workers"},
    {"UnknownDataplaneKey", kDp + "  cores: 2\n" + kPorts, "dataplane.cores", 2, "unknown key"},
    {"DataplaneNotAMapping", "dataplane: [1]\n" + kPorts, "dataplane", 1, "expected a mapping, got a list"},
};
INSTANTIATE_TEST_SUITE_P(Dataplane, ConfigErrorTest, testing::ValuesIn(kDataplaneCases),
                         case_name);

const ErrorCase kPortCases[] = {
    {"PortMissingName", "ports:\n  - address: 10.0.0.1/24\n", "ports[0].name", 2, "missing required key"},
    {"PortEmptyName", "ports:\n  - name: ''\n    address: 10.0.0.1/24\n", "ports[0].name", 2, "must not be empty"},
    {"PortNameWithSpace", "ports:\n  - name: net tap\n    address: 10.0.0.1/24\n", "ports[0].name", 2,
     "spaces"},
    {"PortNameNull", "ports:\n  - name:\n    address: 10.0.0.1/24\n", "ports[0].name", 2, "expected a string"},
    {"PortDuplicateName", kPorts + "  - {name: p0, address: 10.0.1.1/24}\n", "ports[1].name", 3,
     "duplicate port name 'p0' (also ports[0], line 2)"},
    {"PortNotAMapping", "ports:\n  - net_tap0\n", "ports[0]", 2, "expected a mapping"},
    {"PortUnknownKey", "ports:\n  - name: p0\n    address: 10.0.0.1/24\n    mtu: 1500\n", "ports[0].mtu", 4,
     "unknown key"},
    {"PortMissingAddress", "ports:\n  - name: p0\n", "ports[0].address", 2, "missing required key"},
    {"PortPrefixTooLong", "ports:\n  - name: p0\n    address: 10.0.0.1/33\n", "ports[0].address", 3,
     "prefix length"},
    {"PortPrefixZero", "ports:\n  - name: p0\n    address: 10.0.0.1/0\n", "ports[0].address", 3, "prefix length"},
    {"PortPrefixEmpty", "ports:\n  - name: p0\n    address: 10.0.0.1/\n", "ports[0].address", 3, "prefix length"},
    {"PortBadAddress", "ports:\n  - name: p0\n    address: 10.0.0/24\n", "ports[0].address", 3,
     "expected an IPv4 address or CIDR"},
    {"PortBadAddressInList", "ports:\n  - name: p0\n    address:\n      - 10.0.0.1/24\n      - 10.0.1.300/24\n",
     "ports[0].address[1]", 5, "expected an IPv4 address or CIDR"},
    {"PortAddressEmptyList", "ports:\n  - name: p0\n    address: []\n", "ports[0].address", 3,
     "at least one address"},
    {"PortAddressMapping", "ports:\n  - name: p0\n    address: {a: 1}\n", "ports[0].address", 3,
     "expected a string or a list"},
    {"PortNetworkAddress", "ports:\n  - name: p0\n    address: 10.0.0.0/24\n", "ports[0].address", 3,
     "network or broadcast"},
    {"PortBroadcastAddress", "ports:\n  - name: p0\n    address: 10.0.0.255/24\n", "ports[0].address", 3,
     "network or broadcast"},
    {"PortLoopbackAddress", "ports:\n  - name: p0\n    address: 127.0.0.1/8\n", "ports[0].address", 3,
     "not a usable unicast address"},
    {"PortDuplicateOwnAddress", kPorts + "  - name: p1\n    address: [10.0.2.1/24, 10.0.0.1/16]\n",
     "ports[1].address[1]", 4, "already an own address (ports[0].address)"},
    {"GatewayOutsideSubnets", "ports:\n  - name: p0\n    address: 10.0.0.1/24\n    gateway: 10.0.1.254\n",
     "ports[0].gateway", 4, "not inside any of this port's address subnets"},
    {"GatewayMalformed", "ports:\n  - name: p0\n    address: 10.0.0.1/24\n    gateway: 10.0.0.256\n",
     "ports[0].gateway", 4, "expected an IPv4 address"},
    {"GatewayIsOwnAddress", "ports:\n  - name: p0\n    address: 10.0.0.1/24\n    gateway: 10.0.0.1\n",
     "ports[0].gateway", 4, "own addresses"},
    {"KernelIfaceTooLong",
     "ports:\n  - name: p0\n    address: 10.0.0.1/24\n    kernel_iface: abcdefghijklmnop\n",
     "ports[0].kernel_iface", 4, "1..15 characters"},
    {"KernelIfaceBadChar", "ports:\n  - name: p0\n    address: 10.0.0.1/24\n    kernel_iface: a/b\n",
     "ports[0].kernel_iface", 4, "[A-Za-z0-9_.-]"},
    {"KernelIfaceEmpty", "ports:\n  - name: p0\n    address: 10.0.0.1/24\n    kernel_iface: ''\n",
     "ports[0].kernel_iface", 4, "1..15 characters"},
    {"KernelIfaceClashesWithDefault",
     kPorts + "  - name: p1\n    address: 10.0.1.1/24\n    kernel_iface: l4lbk0\n", "ports[1].kernel_iface", 5,
     "already used by ports[0]"},
};
INSTANTIATE_TEST_SUITE_P(Ports, ConfigErrorTest, testing::ValuesIn(kPortCases),
                         case_name);

// VIP cases: kPorts (1-2), kVipHead (3-7), the case's lines from 8.
const std::string kVip = kPorts + kVipHead;

const ErrorCase kVipCases[] = {
    {"VipsNotAList", kPorts + "vips: {name: web}\n", "vips", 3, "expected a list"},
    {"VipNotAMapping", kPorts + "vips:\n  - web\n", "vips[0]", 4, "expected a mapping"},
    {"VipMissingName", kPorts + "vips:\n  - address: 10.0.0.100\n    port: 80\n", "vips[0].name", 4,
     "missing required key"},
    {"VipMissingAddress", kPorts + "vips:\n  - name: web\n    port: 80\n", "vips[0].address", 4,
     "missing required key"},
    {"VipMissingPort", kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n", "vips[0].port", 4,
     "missing required key"},
    {"VipUnknownKey", kVip + "    weight: 1\n" + kBackends, "vips[0].weight", 8, "unknown key"},
    {"VipDuplicateKey", kVip + "    port: 81\n" + kBackends, "vips[0].port", 8, "duplicate key (first on line 6)"},
    {"VipBadAddress", kPorts + "vips:\n  - name: web\n    address: 10.0.0.1000\n", "vips[0].address", 5,
     "expected an IPv4 address"},
    {"VipAddressLeadingZero", kPorts + "vips:\n  - name: web\n    address: 10.0.0.010\n", "vips[0].address", 5,
     "expected an IPv4 address"},
    {"VipAddressMulticast", kPorts + "vips:\n  - name: web\n    address: 224.0.0.1\n", "vips[0].address", 5,
     "not a usable unicast address"},
    {"VipAddressIsOwn", kPorts + "vips:\n  - name: web\n    address: 10.0.0.1\n", "vips[0].address", 5,
     "appliance's own addresses (ports[0].address)"},
    {"VipPortZero", kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 0\n", "vips[0].port", 6,
     "must be in 1..65535"},
    {"VipPortTooBig", kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 65536\n", "vips[0].port",
     6, "must be in 1..65535"},
    {"VipProtocolUnknown", kVip + "    protocol: sctp\n" + kBackends, "vips[0].protocol", 8,
     "expected one of tcp|udp, got 'sctp'"},
    {"VipProtocolUppercase", kVip + "    protocol: TCP\n" + kBackends, "vips[0].protocol", 8, "tcp|udp"},
    {"VipModeUnknown", kVip + "    mode: snat\n" + kBackends, "vips[0].mode", 8, "expected one of fnat|dnat"},
    {"VipDuplicateName",
     kVip + kBackends + "  - {name: web, address: 10.0.0.101, port: 80, snat: 10.0.0.1, backends: []}\n",
     "vips[1].name", 9, "duplicate vip name 'web' (also vips[0], line 4)"},
    {"VipDuplicateAddressPortProtocol",
     kVip + kBackends +
         "  - name: web2\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    snat: 10.0.0.1\n",
     "vips[1]", 9, "duplicate vip 10.0.0.100:80/tcp (also vips[0] 'web', line 4)"},
    {"SnatMissingForFnat", kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n" + kBackends,
     "vips[0].snat", 4, "required for mode fnat"},
    {"SnatEmptyList",
     kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    snat: []\n" + kBackends,
     "vips[0].snat", 7, "at least one snat address"},
    {"SnatWithDnat", kVip + "    mode: dnat\n" + kBackends, "vips[0].snat", 7, "not allowed with mode dnat"},
    {"SnatEmptyListWithDnat",
     kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    snat: []\n    mode: dnat\n" +
         kBackends,
     "vips[0].snat", 7, "not allowed with mode dnat"},
    {"SnatBadEntry",
     kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    snat: [10.0.0.1, 10.0.0]\n" +
         kBackends,
     "vips[0].snat[1]", 7, "expected an IPv4 address"},
    {"SnatDuplicate",
     kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    snat: [10.0.0.1, 10.0.0.1]\n" +
         kBackends,
     "vips[0].snat[1]", 7, "duplicate snat address"},
    {"SnatMapping",
     kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    snat: {a: 1}\n" + kBackends,
     "vips[0].snat", 7, "expected a string or a list"},
    {"TableSizeNotPrime", kVip + "    table_size: 65536\n" + kBackends, "vips[0].table_size", 8,
     "65536 is not prime"},
    {"TableSizeTooSmall", kVip + "    table_size: 5\n" + kBackends, "vips[0].table_size", 8, "must be in 7..16777213"},
    {"TableSizeTooBig", kVip + "    table_size: 16777259\n" + kBackends, "vips[0].table_size", 8,
     "must be in 7..16777213"},
    {"TableSizeBelowBackendCount",
     kVip + "    table_size: 7\n    backends:\n" +
         "      - {address: 10.0.0.21, port: 1}\n      - {address: 10.0.0.21, port: 2}\n"
         "      - {address: 10.0.0.21, port: 3}\n      - {address: 10.0.0.21, port: 4}\n"
         "      - {address: 10.0.0.21, port: 5}\n      - {address: 10.0.0.21, port: 6}\n"
         "      - {address: 10.0.0.21, port: 7}\n      - {address: 10.0.0.21, port: 8}\n",
     "vips[0].table_size", 8, "smaller than the 8 backends"},
    {"TcpMissUnknown", kVip + "    tcp_miss: reset\n" + kBackends, "vips[0].tcp_miss", 8,
     "expected one of forward|drop"},
    {"DownPolicyUnknown", kVip + "    down_policy: drain\n" + kBackends, "vips[0].down_policy", 8,
     "expected one of keep|reset"},
    {"TcpMissOnUdp", kVip + "    protocol: udp\n    tcp_miss: drop\n" + kBackends, "vips[0].tcp_miss", 9,
     "only applies to protocol tcp"},
};
INSTANTIATE_TEST_SUITE_P(Vips, ConfigErrorTest, testing::ValuesIn(kVipCases),
                         case_name);

const ErrorCase kHealthCases[] = {
    {"HealthNotAMapping", kVip + "    health: tcp\n" + kBackends, "vips[0].health", 8, "expected a mapping"},
    {"HealthUnknownKey", kVip + "    health:\n      type: tcp\n      retries: 3\n" + kBackends,
     "vips[0].health.retries", 10, "unknown key"},
    {"HealthTypeUnknown", kVip + "    health: {type: icmp}\n" + kBackends, "vips[0].health.type", 8,
     "expected one of none|tcp|http"},
    {"HealthTimeoutNotBelowInterval",
     kVip + "    health:\n      type: tcp\n      interval_ms: 300\n      timeout_ms: 300\n" + kBackends,
     "vips[0].health.timeout_ms", 11, "must be less than interval_ms"},
    {"HealthDefaultTimeoutAboveInterval", kVip + "    health:\n      type: tcp\n      interval_ms: 100\n" + kBackends,
     "vips[0].health", 8, "timeout_ms (500) must be less than interval_ms (100)"},
    {"HealthIntervalTooShort", kVip + "    health: {type: tcp, interval_ms: 9, timeout_ms: 5}\n" + kBackends,
     "vips[0].health.interval_ms", 8, "must be in 10..3600000"},
    {"HealthIntervalTooLong", kVip + "    health:\n      interval_ms: 3600001\n" + kBackends,
     "vips[0].health.interval_ms", 9, "must be in 10..3600000"},
    {"HealthTimeoutZero", kVip + "    health:\n      timeout_ms: 0\n" + kBackends, "vips[0].health.timeout_ms", 9,
     "must be in 1..3600000"},
    {"HealthRiseZero", kVip + "    health:\n      rise: 0\n" + kBackends, "vips[0].health.rise", 9,
     "must be in 1..100"},
    {"HealthFallTooHigh", kVip + "    health:\n      fall: 101\n" + kBackends, "vips[0].health.fall", 9,
     "must be in 1..100"},
    {"HealthPathWithoutSlash", kVip + "    health:\n      type: http\n      path: health\n" + kBackends,
     "vips[0].health.path", 10, "starting with '/'"},
    {"HealthPathWithSpace", kVip + "    health:\n      type: http\n      path: /a b\n" + kBackends,
     "vips[0].health.path", 10, "without spaces"},
    {"HealthPathForTcp", kVip + "    health:\n      type: tcp\n      path: /health\n" + kBackends,
     "vips[0].health.path", 10, "only applies to type http"},
    {"HealthExpectTooHigh", kVip + "    health:\n      type: http\n      expect: 600\n" + kBackends,
     "vips[0].health.expect", 10, "must be in 100..599"},
    {"HealthExpectForNone", kVip + "    health:\n      expect: 200\n" + kBackends, "vips[0].health.expect", 9,
     "only applies to type http"},
};
INSTANTIATE_TEST_SUITE_P(Health, ConfigErrorTest, testing::ValuesIn(kHealthCases),
                         case_name);

const ErrorCase kBackendCases[] = {
    {"BackendsMissing", kVip, "vips[0].backends", 4, "missing required key"},
    {"BackendsEmpty", kVip + "    backends: []\n", "vips[0].backends", 8, "at least one backend"},
    {"BackendsNotAList", kVip + "    backends: {address: 10.0.0.21, port: 80}\n", "vips[0].backends", 8,
     "expected a list, got a mapping"},
    {"BackendNotAMapping", kVip + "    backends:\n      - 10.0.0.21:80\n", "vips[0].backends[0]", 9,
     "expected a mapping"},
    {"BackendMissingPort", kVip + "    backends:\n      - {address: 10.0.0.21, port: 80}\n      - address: 10.0.0.22\n",
     "vips[0].backends[1].port", 10, "missing required key"},
    {"BackendMissingAddress", kVip + "    backends:\n      - port: 80\n", "vips[0].backends[0].address", 9,
     "missing required key"},
    {"BackendPortString",
     kVip + "    backends:\n      - address: 10.0.0.21\n        port: 80\n"
            "      - address: 10.0.0.22\n        port: http\n",
     "vips[0].backends[1].port", 12, "got 'http'"},
    {"BackendPortZero", kVip + "    backends:\n      - {address: 10.0.0.21, port: 0}\n", "vips[0].backends[0].port",
     9, "must be in 1..65535"},
    {"BackendWeightTooBig", kVip + "    backends:\n      - {address: 10.0.0.21, port: 80, weight: 65536}\n",
     "vips[0].backends[0].weight", 9, "must be in 0..65535"},
    {"BackendWeightNegative", kVip + "    backends:\n      - {address: 10.0.0.21, port: 80, weight: -1}\n",
     "vips[0].backends[0].weight", 9, "expected an integer in 0..65535"},
    {"BackendWeightFloat", kVip + "    backends:\n      - {address: 10.0.0.21, port: 80, weight: 0.5}\n",
     "vips[0].backends[0].weight", 9, "expected an integer"},
    {"BackendBadAddress", kVip + "    backends:\n      - {address: 10.0.0.21.5, port: 80}\n",
     "vips[0].backends[0].address", 9, "expected an IPv4 address"},
    {"BackendIsOwnAddress", kVip + "    backends:\n      - {address: 10.0.0.1, port: 80}\n",
     "vips[0].backends[0].address", 9, "own addresses"},
    {"BackendUnknownKey", kVip + "    backends:\n      - {address: 10.0.0.21, port: 80, wieght: 2}\n",
     "vips[0].backends[0].wieght", 9, "unknown key"},
    {"BackendDuplicate",
     kVip + "    backends:\n      - {address: 10.0.0.21, port: 80}\n      - {address: 10.0.0.22, port: 80}\n"
            "      - {address: 10.0.0.21, port: 80, weight: 5}\n",
     "vips[0].backends[2]", 11, "duplicate backend 10.0.0.21:80 (also vips[0].backends[0], line 9)"},
    {"BackendInSecondVip",
     kVip + kBackends +
         "  - name: api\n    address: 10.0.0.100\n    port: 81\n    snat: 10.0.0.1\n    backends:\n"
         "      - {address: 10.0.0.21, port: 80}\n      - {address: 10.0.0.21, port: 65536}\n",
     "vips[1].backends[1].port", 15, "must be in 1..65535"},
};
INSTANTIATE_TEST_SUITE_P(Backends, ConfigErrorTest, testing::ValuesIn(kBackendCases),
                         case_name);

// Neighbour cases: kPorts (1-2), "neighbors:" on 3, entries from 4.
const std::string kNb = kPorts + "neighbors:\n";

const ErrorCase kNeighborCases[] = {
    {"NeighborsNotAList", kPorts + "neighbors: {address: 10.0.0.21}\n", "neighbors", 3, "expected a list"},
    {"NeighborMissingMac", kNb + "  - address: 10.0.0.21\n", "neighbors[0].mac", 4, "missing required key"},
    {"NeighborMissingAddress", kNb + "  - mac: 02:00:00:00:00:21\n", "neighbors[0].address", 4,
     "missing required key"},
    {"NeighborMacShort", kNb + "  - {address: 10.0.0.21, mac: \"02:00:00:00:00\"}\n", "neighbors[0].mac", 4,
     "expected a MAC address"},
    {"NeighborMacDashes", kNb + "  - {address: 10.0.0.21, mac: 02-00-00-00-00-21}\n", "neighbors[0].mac", 4,
     "expected a MAC address"},
    {"NeighborMacNotHex", kNb + "  - {address: 10.0.0.21, mac: \"02:00:00:00:00:2g\"}\n", "neighbors[0].mac", 4,
     "expected a MAC address"},
    {"NeighborMacSingleDigits", kNb + "  - {address: 10.0.0.21, mac: \"2:0:0:0:0:21:\"}\n", "neighbors[0].mac", 4,
     "expected a MAC address"},
    {"NeighborMacMulticast", kNb + "  - {address: 10.0.0.21, mac: \"01:00:5e:00:00:01\"}\n", "neighbors[0].mac",
     4, "multicast"},
    {"NeighborMacBroadcast", kNb + "  - {address: 10.0.0.21, mac: \"ff:ff:ff:ff:ff:ff\"}\n", "neighbors[0].mac",
     4, "multicast"},
    {"NeighborMacZero", kNb + "  - {address: 10.0.0.21, mac: \"00:00:00:00:00:00\"}\n", "neighbors[0].mac", 4,
     "all-zero"},
    {"NeighborBadAddress", kNb + "  - {address: 10.0.0.x, mac: \"02:00:00:00:00:21\"}\n", "neighbors[0].address",
     4, "expected an IPv4 address"},
    {"NeighborIsOwnAddress", kNb + "  - {address: 10.0.0.1, mac: \"02:00:00:00:00:21\"}\n",
     "neighbors[0].address", 4, "own addresses"},
    {"NeighborDuplicate",
     kNb + "  - {address: 10.0.0.21, mac: \"02:00:00:00:00:21\"}\n"
           "  - address: 10.0.0.21\n    mac: \"02:00:00:00:00:22\"\n",
     "neighbors[1].address", 5, "duplicate neighbor 10.0.0.21 (also neighbors[0], line 4)"},
    {"NeighborUnknownKey", kNb + "  - {address: 10.0.0.21, mac: \"02:00:00:00:00:21\", port: 1}\n",
     "neighbors[0].port", 4, "unknown key"},
};
INSTANTIATE_TEST_SUITE_P(Neighbors, ConfigErrorTest, testing::ValuesIn(kNeighborCases),
                         case_name);

const ErrorCase kOtherCases[] = {
    {"TimeoutZero", kPorts + "timeouts:\n  tcp_syn_s: 0\n", "timeouts.tcp_syn_s", 4, "must be in 1..86400"},
    {"TimeoutTooLong", kPorts + "timeouts:\n  udp_s: 86401\n", "timeouts.udp_s", 4, "must be in 1..86400"},
    {"TimeoutEstablishedString", kPorts + "timeouts:\n  tcp_established_s: 15m\n", "timeouts.tcp_established_s", 4,
     "expected an integer"},
    {"TimeoutClosingNegative", kPorts + "timeouts: {tcp_closing_s: -5}\n", "timeouts.tcp_closing_s", 3,
     "expected an integer"},
    {"TimeoutUnknownKey", kPorts + "timeouts:\n  icmp_s: 5\n", "timeouts.icmp_s", 4, "unknown key"},
    {"TimeoutsNotAMapping", kPorts + "timeouts: 30\n", "timeouts", 3, "expected a mapping"},
    {"LogLevelUnknown", kPorts + "logging:\n  level: verbose\n", "logging.level", 4,
     "expected one of trace|debug|info|warn|error|critical|off"},
    {"LoggingUnknownKey", kPorts + "logging:\n  file: /var/log/l4lb\n", "logging.file", 4, "unknown key"},
    {"MetricsNoPort", kPorts + "metrics:\n  listen: 127.0.0.1\n", "metrics.listen", 4, "expected ADDR:PORT"},
    {"MetricsHostname", kPorts + "metrics:\n  listen: localhost:9100\n", "metrics.listen", 4, "expected ADDR:PORT"},
    {"MetricsPortZero", kPorts + "metrics:\n  listen: 127.0.0.1:0\n", "metrics.listen", 4, "expected ADDR:PORT"},
    {"MetricsPortTooBig", kPorts + "metrics:\n  listen: 127.0.0.1:65536\n", "metrics.listen", 4,
     "expected ADDR:PORT"},
    {"MetricsListenList", kPorts + "metrics:\n  listen: [127.0.0.1:9100]\n", "metrics.listen", 4,
     "expected a string"},
    {"MetricsUnknownKey", kPorts + "metrics:\n  path: /metrics\n", "metrics.path", 4, "unknown key"},
};
INSTANTIATE_TEST_SUITE_P(Other, ConfigErrorTest, testing::ValuesIn(kOtherCases),
                         case_name);

// ---------------------------------------------------------------------------
// The data plane's lifetime id limits (common/limits.h): exactly at the limit
// is accepted; one more is refused at the entry that passes it, with its key
// and line. tests/unit/controlplane/snapshot_limits_test.cc checks that the
// snapshot builder counts the same way.

void expect_limit_error(const test::LimitDoc& doc, const std::string& message_part) {
  const ConfigError e = expect_error(doc.yaml);
  EXPECT_EQ(e.key(), doc.last_key) << e.what();
  EXPECT_EQ(e.line(), doc.last_line) << e.what();
  EXPECT_NE(e.message().find(message_part), std::string::npos) << e.what();
  EXPECT_EQ(std::string(e.what()),
            "test.yaml:" + std::to_string(doc.last_line) + ": " + doc.last_key + ": " + e.message());
}

TEST(ConfigLimits, AtMost1024Vips) {
  ASSERT_EQ(kMaxVips, 1024u);
  EXPECT_EQ(parse_config(test::vips_doc(kMaxVips).yaml).vips.size(), kMaxVips);
  const test::LimitDoc over = test::vips_doc(kMaxVips + 1);
  EXPECT_EQ(over.last_key, "vips[1024]");
  EXPECT_EQ(over.last_line, 1028);
  expect_limit_error(over, "the data plane holds at most 1024 vips; this is vip 1025");
}

// Backend ids are per (vip, address:port): the same 8192 address:ports under
// two vips are 16384 backends.
TEST(ConfigLimits, AtMost16384BackendsAcrossVips) {
  ASSERT_EQ(kMaxBackends, 16384u);
  const Config c = parse_config(test::backends_doc(kMaxBackends).yaml);
  ASSERT_EQ(c.vips.size(), 2u);
  EXPECT_EQ(c.vips[0].backends.size() + c.vips[1].backends.size(), kMaxBackends);
  const test::LimitDoc over = test::backends_doc(kMaxBackends + 1);
  EXPECT_EQ(over.last_key, "vips[1].backends[8192]");
  expect_limit_error(over, "at most 16384 backends in total across all vips");
}

// SNAT slots are per distinct address: an address two vips share is one.
TEST(ConfigLimits, AtMost64DistinctSnatAddressesAcrossVips) {
  ASSERT_EQ(kMaxSnatAddresses, 64u);
  const Config c = parse_config(test::snat_doc(kMaxSnatAddresses).yaml);
  ASSERT_EQ(c.vips.size(), 2u);
  EXPECT_EQ(c.vips[0].snat.size() + c.vips[1].snat.size(), kMaxSnatAddresses + 20);
  const test::LimitDoc over = test::snat_doc(kMaxSnatAddresses + 1);
  EXPECT_EQ(over.last_key, "vips[1].snat[44]");
  expect_limit_error(over,
                     "at most 64 distinct snat addresses across all vips; 10.3.0.65 would be number 65");
}

// ---------------------------------------------------------------------------
// Address helpers.

TEST(ParseIpv4, AcceptsDottedQuads) {
  uint32_t a = 0;
  ASSERT_TRUE(parse_ipv4("10.99.0.1", a));
  EXPECT_EQ(a, 0x0a630001u);
  ASSERT_TRUE(parse_ipv4("0.0.0.0", a));
  EXPECT_EQ(a, 0u);
  ASSERT_TRUE(parse_ipv4("255.255.255.255", a));
  EXPECT_EQ(a, 0xffffffffu);
}

TEST(ParseIpv4, RejectsEverythingElse) {
  for (const char* text : {"", "1", "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "256.0.0.1", "1.2.3.4 ",
                           " 1.2.3.4", "01.2.3.4", "1.2.3.0x1", "1.2.3.-1", "1.2.3.+1", "1.2.3.1000", "a.b.c.d",
                           "1.2.3.4/24", "1.2.3.4:80"}) {
    uint32_t a = 0xdeadbeef;
    EXPECT_FALSE(parse_ipv4(text, a)) << "'" << text << "'";
    EXPECT_EQ(a, 0xdeadbeefu) << "output written on failure for '" << text << "'";
  }
}

TEST(FormatIpv4, RoundTrips) {
  EXPECT_EQ(format_ipv4(0x0a630001u), "10.99.0.1");
  EXPECT_EQ(format_ipv4(0), "0.0.0.0");
  EXPECT_EQ(format_ipv4(0xffffffffu), "255.255.255.255");
  for (const char* text : {"1.2.3.4", "192.168.100.254", "172.16.0.1"}) EXPECT_EQ(format_ipv4(ip(text)), text);
}

}  // namespace
}  // namespace l4lb::config
