#include "l4lb/controlplane/control_api.h"

#include <rte_telemetry.h>

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <chrono>
#include <ctime>
#include <thread>

#include "l4lb/config/config_loader.h"

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

struct Totals {
  uint64_t rx = 0, tx = 0, fwd = 0, rev = 0, slow = 0, injected = 0;
  uint64_t created = 0, expired = 0, closed = 0, active = 0, handoffs_in = 0;
  uint64_t reset = 0, evicted = 0, evicted_for_port = 0, embryonic = 0, control = 0, rejects = 0;
  uint64_t by_state[static_cast<size_t>(dataplane::FlowState::kCount)] = {};
  uint64_t handoffs_out[dataplane::kMaxWorkers] = {};
  uint32_t workers = 0;
  uint64_t drops[static_cast<size_t>(dataplane::DropReason::kCount)] = {};

  void add(const dataplane::WorkerCounters& c) {
    rx += c.rx_packets.get();
    tx += c.tx_packets.get();
    fwd += c.forward_packets.get();
    rev += c.reverse_packets.get();
    slow += c.slow_path_packets.get();
    control += c.control_packets.get();
    injected += c.injected_packets.get();
    created += c.flows_created.get();
    expired += c.flows_expired.get();
    closed += c.flows_closed.get();
    active += c.flows_active.get();
    handoffs_in += c.handoffs_in.get();
    reset += c.flows_reset.get();
    evicted += c.flows_evicted.get();
    evicted_for_port += c.flows_evicted_for_port.get();
    embryonic += c.flows_embryonic.get();
    rejects += c.closed_port_rejects.get();
    for (size_t st = 1; st < std::size(by_state); ++st) by_state[st] += c.flows_by_state[st].get();
    for (uint32_t w = 0; w < workers; ++w) handoffs_out[w] += c.handoffs_out[w].get();
    for (size_t i = 0; i < std::size(drops); ++i) drops[i] += c.drops[i].get();
  }

  void write(rte_tel_data* d) const {
    rte_tel_data_start_dict(d);
    rte_tel_data_add_dict_u64(d, "rx_packets", rx);
    rte_tel_data_add_dict_u64(d, "tx_packets", tx);
    rte_tel_data_add_dict_u64(d, "forward_packets", fwd);
    rte_tel_data_add_dict_u64(d, "reverse_packets", rev);
    rte_tel_data_add_dict_u64(d, "slow_path_packets", slow);
    rte_tel_data_add_dict_u64(d, "control_packets", control);
    rte_tel_data_add_dict_u64(d, "injected_packets", injected);
    rte_tel_data_add_dict_u64(d, "flows_created", created);
    rte_tel_data_add_dict_u64(d, "flows_expired", expired);
    rte_tel_data_add_dict_u64(d, "flows_closed", closed);
    rte_tel_data_add_dict_u64(d, "flows_active", active);
    rte_tel_data_add_dict_u64(d, "flows_reset", reset);
    rte_tel_data_add_dict_u64(d, "flows_evicted", evicted);
    rte_tel_data_add_dict_u64(d, "flows_evicted_for_port", evicted_for_port);
    rte_tel_data_add_dict_u64(d, "flows_embryonic", embryonic);  // unconfirmed, any state
    for (size_t st = 1; st < std::size(by_state); ++st)
      rte_tel_data_add_dict_u64(d, (std::string("flows_") + dataplane::kFlowStateNames[st]).c_str(), by_state[st]);
    rte_tel_data_add_dict_u64(d, "closed_port_rejects", rejects);
    rte_tel_data_add_dict_u64(d, "handoffs_in", handoffs_in);
    uint64_t out = 0;
    for (uint32_t w = 0; w < workers; ++w) out += handoffs_out[w];
    rte_tel_data_add_dict_u64(d, "handoffs_out", out);
    for (uint32_t w = 0; w < workers; ++w)
      rte_tel_data_add_dict_u64(d, ("handoff_to_" + std::to_string(w)).c_str(), handoffs_out[w]);
    // Telemetry allows one level of nesting, so drop reasons are flattened.
    for (size_t i = 0; i < std::size(drops); ++i) {
      const std::string name = std::string("drop_") + dataplane::kDropReasonNames[i];
      rte_tel_data_add_dict_u64(d, name.c_str(), drops[i]);
    }
  }
};

int stats_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_int(d, "workers", static_cast<int>(s->workers.size()));
  Totals total;
  total.workers = static_cast<uint32_t>(s->workers.size());
  for (const auto* w : s->workers) {
    Totals one;
    one.workers = total.workers;
    one.add(w->counters());
    total.add(w->counters());
    rte_tel_data* c = rte_tel_data_alloc();
    one.write(c);
    rte_tel_data_add_dict_container(d, ("worker" + std::to_string(w->index())).c_str(), c, 0);
  }
  rte_tel_data* c = rte_tel_data_alloc();
  total.write(c);
  rte_tel_data_add_dict_container(d, "total", c, 0);
  return 0;
}

