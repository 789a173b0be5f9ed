#include "l4lb/controlplane/control_api.h"

#include <rte_telemetry.h>

#include <arpa/inet.h>

#include <cstdlib>
#include <chrono>
#include <ctime>
#include <string_view>
#include <thread>

#include "l4lb/common/address_text.h"
#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/telemetry_answer.h"

namespace l4lb::controlplane {

namespace {

std::atomic<const ControlState*> g_state{nullptr};
// Commands running on the telemetry thread. Each counts itself in, behind a
// full fence, before it loads g_state, so once install_control_api has
// stored nullptr and then seen this at zero, no command still reads the old
// state: the workers and the ControlState may then go (l4lbd's shutdown).
std::atomic<int> g_commands_running{0};

template <int (*Command)(const char*, const char*, rte_tel_data*)>
int counted(const char* cmd, const char* params, rte_tel_data* d) {
  g_commands_running.fetch_add(1);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const int rc = Command(cmd, params, d);
  g_commands_running.fetch_sub(1);
  return rc;
}

// One worker's or the total counters of the stats view, flat: telemetry
// allows one level of nesting, so drop reasons become drop_REASON.
void write_counters(TelemetryAnswer& a, rte_tel_data* d, const CounterSums& c, size_t workers) {
  a.u64("rx_packets", c.rx_packets, d);
  a.u64("tx_packets", c.tx_packets, d);
  a.u64("forward_packets", c.forward_packets, d);
  a.u64("reverse_packets", c.reverse_packets, d);
  a.u64("slow_path_packets", c.slow_path_packets, d);
  a.u64("control_packets", c.control_packets, d);
  a.u64("injected_packets", c.injected_packets, d);
  a.u64("flows_created", c.flows_created, d);
  a.u64("flows_expired", c.flows_expired, d);
  a.u64("flows_closed", c.flows_closed, d);
  a.u64("flows_active", c.flows_active, d);
  a.u64("flows_reset", c.flows_reset, d);
  a.u64("flows_evicted", c.flows_evicted, d);
  a.u64("flows_evicted_for_port", c.flows_evicted_for_port, d);
  a.u64("flows_embryonic", c.flows_embryonic, d);  // unconfirmed, any state
  for (size_t st = 1; st < c.flows_by_state.size(); ++st)
    a.u64(std::string("flows_") + dataplane::kFlowStateNames[st], c.flows_by_state[st], d);
  a.u64("closed_port_rejects", c.closed_port_rejects, d);
  a.u64("redirected_packets", c.redirected_packets, d);
  a.u64("stateless_reverse_packets", c.stateless_reverse_packets, d);
  a.u64("icmp_errors_translated", c.icmp_errors_translated, d);
  a.u64("fragment_datagrams", c.fragment_datagrams, d);
  a.u64("fragments_followed", c.fragments_followed, d);
  a.u64("fragments_held", c.fragments_held, d);
  a.u64("handoffs_in", c.handoffs_in, d);
  uint64_t out = 0;
  for (size_t w = 0; w < workers; ++w) out += c.handoffs_out[w];
  a.u64("handoffs_out", out, d);
  for (size_t w = 0; w < workers; ++w) a.u64("handoff_to_" + std::to_string(w), c.handoffs_out[w], d);
  for (size_t i = 0; i < c.drops.size(); ++i)
    a.u64(std::string("drop_") + dataplane::kDropReasonNames[i], c.drops[i], d);
}

int stats_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  const StatsView view = gather_stats(worker_sources(s->workers));
  TelemetryAnswer a(d);
  a.i64("workers", static_cast<int64_t>(view.workers.size()));
  for (const WorkerStats& w : view.workers) {
    rte_tel_data* c = a.dict();
    if (!c) break;
    write_counters(a, c, w.counters, view.workers.size());
    a.container("worker" + std::to_string(w.index), c);
  }
  if (rte_tel_data* c = a.dict()) {
    write_counters(a, c, view.total, view.workers.size());
    a.container("total", c);
  }
  return a.finish();
}

int status_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  TelemetryAnswer a(d);
  a.str("version", s->version);
  a.str("config", s->config_path);
  a.u64("uptime_s", static_cast<uint64_t>(std::time(nullptr)) - s->start_time_s);
  a.i64("workers", static_cast<int64_t>(s->workers.size()));
  a.u64("snapshot_generation", s->snapshot_generation.load());
  a.u64("vips", s->vip_count.load());
  a.u64("backends", s->backend_count.load());
  a.u64("backends_resolved", s->backends_resolved.load());
  a.u64("exception_to_kernel", s->exception_to_kernel.load());
  a.u64("exception_from_kernel", s->exception_from_kernel.load());
  a.u64("mbufs_in_use", s->mbufs_in_use.load());
  a.u64("mbufs_total", s->mbufs_total.load());
  a.u64("port_rx_packets", s->port_rx_packets.load());
  a.u64("port_tx_packets", s->port_tx_packets.load());
  a.u64("port_rx_missed", s->port_rx_missed.load());
  a.u64("port_rx_nombuf", s->port_rx_nombuf.load());
  a.u64("port_rx_errors", s->port_rx_errors.load());
  a.u64("port_tx_errors", s->port_tx_errors.load());
  uint64_t active = 0;  // the one counter wanted: no whole stats view
  for (const auto* w : s->workers) active += w->counters().flows_active.get();
  a.u64("flows_active", active);
  a.u64("draining", s->draining.load());
  if (s->draining.load()) {
    a.u64("drain_flows_left", s->drain_flows_left.load());
    a.u64("drain_seconds_left", s->drain_seconds_left.load());
  }
  a.u64("bgp", s->bgp_enabled.load());
  if (s->bgp_enabled.load()) {
    a.u64("routes_wanted", s->routes_wanted.load());
    a.u64("routes_announced", s->routes_announced.load());
    a.u64("routes_in_sync", s->routes_in_sync.load());
  }
  return a.finish();
}

