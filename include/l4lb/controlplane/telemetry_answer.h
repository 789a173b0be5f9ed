// One answer of an l4lb telemetry command (control_api.h), built so that
// nothing is lost in silence. DPDK's telemetry drops JSON past its output
// buffer, and entries past RTE_TEL_MAX_DICT_ENTRIES, without a word if
// return codes go unread; here every rte_tel_data_add_* return code is
// checked and an upper bound of the JSON is kept, and an answer that hit a
// limit becomes {"error": why}, which l4lbctl reports and exits non-zero on.
#pragma once

#include <rte_telemetry.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace l4lb::controlplane {

// DPDK telemetry's output buffer (MAX_OUTPUT_LEN in lib/telemetry/telemetry.c,
// also reported as max_output_len by /info). We keep 128 bytes for the
// reply's wrapper {"/l4lb/command":...}.
inline constexpr size_t kTelemetryOutputBytes = 16 * 1024;
inline constexpr size_t kAnswerBudget = kTelemetryOutputBytes - 128;

// Upper bound of `text` as a JSON string: quotes, and escapes for the
// characters DPDK's writer may escape.
size_t json_string_bound(std::string_view text);

// A dict, with dict or string-array containers one level down (telemetry
// allows no deeper nesting). Used by whichever thread runs the callback
// (DPDK's telemetry thread), one answer per callback.
class TelemetryAnswer {
 public:
  explicit TelemetryAnswer(rte_tel_data* d);
  ~TelemetryAnswer();
  TelemetryAnswer(const TelemetryAnswer&) = delete;
  TelemetryAnswer& operator=(const TelemetryAnswer&) = delete;

  // A container for container(); freed here unless it is added. Null (and
  // the answer failed) when out of memory.
  rte_tel_data* dict();
  rte_tel_data* string_array();

  // Add to `to`, the answer itself when null.
  void u64(const std::string& name, uint64_t value, rte_tel_data* to = nullptr);
  void i64(const std::string& name, int64_t value, rte_tel_data* to = nullptr);  // telemetry's ints are C ints
  void str(const std::string& name, const std::string& value, rte_tel_data* to = nullptr);
  void array_string(rte_tel_data* array, const std::string& value);
  void container(const std::string& name, rte_tel_data* c);

  // Upper bound of the answer's JSON so far.
  size_t bytes() const { return bytes_; }
  bool failed() const { return !error_.empty(); }

  // The callback's return value. An answer that hit a limit becomes
  // {"error": why}, with the containers already added freed.
  int finish();

 private:
  rte_tel_data* make(int (*start)(rte_tel_data*));
  rte_tel_data* target(rte_tel_data* to) const { return to ? to : d_; }
  void count(rte_tel_data* to, const std::string& name, size_t value_bytes, int rc);
  void fail(const std::string& why);

  rte_tel_data* d_;
  size_t bytes_ = 2;
  std::map<rte_tel_data*, size_t> loose_;  // containers not yet added, with their bound
  std::vector<rte_tel_data*> added_;
  std::string error_;
};

}  // namespace l4lb::controlplane
