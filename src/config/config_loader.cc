// YAML -> Config (DESIGN §9) with strict validation.
//
// Every value is read through a `Field` that carries its dotted key path and
// 1-based line, so any check can report "<source>:<line>: <key>: <message>"
// without re-deriving where it is. Scalars are parsed from their text rather
// than with yaml-cpp's as<T>(), which in 0.7 wraps "-1" into a huge unsigned
// value and accepts some floats for integers.
#include "l4lb/config/config_loader.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "l4lb/common/limits.h"

namespace l4lb::config {

ConfigError::ConfigError(std::string source, std::string key, int line, std::string message)
    : std::runtime_error(source + ":" + std::to_string(line) + ": " + key + ": " + message),
      key_(std::move(key)),
      line_(line),
      message_(std::move(message)) {}

bool parse_ipv4(const std::string& text, uint32_t& out) {
  uint32_t value = 0;
  size_t pos = 0;
  for (int octet_index = 0; octet_index < 4; ++octet_index) {
    if (octet_index > 0) {
      if (pos >= text.size() || text[pos] != '.') return false;
      ++pos;
    }
    const size_t start = pos;
    uint32_t octet = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 3) {
      octet = octet * 10 + static_cast<uint32_t>(text[pos] - '0');
      ++pos;
    }
    const size_t digits = pos - start;
    if (digits == 0 || octet > 255) return false;
    // inet_aton() reads "010" as octal 8; refuse rather than guess which was meant.
    if (digits > 1 && text[start] == '0') return false;
    value = (value << 8) | octet;
  }
  if (pos != text.size()) return false;
  out = value;
  return true;
}

std::string format_ipv4(uint32_t address) {
  return std::to_string(address >> 24) + "." + std::to_string((address >> 16) & 0xff) + "." +
         std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
}

namespace {

// Key reported when the whole document (not one key) is at fault.
constexpr std::string_view kDocumentKey = "(document)";

constexpr uint16_t kMinSnatPort = 1024;  // below are privileged, well-known ports
constexpr uint32_t kMinTableSize = 7;
constexpr uint32_t kMaxTableSize = 16777213;  // largest prime below 2^24
constexpr uint32_t kMaxTimeoutS = 86400;
constexpr uint32_t kMaxSnatPoolsPerWorker = 65535;  // a pool's index is 16 bits
constexpr size_t kMaxIfaceNameLen = 15;  // IFNAMSIZ - 1

// yaml-cpp marks are 0-based; errors and the *.line fields are 1-based.
int line_of(const YAML::Mark& mark) { return mark.is_null() ? 0 : mark.line + 1; }

int line_of(const YAML::Node& node) { return line_of(node.Mark()); }

// A value taken from the document together with where it came from.
struct Field {
  YAML::Node node;
  std::string key;  // dotted path, e.g. "vips[0].backends[1].port"; "" for the root
  int line = 0;
};

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      // yaml-cpp tags quoted scalars "!" and plain ones "?".
      return (node.Tag() == "!" ? "the quoted string '" : "'") + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "an undefined value";
}

std::string range_text(uint64_t lo, uint64_t hi) { return std::to_string(lo) + ".." + std::to_string(hi); }

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  for (uint32_t d = 3; static_cast<uint64_t>(d) * d <= n; d += 2) {
    if (n % d == 0) return false;
  }
  return true;
}

// The data plane forwards to and from these; 0/8, loopback, multicast and the
// reserved/broadcast block can never be a VIP, backend, SNAT or own address.
bool is_unicast(uint32_t address) {
  const uint32_t first = address >> 24;
  return first != 0 && first != 127 && first < 224;
}

uint32_t prefix_mask(uint8_t prefix_len) {
  return prefix_len == 0 ? 0 : ~uint32_t{0} << (32 - prefix_len);
}

