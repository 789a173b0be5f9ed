// The schema (config/schema.h) is the list of keys the loader accepts: every
// key it lists is read, every other key is refused with exactly its list,
// its defaults are config.h's, its choices map onto config.h's enums in
// order, and the example files use only its keys.
#include "l4lb/config/schema.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "l4lb/config/config_loader.h"

namespace l4lb::config {
namespace {

// A valid document in which every section and list the schema has holds
// one entry, so any key can be put in its place.
const char* const kBase = R"(dataplane: {workers: 1}
ports: [{name: p0, address: 10.0.0.1/24}]
vips:
  - name: web
    address: 10.0.0.100
    port: 80
    snat: [10.0.0.1]
    health: {type: http}
    backends: [{address: 10.0.0.21, port: 80}]
neighbors: [{address: 10.0.0.21, mac: "02:00:00:00:00:21"}]
timeouts: {udp_s: 120}
logging: {level: info}
metrics: {listen: 127.0.0.1:9100}
bgp: {peers: [10.0.0.254]}
)";

// The node at a schema path such as "vips[].health.type" in `doc`, made if
// absent; a "[]" step is the list's first entry.
YAML::Node node_at(YAML::Node doc, const std::string& path) {
  YAML::Node node = doc;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    std::string step = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool into_list = step.size() > 2 && step.compare(step.size() - 2, 2, "[]") == 0;
    if (into_list) step.resize(step.size() - 2);
    node.reset(node[step]);
    if (into_list) node.reset(node[0]);
    if (dot == std::string::npos) return node;
    start = dot + 1;
  }
}

// The schema row at a path such as "vips[].health.type".
const schema::Key& key_of(const std::string& path) {
  const schema::Section* section = &schema::root();
  size_t start = 0;
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    std::string step = path.substr(start, dot - start);
    if (step.size() > 2 && step.compare(step.size() - 2, 2, "[]") == 0) step.resize(step.size() - 2);
    section = section->key(step).section;
    start = dot + 1;
  }
  return section->key(path.substr(start));
}

std::string strip_indices(const std::string& key) {
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    if (key[i] != '[') {
      out += key[i];
      continue;
    }
    out += "[]";
    i = key.find(']', i);
  }
  return out;
}

// The error parsing `doc` gives, or "" when it is accepted.
std::string error_of(const YAML::Node& doc, std::string* key = nullptr) {
  try {
    parse_config(YAML::Dump(doc));
  } catch (const ConfigError& e) {
    if (key != nullptr) *key = e.key();
    return e.message();
  }
  return "";
}

TEST(ConfigSchema, BaseDocumentIsValid) {
  EXPECT_EQ(error_of(YAML::Load(kBase)), "");
}

TEST(ConfigSchema, ListsSectionsAndTheirKeys) {
  const std::vector<std::string> paths = schema::all_key_paths();
  for (const char* path : {"dataplane", "dataplane.workers", "ports", "ports[].kernel_iface",
                           "vips[].health.type", "vips[].backends[].weight", "neighbors[].mac",
                           "timeouts.tcp_closing_s", "logging.level", "metrics.listen"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), path), paths.end()) << path;
  }
  EXPECT_EQ(std::set<std::string>(paths.begin(), paths.end()).size(), paths.size()) << "a path listed twice";
}

// Each listed key is read: set to a value, it is never refused as unknown.
TEST(ConfigSchema, LoaderAcceptsEveryListedKey) {
  for (const std::string& path : schema::all_key_paths()) {
    YAML::Node doc = YAML::Load(kBase);
    node_at(doc, path) = "1";
    std::string key;
    const std::string message = error_of(doc, &key);
    EXPECT_EQ(message.rfind("unknown key", 0), std::string::npos) << path << ": " << key << ": " << message;
  }
}