const dataplane::Worker* worker_param(const ControlState* s, const char* params, uint32_t& start) {
  if (!params || !*params) return nullptr;
  char* end = nullptr;
  const unsigned long w = std::strtoul(params, &end, 10);
  start = 0;
  if (end && *end == ',') start = static_cast<uint32_t>(std::strtoul(end + 1, nullptr, 10));
  return w < s->workers.size() ? s->workers[w] : nullptr;
}

// Flow tables are read without stopping the workers: the figures are a
// moment's snapshot, and an entry being rewritten may show half-updated.
int flows_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  TelemetryAnswer a(d);
  a.i64("workers", static_cast<int64_t>(s->workers.size()));
  for (const auto* w : s->workers) {
    uint64_t per_state[static_cast<size_t>(dataplane::FlowState::kCount)] = {};
    const auto& table = w->flows();
    for (uint32_t i = 0; i < table.capacity(); ++i) ++per_state[static_cast<size_t>(table.entry(i).state)];
    rte_tel_data* c = a.dict();
    if (!c) break;
    a.u64("capacity", table.capacity(), c);
    a.u64("active", table.active(), c);
    for (size_t st = 1; st < std::size(per_state); ++st)
      a.u64(dataplane::kFlowStateNames[st], per_state[st], c);
    a.container("worker" + std::to_string(w->index()), c);
  }
  return a.finish();
}

// Flow entries hold wire-order addresses and ports.
std::string endpoint(uint32_t ip_be, uint16_t port_be) { return format_endpoint(ntohl(ip_be), ntohs(port_be)); }

