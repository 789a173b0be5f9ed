#include "report.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>

#include "port.h"

namespace l4lb::pktgen {

namespace {

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

double ns_of(uint64_t cycles, uint64_t hz) {
  return static_cast<double>(cycles) * 1e9 / static_cast<double>(hz);
}

double rate(uint64_t n, double seconds) {
  return seconds > 0 ? static_cast<double>(n) / seconds : 0.0;
}

// What the loss is counted against: everything we sent should end its trip
// here, back at a client (or as the forwarded copy when we do not answer).
struct Derived {
  uint64_t expected = 0;
  uint64_t back = 0;
  uint64_t lost = 0;
  double loss_ratio = 0.0;
  uint64_t dut_packets = 0;  // what the DUT delivered to us: forwarded + returned
};

Derived derive(const Options& o, const MeasureResult& m) {
  Derived d;
  const auto& c = m.counters;
  d.dut_packets = c.forwarded + c.returned;
  if (o.mode == Mode::kReverse) return d;
  d.expected = c.tx;
  d.back = c.ended;
  if (o.mode == Mode::kChurn) {
    // Both ends are ours: every packet either end sent (SYNs count as tx,
    // every later step as an answer) should come back through the DUT once.
    d.expected = c.tx + c.answered;
    d.back = c.forwarded + c.returned;
  }
  d.lost = d.expected > d.back ? d.expected - d.back : 0;
  d.loss_ratio = d.expected ? static_cast<double>(d.lost) / static_cast<double>(d.expected) : 0.0;
  return d;
}

std::string latency_json(const LatencyHistogram& h, uint64_t hz) {
  return fmt("{\"samples\": %" PRIu64
             ", \"min\": %.0f, \"mean\": %.0f, \"p50\": %.0f, \"p99\": %.0f, "
             "\"p999\": %.0f, \"max\": %.0f}",
             h.count(), ns_of(h.min(), hz), h.count() ? h.mean() * 1e9 / static_cast<double>(hz) : 0.0,
             ns_of(h.quantile(0.50), hz), ns_of(h.quantile(0.99), hz), ns_of(h.quantile(0.999), hz),
             ns_of(h.max(), hz));
}

std::string latency_text(const LatencyHistogram& h, uint64_t hz) {
  if (!h.count()) return "no samples";
  return fmt("p50 %.0f ns, p99 %.0f ns, p999 %.0f ns (min %.0f, max %.0f, %" PRIu64 " samples)",
             ns_of(h.quantile(0.50), hz), ns_of(h.quantile(0.99), hz), ns_of(h.quantile(0.999), hz),
             ns_of(h.min(), hz), ns_of(h.max(), hz), h.count());
}

}  // namespace

std::string report_json(const Options& o, const RunInfo& info, const WarmupResult& w,
                        const MeasureResult& m) {
  const auto& c = m.counters;
  const Derived d = derive(o, m);
  std::string vips;
  for (const auto& v : o.vips)
    vips += (vips.empty() ? "\"" : ", \"") + format_ipv4_wire(v.ip) + ":" + std::to_string(ntohs(v.port)) + "\"";
  std::string s = "{\n";
  s += "  \"tool\": \"l4lb-pktgen\", \"report_version\": 1,\n";
  s += fmt(
      "  \"mode\": \"%s\", \"from_backend\": %s, \"proto\": \"%s\", \"pattern\": \"%s\", \"zipf_s\": %.3f,\n",
      mode_name(o.mode), o.from_backend ? "true" : "false", o.proto == kProtoTcp ? "tcp" : "udp",
      o.pattern == Pattern::kZipf ? "zipf" : "rr", o.zipf_s);
  s += fmt("  \"flows\": %" PRIu64 ", \"vips\": [%s], \"frame_len\": %u, \"vlan\": %u,\n", o.flows,
           vips.c_str(), o.frame_len, o.vlan);
  s += fmt("  \"rate_limit_pps\": %" PRIu64 ", \"window\": %" PRIu64
           ", \"duration_s\": %.3f, \"count\": %" PRIu64 ", \"answer\": %s,\n",
           o.rate_pps, o.window, o.duration_s, o.count, o.answer ? "true" : "false");
  s += fmt("  \"port\": \"%s\", \"port_mac\": \"%s\", \"queues\": %u, \"tsc_hz\": %" PRIu64 ",\n",
           info.port_name.c_str(), format_mac(info.port_mac.bytes).c_str(), o.queues, info.tsc_hz);
  s +=
      fmt("  \"warmup\": {\"ran\": %s, \"flows\": %" PRIu64 ", \"opened\": %" PRIu64 ", \"learned\": %" PRIu64
          ", \"passes\": %u, \"seconds\": %.3f, \"tx_packets\": %" PRIu64 ", \"returned\": %" PRIu64 "},\n",
          w.ran ? "true" : "false", w.flows, w.opened, w.learned, w.passes, w.seconds, w.counters.tx,
          w.counters.returned);
  s += "  \"measure\": {\n";
  s += fmt("    \"send_seconds\": %.6f, \"rx_seconds\": %.6f, \"stopped_early\": %s,\n", m.send_seconds,
           m.rx_seconds, m.stopped_early ? "true" : "false");
  s += fmt("    \"tx_packets\": %" PRIu64 ", \"answered\": %" PRIu64 ", \"answer_drops\": %" PRIu64
           ", \"rx_packets\": %" PRIu64 ",\n",
           c.tx, c.answered, c.answer_drops, c.rx);
  s += fmt("    \"forwarded\": %" PRIu64 ", \"returned\": %" PRIu64 ", \"late\": %" PRIu64
           ", \"other\": %" PRIu64 ", \"alloc_failures\": %" PRIu64 ", \"unsent\": %" PRIu64
           ", \"skipped\": %" PRIu64 ", \"new_wrapped\": %" PRIu64 ",\n",
           c.forwarded, c.returned, c.late, c.other, c.alloc_failures, m.unsent, m.skipped, m.new_wrapped);
  s += fmt("    \"tx_pps\": %.0f, \"dut_pps\": %.0f, \"forwarded_pps\": %.0f, \"returned_pps\": %.0f,\n",
           rate(c.tx, m.send_seconds), rate(d.dut_packets, m.rx_seconds), rate(c.forwarded, m.rx_seconds),
           rate(c.returned, m.rx_seconds));
  s += fmt("    \"expected_back\": %" PRIu64 ", \"back\": %" PRIu64 ", \"lost\": %" PRIu64
           ", \"loss_ratio\": %.9f,\n",
           d.expected, d.back, d.lost, d.loss_ratio);
  s += "    \"latency_ns\": " + latency_json(m.rtt, info.tsc_hz) + ",\n";
  s += "    \"backend_latency_ns\": " + latency_json(m.backend, info.tsc_hz);
  if (o.mode == Mode::kChurn) {
    const ChurnResult& k = m.churn;
    std::string per_second;
    for (const uint64_t n : k.per_second)
      per_second += (per_second.empty() ? "" : ", ") + std::to_string(n);
    s += ",\n    \"churn\": {";
    s += fmt("\"close_first\": \"%s\", \"in_flight\": %u, \"in_flight_peak\": %u, \"conn_timeout_s\": %.3f,\n",
             o.backend_closes_first ? "backend" : "client", o.in_flight, k.in_flight_peak, o.conn_timeout_s);
    s += fmt("      \"opened\": %" PRIu64 ", \"completed\": %" PRIu64 ", \"completed_in_window\": %" PRIu64
             ", \"failed\": %" PRIu64 ", \"stale\": %" PRIu64 ", \"unexpected\": %" PRIu64 ",\n",
             k.opened, k.completed, k.completed_in_window, k.failed, k.stale, k.unexpected);
    s += fmt("      \"client_packets\": %" PRIu64 ", \"backend_packets\": %" PRIu64
             ", \"conns_per_s\": %.0f, \"opened_per_s\": %.0f,\n",
             k.client_packets, k.backend_packets, rate(k.completed_in_window, m.send_seconds),
             rate(k.opened, m.send_seconds));
    s += "      \"completed_per_second\": [" + per_second + "]}";
  }
  s += "\n  }\n}\n";
  return s;
}

std::string report_text(const Options& o, const RunInfo& info, const WarmupResult& w,
                        const MeasureResult& m) {
  const auto& c = m.counters;
  const Derived d = derive(o, m);
  std::string s;
  if (o.mode == Mode::kReverse)
    s += fmt("l4lb-pktgen: reverse (answering as a backend), port %s (%s)\n", info.port_name.c_str(),
             format_mac(info.port_mac.bytes).c_str());
  else
    s += fmt("l4lb-pktgen: %s%s %s, %" PRIu64 " flows, %u-byte frames, rate %s, window %s, port %s (%s)\n",
             mode_name(o.mode), o.from_backend ? " (from the backend side)" : "",
             o.proto == kProtoTcp ? "tcp" : "udp", o.flows, o.frame_len,
             o.rate_pps ? fmt("%.3f Mpps", static_cast<double>(o.rate_pps) / 1e6).c_str() : "unlimited",
             o.window ? std::to_string(o.window).c_str() : "none", info.port_name.c_str(),
             format_mac(info.port_mac.bytes).c_str());
  if (w.ran)
    s += fmt("  warm-up:   %" PRIu64 "/%" PRIu64 " flows opened%s in %u pass(es), %.2f s\n", w.opened,
             w.flows, o.from_backend ? fmt(", %" PRIu64 " NAT tuples learned", w.learned).c_str() : "",
             w.passes, w.seconds);
  s += fmt("  sent:      %" PRIu64 " packets in %.3f s = %.3f Mpps (answers as backend: %" PRIu64
           ", dropped %" PRIu64 ")\n",
           c.tx, m.send_seconds, rate(c.tx, m.send_seconds) / 1e6, c.answered, c.answer_drops);
  s += fmt("  received:  %" PRIu64 " from the DUT in %.3f s = %.3f Mpps (to backends %" PRIu64
           ", to clients %" PRIu64 ", other %" PRIu64 ")\n",
           d.dut_packets, m.rx_seconds, rate(d.dut_packets, m.rx_seconds) / 1e6, c.forwarded, c.returned,
           c.other);
  if (o.mode != Mode::kReverse)
    s += fmt("  loss:      %" PRIu64 " of %" PRIu64 " (%.6f %%)%s\n", d.lost, d.expected,
             d.loss_ratio * 100.0, m.stopped_early ? " [stopped early]" : "");
  if (o.mode == Mode::kChurn) {
    const ChurnResult& k = m.churn;
    s += fmt("  conns:     %" PRIu64 " completed in the %.3f s window = %.0f /s (%s closes first, %u in "
             "flight at most); opened %" PRIu64 ", completed %" PRIu64 ", failed %" PRIu64 " (stale packets %" PRIu64
             ", unexpected %" PRIu64 ")\n",
             k.completed_in_window, m.send_seconds, rate(k.completed_in_window, m.send_seconds),
             o.backend_closes_first ? "backend" : "client", o.in_flight, k.opened, k.completed, k.failed, k.stale,
             k.unexpected);
    s += "  conn time: " + latency_text(m.rtt, info.tsc_hz) + "  (SYN sent -> last packet back)\n";
    return s;
  }
  s += "  latency:   " + latency_text(m.rtt, info.tsc_hz) + "  (to a client: the whole loop)\n";
  s += "  to backend: " + latency_text(m.backend, info.tsc_hz) + "\n";
  return s;
}

}  // namespace l4lb::pktgen
