// Documents and a checker shared by the loader's tests
// (config_loader_test.cc, config_loader_errors_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "l4lb/config/config_loader.h"

namespace l4lb::config {

// Parses text that must be rejected and returns the error.
inline ConfigError expect_error(const std::string& yaml) {
  try {
    parse_config(yaml, "test.yaml");
  } catch (const ConfigError& e) {
    return e;
  } catch (...) {
    ADD_FAILURE() << "threw something other than ConfigError for:\n" << yaml;
    return ConfigError("test.yaml", "<wrong exception>", -1, "");
  }
  ADD_FAILURE() << "accepted:\n" << yaml;
  return ConfigError("test.yaml", "<accepted>", -1, "");
}

// Smallest valid document: lines 1-2.
inline const std::string kPorts = "ports:\n  - {name: p0, address: 10.0.0.1/24}\n";
// A VIP on lines 3-7; a case appends its own lines from line 8.
inline const std::string kVipHead =
    "vips:\n"
    "  - name: web\n"
    "    address: 10.0.0.100\n"
    "    port: 80\n"
    "    snat: [10.0.0.1]\n";
inline const std::string kBackends = "    backends: [{address: 10.0.0.21, port: 80}]\n";

}  // namespace l4lb::config
