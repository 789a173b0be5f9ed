// The run's report: a human summary and a JSON document (the contract
// tools/bench reads; keys are documented in pktgen/README.md). Slow path.
#pragma once

#include <cstdint>
#include <string>

#include "generator.h"
#include "options.h"

namespace l4lb::pktgen {

struct RunInfo {
  std::string port_name;
  Mac port_mac;
  uint64_t tsc_hz = 0;
};

std::string report_json(const Options& o, const RunInfo& info, const WarmupResult& w, const MeasureResult& m);
std::string report_text(const Options& o, const RunInfo& info, const WarmupResult& w, const MeasureResult& m);

}  // namespace l4lb::pktgen
