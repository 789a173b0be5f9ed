// The config file's schema (DESIGN §9): every section, every key in it, its
// kind of value, range, choices and default, in one table. The YAML reader
// refuses keys not listed here and takes ranges and choices from here, so a
// new key is one row here plus the line that stores it; tests and the man
// page check walk the same table. Pure data, no yaml-cpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace l4lb::config::schema {

enum class ValueKind : uint8_t {
  kInteger,        // plain decimal in [min, max]
  kChoice,         // one of `choices`
  kString,         // any scalar
  kName,           // non-empty, no spaces or control characters
  kUnicastIpv4,    // a.b.c.d, usable as a unicast address
  kIpv4List,       // one kUnicastIpv4 or a list of them
  kCidrList,       // one a.b.c.d[/n] host address or a list of them
  kMac,            // xx:xx:xx:xx:xx:xx, unicast, not all zero
  kPortRange,      // [min, max], each in [min, max] of the row
  kListenAddress,  // a.b.c.d:port
  kHttpPath,       // /path without spaces
  kInterfaceName,  // Linux interface name, 1..15 of [A-Za-z0-9_.-]
  kAbsolutePath,   // /path, at most `max` bytes, no control characters or quotes
  kSection,        // a mapping: the keys of `section`
  kSectionList,    // a list of mappings, each with the keys of `section`
};

struct Section;

struct Key {
  std::string_view name;
  ValueKind kind;
  bool required = false;
  uint64_t min = 0;  // kInteger, kPortRange
  uint64_t max = 0;
  std::span<const std::string_view> choices = {};  // kChoice, in the order of the enum they map to
  std::string_view default_value = {};             // as the file would spell it; empty: none
  const Section* section = nullptr;                // kSection, kSectionList
};

struct Section {
  std::string_view name;  // for messages and listings, e.g. "vips[].health"
  std::span<const Key> keys;

  // The row for `key_name`; throws std::out_of_range for a key the schema
  // lacks (a loader bug, not a config error).
  const Key& key(std::string_view key_name) const;
  const Key* find(std::string_view key_name) const;
  // "a, b, c" in schema order, as unknown-key errors list them.
  std::string key_list() const;
};

// The top-level mapping of a config file.
const Section& root();

// Every accepted key as a path: "dataplane.workers", "vips[].health.type",
// "ports[].name", ... (sections too, e.g. "vips", "vips[].health"), in
// schema order.
std::vector<std::string> all_key_paths();

}  // namespace l4lb::config::schema
