// The typed YAML reader (config/yaml_reader.h) on its own, against a small
// schema of the test's: values within the row's range or choices, lists that
// carry key, line and row to their items, mappings that refuse unknown and
// repeated keys, and the yaml-cpp 0.7 pitfalls it exists to contain.
#include "l4lb/config/yaml_reader.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "l4lb/config/config_loader.h"
#include "l4lb/config/schema.h"

namespace l4lb::config {
namespace {

using schema::ValueKind;

constexpr std::string_view kColours[] = {"red", "green", "blue"};
const schema::Key kKeys[] = {
    {"count", ValueKind::kInteger, false, 2, 300},
    {"colour", ValueKind::kChoice, false, 0, 0, kColours},
    {"name", ValueKind::kName, true},
    {"range", ValueKind::kPortRange, false, 1024, 65535},
};
const schema::Section kSection{"test", kKeys};

// A field over `yaml` read as it would be under the row `key`.
Field field(const std::string& yaml, std::string_view key = "count") {
  const YAML::Node node = YAML::Load(yaml);
  return Field{node, "t." + std::string(key), line_of(node), &kSection.key(key)};
}

// The message of the ConfigError that `read` throws, or "" without one.
template <typename Read>
std::string error_of(Read read) {
  try {
    read();
  } catch (const ConfigError& e) {
    return e.message();
  }
  return "";
}

const YamlReader kReader("r.yaml");

TEST(YamlReader, IntegersTakeTheirRangeFromTheSchemaRow) {
  EXPECT_EQ(kReader.u32(field("2")), 2u);
  EXPECT_EQ(kReader.u32(field("300")), 300u);
  EXPECT_EQ(error_of([] { kReader.u32(field("1")); }), "must be in 2..300, got 1");
  EXPECT_EQ(error_of([] { kReader.u32(field("301")); }), "must be in 2..300, got 301");
  EXPECT_EQ(error_of([] { kReader.u16(field("99999999999999999999999")); }),
            "must be in 2..300, got 99999999999999999999999");
}

// yaml-cpp 0.7's as<unsigned>() converts a quoted "3", octal 010 and hex
// 0x10: the reader reads the text itself and refuses what a typo'd or
// misread value would look like.
TEST(YamlReader, IntegersAreReadFromTheTextNotAsT) {
  EXPECT_EQ(YAML::Load("'3'").as<uint32_t>(), 3u) << "as<T>() no longer ignores quotes: update the note";
  EXPECT_EQ(YAML::Load("010").as<uint32_t>(), 8u);
  EXPECT_EQ(YAML::Load("0x10").as<uint32_t>(), 16u);
  for (const char* text :
       {"-1", "2.0", "1.5", "0x10", "+2", "two", "[3]", "{a: 3}", "\"3\"", "'3'", "!!str 3"}) {
    EXPECT_EQ(error_of([&] { kReader.u32(field(text)); }).rfind("expected an integer in 2..300, got ", 0), 0u)
        << text;
  }
  EXPECT_EQ(error_of([] { kReader.u32(field("010")); }),
            "leading zeros are not allowed (YAML 1.1 reads them as octal), got 010");
  EXPECT_EQ(kReader.u32(field("!!int 7")), 7u);  // an explicit int tag is an integer
}

TEST(YamlReader, ChoiceIsTheIndexInTheRowsList) {
  EXPECT_EQ(kReader.choice(field("red", "colour")), 0u);
  EXPECT_EQ(kReader.choice(field("blue", "colour")), 2u);
  EXPECT_EQ(error_of([] { kReader.choice(field("Red", "colour")); }),
            "expected one of red|green|blue, got 'Red'");
  EXPECT_EQ(error_of([] { kReader.choice(field("[red]", "colour")); }),
            "expected one of red|green|blue, got a list");
  EXPECT_EQ(error_of([] { kReader.choice(field("'x'", "colour")); }),
            "expected one of red|green|blue, got the quoted string 'x'");
}

TEST(YamlReader, PortRangeChecksEachBoundAndTheirOrder) {
  EXPECT_EQ(kReader.port_range(field("[2000, 3000]", "range")), (std::pair<uint16_t, uint16_t>{2000, 3000}));
  EXPECT_EQ(error_of([] { kReader.port_range(field("[3000, 2000]", "range")); }), "min must not exceed max");
  EXPECT_EQ(error_of([] { kReader.port_range(field("[1, 2, 3]", "range")); }),
            "expected two ports [min, max]");
  try {
    kReader.port_range(field("[2000, 80]", "range"));
    FAIL() << "accepted port 80";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "t.range[1]");
    EXPECT_EQ(e.message(), "must be in 1024..65535, got 80");
  }
}

TEST(YamlReader, ListItemsCarryKeyLineAndRow) {
  const Field list{YAML::Load("\n- 5\n-\n- 7\n"), "t.count", 1, &kSection.key("count")};
  const std::vector<Field> items = kReader.list(list);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].key, "t.count[0]");
  EXPECT_EQ(items[0].line, 2);
  EXPECT_EQ(items[1].line, 1) << "a null item has no mark: the list's line";
  EXPECT_EQ(items[2].key, "t.count[2]");
  EXPECT_EQ(items[2].line, 4);
  EXPECT_EQ(items[2].spec, list.spec);
  EXPECT_EQ(kReader.u32(items[2]), 7u);
  EXPECT_EQ(kReader.one_or_list(field("9")).size(), 1u);
  EXPECT_EQ(error_of([] { kReader.one_or_list(field("{a: 1}")); }),
            "expected a string or a list, got a mapping");
  EXPECT_EQ(error_of([] { kReader.list(field("9")); }), "expected a list, got '9'");
}