// Every mapping of the schema refuses any other key, naming exactly the
// schema's keys for that section.
TEST(ConfigSchema, LoaderRefusesEveryOtherKeyWithTheSchemasList) {
  std::vector<std::pair<std::string, const schema::Section*>> sections = {{"", &schema::root()}};
  for (size_t i = 0; i < sections.size(); ++i) {
    for (const schema::Key& key : sections[i].second->keys) {
      const std::string prefix = sections[i].first.empty() ? "" : sections[i].first + ".";
      if (key.kind == schema::ValueKind::kSection)
        sections.push_back({prefix + std::string(key.name), key.section});
      if (key.kind == schema::ValueKind::kSectionList) {
        sections.push_back({prefix + std::string(key.name) + "[]", key.section});
      }
    }
  }
  EXPECT_EQ(sections.size(), 11u);
  for (const auto& [path, section] : sections) {
    YAML::Node doc = YAML::Load(kBase);
    const std::string unknown = path.empty() ? "not_a_key" : path + ".not_a_key";
    node_at(doc, unknown) = 1;
    std::string key;
    const std::string message = error_of(doc, &key);
    EXPECT_EQ(strip_indices(key), unknown);
    EXPECT_EQ(message, "unknown key (expected one of: " + section->key_list() + ")") << path;
  }
}

// kBase's VIP made DNAT, for the keys only a DNAT VIP takes.
void make_vip_dnat(YAML::Node& doc) {
  doc["vips"][0]["mode"] = "dnat";
  doc["vips"][0].remove("snat");  // mode dnat refuses an snat list
}

// Each default, written into the file, is a value the loader accepts.
TEST(ConfigSchema, DefaultsAreValidValues) {
  for (const std::string& path : schema::all_key_paths()) {
    YAML::Node doc = YAML::Load(kBase);
    const schema::Key& key = key_of(path);
    if (key.default_value.empty() || key.default_value.find('<') != std::string::npos) continue;
    node_at(doc, path) = YAML::Load(std::string(key.default_value));
    if (path == "vips[].dnat_reverse") make_vip_dnat(doc);
    EXPECT_EQ(error_of(doc), "") << path << ": " << key.default_value;
  }
}