int status_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_string(d, "version", s->version.c_str());
  rte_tel_data_add_dict_string(d, "config", s->config_path.c_str());
  rte_tel_data_add_dict_u64(d, "uptime_s", static_cast<uint64_t>(std::time(nullptr)) - s->start_time_s);
  rte_tel_data_add_dict_int(d, "workers", static_cast<int>(s->workers.size()));
  rte_tel_data_add_dict_u64(d, "snapshot_generation", s->snapshot_generation.load());
  rte_tel_data_add_dict_u64(d, "vips", s->vip_count.load());
  rte_tel_data_add_dict_u64(d, "backends", s->backend_count.load());
  rte_tel_data_add_dict_u64(d, "backends_resolved", s->backends_resolved.load());
  rte_tel_data_add_dict_u64(d, "exception_to_kernel", s->exception_to_kernel.load());
  rte_tel_data_add_dict_u64(d, "exception_from_kernel", s->exception_from_kernel.load());
  rte_tel_data_add_dict_u64(d, "mbufs_in_use", s->mbufs_in_use.load());
  rte_tel_data_add_dict_u64(d, "mbufs_total", s->mbufs_total.load());
  rte_tel_data_add_dict_u64(d, "port_rx_packets", s->port_rx_packets.load());
  rte_tel_data_add_dict_u64(d, "port_tx_packets", s->port_tx_packets.load());
  rte_tel_data_add_dict_u64(d, "port_rx_missed", s->port_rx_missed.load());
  rte_tel_data_add_dict_u64(d, "port_rx_nombuf", s->port_rx_nombuf.load());
  rte_tel_data_add_dict_u64(d, "port_rx_errors", s->port_rx_errors.load());
  rte_tel_data_add_dict_u64(d, "port_tx_errors", s->port_tx_errors.load());
  uint64_t active = 0;
  for (const auto* w : s->workers) active += w->counters().flows_active.get();
  rte_tel_data_add_dict_u64(d, "flows_active", active);
  return 0;
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
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_int(d, "workers", static_cast<int>(s->workers.size()));
  for (const auto* w : s->workers) {
    uint64_t per_state[static_cast<size_t>(dataplane::FlowState::kCount)] = {};
    const auto& table = w->flows();
    for (uint32_t i = 0; i < table.capacity(); ++i) ++per_state[static_cast<size_t>(table.entry(i).state)];
    rte_tel_data* c = rte_tel_data_alloc();
    rte_tel_data_start_dict(c);
    rte_tel_data_add_dict_u64(c, "capacity", table.capacity());
    rte_tel_data_add_dict_u64(c, "active", table.active());
    for (size_t st = 1; st < std::size(per_state); ++st)
      rte_tel_data_add_dict_u64(c, dataplane::kFlowStateNames[st], per_state[st]);
    rte_tel_data_add_dict_container(d, ("worker" + std::to_string(w->index())).c_str(), c, 0);
  }
  return 0;
}

std::string endpoint(uint32_t ip_be, uint16_t port_be) {
  const uint32_t ip = ntohl(ip_be);
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 0xFF) + "." +
         std::to_string((ip >> 8) & 0xFF) + "." + std::to_string(ip & 0xFF) + ":" + std::to_string(ntohs(port_be));
}