bool has_space_or_control(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

class Reader;

// The entries of one YAML mapping, checked on construction against the keys
// its schema allows (unknown and duplicate keys are errors).
class Mapping {
 public:
  Mapping(const Reader& reader, const Field& field, std::initializer_list<std::string_view> allowed);

  std::optional<Field> get(std::string_view key) const;
  // Fails, naming the missing key and the mapping's line, when absent.
  Field require(std::string_view key) const;
  const Field& field() const { return field_; }

 private:
  std::string child_key(std::string_view key) const {
    return field_.key.empty() ? std::string(key) : field_.key + "." + std::string(key);
  }

  const Reader& reader_;
  Field field_;
  std::vector<std::pair<std::string, Field>> entries_;
};

// Typed scalar and container readers. All failures go through fail().
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, int line, const std::string& message) const {
    throw ConfigError(source_, key.empty() ? std::string(kDocumentKey) : key, line, message);
  }
  [[noreturn]] void fail(const Field& field, const std::string& message) const {
    fail(field.key, field.line, message);
  }

  uint64_t integer(const Field& field, uint64_t lo, uint64_t hi) const {
    const YAML::Node& node = field.node;
    // A quoted "8080" is a string in YAML; accepting it would hide a typo'd type.
    const bool plain_or_int_tag =
        node.IsScalar() && (node.Tag() == "?" || node.Tag() == "tag:yaml.org,2002:int");
    if (!plain_or_int_tag) {
      fail(field, "expected an integer in " + range_text(lo, hi) + ", got " + describe(node));
    }
    const std::string& text = node.Scalar();
    uint64_t value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec == std::errc::result_out_of_range) {
      fail(field, "must be in " + range_text(lo, hi) + ", got " + text);
    }
    if (ec != std::errc() || ptr != end) {
      fail(field, "expected an integer in " + range_text(lo, hi) + ", got " + describe(node));
    }
    if (text.size() > 1 && text[0] == '0') {
      fail(field, "leading zeros are not allowed (YAML 1.1 reads them as octal), got " + text);
    }
    if (value < lo || value > hi) fail(field, "must be in " + range_text(lo, hi) + ", got " + text);
    return value;
  }

  uint32_t u32(const Field& field, uint32_t lo, uint32_t hi) const {
    return static_cast<uint32_t>(integer(field, lo, hi));
  }

  uint16_t u16(const Field& field, uint16_t lo, uint16_t hi) const {
    return static_cast<uint16_t>(integer(field, lo, hi));
  }

  std::string string(const Field& field) const {
    if (!field.node.IsScalar()) fail(field, "expected a string, got " + describe(field.node));
    return field.node.Scalar();
  }

  // A name that ends up in device arguments, telemetry replies and metric labels.
  std::string name(const Field& field) const {
    std::string text = string(field);
    if (text.empty()) fail(field, "must not be empty");
    if (has_space_or_control(text)) fail(field, "must not contain spaces or control characters");
    return text;
  }

  template <typename E>
  E choice(const Field& field, std::initializer_list<std::pair<std::string_view, E>> options) const {
    std::string allowed;
    for (const auto& [text, value] : options) {
      allowed += allowed.empty() ? "" : "|";
      allowed += text;
    }
    if (!field.node.IsScalar()) fail(field, "expected one of " + allowed + ", got " + describe(field.node));
    for (const auto& [text, value] : options) {
      if (field.node.Scalar() == text) return value;
    }
    fail(field, "expected one of " + allowed + ", got " + describe(field.node));
  }

  uint32_t ipv4(const Field& field) const {
    const std::string text = string(field);
    uint32_t address = 0;
    if (!parse_ipv4(text, address)) fail(field, "expected an IPv4 address a.b.c.d, got '" + text + "'");
    return address;
  }

  uint32_t unicast_ipv4(const Field& field) const {
    const uint32_t address = ipv4(field);
    if (!is_unicast(address)) fail(field, format_ipv4(address) + " is not a usable unicast address");
    return address;
  }

  Ipv4Cidr cidr(const Field& field) const {
    const std::string text = string(field);
    const size_t slash = text.find('/');
    Ipv4Cidr cidr;
    if (!parse_ipv4(text.substr(0, slash), cidr.address)) {
      fail(field, "expected an IPv4 address or CIDR a.b.c.d[/n], got '" + text + "'");
    }
    if (slash != std::string::npos) {
      const std::string prefix = text.substr(slash + 1);
      unsigned value = 0;
      const char* end = prefix.data() + prefix.size();
      const auto [ptr, ec] = std::from_chars(prefix.data(), end, value);
      if (prefix.empty() || ec != std::errc() || ptr != end || value < 1 || value > 32 ||
          (prefix.size() > 1 && prefix[0] == '0')) {
        fail(field, "expected a prefix length 1..32 after '/', got '" + text + "'");
      }
      cidr.prefix_len = static_cast<uint8_t>(value);
    }
    if (!is_unicast(cidr.address)) fail(field, format_ipv4(cidr.address) + " is not a usable unicast address");
    // /31 and /32 have no network or broadcast address (RFC 3021).
    if (cidr.prefix_len <= 30) {
      const uint32_t host = cidr.address & ~prefix_mask(cidr.prefix_len);
      if (host == 0 || host == ~prefix_mask(cidr.prefix_len)) {
        fail(field, "'" + text + "' is the network or broadcast address of its subnet, not a host address");
      }
    }
    return cidr;
  }

  std::array<uint8_t, 6> mac(const Field& field) const {
    const std::string text = string(field);
    std::array<uint8_t, 6> mac{};
    bool ok = text.size() == 17;
    for (size_t i = 0; ok && i < mac.size(); ++i) {
      const char* begin = text.data() + i * 3;
      if (i > 0 && begin[-1] != ':') ok = false;
      const auto [ptr, ec] = std::from_chars(begin, begin + 2, mac[i], 16);
      if (ec != std::errc() || ptr != begin + 2) ok = false;
    }
    if (!ok) fail(field, "expected a MAC address xx:xx:xx:xx:xx:xx, got '" + text + "'");
    if (mac[0] & 0x01) fail(field, "'" + text + "' is a multicast MAC; a next hop needs a unicast MAC");
    if (std::all_of(mac.begin(), mac.end(), [](uint8_t b) { return b == 0; })) {
      fail(field, "the all-zero MAC is not a valid next hop");
    }
    return mac;
  }

  // A list; each item's key is "<key>[i]" and its line is the item's own.
  std::vector<Field> list(const Field& field) const {
    if (!field.node.IsSequence()) fail(field, "expected a list, got " + describe(field.node));
    std::vector<Field> items;
    size_t index = 0;
    for (const YAML::Node& item : field.node) {
      const int line = item.IsNull() ? field.line : line_of(item);
      items.push_back(Field{item, field.key + "[" + std::to_string(index) + "]", line});
      ++index;
    }
    return items;
  }

  // Where the schema allows either one value or a list of them.
  std::vector<Field> one_or_list(const Field& field) const {
    if (field.node.IsSequence()) return list(field);
    if (!field.node.IsScalar()) fail(field, "expected a string or a list, got " + describe(field.node));
    return {field};
  }

 private:
  std::string source_;
};

