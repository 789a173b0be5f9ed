// l4lbd's own command line (everything after "--"; DESIGN §8).
#pragma once

#include <string>
#include <vector>

namespace l4lb::daemon {

struct Options {
  std::string config_path;
  bool check_only = false;
  bool help = false;
};

// Throws std::invalid_argument with a message for unknown or malformed options.
Options parse_options(const std::vector<std::string>& app_args);

std::string usage(const std::string& program);

}  // namespace l4lb::daemon
