#include "l4lb/controlplane/telemetry_answer.h"

#include <cerrno>
#include <climits>

namespace l4lb::controlplane {

namespace {

std::string rc_text(int rc) {
  if (rc == -ENOSPC) return "more than " + std::to_string(RTE_TEL_MAX_DICT_ENTRIES) + " entries";
  if (rc == E2BIG) return "name or value too long";
  return "error " + std::to_string(rc);
}

int start_string_array(rte_tel_data* c) { return rte_tel_data_start_array(c, RTE_TEL_STRING_VAL); }

}  // namespace

size_t json_string_bound(std::string_view text) {
  size_t n = 2;
  for (const unsigned char c : text) n += c < 0x20 ? 6 : (c == '"' || c == '\\' || c == '/') ? 2 : 1;
  return n;
}

TelemetryAnswer::TelemetryAnswer(rte_tel_data* d) : d_(d) { rte_tel_data_start_dict(d_); }

TelemetryAnswer::~TelemetryAnswer() {
  for (auto& [c, bytes] : loose_) rte_tel_data_free(c);
}

rte_tel_data* TelemetryAnswer::dict() { return make(rte_tel_data_start_dict); }
rte_tel_data* TelemetryAnswer::string_array() { return make(start_string_array); }

void TelemetryAnswer::u64(const std::string& name, uint64_t value, rte_tel_data* to) {
  count(to, name, 20, rte_tel_data_add_dict_u64(target(to), name.c_str(), value));
}

void TelemetryAnswer::i64(const std::string& name, int64_t value, rte_tel_data* to) {
  if (value < INT_MIN || value > INT_MAX)
    return fail(name + ": " + std::to_string(value) + " is past a telemetry int");
  count(to, name, 11, rte_tel_data_add_dict_int(target(to), name.c_str(), static_cast<int>(value)));
}

void TelemetryAnswer::str(const std::string& name, const std::string& value, rte_tel_data* to) {
  if (value.size() >= RTE_TEL_MAX_STRING_LEN)
    return fail(name + ": " + std::to_string(value.size()) + " bytes, telemetry strings hold " +
                std::to_string(RTE_TEL_MAX_STRING_LEN - 1));
  count(to, name, json_string_bound(value), rte_tel_data_add_dict_string(target(to), name.c_str(), value.c_str()));
}

void TelemetryAnswer::array_string(rte_tel_data* array, const std::string& value) {
  if (value.size() >= RTE_TEL_MAX_STRING_LEN) return fail("a string of " + std::to_string(value.size()) + " bytes");
  const int rc = rte_tel_data_add_array_string(array, value.c_str());
  if (rc != 0) return fail("array entry: " + rc_text(rc));
  loose_[array] += json_string_bound(value) + 1;
}

void TelemetryAnswer::container(const std::string& name, rte_tel_data* c) {
  const auto it = loose_.find(c);
  if (it == loose_.end()) return fail(name + ": not a container of this answer");
  const size_t bytes = it->second;
  const int rc = rte_tel_data_add_dict_container(d_, name.c_str(), c, 0);
  if (rc != 0) return fail(name + ": " + rc_text(rc));  // still loose: freed by the destructor
  loose_.erase(it);
  added_.push_back(c);
  bytes_ += json_string_bound(name) + 2 + bytes;
}

int TelemetryAnswer::finish() {
  if (error_.empty() && bytes_ > kAnswerBudget)
    fail("answer of up to " + std::to_string(bytes_) + " bytes passes telemetry's " +
         std::to_string(kTelemetryOutputBytes));
  if (error_.empty()) return 0;
  for (rte_tel_data* c : added_) rte_tel_data_free(c);
  added_.clear();
  rte_tel_data_start_dict(d_);
  // Short by construction; nothing is left to report a failure to.
  const std::string text = ("telemetry limit: " + error_).substr(0, RTE_TEL_MAX_STRING_LEN - 1);
  rte_tel_data_add_dict_string(d_, "error", text.c_str());
  return 0;
}

rte_tel_data* TelemetryAnswer::make(int (*start)(rte_tel_data*)) {
  rte_tel_data* c = rte_tel_data_alloc();
  if (!c) {
    fail("out of memory");
    return nullptr;
  }
  start(c);
  loose_[c] = 2;
  return c;
}

void TelemetryAnswer::count(rte_tel_data* to, const std::string& name, size_t value_bytes, int rc) {
  if (rc != 0) return fail(name + ": " + rc_text(rc));
  const size_t bytes = json_string_bound(name) + 2 + value_bytes;
  if (to)
    loose_[to] += bytes;
  else
    bytes_ += bytes;
}

void TelemetryAnswer::fail(const std::string& why) {
  if (error_.empty()) error_ = why;  // the first one says where it started
}

}  // namespace l4lb::controlplane