Mapping::Mapping(const Reader& reader, const Field& field, std::initializer_list<std::string_view> allowed)
    : reader_(reader), field_(field) {
  if (!field.node.IsMap()) reader.fail(field, "expected a mapping, got " + describe(field.node));
  for (const auto& entry : field.node) {
    // Copies: yaml-cpp's iterator hands out a temporary pair, so a reference
    // to it->first would dangle.
    const YAML::Node key_node = entry.first;
    const YAML::Node value_node = entry.second;
    const int line = line_of(key_node);
    if (!key_node.IsScalar()) reader.fail(field.key, line, "keys must be plain strings");
    const std::string& name = key_node.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string names;
      for (std::string_view a : allowed) names += (names.empty() ? "" : ", ") + std::string(a);
      reader.fail(child_key(name), line, "unknown key (expected one of: " + names + ")");
    }
    for (const auto& [seen, seen_field] : entries_) {
      // yaml-cpp keeps both entries of a repeated key; the file would say two things.
      if (seen == name) {
        reader.fail(child_key(name), line, "duplicate key (first on line " + std::to_string(seen_field.line) + ")");
      }
    }
    entries_.emplace_back(name, Field{value_node, child_key(name), line});
  }
}

std::optional<Field> Mapping::get(std::string_view key) const {
  for (const auto& [name, field] : entries_) {
    if (name == key) return field;
  }
  return std::nullopt;
}

Field Mapping::require(std::string_view key) const {
  std::optional<Field> field = get(key);
  if (!field) reader_.fail(child_key(key), field_.line, "missing required key");
  return *field;
}

// Reads the whole document; cross-entry checks (duplicates, own addresses)
// happen as each list entry is read, against the entries before it.
class ConfigReader {
 public:
  explicit ConfigReader(const std::string& source) : reader_(source) {}

  Config read(const YAML::Node& root) {
    const Field root_field{root, "", line_of(root)};
    if (!root.IsMap()) reader_.fail(root_field, "expected a mapping at the top level, got " + describe(root));
    const Mapping top(reader_, root_field,
                      {"dataplane", "ports", "vips", "neighbors", "timeouts", "logging", "metrics"});

    if (auto f = top.get("dataplane")) read_dataplane(*f);
    read_ports(top.require("ports"));
    if (auto f = top.get("neighbors")) read_neighbors(*f);
    if (auto f = top.get("vips")) read_vips(*f);
    if (auto f = top.get("timeouts")) read_timeouts(*f);
    if (auto f = top.get("logging")) read_logging(*f);
    if (auto f = top.get("metrics")) read_metrics(*f);
    return std::move(config_);
  }

