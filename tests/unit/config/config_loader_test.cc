// Tests for the YAML config loader (DESIGN §9): every field round-trips,
// defaults apply, errors name source, key and line, and the data plane's id
// limits hold. One row per validation rule: config_loader_errors_test.cc.
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
#include "loader_test_docs.h"

namespace l4lb::config {
namespace {

uint32_t ip(const char* text) {
  uint32_t address = 0;
  EXPECT_TRUE(parse_ipv4(text, address)) << text;
  return address;
}

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

// Document-level errors: the line and message of each text's error, all
// blamed on the whole document.
struct DocumentCase {
  std::string text;
  int line;
  std::string message;
};

void expect_document_errors(const std::vector<DocumentCase>& cases) {
  for (const DocumentCase& c : cases) {
    const ConfigError e = expect_error(c.text);
    EXPECT_EQ(e.key(), "(document)") << c.text;
    EXPECT_EQ(e.line(), c.line) << c.text;
    EXPECT_EQ(e.message(), c.message) << c.text;
  }
}

const std::string kStrayComma = "YAML syntax error: unexpected ',' outside a flow collection ([ ] or { })";
const std::string kTwoDocuments = "more than one YAML document; expected exactly one";

// yaml-cpp 0.7 loops forever, growing, on a ',' outside any flow collection
// (found by tests/fuzz/config_fuzz): the loader must answer with an error
// that names the ',' and its line. (After a block mapping yaml-cpp itself
// reports the ','.)
TEST(ConfigLoader, StrayCommaIsAnErrorNotAHang) {
  expect_document_errors({
      {",", 1, kStrayComma},
      {"[a]\n,", 2, kStrayComma},
      {"  &x ,\n", 1, kStrayComma},
      {"# comment\n{a: 1}, \n", 2, kStrayComma},
      {"[a]\n---\n,\n", 3, kStrayComma},                            // a second document, but the ',' is the error
      {"\xEF\xBB\xBFports: []\r\n---\r\n  ,\r\n", 3, kStrayComma},  // UTF-8 BOM, CRLF
      {kPorts + ",\n", 3, "YAML syntax error: end of map not found"},
  });
}

// The guard against that loop must not take a real second document for a
// stray ',' or the other way round: same shapes, different errors.
TEST(ConfigLoader, SecondDocumentAndStrayCommaAreToldApart) {
  expect_document_errors({
      {"[a]\n---\n[b]\n", 3, kTwoDocuments},
      {"[a]\n,\n", 2, kStrayComma},
      {kPorts + "---\n" + kPorts, 4, kTwoDocuments},
      {kPorts + "...\n" + kPorts, 4, kTwoDocuments},   // text after "..." is a new document
      {"[a]\n--- [b, c]\n", 2, kTwoDocuments},         // a ',' inside a flow collection is not stray
      {"[a]\n---\n[b]\n---\n[c\n", 3, kTwoDocuments},  // a broken third document: still the second is reported
      {"{a: 1},\n", 1, kStrayComma},
  });
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
  const ConfigError udp = expect_error(kPorts + kVipHead + "    protocol: udp\n    max_embryonic: 5\n" + kBackends);
  EXPECT_EQ(udp.key(), "vips[0].max_embryonic");
  EXPECT_EQ(udp.line(), 9);
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