// config.h's defaults, as the loader yields them without the key, are the
// schema's.
TEST(ConfigSchema, DefaultsAreConfigHs) {
  const Config c = parse_config(
      "ports: [{name: p0, address: 10.0.0.1/24}]\n"
      "vips: [{name: v, address: 10.0.0.100, port: 80, snat: 10.0.0.1, health: {}, backends: [{address: "
      "10.0.0.21, port: 80}]}]\n");
  const VipConfig& vip = c.vips.at(0);
  const std::vector<std::pair<std::string, uint64_t>> integers = {
      {"dataplane.workers", c.dataplane.workers},
      {"dataplane.flows_per_worker", c.dataplane.flows_per_worker},
      {"dataplane.mbufs", c.dataplane.mbufs},
      {"dataplane.idle_sleep_us", c.dataplane.idle_sleep_us},
      {"dataplane.snat_pools_per_worker", c.dataplane.snat_pools_per_worker},
      {"dataplane.shutdown_drain_s", c.dataplane.shutdown_drain_s},
      {"vips[].table_size", vip.table_size},
      {"vips[].max_embryonic", vip.max_embryonic},
      {"vips[].health.interval_ms", vip.health.interval_ms},
      {"vips[].health.timeout_ms", vip.health.timeout_ms},
      {"vips[].health.rise", vip.health.rise},
      {"vips[].health.fall", vip.health.fall},
      {"vips[].health.expect", vip.health.expect},
      {"vips[].backends[].weight", vip.backends.at(0).weight},
      {"timeouts.tcp_syn_s", c.timeouts.tcp_syn_s},
      {"timeouts.tcp_syn_recv_s", c.timeouts.tcp_syn_recv_s},
      {"timeouts.tcp_established_s", c.timeouts.tcp_established_s},
      {"timeouts.tcp_fin_wait_s", c.timeouts.tcp_fin_wait_s},
      {"timeouts.tcp_time_wait_s", c.timeouts.tcp_time_wait_s},
      {"timeouts.tcp_close_s", c.timeouts.tcp_close_s},
      {"timeouts.udp_s", c.timeouts.udp_s},
      {"timeouts.udp_unreplied_s", c.timeouts.udp_unreplied_s},
      {"timeouts.snat_port_hold_s", c.timeouts.snat_port_hold_s},
      {"bgp.withdraw_wait_ms", c.bgp.withdraw_wait_ms},
  };
  for (const auto& [path, value] : integers)
    EXPECT_EQ(key_of(path).default_value, std::to_string(value)) << path;
  const std::string range = "[" + std::to_string(c.dataplane.snat_port_min) + ", " +
                            std::to_string(c.dataplane.snat_port_max) + "]";
  EXPECT_EQ(key_of("dataplane.snat_port_range").default_value, range);
  EXPECT_EQ(key_of("vips[].health.path").default_value, vip.health.path);
  EXPECT_EQ(key_of("logging.level").default_value, c.log_level);
  EXPECT_EQ(key_of("bgp.bird_socket").default_value, c.bgp.bird_socket);
  EXPECT_EQ(key_of("bgp.routes_file").default_value, c.bgp.routes_file);
  EXPECT_EQ(key_of("bgp.enabled").default_value, c.bgp.enabled ? "true" : "false");
  EXPECT_EQ(key_of("bgp.announce_snat").default_value, c.bgp.announce_snat ? "true" : "false");
  EXPECT_EQ(key_of("ports[].kernel_iface").default_value, "l4lbk<index>");
  EXPECT_EQ(c.ports.at(0).kernel_iface, "l4lbk0");
  // A choice's default is its enum's value 0 (config.h's default).
  for (const char* path : {"dataplane.table_full", "dataplane.closed_vip_ports", "dataplane.icmp_errors", "vips[].protocol",
                           "vips[].mode", "vips[].tcp_miss", "vips[].dnat_reverse", "vips[].down_policy", "vips[].health.type",
                           "bgp.when_no_backend"}) {
    const schema::Key& key = key_of(path);
    ASSERT_FALSE(key.choices.empty()) << path;
    EXPECT_EQ(key.default_value, key.choices[0]) << path;
  }
  EXPECT_EQ(c.dataplane.table_full, TableFullPolicy{});
  EXPECT_EQ(c.dataplane.closed_vip_ports, ClosedVipPortPolicy{});
  EXPECT_EQ(c.dataplane.icmp_errors, IcmpErrorPolicy{});
  EXPECT_EQ(vip.protocol, Protocol{});
  EXPECT_EQ(vip.mode, NatMode{});
  EXPECT_EQ(vip.tcp_miss, TcpMissPolicy{});
  EXPECT_EQ(vip.dnat_reverse, DnatReverse{});
  EXPECT_EQ(vip.down_policy, DownPolicy{});
  EXPECT_EQ(vip.health.type, HealthType{});
  EXPECT_EQ(c.bgp.when_no_backend, NoBackendPolicy{});
}