 private:
  void read_dataplane(const Field& field) {
    const Mapping m(reader_, field, {"workers", "flows_per_worker", "mbufs", "snat_port_range", "idle_sleep_us",
                                     "table_full", "closed_vip_ports", "snat_pools_per_worker", "shutdown_drain_s"});
    DataplaneConfig& dp = config_.dataplane;
    if (auto f = m.get("workers")) dp.workers = reader_.u32(*f, 1, 64);
    if (auto f = m.get("flows_per_worker")) dp.flows_per_worker = reader_.u32(*f, 1024, 67108864);
    if (auto f = m.get("mbufs")) dp.mbufs = reader_.u32(*f, 1024, 16777216);
    if (auto f = m.get("idle_sleep_us")) dp.idle_sleep_us = reader_.u32(*f, 0, 10000);
    if (auto f = m.get("table_full")) {
      dp.table_full = reader_.choice<TableFullPolicy>(
          *f, {{"evict_embryonic", TableFullPolicy::kEvictEmbryonic}, {"refuse", TableFullPolicy::kRefuse}});
    }
    if (auto f = m.get("closed_vip_ports")) {
      dp.closed_vip_ports = reader_.choice<ClosedVipPortPolicy>(
          *f, {{"drop", ClosedVipPortPolicy::kDrop}, {"reject", ClosedVipPortPolicy::kReject}});
    }
    if (auto f = m.get("snat_pools_per_worker")) dp.snat_pools_per_worker = reader_.u32(*f, 1, kMaxSnatPoolsPerWorker);
    if (auto f = m.get("shutdown_drain_s")) dp.shutdown_drain_s = reader_.u32(*f, 0, 3600);
    const std::optional<Field> range = m.get("snat_port_range");
    if (range) {
      const std::vector<Field> bounds = reader_.list(*range);
      if (bounds.size() != 2) reader_.fail(*range, "expected two ports [min, max]");
      dp.snat_port_min = reader_.u16(bounds[0], kMinSnatPort, 65535);
      dp.snat_port_max = reader_.u16(bounds[1], kMinSnatPort, 65535);
      if (dp.snat_port_min > dp.snat_port_max) reader_.fail(*range, "min must not exceed max");
    }
    dp.key_lines[""] = field.line;
    for (const char* key : {"workers", "flows_per_worker", "mbufs", "snat_pools_per_worker"})
      if (auto f = m.get(key)) dp.key_lines[key] = f->line;
    // Each worker owns a disjoint slice of the range (DESIGN §4).
    const uint32_t range_size = uint32_t{dp.snat_port_max} - dp.snat_port_min + 1;
    if (range_size < dp.workers) {
      reader_.fail(range ? *range : field, "snat_port_range has " + std::to_string(range_size) +
                                               " ports, fewer than the " + std::to_string(dp.workers) +
                                               " workers that each need a slice");
    }
  }