Field mapping_field(const std::string& yaml) {
  return Field{YAML::Load(yaml), "t", 1, nullptr};
}

TEST(YamlReader, MappingAcceptsOnlyItsSectionsKeys) {
  const Mapping m(kReader, mapping_field("name: a\ncount: 5\n"), kSection);
  ASSERT_TRUE(m.get("count").has_value());
  EXPECT_EQ(m.get("count")->key, "t.count");
  EXPECT_EQ(m.get("count")->line, 2);
  EXPECT_EQ(m.get("count")->spec, &kSection.key("count"));
  EXPECT_FALSE(m.get("colour").has_value());
  EXPECT_EQ(m.require("name").node.Scalar(), "a");

  EXPECT_EQ(error_of([] { Mapping(kReader, mapping_field("name: a\ncolor: red\n"), kSection); }),
            "unknown key (expected one of: count, colour, name, range)");
  // yaml-cpp 0.7 keeps both entries of a repeated key.
  EXPECT_EQ(error_of([] { Mapping(kReader, mapping_field("name: a\ncount: 3\ncount: 4\n"), kSection); }),
            "duplicate key (first on line 2)");
  EXPECT_EQ(error_of([] { Mapping(kReader, mapping_field("count: 3\n"), kSection).require("name"); }),
            "missing required key");
  EXPECT_EQ(error_of([] { Mapping(kReader, mapping_field("[1]"), kSection); }),
            "expected a mapping, got a list");
  // Asking for a key the section does not have is the loader's bug, not the file's.
  EXPECT_THROW(m.get("colours"), std::out_of_range);
}

TEST(YamlReader, ErrorsNameSourceKeyAndLine) {
  try {
    kReader.fail("a.b", 7, "bad");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "r.yaml:7: a.b: bad");
  }
  try {
    kReader.fail("", 0, "bad");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), kDocumentKey) << "the root has no key of its own";
  }
}

// yaml-cpp 0.7 loops forever, growing, on a stray ','; load_single_document
// answers with an error instead, and tells a real second document apart.
TEST(YamlReader, SingleDocument) {
  EXPECT_EQ(load_single_document("a: 1\n", "s").begin()->second.Scalar(), "1");
  const auto message = [](const std::string& text) {
    return error_of([&] { load_single_document(text, "s"); });
  };
  EXPECT_EQ(message(",\n"), "YAML syntax error: unexpected ',' outside a flow collection ([ ] or { })");
  EXPECT_EQ(message("a: 1\n---\nb: 2\n"), "more than one YAML document; expected exactly one");
  EXPECT_EQ(message("# nothing\n"), "empty document");
  EXPECT_EQ(message("a: [1\n").rfind("YAML syntax error: ", 0), 0u);
}

TEST(YamlReader, AddressScalars) {
  EXPECT_EQ(kReader.cidr(field("10.0.0.1/24")).prefix_len, 24);
  EXPECT_EQ(kReader.unicast_ipv4(field("10.0.0.1")), 0x0a000001u);
  EXPECT_EQ(error_of([] { kReader.unicast_ipv4(field("127.0.0.1")); }),
            "127.0.0.1 is not a usable unicast address");
  EXPECT_EQ(kReader.mac(field("\"02:00:00:00:00:01\"")), (std::array<uint8_t, 6>{2, 0, 0, 0, 0, 1}));
  EXPECT_EQ(kReader.listen_address(field("0.0.0.0:1")), "0.0.0.0:1");
  EXPECT_EQ(error_of([] { kReader.listen_address(field("1.2.3.4:01")); }).rfind("expected ADDR:PORT", 0), 0u);
  EXPECT_EQ(kReader.http_path(field("/h")), "/h");
  EXPECT_EQ(kReader.interface_name(field("eth0.5")), "eth0.5");
  EXPECT_EQ(error_of([] { kReader.interface_name(field("..")); }).rfind("expected an interface name", 0), 0u);
}

}  // namespace
}  // namespace l4lb::config
