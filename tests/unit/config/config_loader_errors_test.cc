// The loader's refusals (DESIGN §9), one row per validation rule: the exact
// key path and 1-based line each blames, and a fragment of its message.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "l4lb/config/config_loader.h"
#include "loader_test_docs.h"

namespace l4lb::config {
namespace {

struct ErrorCase {
  std::string name;
  std::string yaml;
  std::string key;
  int line;
  std::string message_part;  // a fragment the message must contain
};

std::ostream& operator<<(std::ostream& os, const ErrorCase& c) {
  return os << c.name;
}

std::string case_name(const testing::TestParamInfo<ErrorCase>& param_info) {
  return param_info.param.name;
}

class ConfigErrorTest : public testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorTest, ReportsKeyAndLine) {
  const ErrorCase& c = GetParam();
  const ConfigError e = expect_error(c.yaml);
  EXPECT_EQ(e.key(), c.key) << e.what();
  EXPECT_EQ(e.line(), c.line) << e.what();
  EXPECT_NE(e.message().find(c.message_part), std::string::npos)
      << "message '" << e.message() << "' lacks '" << c.message_part << "'";
  EXPECT_EQ(std::string(e.what()), "test.yaml:" + std::to_string(c.line) + ": " + c.key + ": " + e.message());
}

// Where a table's cases sit in a document: each case's text goes between
// `before` and `after`, and its key is reported below `key_prefix`. Lines
// stay absolute, as the loader reports them.
struct Place {
  std::string before;
  std::string after;
  std::string key_prefix;
};

std::vector<ErrorCase> in(const Place& place, std::vector<ErrorCase> cases) {
  for (ErrorCase& c : cases) {
    c.yaml = place.before + c.yaml + place.after;
    c.key = place.key_prefix + c.key;
  }
  return cases;
}

std::vector<ErrorCase> join(std::initializer_list<std::vector<ErrorCase>> tables) {
  std::vector<ErrorCase> all;
  for (const std::vector<ErrorCase>& table : tables) all.insert(all.end(), table.begin(), table.end());
  return all;
}

const std::string kDoc = "(document)";
const Place kTop{"", "", ""};

const std::vector<ErrorCase> kDocumentCases =
    in(kTop,
       {
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
       });
INSTANTIATE_TEST_SUITE_P(Document, ConfigErrorTest, testing::ValuesIn(kDocumentCases), case_name);

// "dataplane:" on line 1, the case's lines from 2, then kPorts.
const std::vector<ErrorCase> kDataplaneCases =
    in({"dataplane:\n", kPorts, "dataplane."},
       {
           {"WorkersZero", "  workers: 0\n", "workers", 2, "must be in 1..64, got 0"},
           {"WorkersTooMany", "  workers: 65\n", "workers", 2, "must be in 1..64"},
           {"WorkersNegative", "  workers: -1\n", "workers", 2, "expected an integer"},
           {"WorkersFloat", "  workers: 1.5\n", "workers", 2, "expected an integer"},
           {"WorkersFloatWhole", "  workers: 2.0\n", "workers", 2, "expected an integer"},
           {"WorkersString", "  workers: two\n", "workers", 2, "got 'two'"},
           {"WorkersQuoted", "  workers: \"2\"\n", "workers", 2, "quoted string"},
           {"WorkersHex", "  workers: 0x10\n", "workers", 2, "expected an integer"},
           {"WorkersPlusSign", "  workers: +2\n", "workers", 2, "expected an integer"},
           {"WorkersLeadingZero", "  workers: 010\n", "workers", 2, "leading zeros"},
           {"WorkersList", "  workers: [1]\n", "workers", 2, "got a list"},
           {"WorkersNull", "  workers:\n", "workers", 2, "got nothing"},
           {"WorkersHuge", "  workers: 99999999999999999999999\n", "workers", 2, "must be in 1..64"},
           {"FlowsTooFew", "  flows_per_worker: 1023\n", "flows_per_worker", 2, "must be in 1024..67108864"},
           {"FlowsTooMany", "  flows_per_worker: 67108865\n", "flows_per_worker", 2,
            "must be in 1024..67108864"},
           {"MbufsTooMany", "  mbufs: 16777217\n", "mbufs", 2, "must be in 1024..16777216"},
           {"SnatRangeBelow1024", "  snat_port_range: [1000, 2000]\n", "snat_port_range[0]", 2,
            "must be in 1024..65535"},
           {"SnatRangeAbove65535", "  snat_port_range: [2000, 65536]\n", "snat_port_range[1]", 2,
            "must be in 1024..65535"},
           {"SnatRangeReversed", "  snat_port_range: [3000, 2000]\n", "snat_port_range", 2,
            "min must not exceed max"},
           {"SnatRangeOneValue", "  snat_port_range: [3000]\n", "snat_port_range", 2, "expected two ports"},
           {"SnatRangeNotAList", "  snat_port_range: 3000\n", "snat_port_range", 2, "expected a list"},
           {"SnatRangeBlockList", "  snat_port_range:\n    - 3000\n    - x\n", "snat_port_range[1]", 4,
            "expected an integer"},
           {"SnatRangeSmallerThanWorkers", "  workers: 64\n  snat_port_range: [1024, 1050]\n",
            "snat_port_range", 3, "fewer than the 64 workers"},
           {"UnknownDataplaneKey", "  cores: 2\n", "cores", 2, "unknown key"},
       });
const std::vector<ErrorCase> kDataplaneSectionCases =
    in(kTop, {
                 {"DataplaneNotAMapping", "dataplane: [1]\n" + kPorts, "dataplane", 1,
                  "expected a mapping, got a list"},
             });
INSTANTIATE_TEST_SUITE_P(Dataplane, ConfigErrorTest,
                         testing::ValuesIn(join({kDataplaneCases, kDataplaneSectionCases})), case_name);

// "ports:" on line 1, "  - name: p0" on 2, the case's lines from 3.
const std::vector<ErrorCase> kPortCases = in(
    {"ports:\n  - name: p0\n", "", "ports[0]."},
    {
        {"PortUnknownKey", "    address: 10.0.0.1/24\n    mtu: 1500\n", "mtu", 4, "unknown key"},
        {"PortMissingAddress", "", "address", 2, "missing required key"},
        {"PortPrefixTooLong", "    address: 10.0.0.1/33\n", "address", 3, "prefix length"},
        {"PortPrefixZero", "    address: 10.0.0.1/0\n", "address", 3, "prefix length"},
        {"PortPrefixEmpty", "    address: 10.0.0.1/\n", "address", 3, "prefix length"},
        {"PortBadAddress", "    address: 10.0.0/24\n", "address", 3, "expected an IPv4 address or CIDR"},
        {"PortBadAddressInList", "    address:\n      - 10.0.0.1/24\n      - 10.0.1.300/24\n", "address[1]",
         5, "expected an IPv4 address or CIDR"},
        {"PortAddressEmptyList", "    address: []\n", "address", 3, "at least one address"},
        {"PortAddressMapping", "    address: {a: 1}\n", "address", 3, "expected a string or a list"},
        {"PortNetworkAddress", "    address: 10.0.0.0/24\n", "address", 3, "network or broadcast"},
        {"PortBroadcastAddress", "    address: 10.0.0.255/24\n", "address", 3, "network or broadcast"},
        {"PortLoopbackAddress", "    address: 127.0.0.1/8\n", "address", 3, "not a usable unicast address"},
        {"GatewayOutsideSubnets", "    address: 10.0.0.1/24\n    gateway: 10.0.1.254\n", "gateway", 4,
         "not inside any of this port's address subnets"},
        {"GatewayMalformed", "    address: 10.0.0.1/24\n    gateway: 10.0.0.256\n", "gateway", 4,
         "expected an IPv4 address"},
        {"GatewayIsOwnAddress", "    address: 10.0.0.1/24\n    gateway: 10.0.0.1\n", "gateway", 4,
         "own addresses"},
        {"KernelIfaceTooLong", "    address: 10.0.0.1/24\n    kernel_iface: abcdefghijklmnop\n",
         "kernel_iface", 4, "1..15 characters"},
        {"KernelIfaceBadChar", "    address: 10.0.0.1/24\n    kernel_iface: a/b\n", "kernel_iface", 4,
         "[A-Za-z0-9_.-]"},
        {"KernelIfaceEmpty", "    address: 10.0.0.1/24\n    kernel_iface: ''\n", "kernel_iface", 4,
         "1..15 characters"},
    });
// Ports whose first entry is not "- name: p0", or with a second one.
const std::vector<ErrorCase> kPortListCases = in(
    kTop,
    {
        {"PortMissingName", "ports:\n  - address: 10.0.0.1/24\n", "ports[0].name", 2, "missing required key"},
        {"PortEmptyName", "ports:\n  - name: ''\n    address: 10.0.0.1/24\n", "ports[0].name", 2,
         "must not be empty"},
        {"PortNameWithSpace", "ports:\n  - name: net tap\n    address: 10.0.0.1/24\n", "ports[0].name", 2,
         "spaces"},
        {"PortNameNull", "ports:\n  - name:\n    address: 10.0.0.1/24\n", "ports[0].name", 2,
         "expected a string"},
        {"PortNotAMapping", "ports:\n  - net_tap0\n", "ports[0]", 2, "expected a mapping"},
        {"PortDuplicateName", kPorts + "  - {name: p0, address: 10.0.1.1/24}\n", "ports[1].name", 3,
         "duplicate port name 'p0' (also ports[0], line 2)"},
        {"PortDuplicateOwnAddress", kPorts + "  - name: p1\n    address: [10.0.2.1/24, 10.0.0.1/16]\n",
         "ports[1].address[1]", 4, "already an own address (ports[0].address)"},
        {"KernelIfaceClashesWithDefault",
         kPorts + "  - name: p1\n    address: 10.0.1.1/24\n    kernel_iface: l4lbk0\n",
         "ports[1].kernel_iface", 5, "already used by ports[0]"},
    });
INSTANTIATE_TEST_SUITE_P(Ports, ConfigErrorTest, testing::ValuesIn(join({kPortCases, kPortListCases})),
                         case_name);

// kPorts (1-2), kVipHead (3-7), the case's lines from 8, then kBackends.
const std::string kVip = kPorts + kVipHead;
const Place kInVip{kVip, kBackends, "vips[0]."};

const std::vector<ErrorCase> kVipCases = in(
    kInVip,
    {
        {"VipUnknownKey", "    weight: 1\n", "weight", 8, "unknown key"},
        {"VipDuplicateKey", "    port: 81\n", "port", 8, "duplicate key (first on line 6)"},
        {"VipProtocolUnknown", "    protocol: sctp\n", "protocol", 8, "expected one of tcp|udp, got 'sctp'"},
        {"VipProtocolUppercase", "    protocol: TCP\n", "protocol", 8, "tcp|udp"},
        {"VipModeUnknown", "    mode: snat\n", "mode", 8, "expected one of fnat|dnat"},
        {"SnatWithDnat", "    mode: dnat\n", "snat", 7, "not allowed with mode dnat"},
        {"TableSizeNotPrime", "    table_size: 65536\n", "table_size", 8, "65536 is not prime"},
        {"TableSizeTooSmall", "    table_size: 5\n", "table_size", 8, "must be in 7..16777213"},
        {"TableSizeTooBig", "    table_size: 16777259\n", "table_size", 8, "must be in 7..16777213"},
        {"TcpMissUnknown", "    tcp_miss: reset\n", "tcp_miss", 8, "expected one of forward|drop"},
        {"DownPolicyUnknown", "    down_policy: drain\n", "down_policy", 8, "expected one of keep|reset"},
        {"TcpMissOnUdp", "    protocol: udp\n    tcp_miss: drop\n", "tcp_miss", 9,
         "only applies to protocol tcp"},
        {"DnatReverseOnFnat", "    dnat_reverse: stateless\n", "dnat_reverse", 8, "only applies to mode dnat"},
    });
// "vips:" on line 3, "  - name: web" on 4, the case's lines from 5 (no backends appended).
const std::vector<ErrorCase> kVipFieldCases =
    in({kPorts + "vips:\n  - name: web\n", "", "vips[0]."},
       {
           {"VipMissingAddress", "    port: 80\n", "address", 4, "missing required key"},
           {"VipMissingPort", "    address: 10.0.0.100\n", "port", 4, "missing required key"},
           {"VipBadAddress", "    address: 10.0.0.1000\n", "address", 5, "expected an IPv4 address"},
           {"VipAddressLeadingZero", "    address: 10.0.0.010\n", "address", 5, "expected an IPv4 address"},
           {"VipAddressMulticast", "    address: 224.0.0.1\n", "address", 5, "not a usable unicast address"},
           {"VipAddressIsOwn", "    address: 10.0.0.1\n", "address", 5,
            "appliance's own addresses (ports[0].address)"},
           {"VipPortZero", "    address: 10.0.0.100\n    port: 0\n", "port", 6, "must be in 1..65535"},
           {"VipPortTooBig", "    address: 10.0.0.100\n    port: 65536\n", "port", 6, "must be in 1..65535"},
           {"SnatMissingForFnat", "    address: 10.0.0.100\n    port: 80\n" + kBackends, "snat", 4,
            "required for mode fnat"},
       });
// As kVipFieldCases, with address and port given: the snat list from line 7.
const std::vector<ErrorCase> kSnatCases = in(
    {kPorts + "vips:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n", kBackends, "vips[0]."},
    {
        {"SnatEmptyList", "    snat: []\n", "snat", 7, "at least one snat address"},
        {"SnatEmptyListWithDnat", "    snat: []\n    mode: dnat\n", "snat", 7, "not allowed with mode dnat"},
        {"SnatBadEntry", "    snat: [10.0.0.1, 10.0.0]\n", "snat[1]", 7, "expected an IPv4 address"},
        {"SnatDuplicate", "    snat: [10.0.0.1, 10.0.0.1]\n", "snat[1]", 7, "duplicate snat address"},
        {"SnatMapping", "    snat: {a: 1}\n", "snat", 7, "expected a string or a list"},
    });
const std::vector<ErrorCase> kVipListCases = in(
    kTop,
    {
        {"VipsNotAList", kPorts + "vips: {name: web}\n", "vips", 3, "expected a list"},
        {"VipNotAMapping", kPorts + "vips:\n  - web\n", "vips[0]", 4, "expected a mapping"},
        {"VipMissingName", kPorts + "vips:\n  - address: 10.0.0.100\n    port: 80\n", "vips[0].name", 4,
         "missing required key"},
        {"VipDuplicateName",
         kVip + kBackends + "  - {name: web, address: 10.0.0.101, port: 80, snat: 10.0.0.1, backends: []}\n",
         "vips[1].name", 9, "duplicate vip name 'web' (also vips[0], line 4)"},
        {"VipDuplicateAddressPortProtocol",
         kVip + kBackends +
             "  - name: web2\n    address: 10.0.0.100\n    port: 80\n    protocol: tcp\n    snat: 10.0.0.1\n",
         "vips[1]", 9, "duplicate vip 10.0.0.100:80/tcp (also vips[0] 'web', line 4)"},
        {"TableSizeBelowBackendCount",
         kVip + "    table_size: 7\n    backends:\n" +
             "      - {address: 10.0.0.21, port: 1}\n      - {address: 10.0.0.21, port: 2}\n"
             "      - {address: 10.0.0.21, port: 3}\n      - {address: 10.0.0.21, port: 4}\n"
             "      - {address: 10.0.0.21, port: 5}\n      - {address: 10.0.0.21, port: 6}\n"
             "      - {address: 10.0.0.21, port: 7}\n      - {address: 10.0.0.21, port: 8}\n",
         "vips[0].table_size", 8, "smaller than the 8 backends"},
        {"DnatReverseUnknown",
         kPorts + "vips:\n  - name: api\n    address: 10.0.0.100\n    port: 80\n    mode: dnat\n"
                  "    dnat_reverse: any\n" + kBackends,
         "vips[0].dnat_reverse", 8, "expected one of flow|stateless"},
        {"DnatReverseStatelessSharedBackend",
         kPorts + "vips:\n"
                  "  - {name: a, address: 10.0.0.100, port: 80, mode: dnat, backends: [{address: 10.0.0.21, port: 80}]}\n"
                  "  - {name: b, address: 10.0.0.101, port: 80, mode: dnat, dnat_reverse: stateless,\n"
                  "     backends: [{address: 10.0.0.21, port: 80}]}\n",
         "vips[1].backends", 6, "10.0.0.21:80 also serves dnat vip 'a' (line 4)"},
    });
INSTANTIATE_TEST_SUITE_P(Vips, ConfigErrorTest,
                         testing::ValuesIn(join({kVipCases, kVipFieldCases, kSnatCases, kVipListCases})),
                         case_name);

// "    health:" on line 8, the case's lines from 9, then kBackends.
const std::vector<ErrorCase> kHealthCases = in(
    {kVip + "    health:\n", kBackends, "vips[0].health"},
    {
        {"HealthUnknownKey", "      type: tcp\n      retries: 3\n", ".retries", 10, "unknown key"},
        {"HealthTimeoutNotBelowInterval", "      type: tcp\n      interval_ms: 300\n      timeout_ms: 300\n",
         ".timeout_ms", 11, "must be less than interval_ms"},
        {"HealthDefaultTimeoutAboveInterval", "      type: tcp\n      interval_ms: 100\n", "", 8,
         "timeout_ms (500) must be less than interval_ms (100)"},
        {"HealthIntervalTooLong", "      interval_ms: 3600001\n", ".interval_ms", 9,
         "must be in 10..3600000"},
        {"HealthTimeoutZero", "      timeout_ms: 0\n", ".timeout_ms", 9, "must be in 1..3600000"},
        {"HealthRiseZero", "      rise: 0\n", ".rise", 9, "must be in 1..100"},
        {"HealthFallTooHigh", "      fall: 101\n", ".fall", 9, "must be in 1..100"},
        {"HealthPathWithoutSlash", "      type: http\n      path: health\n", ".path", 10,
         "starting with '/'"},
        {"HealthPathWithSpace", "      type: http\n      path: /a b\n", ".path", 10, "without spaces"},
        {"HealthPathForTcp", "      type: tcp\n      path: /health\n", ".path", 10,
         "only applies to type http"},
        {"HealthExpectTooHigh", "      type: http\n      expect: 600\n", ".expect", 10,
         "must be in 100..599"},
        {"HealthExpectForNone", "      expect: 200\n", ".expect", 9, "only applies to type http"},
    });
// The health mapping on the vip's own line 8.
const std::vector<ErrorCase> kHealthLineCases =
    in(kInVip, {
                   {"HealthNotAMapping", "    health: tcp\n", "health", 8, "expected a mapping"},
                   {"HealthTypeUnknown", "    health: {type: icmp}\n", "health.type", 8,
                    "expected one of none|tcp|http"},
                   {"HealthIntervalTooShort", "    health: {type: tcp, interval_ms: 9, timeout_ms: 5}\n",
                    "health.interval_ms", 8, "must be in 10..3600000"},
               });
INSTANTIATE_TEST_SUITE_P(Health, ConfigErrorTest, testing::ValuesIn(join({kHealthCases, kHealthLineCases})),
                         case_name);

// "    backends:" on line 8, entries from 9.
const std::vector<ErrorCase> kBackendCases = in(
    {kVip + "    backends:\n", "", "vips[0].backends"},
    {
        {"BackendNotAMapping", "      - 10.0.0.21:80\n", "[0]", 9, "expected a mapping"},
        {"BackendMissingPort", "      - {address: 10.0.0.21, port: 80}\n      - address: 10.0.0.22\n",
         "[1].port", 10, "missing required key"},
        {"BackendMissingAddress", "      - port: 80\n", "[0].address", 9, "missing required key"},
        {"BackendPortString",
         "      - address: 10.0.0.21\n        port: 80\n      - address: 10.0.0.22\n        port: http\n",
         "[1].port", 12, "got 'http'"},
        {"BackendPortZero", "      - {address: 10.0.0.21, port: 0}\n", "[0].port", 9, "must be in 1..65535"},
        {"BackendWeightTooBig", "      - {address: 10.0.0.21, port: 80, weight: 65536}\n", "[0].weight", 9,
         "must be in 0..65535"},
        {"BackendWeightNegative", "      - {address: 10.0.0.21, port: 80, weight: -1}\n", "[0].weight", 9,
         "expected an integer in 0..65535"},
        {"BackendWeightFloat", "      - {address: 10.0.0.21, port: 80, weight: 0.5}\n", "[0].weight", 9,
         "expected an integer"},
        {"BackendBadAddress", "      - {address: 10.0.0.21.5, port: 80}\n", "[0].address", 9,
         "expected an IPv4 address"},
        {"BackendIsOwnAddress", "      - {address: 10.0.0.1, port: 80}\n", "[0].address", 9, "own addresses"},
        {"BackendUnknownKey", "      - {address: 10.0.0.21, port: 80, wieght: 2}\n", "[0].wieght", 9,
         "unknown key"},
        {"BackendDuplicate",
         "      - {address: 10.0.0.21, port: 80}\n      - {address: 10.0.0.22, port: 80}\n"
         "      - {address: 10.0.0.21, port: 80, weight: 5}\n",
         "[2]", 11, "duplicate backend 10.0.0.21:80 (also vips[0].backends[0], line 9)"},
    });
const std::vector<ErrorCase> kBackendListCases = in(
    kTop, {
              {"BackendsMissing", kVip, "vips[0].backends", 4, "missing required key"},
              {"BackendsEmpty", kVip + "    backends: []\n", "vips[0].backends", 8, "at least one backend"},
              {"BackendsNotAList", kVip + "    backends: {address: 10.0.0.21, port: 80}\n",
               "vips[0].backends", 8, "expected a list, got a mapping"},
              {"BackendInSecondVip",
               kVip + kBackends +
                   "  - name: api\n    address: 10.0.0.100\n    port: 81\n    snat: 10.0.0.1\n    backends:\n"
                   "      - {address: 10.0.0.21, port: 80}\n      - {address: 10.0.0.21, port: 65536}\n",
               "vips[1].backends[1].port", 15, "must be in 1..65535"},
          });
INSTANTIATE_TEST_SUITE_P(Backends, ConfigErrorTest,
                         testing::ValuesIn(join({kBackendCases, kBackendListCases})), case_name);

// kPorts (1-2), "neighbors:" on 3, entries from 4.
const std::vector<ErrorCase> kNeighborCases = in(
    {kPorts + "neighbors:\n", "", "neighbors"},
    {
        {"NeighborMissingMac", "  - address: 10.0.0.21\n", "[0].mac", 4, "missing required key"},
        {"NeighborMissingAddress", "  - mac: 02:00:00:00:00:21\n", "[0].address", 4, "missing required key"},
        {"NeighborMacShort", "  - {address: 10.0.0.21, mac: \"02:00:00:00:00\"}\n", "[0].mac", 4,
         "expected a MAC address"},
        {"NeighborMacDashes", "  - {address: 10.0.0.21, mac: 02-00-00-00-00-21}\n", "[0].mac", 4,
         "expected a MAC address"},
        {"NeighborMacNotHex", "  - {address: 10.0.0.21, mac: \"02:00:00:00:00:2g\"}\n", "[0].mac", 4,
         "expected a MAC address"},
        {"NeighborMacSingleDigits", "  - {address: 10.0.0.21, mac: \"2:0:0:0:0:21:\"}\n", "[0].mac", 4,
         "expected a MAC address"},
        {"NeighborMacMulticast", "  - {address: 10.0.0.21, mac: \"01:00:5e:00:00:01\"}\n", "[0].mac", 4,
         "multicast"},
        {"NeighborMacBroadcast", "  - {address: 10.0.0.21, mac: \"ff:ff:ff:ff:ff:ff\"}\n", "[0].mac", 4,
         "multicast"},
        {"NeighborMacZero", "  - {address: 10.0.0.21, mac: \"00:00:00:00:00:00\"}\n", "[0].mac", 4,
         "all-zero"},
        {"NeighborBadAddress", "  - {address: 10.0.0.x, mac: \"02:00:00:00:00:21\"}\n", "[0].address", 4,
         "expected an IPv4 address"},
        {"NeighborIsOwnAddress", "  - {address: 10.0.0.1, mac: \"02:00:00:00:00:21\"}\n", "[0].address", 4,
         "own addresses"},
        {"NeighborDuplicate",
         "  - {address: 10.0.0.21, mac: \"02:00:00:00:00:21\"}\n  - address: 10.0.0.21\n    mac: "
         "\"02:00:00:00:00:22\"\n",
         "[1].address", 5, "duplicate neighbor 10.0.0.21 (also neighbors[0], line 4)"},
        {"NeighborUnknownKey", "  - {address: 10.0.0.21, mac: \"02:00:00:00:00:21\", port: 1}\n", "[0].port",
         4, "unknown key"},
    });
const std::vector<ErrorCase> kNeighborSectionCases =
    in(kTop, {
                 {"NeighborsNotAList", kPorts + "neighbors: {address: 10.0.0.21}\n", "neighbors", 3,
                  "expected a list"},
             });
INSTANTIATE_TEST_SUITE_P(Neighbors, ConfigErrorTest,
                         testing::ValuesIn(join({kNeighborCases, kNeighborSectionCases})), case_name);

// kPorts (1-2), then the section from line 3.
const std::vector<ErrorCase> kOtherCases = in(
    {kPorts, "", ""},
    {
        {"TimeoutZero", "timeouts:\n  tcp_syn_s: 0\n", "timeouts.tcp_syn_s", 4, "must be in 1..86400"},
        {"TimeoutTooLong", "timeouts:\n  udp_s: 86401\n", "timeouts.udp_s", 4, "must be in 1..86400"},
        {"TimeoutEstablishedString", "timeouts:\n  tcp_established_s: 15m\n", "timeouts.tcp_established_s", 4,
         "expected an integer"},
        {"TimeoutClosingNegative", "timeouts: {tcp_closing_s: -5}\n", "timeouts.tcp_closing_s", 3,
         "expected an integer"},
        {"TimeoutUnknownKey", "timeouts:\n  icmp_s: 5\n", "timeouts.icmp_s", 4, "unknown key"},
        {"TimeoutsNotAMapping", "timeouts: 30\n", "timeouts", 3, "expected a mapping"},
        {"LogLevelUnknown", "logging:\n  level: verbose\n", "logging.level", 4,
         "expected one of trace|debug|info|warn|error|critical|off"},
        {"LoggingUnknownKey", "logging:\n  file: /var/log/l4lb\n", "logging.file", 4, "unknown key"},
        {"MetricsNoPort", "metrics:\n  listen: 127.0.0.1\n", "metrics.listen", 4, "expected ADDR:PORT"},
        {"MetricsHostname", "metrics:\n  listen: localhost:9100\n", "metrics.listen", 4,
         "expected ADDR:PORT"},
        {"MetricsPortZero", "metrics:\n  listen: 127.0.0.1:0\n", "metrics.listen", 4, "expected ADDR:PORT"},
        {"MetricsPortTooBig", "metrics:\n  listen: 127.0.0.1:65536\n", "metrics.listen", 4,
         "expected ADDR:PORT"},
        {"MetricsListenList", "metrics:\n  listen: [127.0.0.1:9100]\n", "metrics.listen", 4,
         "expected a string"},
        {"MetricsUnknownKey", "metrics:\n  path: /metrics\n", "metrics.path", 4, "unknown key"},
        {"BgpEnabledYes", "bgp:\n  enabled: yes\n", "bgp.enabled", 4, "expected one of false|true"},
        {"BgpSocketRelative", "bgp:\n  bird_socket: bird.ctl\n", "bgp.bird_socket", 4,
         "expected an absolute path"},
        {"BgpSocketTooLong", "bgp:\n  bird_socket: /" + std::string(107, 'x') + "\n", "bgp.bird_socket", 4,
         "at most 107 bytes, got 108"},
        {"BgpRoutesFileQuote", "bgp:\n  routes_file: '/run/a\"b'\n", "bgp.routes_file", 4,
         "expected an absolute path"},
        {"BgpPeerOwnAddress", "bgp:\n  peers: [10.0.0.254, 10.0.0.1]\n", "bgp.peers[1]", 4, "own address"},
        {"BgpPeerMulticast", "bgp:\n  peers: 224.0.0.5\n", "bgp.peers", 4, "unicast"},
        {"BgpApplianceOwnAddress", "bgp:\n  appliances: 10.0.0.1\n", "bgp.appliances", 4, "own address"},
        {"BgpNoBackendPolicy", "bgp: {when_no_backend: keep}\n", "bgp.when_no_backend", 3,
         "expected one of withdraw|announce"},
        {"BgpWithdrawWaitTooLong", "bgp:\n  withdraw_wait_ms: 60001\n", "bgp.withdraw_wait_ms", 4,
         "must be in 0..60000"},
        {"BgpUnknownKey", "bgp:\n  asn: 65000\n", "bgp.asn", 4, "unknown key"},
    });
INSTANTIATE_TEST_SUITE_P(Other, ConfigErrorTest, testing::ValuesIn(kOtherCases), case_name);

}  // namespace
}  // namespace l4lb::config