  void read_ports(const Field& field) {
    const std::vector<Field> items = reader_.list(field);
    if (items.empty()) reader_.fail(field, "at least one port is required");
    std::map<std::string, std::string> iface_owner;  // kernel_iface -> key of the port using it
    for (size_t index = 0; index < items.size(); ++index) {
      const Field& item = items[index];
      const Mapping m(reader_, item, {"name", "address", "gateway", "kernel_iface"});
      PortConfig port;
      port.line = item.line;

      const Field name = m.require("name");
      port.name = reader_.name(name);
      for (size_t other = 0; other < index; ++other) {
        if (config_.ports[other].name == port.name) {
          reader_.fail(name, "duplicate port name '" + port.name + "' (also ports[" + std::to_string(other) +
                                 "], line " + std::to_string(config_.ports[other].line) + ")");
        }
      }

      for (const Field& a : reader_.one_or_list(m.require("address"))) {
        const Ipv4Cidr cidr = reader_.cidr(a);
        if (auto owner = own_addresses_.find(cidr.address); owner != own_addresses_.end()) {
          reader_.fail(a, format_ipv4(cidr.address) + " is already an own address (" + owner->second + ")");
        }
        own_addresses_.emplace(cidr.address, a.key);
        port.addresses.push_back(cidr);
      }
      if (port.addresses.empty()) reader_.fail(*m.get("address"), "at least one address is required");

      if (auto g = m.get("gateway")) {
        const uint32_t gateway = reader_.unicast_ipv4(*g);
        const bool on_link = std::any_of(port.addresses.begin(), port.addresses.end(), [&](const Ipv4Cidr& c) {
          const uint32_t mask = prefix_mask(c.prefix_len);
          return (gateway & mask) == (c.address & mask);
        });
        if (!on_link) {
          reader_.fail(*g, format_ipv4(gateway) + " is not inside any of this port's address subnets");
        }
        if (own_addresses_.count(gateway) != 0) {
          reader_.fail(*g, format_ipv4(gateway) + " is one of the appliance's own addresses");
        }
        port.gateway = gateway;
      }

      std::string iface_key = item.key + ".kernel_iface";
      int iface_line = item.line;
      if (auto k = m.get("kernel_iface")) {
        port.kernel_iface = reader_.string(*k);
        const std::string& s = port.kernel_iface;
        const bool chars_ok = std::all_of(s.begin(), s.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 c == '.' || c == '-';
        });
        if (s.empty() || s.size() > kMaxIfaceNameLen || !chars_ok || s == "." || s == "..") {
          reader_.fail(*k, "expected an interface name of 1.." + std::to_string(kMaxIfaceNameLen) +
                               " characters [A-Za-z0-9_.-], got '" + s + "'");
        }
        iface_line = k->line;
      } else {
        port.kernel_iface = "l4lbk" + std::to_string(index);
      }
      if (auto owner = iface_owner.find(port.kernel_iface); owner != iface_owner.end()) {
        reader_.fail(iface_key, iface_line,
                     "interface name '" + port.kernel_iface + "' is already used by " + owner->second);
      }
      iface_owner.emplace(port.kernel_iface, item.key);
      config_.ports.push_back(std::move(port));
    }
  }

  // Traffic to the appliance's own addresses goes to the kernel (DESIGN §3),
  // so no VIP, backend or static neighbour may claim one.
  void reject_own_address(const Field& field, uint32_t address) const {
    if (auto owner = own_addresses_.find(address); owner != own_addresses_.end()) {
      reader_.fail(field, format_ipv4(address) + " is one of the appliance's own addresses (" + owner->second + ")");
    }
  }

  void read_neighbors(const Field& field) {
    if (field.node.IsNull()) return;  // every entry commented out
    std::map<uint32_t, size_t> seen;  // address -> index
    for (const Field& item : reader_.list(field)) {
      const Mapping m(reader_, item, {"address", "mac"});
      NeighborConfig neighbor;
      neighbor.line = item.line;
      const Field address = m.require("address");
      neighbor.address = reader_.unicast_ipv4(address);
      reject_own_address(address, neighbor.address);
      if (auto it = seen.find(neighbor.address); it != seen.end()) {
        reader_.fail(address, "duplicate neighbor " + format_ipv4(neighbor.address) + " (also neighbors[" +
                                  std::to_string(it->second) + "], line " +
                                  std::to_string(config_.neighbors[it->second].line) + ")");
      }
      neighbor.mac = reader_.mac(m.require("mac"));
      seen.emplace(neighbor.address, config_.neighbors.size());
      config_.neighbors.push_back(neighbor);
    }
  }

  void read_vips(const Field& field) {
    if (field.node.IsNull()) return;  // every entry commented out
    const std::vector<Field> items = reader_.list(field);
    for (size_t index = 0; index < items.size(); ++index) {
      const Field& item = items[index];
      // Each VIP name takes a lifetime id (controlplane/snapshot_builder).
      if (index == kMaxVips) {
        reader_.fail(item, "the data plane holds at most " + std::to_string(kMaxVips) +
                               " vips; this is vip " + std::to_string(index + 1));
      }
      const Mapping m(reader_, item,
                      {"name", "address", "port", "protocol", "mode", "snat", "table_size", "tcp_miss", "down_policy", "max_embryonic",
                       "health", "backends"});
      VipConfig vip;
      vip.line = item.line;

      const Field name = m.require("name");
      vip.name = reader_.name(name);
      const Field address = m.require("address");
      vip.address = reader_.unicast_ipv4(address);
      reject_own_address(address, vip.address);
      vip.port = reader_.u16(m.require("port"), 1, 65535);
      if (auto f = m.get("protocol")) {
        vip.protocol = reader_.choice<Protocol>(*f, {{"tcp", Protocol::kTcp}, {"udp", Protocol::kUdp}});
      }
      if (auto f = m.get("mode")) {
        vip.mode = reader_.choice<NatMode>(*f, {{"fnat", NatMode::kFnat}, {"dnat", NatMode::kDnat}});
      }

      for (size_t other = 0; other < index; ++other) {
        const VipConfig& prev = config_.vips[other];
        if (prev.name == vip.name) {
          reader_.fail(name, "duplicate vip name '" + vip.name + "' (also vips[" + std::to_string(other) +
                                 "], line " + std::to_string(prev.line) + ")");
        }
        if (prev.address == vip.address && prev.port == vip.port && prev.protocol == vip.protocol) {
          reader_.fail(item, "duplicate vip " + format_ipv4(vip.address) + ":" + std::to_string(vip.port) + "/" +
                                 (vip.protocol == Protocol::kTcp ? "tcp" : "udp") + " (also vips[" +
                                 std::to_string(other) + "] '" + prev.name + "', line " +
                                 std::to_string(prev.line) + ")");
        }
      }

      read_snat(m, vip);

      const std::optional<Field> table_size = m.get("table_size");
      if (table_size) {
        vip.table_size = reader_.u32(*table_size, kMinTableSize, kMaxTableSize);
        // Maglev's permutation walk needs a prime table size (paper §3.4).
        if (!is_prime(vip.table_size)) reader_.fail(*table_size, std::to_string(vip.table_size) + " is not prime");
      }

      if (auto f = m.get("tcp_miss")) {
        if (vip.protocol != Protocol::kTcp) reader_.fail(*f, "only applies to protocol tcp");
        vip.tcp_miss =
            reader_.choice<TcpMissPolicy>(*f, {{"forward", TcpMissPolicy::kForward}, {"drop", TcpMissPolicy::kDrop}});
      }

      if (auto f = m.get("max_embryonic")) {
        if (vip.protocol != Protocol::kTcp) reader_.fail(*f, "only applies to protocol tcp");
        vip.max_embryonic = reader_.u32(*f, 0, 67108864);
      }

      if (auto f = m.get("down_policy")) {
        vip.down_policy = reader_.choice<DownPolicy>(*f, {{"keep", DownPolicy::kKeep}, {"reset", DownPolicy::kReset}});
      }

      if (auto f = m.get("health")) vip.health = read_health(*f);

      const Field backends = m.require("backends");
      read_backends(backends, vip);
      if (vip.backends.size() > vip.table_size) {
        reader_.fail(table_size ? *table_size : backends,
                     "table_size " + std::to_string(vip.table_size) + " is smaller than the " +
                         std::to_string(vip.backends.size()) + " backends");
      }
      count_snat_pools(backends, vip);
      config_.vips.push_back(std::move(vip));
    }
  }

  // Each worker keeps an SNAT port pool per (SNAT address, backend
  // address:port) that FNAT flows use (dataplane/snat_pool.h), out of a
  // preallocated number: a config needing more is refused here rather than
  // refusing flows later.
  void count_snat_pools(const Field& backends, const VipConfig& vip) {
    if (vip.mode != NatMode::kFnat) return;
    for (uint32_t snat : vip.snat)
      for (const BackendConfig& b : vip.backends) snat_pools_.insert({snat, b.address, b.port});
    const uint32_t limit = config_.dataplane.snat_pools_per_worker;
    if (snat_pools_.size() > limit) {
      reader_.fail(backends, "FNAT needs " + std::to_string(snat_pools_.size()) +
                                 " SNAT port pools (one per SNAT address and backend address:port) up to this vip, "
                                 "more than dataplane.snat_pools_per_worker (" + std::to_string(limit) + ")");
    }
  }

  void read_snat(const Mapping& m, VipConfig& vip) {
    const std::optional<Field> snat = m.get("snat");
    if (vip.mode == NatMode::kDnat) {
      // DNAT keeps the client's address; a snat list would be silently ignored.
      if (snat) reader_.fail(*snat, "not allowed with mode dnat");
      return;
    }
    if (!snat) reader_.fail(m.field().key + ".snat", m.field().line, "required for mode fnat");
    for (const Field& a : reader_.one_or_list(*snat)) {
      const uint32_t address = reader_.unicast_ipv4(a);
      if (std::find(vip.snat.begin(), vip.snat.end(), address) != vip.snat.end()) {
        reader_.fail(a, "duplicate snat address " + format_ipv4(address));
      }
      // Each distinct address takes a lifetime slot, shared by every VIP
      // that lists it (controlplane/snapshot_builder).
      if (snat_addresses_.count(address) == 0) {
        if (snat_addresses_.size() == kMaxSnatAddresses) {
          reader_.fail(a, "the data plane holds at most " + std::to_string(kMaxSnatAddresses) +
                              " distinct snat addresses across all vips; " + format_ipv4(address) +
                              " would be number " + std::to_string(kMaxSnatAddresses + 1));
        }
        snat_addresses_.insert(address);
      }
      vip.snat.push_back(address);
    }
    if (vip.snat.empty()) reader_.fail(*snat, "at least one snat address is required for mode fnat");
  }

  HealthConfig read_health(const Field& field) const {
    const Mapping m(reader_, field, {"type", "interval_ms", "timeout_ms", "rise", "fall", "path", "expect"});
    HealthConfig health;
    if (auto f = m.get("type")) {
      health.type = reader_.choice<HealthType>(
          *f, {{"none", HealthType::kNone}, {"tcp", HealthType::kTcp}, {"http", HealthType::kHttp}});
    }
    if (auto f = m.get("interval_ms")) health.interval_ms = reader_.u32(*f, 10, 3600000);
    const std::optional<Field> timeout = m.get("timeout_ms");
    if (timeout) health.timeout_ms = reader_.u32(*timeout, 1, 3600000);
    if (health.timeout_ms >= health.interval_ms) {
      // Overlapping probes to one backend would make rise/fall counting ambiguous.
      reader_.fail(timeout ? *timeout : field, "timeout_ms (" + std::to_string(health.timeout_ms) +
                                                   ") must be less than interval_ms (" +
                                                   std::to_string(health.interval_ms) + ")");
    }
    if (auto f = m.get("rise")) health.rise = reader_.u32(*f, 1, 100);
    if (auto f = m.get("fall")) health.fall = reader_.u32(*f, 1, 100);
    if (auto f = m.get("path")) {
      if (health.type != HealthType::kHttp) reader_.fail(*f, "only applies to type http");
      health.path = reader_.string(*f);
      // The path goes verbatim into the request line "GET <path> HTTP/1.1".
      if (health.path.empty() || health.path[0] != '/' || has_space_or_control(health.path)) {
        reader_.fail(*f, "expected a path starting with '/' and without spaces, got '" + health.path + "'");
      }
    }
    if (auto f = m.get("expect")) {
      if (health.type != HealthType::kHttp) reader_.fail(*f, "only applies to type http");
      health.expect = reader_.u32(*f, 100, 599);
    }
    return health;
  }

  void read_backends(const Field& field, VipConfig& vip) {
    const std::vector<Field> items = reader_.list(field);
    if (items.empty()) reader_.fail(field, "at least one backend is required");
    for (size_t index = 0; index < items.size(); ++index) {
      const Field& item = items[index];
      const Mapping m(reader_, item, {"address", "port", "weight"});
      BackendConfig backend;
      backend.line = item.line;
      const Field address = m.require("address");
      backend.address = reader_.unicast_ipv4(address);
      reject_own_address(address, backend.address);
      backend.port = reader_.u16(m.require("port"), 1, 65535);
      if (auto f = m.get("weight")) backend.weight = reader_.u32(*f, 0, 65535);
      for (size_t other = 0; other < index; ++other) {
        const BackendConfig& prev = vip.backends[other];
        // Maglev keys backends by address:port (DESIGN §5), so two entries would be one.
        if (prev.address == backend.address && prev.port == backend.port) {
          reader_.fail(item, "duplicate backend " + format_ipv4(backend.address) + ":" +
                                 std::to_string(backend.port) + " (also " + field.key + "[" +
                                 std::to_string(other) + "], line " + std::to_string(prev.line) + ")");
        }
      }
      // Each (vip, address:port) takes a lifetime id (controlplane/snapshot_builder):
      // an address:port listed under two vips counts twice.
      if (backend_count_ == kMaxBackends) {
        reader_.fail(item, "the data plane holds at most " + std::to_string(kMaxBackends) +
                               " backends in total across all vips (an address:port under two vips counts "
                               "twice); this is backend " +
                               std::to_string(backend_count_ + 1));
      }
      ++backend_count_;
      vip.backends.push_back(backend);
    }
  }

  void read_timeouts(const Field& field) {
    const Mapping m(reader_, field,
                    {"tcp_syn_s", "tcp_syn_recv_s", "tcp_established_s", "tcp_fin_wait_s", "tcp_time_wait_s",
                     "tcp_close_s", "tcp_closing_s", "udp_s", "udp_unreplied_s", "snat_port_hold_s"});
    Timeouts& t = config_.timeouts;
    const auto read = [&](const char* key, uint32_t& value) {
      if (auto f = m.get(key)) value = reader_.u32(*f, 1, kMaxTimeoutS);
    };
    // The old key first: the states' own keys, where given, override it.
    if (auto f = m.get("tcp_closing_s")) {
      t.tcp_fin_wait_s = t.tcp_time_wait_s = t.tcp_close_s = reader_.u32(*f, 1, kMaxTimeoutS);
    }
    read("tcp_syn_s", t.tcp_syn_s);
    read("tcp_syn_recv_s", t.tcp_syn_recv_s);
    read("tcp_established_s", t.tcp_established_s);
    read("tcp_fin_wait_s", t.tcp_fin_wait_s);
    read("tcp_time_wait_s", t.tcp_time_wait_s);
    read("tcp_close_s", t.tcp_close_s);
    read("udp_s", t.udp_s);
    read("udp_unreplied_s", t.udp_unreplied_s);
    read("snat_port_hold_s", t.snat_port_hold_s);
  }

  void read_logging(const Field& field) {
    const Mapping m(reader_, field, {"level"});
    if (auto f = m.get("level")) {
      config_.log_level = reader_.choice<std::string_view>(
          *f, {{"trace", "trace"},
               {"debug", "debug"},
               {"info", "info"},
               {"warn", "warn"},
               {"error", "error"},
               {"critical", "critical"},
               {"off", "off"}});
    }
  }

  void read_metrics(const Field& field) {
    const Mapping m(reader_, field, {"listen"});
    if (auto f = m.get("listen")) {
      const std::string text = reader_.string(*f);
      const size_t colon = text.rfind(':');
      uint32_t address = 0;
      bool ok = colon != std::string::npos && parse_ipv4(text.substr(0, colon), address);
      if (ok) {
        const std::string port = text.substr(colon + 1);
        unsigned value = 0;
        const char* end = port.data() + port.size();
        const auto [ptr, ec] = std::from_chars(port.data(), end, value);
        ok = !port.empty() && ec == std::errc() && ptr == end && value >= 1 && value <= 65535 && port[0] != '0';
      }
      if (!ok) reader_.fail(*f, "expected ADDR:PORT with an IPv4 address and a port 1..65535, got '" + text + "'");
      config_.metrics_listen = text;
    }
  }

  Reader reader_;
  Config config_;
  std::map<uint32_t, std::string> own_addresses_;  // address -> key of the port entry declaring it
  // Against the data plane's id limits (common/limits.h).
  std::set<uint32_t> snat_addresses_;  // distinct, across all vips
  uint32_t backend_count_ = 0;         // across all vips
  std::set<std::tuple<uint32_t, uint32_t, uint16_t>> snat_pools_;  // (snat, backend address, port)
};