// /l4lb/flow_list,WORKER[,START]: up to kFlowListPage flows from entry START
// on, fewer if they would not fit telemetry's output; "next" is where the
// following page starts (-1 at the end).
int flow_list_cb(const char*, const char* params, rte_tel_data* d) {
  constexpr int kFlowListPage = 100;
  constexpr size_t kFooterBytes = 64;  // ,"next":N and the list's own name
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  uint32_t start = 0;
  const dataplane::Worker* w = worker_param(s, params, start);
  if (!w) return -EINVAL;
  TelemetryAnswer a(d);
  a.i64("worker", static_cast<int64_t>(w->index()));
  rte_tel_data* list = a.string_array();
  if (!list) return a.finish();
  const auto& table = w->flows();
  int count = 0;
  size_t list_bytes = 2;
  uint32_t i = start;
  for (; i < table.capacity() && count < kFlowListPage; ++i) {
    const dataplane::FlowEntry e = table.entry(i);
    if (e.state == dataplane::FlowState::kFree) continue;
    const std::string line = std::string(e.proto == dataplane::kProtoTcp ? "tcp " : "udp ") +
                             endpoint(e.client_ip, e.client_port) + " " + endpoint(e.vip_ip, e.vip_port) + " " +
                             endpoint(e.snat_ip, e.snat_port) + " " + endpoint(e.backend_ip, e.backend_port) + " " +
                             dataplane::kFlowStateNames[static_cast<size_t>(e.state)];
    const size_t line_bytes = json_string_bound(line) + 1;
    if (count > 0 && a.bytes() + list_bytes + line_bytes + kFooterBytes > kAnswerBudget) break;  // next page
    a.array_string(list, line);
    list_bytes += line_bytes;
    ++count;
  }
  a.container("flows", list);
  a.i64("next", i < table.capacity() ? static_cast<int64_t>(i) : -1);
  return a.finish();
}

// Splits "a,b,c" (telemetry passes everything after the first comma).
std::vector<std::string> split_params(const char* params) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = params ? params : ""; *p; ++p) {
    if (*p == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += *p;
    }
  }
  if (params && *params) out.push_back(cur);
  return out;
}

constexpr auto kMgmtTimeout = std::chrono::milliseconds(5000);

// Runs `job` on the management core; false if it did not answer in time.
template <typename Job>
bool on_mgmt(const ControlState* s, Job job) {
  return s->queue && s->queue->call(std::move(job), kMgmtTimeout);
}

// Telemetry strings hold at most RTE_TEL_MAX_STRING_LEN - 1 bytes, and an
// error must reach the operator whole (it names the key and line), so it
// goes out as an array of pieces that l4lbctl joins.
int write_result(rte_tel_data* d, bool answered, const std::string& error) {
  TelemetryAnswer a(d);
  const bool ok = answered && error.empty();
  a.i64("ok", ok ? 1 : 0);
  const std::string text = answered ? error : "the management core did not answer within 5 s";
  if (rte_tel_data* pieces = a.string_array()) {
    constexpr size_t kPiece = RTE_TEL_MAX_STRING_LEN - 1;
    for (size_t at = 0; at < text.size(); at += kPiece) a.array_string(pieces, text.substr(at, kPiece));
    a.container("error", pieces);
  }
  return a.finish();
}

// Upper bound of a row's JSON as a dict: {"name":value,...}.
size_t row_bytes(const ControlRow& row) {
  size_t n = 2;
  for (const auto& [name, value] : row) {
    n += json_string_bound(name) + 2;
    if (const auto* text = std::get_if<std::string>(&value))
      n += json_string_bound(*text);
    else
      n += 20;
  }
  return n;
}

// The most rows a page may hold: a dict's entries, less "rows" and "next".
constexpr size_t kMaxRowsPerPage = RTE_TEL_MAX_DICT_ENTRIES - 2;

