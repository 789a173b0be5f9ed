// YAML documents at, and one entry past, the data plane's lifetime id limits
// (common/limits.h), counted the way controlplane/snapshot_builder assigns
// ids. Used by the loader's tests (tests/unit/config) and by the test that
// the snapshot builder builds exactly what the loader accepts
// (tests/unit/controlplane/snapshot_limits_test.cc).
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace l4lb::test {

struct LimitDoc {
  std::string yaml;
  std::string last_key;  // key path and line of the last entry counted
  int last_line = 0;
};

// A document assembled line by line, so each entry knows its 1-based line.
class LimitDocWriter {
 public:
  int add(const std::string& line) {
    doc_.yaml += line + "\n";
    return ++lines_;
  }
  void mark_last(const std::string& key, int line) {
    doc_.last_key = key;
    doc_.last_line = line;
  }
  // The pool limit is raised so that only the id limits bite; it goes last
  // so the entries keep their lines.
  LimitDoc take() {
    add("dataplane: {snat_pools_per_worker: 65535}");
    return std::move(doc_);
  }

 private:
  LimitDoc doc_;
  int lines_ = 0;
};

// Distinct unicast addresses "10.<net>.x.y" for n = 0, 1, ... (up to 50000).
inline std::string limit_address(int net, uint32_t n) {
  return "10." + std::to_string(net) + "." + std::to_string(n / 200) + "." + std::to_string(n % 200 + 1);
}

// The appliance's port: lines 1-2.
inline void limit_ports(LimitDocWriter& w) {
  w.add("ports:");
  w.add("  - {name: p0, address: 10.0.0.1/24}");
}

// `count` VIPs, one line each, each with one backend of its own.
inline LimitDoc vips_doc(uint32_t count) {
  LimitDocWriter w;
  limit_ports(w);
  w.add("vips:");
  for (uint32_t i = 0; i < count; ++i) {
    const int line =
        w.add("  - {name: v" + std::to_string(i) + ", address: " + limit_address(1, i) +
              ", port: 80, snat: 10.0.0.1, table_size: 7, backends: [{address: " + limit_address(2, i) +
              ", port: 80}]}");
    w.mark_last("vips[" + std::to_string(i) + "]", line);
  }
  return w.take();
}

// `count` (>= 2) backends in total over two VIPs: the second lists the same
// address:port backends as the first (one id each per VIP), and any extra
// after them. One backend per line.
inline LimitDoc backends_doc(uint32_t count) {
  LimitDocWriter w;
  limit_ports(w);
  w.add("vips:");
  const uint32_t first = count / 2;
  for (uint32_t v = 0; v < 2; ++v) {
    w.add("  - name: web" + std::to_string(v));
    w.add("    address: 10.0.0." + std::to_string(100 + v));
    w.add("    port: 80");
    w.add("    snat: [10.0.0.1]");
    w.add("    backends:");
    const uint32_t n = v == 0 ? first : count - first;
    for (uint32_t i = 0; i < n; ++i) {
      const int line = w.add("      - {address: " + limit_address(2, i) + ", port: 8080}");
      w.mark_last("vips[" + std::to_string(v) + "].backends[" + std::to_string(i) + "]", line);
    }
  }
  return w.take();
}

// `count` (>= 40) distinct snat addresses over two VIPs: the first lists
// addresses 0..39, the second shares 20..39 (no new slot) and adds 40.. up
// to count - 1. One address per line.
inline LimitDoc snat_doc(uint32_t count) {
  LimitDocWriter w;
  limit_ports(w);
  w.add("vips:");
  for (uint32_t v = 0; v < 2; ++v) {
    w.add("  - name: web" + std::to_string(v));
    w.add("    address: 10.0.0." + std::to_string(100 + v));
    w.add("    port: 80");
    w.add("    backends: [{address: 10.0.0.21, port: 80}]");
    w.add("    snat:");
    const uint32_t from = v == 0 ? 0 : 20, to = v == 0 ? 40 : count;
    for (uint32_t n = from; n < to; ++n) {
      const int line = w.add("      - " + limit_address(3, n));
      w.mark_last("vips[" + std::to_string(v) + "].snat[" + std::to_string(n - from) + "]", line);
    }
  }
  return w.take();
}

}  // namespace l4lb::test