// Guard against a yaml-cpp 0.7.0 bug (Debian 12's; yaml-cpp issue #1040, fixed
// upstream after 0.8.0 by PR #1319): a ',' outside any [ ] or { } (",",
// "[a]\n,") makes the parser return an empty document without consuming the
// token, forever, and YAML::LoadAll keeps every one until memory runs out
// (found by tests/fuzz/config_fuzz). So first walk the events of up to three
// documents; LoadAll then only ever sees text holding at most one:
//  - two documents in a row whose first nodes sit at the same mark: the
//    first of them consumed nothing, so the parser is stuck on a token it
//    cannot use there (every real document consumes at least one token);
//  - otherwise a second document is a real one ("---", or text after "...").
// The third document is read only to tell the two apart.
class ExtraDocumentFinder : public YAML::EventHandler {
 public:
  struct Found {
    bool stuck = false;  // the parser stopped advancing at `mark`
    YAML::Mark mark;     // else the second document's first node
  };

  std::optional<Found> find(const std::string& text) {
    std::istringstream stream(text);
    YAML::Parser parser(stream);
    int completed = 0;
    try {
      while (completed < 3 && parser.HandleNextDocument(*this)) {
        ++completed;
        if (completed >= 2 && same(first_[completed - 1], first_[completed - 2])) {
          return Found{true, first_[completed - 1]};
        }
      }
    } catch (const YAML::Exception&) {
      // A syntax error past a whole second document: that one was real (a
      // stuck one would have repeated, not thrown). Report it, as before.
      if (completed < 2) throw;
    }
    if (completed < 2) return std::nullopt;
    return Found{false, first_[1]};
  }

