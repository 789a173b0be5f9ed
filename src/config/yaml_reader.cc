// Typed YAML reading with key+line errors, and yaml-cpp 0.7's pitfalls in
// one place. Debian 12 ships yaml-cpp 0.7.0, which this file works around:
//  1. as<T>() ignores the tag (a quoted "8080" converts), reads 010 as octal
//     8, takes 0x10 and +2, and fails with a bare "bad conversion": scalars
//     are parsed from their text (integer() and the address readers), never
//     with as<T>().
//  2. A ',' outside any [ ] or { } makes the parser return empty documents
//     forever (yaml-cpp issue #1040, fixed after 0.8.0 by PR #1319):
//     load_single_document() walks the events first (ExtraDocumentFinder).
//  3. Its map iterator hands out a temporary pair: Mapping copies the key and
//     value nodes instead of keeping references to them.
//  4. A repeated key is kept twice rather than refused: Mapping refuses it.
#include "l4lb/config/yaml_reader.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <charconv>
#include <sstream>

#include "l4lb/config/config_loader.h"

namespace l4lb::config {
namespace {

std::string range_text(uint64_t lo, uint64_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}

bool has_space_or_control(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

// The decimal port of "ADDR:PORT"-like text: 1..65535, no sign or leading zero.
bool parse_port_text(const std::string& text, unsigned& value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return !text.empty() && ec == std::errc() && ptr == end && value >= 1 && value <= 65535 && text[0] != '0';
}

constexpr size_t kMaxIfaceNameLen = 15;  // IFNAMSIZ - 1

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

int line_of(const YAML::Mark& mark) {
  return mark.is_null() ? 0 : mark.line + 1;
}

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

YAML::Node load_single_document(const std::string& text, const std::string& source) {
  const std::string document_key(kDocumentKey);
  try {
    if (const auto extra = ExtraDocumentFinder().find(text)) {
      throw ConfigError(source, document_key, line_of(extra->mark),
                        extra->stuck ? stuck_message(text, extra->mark)
                                     : "more than one YAML document; expected exactly one");
    }
    const std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.empty() || documents[0].IsNull())
      throw ConfigError(source, document_key, 0, "empty document");
    if (documents.size() > 1) {
      throw ConfigError(source, document_key, line_of(documents[1]),
                        "more than one YAML document; expected exactly one");
    }
    return documents[0];
  } catch (const YAML::Exception& e) {
    throw ConfigError(source, document_key, line_of(e.mark), "YAML syntax error: " + e.msg);
  }
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

void YamlReader::fail(const std::string& key, int line, const std::string& message) const {
  throw ConfigError(source_, key.empty() ? std::string(kDocumentKey) : key, line, message);
}

Mapping YamlReader::root(const YAML::Node& document) const {
  const Field root_field{document, "", line_of(document)};
  if (!document.IsMap()) fail(root_field, "expected a mapping at the top level, got " + describe(document));
  return Mapping(*this, root_field, schema::root());
}

uint64_t YamlReader::integer(const Field& field, uint64_t lo, uint64_t hi) const {
  const YAML::Node& node = field.node;
  // A quoted "8080" is a string in YAML; accepting it would hide a typo'd type.
  const bool plain_or_int_tag =
      node.IsScalar() && (node.Tag() == "?" || node.Tag() == "tag:yaml.org,2002:int");
  if (!plain_or_int_tag)
    fail(field, "expected an integer in " + range_text(lo, hi) + ", got " + describe(node));
  const std::string& text = node.Scalar();
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) fail(field, "must be in " + range_text(lo, hi) + ", got " + text);
  if (ec != std::errc() || ptr != end) {
    fail(field, "expected an integer in " + range_text(lo, hi) + ", got " + describe(node));
  }
  if (text.size() > 1 && text[0] == '0') {
    fail(field, "leading zeros are not allowed (YAML 1.1 reads them as octal), got " + text);
  }
  if (value < lo || value > hi) fail(field, "must be in " + range_text(lo, hi) + ", got " + text);
  return value;
}

uint32_t YamlReader::u32(const Field& field) const {
  return static_cast<uint32_t>(integer(field, field.spec->min, field.spec->max));
}

uint16_t YamlReader::u16(const Field& field) const {
  return static_cast<uint16_t>(integer(field, field.spec->min, field.spec->max));
}

std::string YamlReader::string(const Field& field) const {
  if (!field.node.IsScalar()) fail(field, "expected a string, got " + describe(field.node));
  return field.node.Scalar();
}

std::string YamlReader::name(const Field& field) const {
  std::string text = string(field);
  if (text.empty()) fail(field, "must not be empty");
  if (has_space_or_control(text)) fail(field, "must not contain spaces or control characters");
  return text;
}

size_t YamlReader::choice(const Field& field) const {
  const auto& choices = field.spec->choices;
  std::string allowed;
  for (std::string_view text : choices) allowed += (allowed.empty() ? "" : "|") + std::string(text);
  if (field.node.IsScalar()) {
    for (size_t index = 0; index < choices.size(); ++index) {
      if (field.node.Scalar() == choices[index]) return index;
    }
  }
  fail(field, "expected one of " + allowed + ", got " + describe(field.node));
}

uint32_t YamlReader::ipv4(const Field& field) const {
  const std::string text = string(field);
  uint32_t address = 0;
  if (!parse_ipv4(text, address)) fail(field, "expected an IPv4 address a.b.c.d, got '" + text + "'");
  return address;
}

uint32_t YamlReader::unicast_ipv4(const Field& field) const {
  const uint32_t address = ipv4(field);
  if (!is_unicast(address)) fail(field, format_ipv4(address) + " is not a usable unicast address");
  return address;
}

Ipv4Cidr YamlReader::cidr(const Field& field) const {
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

std::array<uint8_t, 6> YamlReader::mac(const Field& field) const {
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

std::pair<uint16_t, uint16_t> YamlReader::port_range(const Field& field) const {
  const std::vector<Field> bounds = list(field);
  if (bounds.size() != 2) fail(field, "expected two ports [min, max]");
  const uint16_t min = u16(bounds[0]);
  const uint16_t max = u16(bounds[1]);
  if (min > max) fail(field, "min must not exceed max");
  return {min, max};
}

std::string YamlReader::listen_address(const Field& field) const {
  const std::string text = string(field);
  const size_t colon = text.rfind(':');
  uint32_t address = 0;
  unsigned port = 0;
  const bool ok = colon != std::string::npos && parse_ipv4(text.substr(0, colon), address) &&
                  parse_port_text(text.substr(colon + 1), port);
  if (!ok) fail(field, "expected ADDR:PORT with an IPv4 address and a port 1..65535, got '" + text + "'");
  return text;
}

std::string YamlReader::http_path(const Field& field) const {
  std::string path = string(field);
  // The path goes verbatim into the request line "GET <path> HTTP/1.1".
  if (path.empty() || path[0] != '/' || has_space_or_control(path)) {
    fail(field, "expected a path starting with '/' and without spaces, got '" + path + "'");
  }
  return path;
}

std::string YamlReader::interface_name(const Field& field) const {
  std::string s = string(field);
  const bool chars_ok = std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
  if (s.empty() || s.size() > kMaxIfaceNameLen || !chars_ok || s == "." || s == "..") {
    fail(field, "expected an interface name of 1.." + std::to_string(kMaxIfaceNameLen) +
                    " characters [A-Za-z0-9_.-], got '" + s + "'");
  }
  return s;
}

std::string YamlReader::absolute_path(const Field& field) const {
  std::string path = string(field);
  const bool chars_ok = std::none_of(path.begin(), path.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '"';
  });
  if (path.empty() || path[0] != '/' || !chars_ok)
    fail(field, "expected an absolute path (starting with '/', no control characters or quotes), got '" +
                    path + "'");
  if (path.size() > field.spec->max)
    fail(field, "at most " + std::to_string(field.spec->max) + " bytes, got " + std::to_string(path.size()));
  return path;
}

std::vector<Field> YamlReader::list(const Field& field) const {
  if (!field.node.IsSequence()) fail(field, "expected a list, got " + describe(field.node));
  std::vector<Field> items;
  size_t index = 0;
  for (const YAML::Node& item : field.node) {
    const int line = item.IsNull() ? field.line : line_of(item);
    items.push_back(Field{item, field.key + "[" + std::to_string(index) + "]", line, field.spec});
    ++index;
  }
  return items;
}

std::vector<Field> YamlReader::one_or_list(const Field& field) const {
  if (field.node.IsSequence()) return list(field);
  if (!field.node.IsScalar()) fail(field, "expected a string or a list, got " + describe(field.node));
  return {field};
}

Mapping::Mapping(const YamlReader& reader, const Field& field, const schema::Section& section)
    : reader_(reader), field_(field), section_(section) {
  if (!field.node.IsMap()) reader.fail(field, "expected a mapping, got " + describe(field.node));
  for (const auto& entry : field.node) {
    // Copies: the iterator's pair is a temporary (workaround 3 above).
    const YAML::Node key_node = entry.first;
    const YAML::Node value_node = entry.second;
    const int line = line_of(key_node);
    if (!key_node.IsScalar()) reader.fail(field.key, line, "keys must be plain strings");
    const std::string& name = key_node.Scalar();
    const schema::Key* spec = section.find(name);
    if (spec == nullptr) {
      reader.fail(child_key(name), line, "unknown key (expected one of: " + section.key_list() + ")");
    }
    for (const auto& [seen, seen_field] : entries_) {
      // Workaround 4: the file would say two things.
      if (seen == name) {
        reader.fail(child_key(name), line,
                    "duplicate key (first on line " + std::to_string(seen_field.line) + ")");
      }
    }
    entries_.emplace_back(name, Field{value_node, child_key(name), line, spec});
  }
}

std::optional<Field> Mapping::get(std::string_view key) const {
  section_.key(key);  // a key the schema lacks is a loader bug: throw, do not answer "absent"
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

}  // namespace l4lb::config
