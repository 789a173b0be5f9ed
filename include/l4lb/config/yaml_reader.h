// Typed reading of a YAML config document: every value comes with its dotted
// key path and 1-based line, and every refusal is a ConfigError naming both.
// The keys a mapping may hold, and each value's range or choices, come from
// the schema (config/schema.h). yaml-cpp 0.7's pitfalls are handled here and
// nowhere else (see yaml_reader.cc). Management core only.
#pragma once

#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/config/schema.h"

namespace l4lb::config {

// Key reported when the whole document (not one key) is at fault.
inline constexpr std::string_view kDocumentKey = "(document)";

// yaml-cpp marks are 0-based; errors and the *.line fields are 1-based (0: no mark).
int line_of(const YAML::Mark& mark);
inline int line_of(const YAML::Node& node) {
  return line_of(node.Mark());
}

// How a value is shown in an error: 'text', the quoted string 'text', a list, ...
std::string describe(const YAML::Node& node);

// Parses the one YAML document of `text`. Throws ConfigError for a syntax
// error, an empty text or more than one document (key kDocumentKey).
YAML::Node load_single_document(const std::string& text, const std::string& source);

// A value taken from the document together with where it came from, and the
// schema row it was read under (null for the document's root).
struct Field {
  YAML::Node node;
  std::string key;  // dotted path, e.g. "vips[0].backends[1].port"; "" for the root
  int line = 0;
  const schema::Key* spec = nullptr;
};

class YamlReader;

// The entries of one YAML mapping, checked on construction against the keys
// of its schema section (unknown and duplicate keys are errors).
class Mapping {
 public:
  Mapping(const YamlReader& reader, const Field& field, const schema::Section& section);

  std::optional<Field> get(std::string_view key) const;
  // Fails, naming the missing key and the mapping's line, when absent.
  Field require(std::string_view key) const;
  const Field& field() const { return field_; }

 private:
  std::string child_key(std::string_view key) const {
    return field_.key.empty() ? std::string(key) : field_.key + "." + std::string(key);
  }

  const YamlReader& reader_;
  Field field_;
  const schema::Section& section_;
  std::vector<std::pair<std::string, Field>> entries_;
};

// Typed scalar and container readers. Ranges and choices are those of the
// field's schema row. All failures go through fail().
class YamlReader {
 public:
  explicit YamlReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& key, int line, const std::string& message) const;
  [[noreturn]] void fail(const Field& field, const std::string& message) const {
    fail(field.key, field.line, message);
  }

  // The root of a document, as a mapping of the schema's top-level keys.
  Mapping root(const YAML::Node& document) const;

  uint64_t integer(const Field& field, uint64_t lo, uint64_t hi) const;
  uint32_t u32(const Field& field) const;
  uint16_t u16(const Field& field) const;
  std::string string(const Field& field) const;
  // A name that ends up in device arguments, telemetry replies and metric labels.
  std::string name(const Field& field) const;
  // The index of the field's text among its row's choices.
  size_t choice(const Field& field) const;
  uint32_t ipv4(const Field& field) const;
  uint32_t unicast_ipv4(const Field& field) const;
  Ipv4Cidr cidr(const Field& field) const;
  std::array<uint8_t, 6> mac(const Field& field) const;
  std::pair<uint16_t, uint16_t> port_range(const Field& field) const;
  std::string listen_address(const Field& field) const;
  std::string http_path(const Field& field) const;
  std::string interface_name(const Field& field) const;
  // An absolute path of at most the key's `max` bytes.
  std::string absolute_path(const Field& field) const;
  // true or false (a kChoice of "false", "true").
  bool boolean(const Field& field) const { return choice(field) == 1; }

  // A list; each item's key is "<key>[i]", its line the item's own, and its
  // schema row the list's.
  std::vector<Field> list(const Field& field) const;
  // Where the schema allows either one value or a list of them.
  std::vector<Field> one_or_list(const Field& field) const;

 private:
  std::string source_;
};

// Shared with the semantic checks.
bool is_unicast(uint32_t address);
uint32_t prefix_mask(uint8_t prefix_len);

}  // namespace l4lb::config