 private:
  static bool same(const YAML::Mark& a, const YAML::Mark& b) {
    return a.pos == b.pos && a.line == b.line && a.column == b.column;
  }
  void node(const YAML::Mark& mark) {
    if (!seen_node_ && documents_ <= static_cast<int>(first_.size())) first_[documents_ - 1] = mark;
    seen_node_ = true;
  }
  void OnDocumentStart(const YAML::Mark&) override {
    ++documents_;
    seen_node_ = false;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

  int documents_ = 0;
  bool seen_node_ = false;
  std::array<YAML::Mark, 3> first_{};  // first node of documents 1..3
};

// The byte at a yaml-cpp mark of UTF-8 text ('\0' if it cannot be found).
// Marks count lines at '\n' and columns in bytes, after a UTF-8 BOM.
char char_at(const std::string& text, const YAML::Mark& mark) {
  size_t pos = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
  for (int line = 0; line < mark.line; ++line) {
    pos = text.find('\n', pos);
    if (pos == std::string::npos) return '\0';
    ++pos;
  }
  pos += static_cast<size_t>(mark.column);
  return pos < text.size() ? text[pos] : '\0';
}

// Why the parser is stuck at `mark`: in yaml-cpp 0.7 only a ',' gets there,
// but say so only when that is what the text holds.
std::string stuck_message(const std::string& text, const YAML::Mark& mark) {
  if (char_at(text, mark) == ',')
    return "YAML syntax error: unexpected ',' outside a flow collection ([ ] or { })";
  return "YAML syntax error: the parser cannot read past this point";
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source_name) {
  const std::string document_key(kDocumentKey);
  try {
    if (const auto extra = ExtraDocumentFinder().find(yaml_text)) {
      throw ConfigError(source_name, document_key, line_of(extra->mark),
                        extra->stuck ? stuck_message(yaml_text, extra->mark)
                                     : "more than one YAML document; expected exactly one");
    }
    const std::vector<YAML::Node> documents = YAML::LoadAll(yaml_text);
    if (documents.empty() || documents[0].IsNull()) {
      throw ConfigError(source_name, document_key, 0, "empty document");
    }
    if (documents.size() > 1) {
      throw ConfigError(source_name, document_key, line_of(documents[1]),
                        "more than one YAML document; expected exactly one");
    }
    return ConfigReader(source_name).read(documents[0]);
  } catch (const ConfigError&) {
    throw;
  } catch (const YAML::Exception& e) {
    throw ConfigError(source_name, document_key, line_of(e.mark), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    throw ConfigError(source_name, document_key, 0, std::string("internal error: ") + e.what());
  }
}

Config load_config_file(const std::string& path) {
  const std::string document_key(kDocumentKey);
  std::string text;
  try {
    // A directory opens fine as a filebuf and then reads as empty, which would
    // be reported as an empty document; say what is actually wrong.
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) throw ConfigError(path, document_key, 0, "is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ConfigError(path, document_key, 0, std::string("cannot open: ") + std::strerror(errno));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) throw ConfigError(path, document_key, 0, "read error");
    text = std::move(buffer).str();
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(path, document_key, 0, std::string("cannot read: ") + e.what());
  }
  return parse_config(text, path);
}

}  // namespace l4lb::config
