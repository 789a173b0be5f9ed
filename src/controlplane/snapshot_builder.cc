#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/fragment_table.h"

#include <arpa/inet.h>

#include <algorithm>

#include "l4lb/common/address_text.h"
#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::controlplane {

using dataplane::LookupTable;
using dataplane::Snapshot;
using dataplane::SnapshotVip;

uint8_t SnatSlotRegistry::slot_for(uint32_t address) {
  if (auto it = slots_.find(address); it != slots_.end()) return it->second;
  if (slots_.size() >= dataplane::kMaxSnatAddresses)
    throw std::runtime_error("more than " + std::to_string(dataplane::kMaxSnatAddresses) +
                             " distinct SNAT addresses used since start; restart to reset");
  const auto slot = static_cast<uint8_t>(slots_.size());
  slots_.emplace(address, slot);
  return slot;
}

uint16_t IdRegistry::vip_id(const std::string& vip) {
  if (auto it = vips_.find(vip); it != vips_.end()) return it->second;
  if (vips_.size() >= dataplane::kMaxVips)
    throw std::runtime_error("more than " + std::to_string(dataplane::kMaxVips) +
                             " distinct VIP names used since start; restart to reset");
  const auto id = static_cast<uint16_t>(vips_.size());
  vips_.emplace(vip, id);
  return id;
}

uint16_t IdRegistry::backend_id(const std::string& key) {
  if (auto it = backends_.find(key); it != backends_.end()) return it->second;
  if (backends_.size() >= dataplane::kMaxBackends)
    throw std::runtime_error("more than " + std::to_string(dataplane::kMaxBackends) +
                             " distinct backends used since start; restart to reset");
  const auto id = static_cast<uint16_t>(backends_.size());
  backends_.emplace(key, id);
  return id;
}

MaglevCache::Table MaglevCache::get(const std::string& key, uint32_t table_size,
                                    const std::vector<std::pair<std::string, uint32_t>>& backends) {
  used_[key] = true;
  if (auto it = tables_.find(key); it != tables_.end()) return it->second;
  std::vector<maglev::Backend> ring;
  ring.reserve(backends.size());
  for (const auto& [k, w] : backends) ring.push_back({k, w});
  const auto table = maglev::build_table(ring, table_size);
  auto slots = std::make_shared<std::vector<uint16_t>>(table.size());
  for (size_t i = 0; i < table.size(); ++i)
    (*slots)[i] = table[i] == maglev::kNoBackend ? dataplane::kNoBackendSlot : static_cast<uint16_t>(table[i]);
  ++built_;
  // Keyed by ADDR:PORT, as l4lb-maglev computes it: the same number for the
  // same table whatever the order of the VIP's backends in the config.
  Table entry{std::move(slots), maglev::table_fingerprint(table, ring)};
  tables_[key] = entry;
  return entry;
}

void MaglevCache::keep_only_used() {
  for (auto it = tables_.begin(); it != tables_.end();)
    it = used_.count(it->first) ? std::next(it) : tables_.erase(it);
  used_.clear();
}

namespace {
bool in_subnet(uint32_t address, const config::Ipv4Cidr& cidr) {
  const uint32_t mask = cidr.prefix_len == 0 ? 0 : ~0u << (32 - cidr.prefix_len);
  return (address & mask) == (cidr.address & mask);
}
}  // namespace

std::string backend_key(const std::string& vip_name, uint32_t address, uint16_t port) {
  return vip_name + "/" + format_endpoint(address, port);
}

uint32_t next_hop_for(const config::Config& config, uint32_t address) {
  if (config.ports.empty()) return 0;
  for (const auto& cidr : config.ports[0].addresses)
    if (in_subnet(address, cidr)) return address;
  return config.ports[0].gateway.value_or(0);
}

