// YAML -> Config (DESIGN §9). The loader walks the schema's sections
// (config/schema.h) with the typed reader (config/yaml_reader.h), stores
// each value in its struct, and calls the cross-field rules
// (config/config_checks.h) as each entry is read, so the first entry that
// breaks one is the one blamed.
#include "l4lb/config/config_loader.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>
#include <vector>

#include "l4lb/common/address_text.h"
#include "l4lb/config/config_checks.h"
#include "l4lb/config/schema.h"
#include "l4lb/config/yaml_reader.h"

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

namespace {

template <typename Enum>
Enum choice_of(const YamlReader& reader, const Field& field) {
  return static_cast<Enum>(reader.choice(field));
}

// The section a key of the schema holds, e.g. "health" inside a vip.
const schema::Section& section_of(const schema::Section& parent, std::string_view key) {
  return *parent.key(key).section;
}

// Reads the whole document, section by section, in an order that lets each
// rule see what it depends on (ports before the addresses they own).
class ConfigReader {
 public:
  explicit ConfigReader(const std::string& source) : reader_(source), checks_(reader_) {}

  Config read(const YAML::Node& document) {
    const Mapping top = reader_.root(document);
    if (auto f = top.get("dataplane")) read_dataplane(*f);
    read_ports(top.require("ports"));
    if (auto f = top.get("neighbors")) read_neighbors(*f);
    if (auto f = top.get("vips")) read_vips(*f);
    if (auto f = top.get("timeouts")) read_timeouts(*f);
    if (auto f = top.get("logging")) read_logging(*f);
    if (auto f = top.get("metrics")) read_metrics(*f);
    if (auto f = top.get("bgp")) read_bgp(*f);
    return std::move(config_);
  }

 private:
  void read_dataplane(const Field& field) {
    const Mapping m(reader_, field, section_of(schema::root(), "dataplane"));
    DataplaneConfig& dp = config_.dataplane;
    if (auto f = m.get("workers")) dp.workers = reader_.u32(*f);
    if (auto f = m.get("flows_per_worker")) dp.flows_per_worker = reader_.u32(*f);
    if (auto f = m.get("mbufs")) dp.mbufs = reader_.u32(*f);
    if (auto f = m.get("idle_sleep_us")) dp.idle_sleep_us = reader_.u32(*f);
    if (auto f = m.get("table_full")) dp.table_full = choice_of<TableFullPolicy>(reader_, *f);
    if (auto f = m.get("closed_vip_ports")) dp.closed_vip_ports = choice_of<ClosedVipPortPolicy>(reader_, *f);
    if (auto f = m.get("icmp_errors")) dp.icmp_errors = choice_of<IcmpErrorPolicy>(reader_, *f);
    if (auto f = m.get("snat_pools_per_worker")) dp.snat_pools_per_worker = reader_.u32(*f);
    if (auto f = m.get("shutdown_drain_s")) dp.shutdown_drain_s = reader_.u32(*f);
    const std::optional<Field> range = m.get("snat_port_range");
    if (range) std::tie(dp.snat_port_min, dp.snat_port_max) = reader_.port_range(*range);
    dp.key_lines[""] = field.line;
    for (const char* key : {"workers", "flows_per_worker", "mbufs", "snat_pools_per_worker"})
      if (auto f = m.get(key)) dp.key_lines[key] = f->line;
    checks_.snat_range_covers_workers(dp, range ? *range : field);
  }

  void read_ports(const Field& field) {
    const schema::Section& section = section_of(schema::root(), "ports");
    const std::vector<Field> items = reader_.list(field);
    if (items.empty()) reader_.fail(field, "at least one port is required");
    for (size_t index = 0; index < items.size(); ++index) {
      const Field& item = items[index];
      const Mapping m(reader_, item, section);
      PortConfig port;
      port.line = item.line;

      const Field name = m.require("name");
      port.name = reader_.name(name);
      checks_.unique_port_name(name, port.name, config_.ports);

      for (const Field& a : reader_.one_or_list(m.require("address"))) {
        const Ipv4Cidr cidr = reader_.cidr(a);
        checks_.add_own_address(a, cidr.address);
        port.addresses.push_back(cidr);
      }
      if (port.addresses.empty()) reader_.fail(*m.get("address"), "at least one address is required");

      if (auto g = m.get("gateway")) {
        port.gateway = reader_.unicast_ipv4(*g);
        checks_.gateway_on_link(*g, *port.gateway, port);
      }

      int iface_line = item.line;
      if (auto k = m.get("kernel_iface")) {
        port.kernel_iface = reader_.interface_name(*k);
        iface_line = k->line;
      } else {
        port.kernel_iface = "l4lbk" + std::to_string(index);
      }
      checks_.add_kernel_iface(item.key + ".kernel_iface", iface_line, port.kernel_iface, item.key);
      config_.ports.push_back(std::move(port));
    }
  }

