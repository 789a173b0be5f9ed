#include "l4lb/controlplane/snapshot_builder.h"

#include <arpa/inet.h>

#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/maglev/maglev.h"

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

namespace {
bool in_subnet(uint32_t address, const config::Ipv4Cidr& cidr) {
  const uint32_t mask = cidr.prefix_len == 0 ? 0 : ~0u << (32 - cidr.prefix_len);
  return (address & mask) == (cidr.address & mask);
}
std::string key_of(uint32_t address, uint16_t port) {
  in_addr a{htonl(address)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(port);
}
}  // namespace

uint32_t next_hop_for(const config::Config& config, uint32_t address) {
  if (config.ports.empty()) return 0;
  for (const auto& cidr : config.ports[0].addresses)
    if (in_subnet(address, cidr)) return address;
  return config.ports[0].gateway.value_or(0);
}

std::unique_ptr<Snapshot> build_snapshot(const SnapshotInputs& in, SnatSlotRegistry& snat_slots) {
  const config::Config& cfg = *in.config;
  auto snap = std::make_unique<Snapshot>();
  snap->generation = in.generation;
  snap->port_mac = in.port_mac;
  snap->snat_port_min = cfg.dataplane.snat_port_min;
  snap->snat_port_max = cfg.dataplane.snat_port_max;

  snap->vip_by_service.reserve(cfg.vips.size());
  for (const auto& port : cfg.ports)
    for (const auto& cidr : port.addresses) snap->local_addresses.insert(htonl(cidr.address), 1);

  for (const auto& vc : cfg.vips) {
    SnapshotVip vip;
    vip.ip = htonl(vc.address);
    vip.port = htons(vc.port);
    vip.proto = vc.protocol == config::Protocol::kTcp ? dataplane::kProtoTcp : dataplane::kProtoUdp;
    vip.mode = vc.mode == config::NatMode::kFnat ? dataplane::NatMode::kFnat : dataplane::NatMode::kDnat;
    vip.drop_tcp_miss = vc.tcp_miss == config::TcpMissPolicy::kDrop;
    for (uint32_t s : vc.snat) {
      const uint8_t slot = snat_slots.slot_for(s);
      vip.snat_slots.push_back(slot);
      snap->snat_addresses[slot] = htonl(s);
      snap->snat_slot_by_address.insert(htonl(s), slot);
    }
    std::vector<maglev::Backend> ring;
    for (const auto& bc : vc.backends) {
      dataplane::SnapshotBackend b;
      b.ip = htonl(bc.address);
      b.port = htons(bc.port);
      const uint32_t hop = next_hop_for(cfg, bc.address);
      if (auto it = in.neighbours->find(hop); hop != 0 && it != in.neighbours->end()) {
        b.has_mac = true;
        b.mac = it->second;
      }
      ring.push_back({key_of(bc.address, bc.port), b.has_mac ? bc.weight : 0});
      vip.backends.push_back(b);
    }
    const auto table = maglev::build_table(ring, vc.table_size);
    vip.maglev.resize(table.size());
    for (size_t i = 0; i < table.size(); ++i)
      vip.maglev[i] = table[i] == maglev::kNoBackend ? dataplane::kNoBackendSlot
                                                     : static_cast<uint16_t>(table[i]);
    const auto index = static_cast<uint32_t>(snap->vips.size());
    snap->vip_by_service.insert(dataplane::service_key(vip.ip, vip.port, vip.proto), index);
    snap->local_addresses.insert(vip.ip, 1);  // ping to a VIP: the kernel answers
    if (vip.mode == dataplane::NatMode::kDnat)
      for (const auto& b : vip.backends)
        snap->dnat_vip_by_backend.insert(dataplane::service_key(b.ip, b.port, vip.proto), index);
    snap->vips.push_back(std::move(vip));
  }

  const auto cycles = [&](uint32_t seconds) { return uint64_t{seconds} * in.tsc_hz; };
  using dataplane::FlowState;
  snap->timeout_tsc[static_cast<size_t>(FlowState::kFree)] = ~0ull;
  snap->timeout_tsc[static_cast<size_t>(FlowState::kSynSent)] = cycles(cfg.timeouts.tcp_syn_s);
  snap->timeout_tsc[static_cast<size_t>(FlowState::kEstablished)] = cycles(cfg.timeouts.tcp_established_s);
  snap->timeout_tsc[static_cast<size_t>(FlowState::kClosing)] = cycles(cfg.timeouts.tcp_closing_s);
  snap->timeout_tsc[static_cast<size_t>(FlowState::kUdp)] = cycles(cfg.timeouts.udp_s);
  return snap;
}

}  // namespace l4lb::controlplane