BackendView describe_backend(const SnapshotInputs& in, const config::VipConfig& vip,
                             const config::BackendConfig& backend) {
  BackendView v;
  v.key = backend_key(vip.name, backend.address, backend.port);
  const uint32_t hop = next_hop_for(*in.config, backend.address);
  v.resolved = hop != 0 && in.neighbours->count(hop);
  if (in.health)
    if (auto it = in.health->find(v.key); it != in.health->end()) v.healthy = it->second;
  v.weight = backend.weight;
  if (in.admin_weights)
    if (auto it = in.admin_weights->find(v.key); it != in.admin_weights->end()) {
      v.weight = it->second;
      v.admin_override = true;
    }
  v.effective = v.healthy && v.resolved ? v.weight : 0;
  return v;
}

std::unique_ptr<Snapshot> build_snapshot(const SnapshotInputs& in, BuildState& state) {
  const config::Config& cfg = *in.config;
  auto snap = std::make_unique<Snapshot>();
  snap->generation = in.generation;
  snap->port_mac = in.port_mac;
  snap->snat_port_min = cfg.dataplane.snat_port_min;
  snap->snat_port_max = cfg.dataplane.snat_port_max;

  snap->reject_closed_ports = cfg.dataplane.closed_vip_ports == config::ClosedVipPortPolicy::kReject;
  snap->translate_icmp_errors = cfg.dataplane.icmp_errors == config::IcmpErrorPolicy::kTranslate;
  snap->vip_by_service.reserve(cfg.vips.size());
  for (const auto& port : cfg.ports) {
    for (const auto& cidr : port.addresses) snap->addresses.insert(dataplane::address_key(htonl(cidr.address)), dataplane::kAddressOwn);
    if (port.gateway) snap->control_sources.insert(htonl(*port.gateway), 1);
  }
  // BGP sessions to the routers (DESIGN §12) must survive a flood.
  for (const uint32_t peer : cfg.bgp.peers) snap->control_sources.insert(htonl(peer), 1);
  for (const uint32_t appliance : cfg.bgp.appliances)
    if (auto mac = in.neighbours->find(next_hop_for(cfg, appliance)); mac != in.neighbours->end())
      snap->appliance_macs.push_back(mac->second);
  if (const auto& gateway = cfg.ports.at(0).gateway)
    if (auto mac = in.neighbours->find(*gateway); mac != in.neighbours->end()) {
      snap->gateway_mac = mac->second;
      snap->has_gateway_mac = true;
    }
  if (in.draining && snap->has_gateway_mac) snap->redirect_macs = snap->appliance_macs;

  std::vector<uint16_t> alive_ids;
  for (const auto& vc : cfg.vips) {
    SnapshotVip vip;
    vip.ip = htonl(vc.address);
    vip.port = htons(vc.port);
    vip.proto = vc.protocol == config::Protocol::kTcp ? dataplane::kProtoTcp : dataplane::kProtoUdp;
    vip.mode = vc.mode == config::NatMode::kFnat ? dataplane::NatMode::kFnat : dataplane::NatMode::kDnat;
    vip.drop_tcp_miss = vc.tcp_miss == config::TcpMissPolicy::kDrop;
    vip.reset_on_down = vc.down_policy == config::DownPolicy::kReset;
    if (vc.max_embryonic) {
      const uint32_t workers = std::max<uint32_t>(cfg.dataplane.workers, 1);
      vip.max_embryonic = (vc.max_embryonic + workers - 1) / workers;  // each worker's share
    }
    vip.id = state.ids.vip_id(vc.name);
    for (uint32_t s : vc.snat) {
      const uint8_t slot = state.snat.slot_for(s);
      vip.snat_slots.push_back(slot);
    }
    std::vector<BackendView> views;
    bool any_in_service = false, any_could_serve = false;
    for (const auto& bc : vc.backends) {
      views.push_back(describe_backend(in, vc, bc));
      any_in_service |= views.back().effective > 0;
      any_could_serve |= views.back().resolved && views.back().weight > 0;
    }
    vip.fail_open = !any_in_service && any_could_serve;
    std::vector<std::pair<std::string, uint32_t>> ring;
    std::string cache_key = vc.name + "|" + std::to_string(vc.table_size);
    for (size_t j = 0; j < vc.backends.size(); ++j) {
      const auto& bc = vc.backends[j];
      BackendView view = views[j];
      if (vip.fail_open) {
        view.healthy = true;
        view.effective = view.resolved ? view.weight : 0;
      }
      dataplane::SnapshotBackend b;
      b.ip = htonl(bc.address);
      b.port = htons(bc.port);
      b.id = state.ids.backend_id(view.key);
      if (view.resolved) {
        b.has_mac = true;
        b.mac = in.neighbours->at(next_hop_for(cfg, bc.address));
        state.last_next_hop[b.id] = b.mac;
      }
      snap->control_sources.insert(b.ip, 1);
      if (view.healthy) alive_ids.push_back(b.id);
      const uint32_t effective = view.effective;
      ring.emplace_back(format_endpoint(bc.address, bc.port), effective);
      cache_key += "|" + ring.back().first + "=" + std::to_string(effective);
      vip.backends.push_back(b);
    }
    const MaglevCache::Table table = state.maglev.get(cache_key, vc.table_size, ring);
    vip.maglev = table.slots;
    snap->maglev_fingerprints.push_back(table.fingerprint);
    const auto index = static_cast<uint32_t>(snap->vips.size());
    snap->vip_by_service.insert(dataplane::service_key(vip.ip, vip.port, vip.proto), index);
    snap->addresses.insert(dataplane::address_key(vip.ip), dataplane::kAddressVip);
    if (vip.mode == dataplane::NatMode::kDnat)
      for (const auto& b : vip.backends) {
        const uint64_t key = dataplane::service_key(b.ip, b.port, vip.proto);
        state.dnat_backends[key] = index;
        if (vc.dnat_reverse == config::DnatReverse::kStateless) snap->stateless_reverse_vip.insert(key, index);
      }
    snap->vips.push_back(std::move(vip));
  }
  state.maglev.keep_only_used();
  // Removed DNAT backends and SNAT addresses stay known, so the replies of
  // their flows are still recognised while those drain.
  for (const auto& [key, index] : state.dnat_backends) snap->dnat_vip_by_backend.insert(key, index);
  for (const auto& [address, slot] : state.snat.slots()) {
    snap->snat_addresses[slot] = htonl(address);
    snap->snat_slot_by_address.insert(htonl(address), slot);
  }
  snap->backend_alive.assign(state.ids.backend_count(), 0);
  for (uint16_t id : alive_ids) snap->backend_alive[id] = 1;
  snap->next_hop.assign(state.ids.backend_count(), {});
  for (const auto& [id, mac] : state.last_next_hop) snap->next_hop[id] = {mac, true};

  const auto ticks = [&](uint32_t seconds) { return dataplane::flow_clock_ticks(seconds, in.tsc_hz); };
  const config::Timeouts& t = cfg.timeouts;
  using dataplane::FlowState;
  const auto set = [&](FlowState s, uint32_t value) { snap->timeout_ticks[static_cast<size_t>(s)] = value; };
  set(FlowState::kFree, ~0u);
  set(FlowState::kSynSent, ticks(t.tcp_syn_s));
  set(FlowState::kSynRecv, ticks(t.tcp_syn_recv_s));
  set(FlowState::kMidstream, ticks(t.tcp_syn_recv_s));
  set(FlowState::kEstablished, ticks(t.tcp_established_s));
  set(FlowState::kFinWait, ticks(t.tcp_fin_wait_s));
  set(FlowState::kTimeWait, ticks(t.tcp_time_wait_s));
  set(FlowState::kClose, ticks(t.tcp_close_s));
  set(FlowState::kUdpUnreplied, ticks(t.udp_unreplied_s));
  set(FlowState::kUdp, ticks(t.udp_s));
  snap->snat_hold_ticks = ticks(t.snat_port_hold_s);
  snap->fragment_timeout_tsc = static_cast<uint64_t>(dataplane::kFragmentTimeoutSeconds * static_cast<double>(in.tsc_hz));
  return snap;
}

}  // namespace l4lb::controlplane
