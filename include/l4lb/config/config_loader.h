// YAML -> Config, with every key validated. Runs on the management core only.
#pragma once

#include <stdexcept>
#include <string>

#include "l4lb/common/address_text.h"
#include "l4lb/config/config.h"

namespace l4lb::config {

// A config that fails validation. what() reads
//   "<source>:<line>: <key>: <message>"
// where key is the dotted path (e.g. "vips[0].backends[1].port") and line is
// 1-based (0 when the whole document is at fault).
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string source, std::string key, int line, std::string message);
  const std::string& key() const { return key_; }
  int line() const { return line_; }
  const std::string& message() const { return message_; }

 private:
  std::string key_;
  int line_;
  std::string message_;
};

// Parses and validates YAML text. Throws ConfigError; never anything else.
Config parse_config(const std::string& yaml_text, const std::string& source_name = "<config>");

// Reads and parses a file. Throws ConfigError (also when the file cannot be read).
Config load_config_file(const std::string& path);

// "a.b.c.d" -> host-order address; false if not a dotted quad.
bool parse_ipv4(const std::string& text, uint32_t& out);
// Host-order address -> "a.b.c.d" (one formatter for every program).
using l4lb::format_ipv4;

}  // namespace l4lb::config