// A page of a table (DESIGN §8): rows keyed by their row number ("0", "1",
// ...: this DPDK's telemetry renders dict containers inside a dict, not
// inside an array), as many from page.rows as fit telemetry's output, then
// "rows" (the table's total) and "next" (the row the next page starts at,
// -1 after the last). A single row too big for an answer is an error.
int write_row_page(rte_tel_data* d, const ControlRowPage& page, size_t start) {
  constexpr size_t kFooterBytes = 64;  // ,"rows":N,"next":N
  TelemetryAnswer a(d);
  size_t taken = 0;
  for (const ControlRow& row : page.rows) {
    const std::string key = std::to_string(start + taken);
    if (taken > 0 && a.bytes() + json_string_bound(key) + 2 + row_bytes(row) + kFooterBytes > kAnswerBudget)
      break;
    rte_tel_data* c = a.dict();
    if (!c) break;
    for (const auto& [name, value] : row) {
      if (const auto* u = std::get_if<uint64_t>(&value))
        a.u64(name, *u, c);
      else if (const auto* i = std::get_if<int64_t>(&value))
        a.i64(name, *i, c);
      else
        a.str(name, std::get<std::string>(value), c);
    }
    a.container(key, c);
    ++taken;
  }
  a.u64("rows", page.total);
  const size_t next = start + taken;
  a.i64("next", next < page.total ? static_cast<int64_t>(next) : -1);
  return a.finish();
}

// START of a page: digits only, "" = 0; false if malformed.
bool parse_start(std::string_view text, size_t& start) {
  start = 0;
  if (text.empty()) return true;
  if (text.size() > 9 || text.find_first_not_of("0123456789") != std::string_view::npos) return false;
  start = std::stoul(std::string(text));
  return true;
}

int reload_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  auto error = std::make_shared<std::string>();
  const auto reload = s->hooks.reload;
  const bool answered = on_mgmt(s, [reload, error] { *error = reload(); });
  return write_result(d, answered, *error);
}

// /l4lb/backend,VERB,VIP,ADDR:PORT[,WEIGHT]
int backend_cb(const char*, const char* params, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  const auto p = split_params(params);
  if (p.size() < 3 || p.size() > 4) return -EINVAL;
  uint32_t weight = 0;
  if (p[0] == "set-weight") {
    if (p.size() != 4 || p[3].empty() || p[3].find_first_not_of("0123456789") != std::string::npos ||
        p[3].size() > 5 || std::stoul(p[3]) > 65535)
      return -EINVAL;
    weight = static_cast<uint32_t>(std::stoul(p[3]));
  } else if (p.size() != 3) {
    return -EINVAL;
  }
  auto error = std::make_shared<std::string>();
  const auto admin = s->hooks.backend_admin;
  const bool answered = on_mgmt(s, [admin, error, p, weight] { *error = admin(p[0], p[1], p[2], weight); });
  return write_result(d, answered, *error);
}

// /l4lb/vips[,START]
// A table the management core answers a page at a time, its rows made by
// the hook `Rows`: /l4lb/vips, /l4lb/routes. Parameters: [START].
template <std::function<ControlRowPage(size_t, size_t)> ControlHooks::*Rows>
int table_cb(const char*, const char* params, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  size_t start = 0;
  if (!parse_start(params ? params : "", start)) return -EINVAL;
  auto page = std::make_shared<ControlRowPage>();
  const auto rows = s->hooks.*Rows;
  if (!on_mgmt(s, [rows, page, start] { *page = rows(start, kMaxRowsPerPage); })) return -ETIMEDOUT;
  return write_row_page(d, *page, start);
}


// /l4lb/drain[,SECONDS]
int drain_cb(const char*, const char* params, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  const std::string text = params ? params : "";
  if (text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) return -EINVAL;
  const uint32_t seconds = text.empty() ? 0 : static_cast<uint32_t>(std::stoul(text));
  if (seconds > 86400) return -EINVAL;
  auto error = std::make_shared<std::string>();
  const auto drain = s->hooks.drain;
  const bool answered = on_mgmt(s, [drain, error, seconds] { *error = drain(seconds); });
  return write_result(d, answered, *error);
}