  // A VIP's, backend's or static neighbour's address: a unicast address
  // that is not one of the appliance's own.
  std::pair<Field, uint32_t> peer_address(const Mapping& m) const {
    Field field = m.require("address");
    const uint32_t address = reader_.unicast_ipv4(field);
    checks_.not_own_address(field, address);
    return {std::move(field), address};
  }

  void read_neighbors(const Field& field) {
    if (field.node.IsNull()) return;  // every entry commented out
    const schema::Section& section = section_of(schema::root(), "neighbors");
    for (const Field& item : reader_.list(field)) {
      const Mapping m(reader_, item, section);
      NeighborConfig neighbor;
      neighbor.line = item.line;
      const auto [address, value] = peer_address(m);
      neighbor.address = value;
      checks_.unique_neighbor(address, neighbor.address, config_.neighbors);
      neighbor.mac = reader_.mac(m.require("mac"));
      config_.neighbors.push_back(neighbor);
    }
  }

  void read_vips(const Field& field) {
    if (field.node.IsNull()) return;  // every entry commented out
    const schema::Section& section = section_of(schema::root(), "vips");
    const std::vector<Field> items = reader_.list(field);
    for (size_t index = 0; index < items.size(); ++index) {
      const Field& item = items[index];
      checks_.vip_fits(item, index);
      const Mapping m(reader_, item, section);
      VipConfig vip;
      vip.line = item.line;

      const Field name = m.require("name");
      vip.name = reader_.name(name);
      vip.address = peer_address(m).second;
      vip.port = reader_.u16(m.require("port"));
      if (auto f = m.get("protocol")) vip.protocol = choice_of<Protocol>(reader_, *f);
      if (auto f = m.get("mode")) vip.mode = choice_of<NatMode>(reader_, *f);
      checks_.unique_vip(item, name, vip, config_.vips);

      read_snat(m, vip);

      const std::optional<Field> table_size = m.get("table_size");
      if (table_size) {
        vip.table_size = reader_.u32(*table_size);
        checks_.table_size_prime(*table_size, vip.table_size);
      }
      if (auto f = m.get("tcp_miss")) {
        checks_.tcp_only(*f, vip);
        vip.tcp_miss = choice_of<TcpMissPolicy>(reader_, *f);
      }
      if (auto f = m.get("dnat_reverse")) {
        checks_.dnat_only(*f, vip);
        vip.dnat_reverse = choice_of<DnatReverse>(reader_, *f);
      }
      if (auto f = m.get("max_embryonic")) {
        checks_.tcp_only(*f, vip);
        vip.max_embryonic = reader_.u32(*f);
      }
      if (auto f = m.get("down_policy")) vip.down_policy = choice_of<DownPolicy>(reader_, *f);
      if (auto f = m.get("health")) vip.health = read_health(*f, section);

      const Field backends = m.require("backends");
      read_backends(backends, section, vip);
      checks_.stateless_reverse_unambiguous(backends, vip, config_.vips);
      checks_.table_fits_backends(table_size ? *table_size : backends, vip);
      checks_.add_snat_pools(backends, vip, config_.dataplane.snat_pools_per_worker);
      config_.vips.push_back(std::move(vip));
    }
  }

  void read_snat(const Mapping& m, VipConfig& vip) {
    checks_.snat_matches_mode(m, vip);
    if (vip.mode != NatMode::kFnat) return;
    const Field snat = *m.get("snat");
    for (const Field& a : reader_.one_or_list(snat)) {
      const uint32_t address = reader_.unicast_ipv4(a);
      checks_.add_snat_address(a, address, vip);
      vip.snat.push_back(address);
    }
    checks_.snat_not_empty(snat, vip);
  }

