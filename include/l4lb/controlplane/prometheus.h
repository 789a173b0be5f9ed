// A writer for the Prometheus text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/), which is
// what the metrics endpoint serves (DESIGN §9 `metrics`). A plain value
// type: whichever thread owns an instance may use it (in l4lbd, the
// management core inside MetricsServer's render callback). Nothing here
// blocks or makes a system call; the only cost is string building.
//
// Usage, one family after another so each family's samples stay contiguous
// as the format requires:
//
//   PrometheusWriter w;
//   w.family("l4lb_rx_packets_total", "counter", "Packets received.");
//   w.sample("l4lb_rx_packets_total", {{"worker", "1"}}, rx1);
//   w.sample("l4lb_rx_packets_total", {{"worker", "2"}}, rx2);
//   std::string text = w.take();
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>

namespace l4lb::controlplane {

class PrometheusWriter {
 public:
  using Label = std::pair<std::string_view, std::string_view>;

  // Owner thread; never blocks. Starts a metric family: writes `# HELP`
  // and `# TYPE` the first time `name` is given; calling it again for the
  // family just written is a no-op (so per-item loops may call it each
  // time). Throws std::invalid_argument for an invalid metric name or a type
  // other than counter, gauge, untyped, histogram or summary, and
  // std::logic_error if `name` was started earlier and another family has
  // been started since (its samples would no longer be contiguous, which
  // scrapers reject).
  void family(std::string_view name, std::string_view type, std::string_view help);

  // Owner thread; never blocks. Writes one sample line
  // `name{label="value",...} value`. Label values may hold any bytes;
  // backslash, double quote and newline are escaped. Throws
  // std::invalid_argument for an invalid metric or label name, or a label
  // name given twice. Integers print exactly (a uint64_t never turns into an
  // exponent); doubles print in the shortest form that reads back exactly,
  // with NaN, +Inf and -Inf spelled as the format wants.
  void sample(std::string_view name, std::initializer_list<Label> labels, double value);
  template <std::integral T>
  void sample(std::string_view name, std::initializer_list<Label> labels, T value) {
    // A template so that plain `int` literals and every integer width pick
    // the exact integer path instead of being ambiguous with `double`.
    if constexpr (std::is_same_v<T, bool>) {
      sample_unsigned(name, labels, value ? 1u : 0u);
    } else if constexpr (std::is_signed_v<T>) {
      sample_signed(name, labels, static_cast<int64_t>(value));
    } else {
      sample_unsigned(name, labels, static_cast<uint64_t>(value));
    }
  }

  // Returns the text written so far and starts over (families may then be
  // declared again). Owner thread; never blocks, never throws.
  std::string take();

  // Name rules of the data model: metric [a-zA-Z_:][a-zA-Z0-9_:]*,
  // label [a-zA-Z_][a-zA-Z0-9_]*. Any thread; pure functions.
  static bool valid_metric_name(std::string_view name);
  static bool valid_label_name(std::string_view name);

 private:
  void sample_signed(std::string_view name, std::initializer_list<Label> labels, int64_t value);
  void sample_unsigned(std::string_view name, std::initializer_list<Label> labels, uint64_t value);
  // Writes `name{labels} ` and leaves the value to the caller.
  void begin_sample(std::string_view name, std::initializer_list<Label> labels);

  std::string out_;
  std::string current_family_;
  std::unordered_set<std::string> families_;  // every family started since take()
};

}  // namespace l4lb::controlplane