// Each choice's text yields the enum value config.h names for it (the
// schema lists them in enum order and the loader casts the index).
TEST(ConfigSchema, ChoicesMapOntoTheirEnums) {
  struct ChoiceKey {
    std::string path;
    std::vector<std::pair<std::string, int>> texts;  // text -> enum value, independent of the schema
    std::function<int(const Config&)> value;
  };
  const ChoiceKey keys[] = {
      {"dataplane.table_full",
       {{"evict_embryonic", int(TableFullPolicy::kEvictEmbryonic)},
        {"refuse", int(TableFullPolicy::kRefuse)}},
       [](const Config& c) { return int(c.dataplane.table_full); }},
      {"dataplane.icmp_errors",
       {{"translate", int(IcmpErrorPolicy::kTranslate)}, {"ignore", int(IcmpErrorPolicy::kIgnore)}},
       [](const Config& c) { return int(c.dataplane.icmp_errors); }},
      {"dataplane.closed_vip_ports",
       {{"drop", int(ClosedVipPortPolicy::kDrop)}, {"reject", int(ClosedVipPortPolicy::kReject)}},
       [](const Config& c) { return int(c.dataplane.closed_vip_ports); }},
      {"vips[].protocol",
       {{"tcp", int(Protocol::kTcp)}, {"udp", int(Protocol::kUdp)}},
       [](const Config& c) { return int(c.vips[0].protocol); }},
      {"vips[].mode",
       {{"fnat", int(NatMode::kFnat)}, {"dnat", int(NatMode::kDnat)}},
       [](const Config& c) { return int(c.vips[0].mode); }},
      {"vips[].tcp_miss",
       {{"forward", int(TcpMissPolicy::kForward)}, {"drop", int(TcpMissPolicy::kDrop)}},
       [](const Config& c) { return int(c.vips[0].tcp_miss); }},
      {"vips[].dnat_reverse",
       {{"flow", int(DnatReverse::kFlow)}, {"stateless", int(DnatReverse::kStateless)}},
       [](const Config& c) { return int(c.vips[0].dnat_reverse); }},
      {"vips[].down_policy",
       {{"keep", int(DownPolicy::kKeep)}, {"reset", int(DownPolicy::kReset)}},
       [](const Config& c) { return int(c.vips[0].down_policy); }},
      {"vips[].health.type",
       {{"none", int(HealthType::kNone)}, {"tcp", int(HealthType::kTcp)}, {"http", int(HealthType::kHttp)}},
       [](const Config& c) { return int(c.vips[0].health.type); }},
      {"bgp.when_no_backend",
       {{"withdraw", int(NoBackendPolicy::kWithdraw)}, {"announce", int(NoBackendPolicy::kAnnounce)}},
       [](const Config& c) { return int(c.bgp.when_no_backend); }},
      {"bgp.enabled", {{"false", 0}, {"true", 1}}, [](const Config& c) { return int(c.bgp.enabled); }},
      {"bgp.announce_snat", {{"false", 0}, {"true", 1}}, [](const Config& c) { return int(c.bgp.announce_snat); }},
  };
  for (const ChoiceKey& k : keys) {
    const schema::Key& key = key_of(k.path);
    ASSERT_EQ(key.choices.size(), k.texts.size()) << k.path;
    for (const auto& [text, expected] : k.texts) {
      EXPECT_NE(std::find(key.choices.begin(), key.choices.end(), text), key.choices.end())
          << k.path << ": " << text;
      YAML::Node doc = YAML::Load(kBase);
      node_at(doc, k.path) = text;
      if (text == "dnat" || k.path == "vips[].dnat_reverse") make_vip_dnat(doc);
      const Config c = parse_config(YAML::Dump(doc));
      EXPECT_EQ(k.value(c), expected) << k.path << ": " << text;
    }
  }
  // The log level is kept as its text.
  for (std::string_view level : schema::root().key("logging").section->key("level").choices) {
    YAML::Node doc = YAML::Load(kBase);
    doc["logging"]["level"] = std::string(level);
    EXPECT_EQ(parse_config(YAML::Dump(doc)).log_level, level);
  }
}

// Every key path an example file uses (lists as "[]"), and whether it is one
// the schema lists.
void collect_paths(const YAML::Node& node, const std::string& prefix, std::set<std::string>& out) {
  if (!node.IsMap()) return;
  for (const auto& entry : node) {
    const std::string path = prefix + entry.first.Scalar();
    out.insert(path);
    const YAML::Node value = entry.second;
    if (value.IsMap()) collect_paths(value, path + ".", out);
    if (value.IsSequence()) {
      for (const YAML::Node& item : value) collect_paths(item, path + "[].", out);
    }
  }
}

TEST(ConfigSchema, ExampleFilesUseOnlySchemaKeys) {
  const std::vector<std::string> listed = schema::all_key_paths();
  const std::set<std::string> schema_paths(listed.begin(), listed.end());
  std::set<std::string> in_example;
  for (const char* file : {"l4lb.example.yaml", "demo.yaml"}) {
    std::set<std::string> used;
    collect_paths(YAML::LoadFile(std::string(L4LB_SOURCE_DIR) + "/config/" + file), "", used);
    EXPECT_GT(used.size(), 10u) << file;
    for (const std::string& path : used) EXPECT_EQ(schema_paths.count(path), 1u) << file << ": " << path;
    if (std::string(file) == "l4lb.example.yaml") in_example = used;
  }
  // The annotated example shows every key, but the older tcp_closing_s
  // (only mentioned in a comment there).
  for (const std::string& path : listed) {
    if (path == "timeouts.tcp_closing_s") continue;
    EXPECT_EQ(in_example.count(path), 1u) << "config/l4lb.example.yaml lacks " << path;
  }
}

}  // namespace
}  // namespace l4lb::config