  HealthConfig read_health(const Field& field, const schema::Section& vip_section) const {
    const Mapping m(reader_, field, section_of(vip_section, "health"));
    HealthConfig health;
    if (auto f = m.get("type")) health.type = choice_of<HealthType>(reader_, *f);
    if (auto f = m.get("interval_ms")) health.interval_ms = reader_.u32(*f);
    const std::optional<Field> timeout = m.get("timeout_ms");
    if (timeout) health.timeout_ms = reader_.u32(*timeout);
    checks_.timeout_below_interval(timeout ? *timeout : field, health);
    if (auto f = m.get("rise")) health.rise = reader_.u32(*f);
    if (auto f = m.get("fall")) health.fall = reader_.u32(*f);
    if (auto f = m.get("path")) {
      checks_.http_only(*f, health);
      health.path = reader_.http_path(*f);
    }
    if (auto f = m.get("expect")) {
      checks_.http_only(*f, health);
      health.expect = reader_.u32(*f);
    }
    return health;
  }

  void read_backends(const Field& field, const schema::Section& vip_section, VipConfig& vip) {
    const schema::Section& section = section_of(vip_section, "backends");
    const std::vector<Field> items = reader_.list(field);
    checks_.backends_not_empty(field, items);
    for (const Field& item : items) {
      const Mapping m(reader_, item, section);
      BackendConfig backend;
      backend.line = item.line;
      backend.address = peer_address(m).second;
      backend.port = reader_.u16(m.require("port"));
      if (auto f = m.get("weight")) backend.weight = reader_.u32(*f);
      checks_.add_backend(field, item, backend, vip);
      vip.backends.push_back(backend);
    }
  }

  void read_timeouts(const Field& field) {
    const Mapping m(reader_, field, section_of(schema::root(), "timeouts"));
    Timeouts& t = config_.timeouts;
    const auto read = [&](const char* key, uint32_t& value) {
      if (auto f = m.get(key)) value = reader_.u32(*f);
    };
    // The old key first: the states' own keys, where given, override it.
    if (auto f = m.get("tcp_closing_s"))
      t.tcp_fin_wait_s = t.tcp_time_wait_s = t.tcp_close_s = reader_.u32(*f);
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
    const Mapping m(reader_, field, section_of(schema::root(), "logging"));
    if (auto f = m.get("level")) config_.log_level = std::string(f->spec->choices[reader_.choice(*f)]);
  }

  void read_metrics(const Field& field) {
    const Mapping m(reader_, field, section_of(schema::root(), "metrics"));
    if (auto f = m.get("listen")) config_.metrics_listen = reader_.listen_address(*f);
  }

  void read_bgp(const Field& field) {
    const Mapping m(reader_, field, section_of(schema::root(), "bgp"));
    BgpConfig& bgp = config_.bgp;
    if (auto f = m.get("enabled")) bgp.enabled = reader_.boolean(*f);
    if (auto f = m.get("bird_socket")) bgp.bird_socket = reader_.absolute_path(*f);
    if (auto f = m.get("routes_file")) bgp.routes_file = reader_.absolute_path(*f);
    // Other hosts' addresses: unicast, neither ours nor a VIP's.
    const auto others = [&](const char* key, const char* what, std::vector<uint32_t>& out) {
      const std::optional<Field> f = m.get(key);
      if (!f) return;
      for (const Field& a : reader_.one_or_list(*f)) {
        const uint32_t address = reader_.unicast_ipv4(a);
        checks_.not_own_address(a, address);
        for (const VipConfig& vip : config_.vips)
          if (vip.address == address) reader_.fail(a, "is the address of VIP '" + vip.name + "', not " + what);
        out.push_back(address);
      }
    };
    others("peers", "a BGP peer", bgp.peers);
    others("appliances", "an appliance's own", bgp.appliances);
    if (auto f = m.get("announce_snat")) bgp.announce_snat = reader_.boolean(*f);
    if (auto f = m.get("when_no_backend")) bgp.when_no_backend = choice_of<NoBackendPolicy>(reader_, *f);
    if (auto f = m.get("withdraw_wait_ms")) bgp.withdraw_wait_ms = reader_.u32(*f);
  }

  YamlReader reader_;
  ConfigChecks checks_;
  Config config_;
};

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source_name) {
  try {
    return ConfigReader(source_name).read(load_single_document(yaml_text, source_name));
  } catch (const ConfigError&) {
    throw;
  } catch (const YAML::Exception& e) {
    throw ConfigError(source_name, std::string(kDocumentKey), line_of(e.mark), "YAML syntax error: " + e.msg);
  } catch (const std::exception& e) {
    throw ConfigError(source_name, std::string(kDocumentKey), 0, std::string("internal error: ") + e.what());
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