// /l4lb/flow_list,WORKER[,START]: up to kFlowListPage flows from entry START
// on; "next" is where the following page starts (-1 at the end).
int flow_list_cb(const char*, const char* params, rte_tel_data* d) {
  constexpr int kFlowListPage = 100;
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  uint32_t start = 0;
  const dataplane::Worker* w = worker_param(s, params, start);
  if (!w) return -EINVAL;
  rte_tel_data_start_dict(d);
  rte_tel_data_add_dict_int(d, "worker", static_cast<int>(w->index()));
  rte_tel_data* list = rte_tel_data_alloc();
  rte_tel_data_start_array(list, RTE_TEL_STRING_VAL);
  const auto& table = w->flows();
  int count = 0;
  uint32_t i = start;
  for (; i < table.capacity() && count < kFlowListPage; ++i) {
    const dataplane::FlowEntry e = table.entry(i);
    if (e.state == dataplane::FlowState::kFree) continue;
    const std::string line = std::string(e.proto == dataplane::kProtoTcp ? "tcp " : "udp ") +
                             endpoint(e.client_ip, e.client_port) + " " + endpoint(e.vip_ip, e.vip_port) + " " +
                             endpoint(e.snat_ip, e.snat_port) + " " + endpoint(e.backend_ip, e.backend_port) + " " +
                             dataplane::kFlowStateNames[static_cast<size_t>(e.state)];
    rte_tel_data_add_array_string(list, line.c_str());
    ++count;
  }
  rte_tel_data_add_dict_container(d, "flows", list, 0);
  rte_tel_data_add_dict_int(d, "next", i < table.capacity() ? static_cast<int>(i) : -1);
  return 0;
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
void write_result(rte_tel_data* d, bool answered, const std::string& error) {
  rte_tel_data_start_dict(d);
  const bool ok = answered && error.empty();
  rte_tel_data_add_dict_int(d, "ok", ok ? 1 : 0);
  const std::string text = answered ? error : "the management core did not answer within 5 s";
  rte_tel_data* pieces = rte_tel_data_alloc();
  rte_tel_data_start_array(pieces, RTE_TEL_STRING_VAL);
  constexpr size_t kPiece = RTE_TEL_MAX_STRING_LEN - 1;
  for (size_t at = 0; at < text.size(); at += kPiece) rte_tel_data_add_array_string(pieces, text.substr(at, kPiece).c_str());
  rte_tel_data_add_dict_container(d, "error", pieces, 0);
}

// Rows go out as a dict keyed by row number ("0", "1", ...): this DPDK's
// telemetry renders dict containers inside a dict, not inside an array.
void write_rows(rte_tel_data* d, const std::vector<ControlRow>& rows) {
  rte_tel_data_start_dict(d);
  size_t index = 0;
  for (const auto& row : rows) {
    rte_tel_data* c = rte_tel_data_alloc();
    rte_tel_data_start_dict(c);
    for (const auto& [name, value] : row) {
      if (const auto* u = std::get_if<uint64_t>(&value))
        rte_tel_data_add_dict_u64(c, name.c_str(), *u);
      else if (const auto* i = std::get_if<int64_t>(&value))
        rte_tel_data_add_dict_int(c, name.c_str(), static_cast<int>(*i));
      else
        rte_tel_data_add_dict_string(c, name.c_str(), std::get<std::string>(value).c_str());
    }
    rte_tel_data_add_dict_container(d, std::to_string(index++).c_str(), c, 0);
  }
}

int reload_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  auto error = std::make_shared<std::string>();
  const auto reload = s->hooks.reload;
  const bool answered = on_mgmt(s, [reload, error] { *error = reload(); });
  write_result(d, answered, *error);
  return 0;
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
  write_result(d, answered, *error);
  return 0;
}

int vips_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  auto rows = std::make_shared<std::vector<ControlRow>>();
  const auto vips = s->hooks.vips;
  if (!on_mgmt(s, [vips, rows] { *rows = vips(); })) return -ETIMEDOUT;
  write_rows(d, *rows);
  return 0;
}

int snat_cb(const char*, const char*, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  std::vector<ControlRow> rows;
  for (uint32_t slot = 0; slot < kMaxSnatAddresses; ++slot) {
    const uint32_t address = s->snat_address_by_slot[slot].load(std::memory_order_relaxed);
    if (!address) continue;
    const SnatUsage u = snat_usage(s->workers, static_cast<uint8_t>(slot));
    rows.push_back({{"address", config::format_ipv4(ntohl(address))},
                    {"pools", u.pools},
                    {"ports", u.ports},
                    {"in_use", u.in_use},
                    {"free", u.free()}});
  }
  write_rows(d, rows);
  return 0;
}

int backends_cb(const char*, const char* params, rte_tel_data* d) {
  const ControlState* s = g_state.load(std::memory_order_acquire);
  if (!s) return -1;
  auto rows = std::make_shared<std::vector<ControlRow>>();
  const auto backends = s->hooks.backends;
  const std::string vip = params ? params : "";
  if (!on_mgmt(s, [backends, rows, vip] { *rows = backends(vip); })) return -ETIMEDOUT;
  write_rows(d, *rows);
  return 0;
}

}  // namespace

SnatUsage snat_usage(const std::vector<const dataplane::Worker*>& workers, uint8_t slot) {
  SnatUsage u;
  for (const auto* w : workers) {
    const uint64_t pools = w->counters().snat_pools[slot].get();
    u.pools += pools;
    u.ports += pools * w->snat_pools().slice();
    u.in_use += w->counters().snat_in_use[slot].get();
  }
  return u;
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
  rte_telemetry_register_cmd("/l4lb/vips", counted<vips_cb>, "VIPs with their counters. No parameters");
  rte_telemetry_register_cmd("/l4lb/backends", counted<backends_cb>,
                             "Backends: state, weights, flows, probe results. Parameters: [VIP]");
  rte_telemetry_register_cmd("/l4lb/snat", counted<snat_cb>,
                             "Per SNAT address: pools (one per backend), ports, in use, free. No parameters");
  rte_telemetry_register_cmd("/l4lb/flows", counted<flows_cb>, "Flow table occupancy per worker and state. No parameters");
  rte_telemetry_register_cmd("/l4lb/flow_list", counted<flow_list_cb>,
                             "Flows of one worker: client vip snat backend state. Parameters: worker[,start]");
}

}  // namespace l4lb::controlplane