int snat_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  std::vector<ControlRow> rows;
  const StatsView view = gather_stats(worker_sources(s->workers));
  for (uint32_t slot = 0; slot < kMaxSnatAddresses; ++slot) {
    const uint32_t address = s->snat_address_by_slot[slot].load(std::memory_order_relaxed);
    if (!address) continue;
    const SnatUsage& u = view.snat[slot];
    rows.push_back({{"address", format_ipv4(ntohl(address))},
                    {"pools", u.pools},
                    {"ports", u.ports},
                    {"in_use", u.in_use},
                    {"free", u.free()}});
  }
  // At most kMaxSnatAddresses (64) small rows: one page always holds them,
  // and write_row_page says so loudly if that ever stops being true.
  const size_t total = rows.size();
  return write_row_page(d, ControlRowPage{std::move(rows), total}, 0);
}

// /l4lb/backends[,VIP] and /l4lb/backends,VIP,START (VIP may be empty: all
// VIPs). START follows the last comma, so a VIP name may hold commas.
int backends_cb(const char*, const char* params, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  const std::string_view p = params ? params : "";
  const size_t comma = p.rfind(',');
  const std::string vip(comma == std::string_view::npos ? p : p.substr(0, comma));
  size_t start = 0;
  if (comma != std::string_view::npos && (comma + 1 == p.size() || !parse_start(p.substr(comma + 1), start)))
    return -EINVAL;
  auto page = std::make_shared<ControlRowPage>();
  const auto backends = s->hooks.backends;
  if (!on_mgmt(s, [backends, page, vip, start] { *page = backends(vip, start, kMaxRowsPerPage); }))
    return -ETIMEDOUT;
  return write_row_page(d, *page, start);
}

}  // namespace

std::vector<WorkerSource> worker_sources(const std::vector<const dataplane::Worker*>& workers) {
  std::vector<WorkerSource> out;
  out.reserve(workers.size());
  for (const auto* w : workers) out.push_back({w->index(), &w->counters(), w->snat_pools().slice()});
  return out;
}

void install_control_api(const ControlState* state) {
  static bool registered = false;
  g_state.store(state);
  if (!state) {
    while (g_commands_running.load() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return;
  }
  if (registered) return;
  registered = true;
  rte_telemetry_register_cmd("/l4lb/status", counted<status_cb>, "Appliance status. No parameters");
  rte_telemetry_register_cmd("/l4lb/stats", counted<stats_cb>,
                             "Per-worker and total packet, flow and drop counters. No parameters");
  rte_telemetry_register_cmd("/l4lb/reload", counted<reload_cb>, "Re-read the config file. Returns ok and error");
  rte_telemetry_register_cmd("/l4lb/backend", counted<backend_cb>,
                             "Operator override. Parameters: set-weight|drain|enable,VIP,ADDR:PORT[,WEIGHT]");
  rte_telemetry_register_cmd("/l4lb/vips", counted<table_cb<&ControlHooks::vips>>, "VIPs with their counters, paged. Parameters: [START]");
  rte_telemetry_register_cmd("/l4lb/backends", counted<backends_cb>, "Backends, paged. Parameters: [VIP][,START]");
  rte_telemetry_register_cmd("/l4lb/routes", counted<table_cb<&ControlHooks::routes>>,
                             "Routes announced through BIRD, and why others are not, paged. Parameters: [START]");
  rte_telemetry_register_cmd("/l4lb/drain", counted<drain_cb>,
                             "Withdraw the VIP routes, drain the flows, then exit. Parameters: [SECONDS]");
  rte_telemetry_register_cmd("/l4lb/snat", counted<snat_cb>,
                             "Per SNAT address: pools (one per backend), ports, in use, free. No parameters");
  rte_telemetry_register_cmd("/l4lb/flows", counted<flows_cb>, "Flow table occupancy per worker and state. No parameters");
  rte_telemetry_register_cmd("/l4lb/flow_list", counted<flow_list_cb>,
                             "Flows of one worker: client vip snat backend state. Parameters: worker[,start]");
}

}  // namespace l4lb::controlplane
