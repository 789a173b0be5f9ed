// The packet fuzzer's own model of what DESIGN §3 says the worker does with
// a packet, written again from the config rather than from the snapshot's
// lookup tables, and never by calling dataplane::classify or
// tcp_transition: those are what it checks. Where DESIGN is silent (the order
// of a FIN and a new SYN on a closing flow, say) it follows flow_state.h as
// of "Flow state under hostile traffic" (e7a2303). Keep the two in step.
//
// Only packet_fuzz.cc includes this; it aborts through L4LB_FUZZ_CHECK.
#pragma once

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/dataplane/drop_reason.h"
#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/flow_state.h"
#include "l4lb/dataplane/icmp_error.h"
#include "l4lb/dataplane/lookup_table.h"
#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::fuzz {

using dataplane::DropReason;
using dataplane::FlowState;
using dataplane::ParsedPacket;

// Where a packet goes (DESIGN §3 step 3).
// kIcmpError: an ICMP error about a flow's packet (DESIGN §3, step 0),
// decided before classify's list: translated, or dropped for want of the
// flow or its next hop, by `owner`.
enum class Route : uint8_t { kDrop, kControl, kSlowPath, kForward, kReverse, kClosedPort, kIcmpError };

struct Expected {
  Route route = Route::kDrop;
  DropReason drop = DropReason::kCount;              // kDrop
  uint32_t vip = dataplane::LookupTable::kNotFound;  // kForward: index into config.vips
  uint32_t owner = 0;                                // kForward / kReverse: the worker holding the flow
  bool hand_off = false;                             // ... when that is not the receiving worker
  // kIcmpError about an FNAT flow from the client's side: no owner can be
  // computed, so a worker without the flow passes it to the next one.
  bool round = false;
};

// What the classification needs to know: the config in force, and what
// earlier configs of the same process left behind (DESIGN §6: replies to
// every SNAT address and from every DNAT backend used since start are still
// recognised, so their flows drain). All wire order.
class ModelView {
 public:
  explicit ModelView(const config::Config& c) { learn(c); }

  // Switches to `c` (a reload), keeping what the earlier ones used.
  void learn(const config::Config& c) {
    config_ = &c;
    for (const auto& v : c.vips) {
      for (uint32_t s : v.snat) add(snat_ever_, htonl(s));
      if (v.mode == config::NatMode::kDnat)
        for (const auto& b : v.backends) add(dnat_ever_, {htonl(b.address), htons(b.port), proto_of(v)});
    }
  }

  const config::Config& config() const { return *config_; }
  static uint8_t proto_of(const config::VipConfig& v) {
    return v.protocol == config::Protocol::kTcp ? dataplane::kProtoTcp : dataplane::kProtoUdp;
  }

  bool own(uint32_t ip) const {
    for (const auto& port : config_->ports)
      for (const auto& cidr : port.addresses)
        if (htonl(cidr.address) == ip) return true;
    return false;
  }
  bool vip_address(uint32_t ip) const {
    for (const auto& v : config_->vips)
      if (htonl(v.address) == ip) return true;
    return false;
  }
  // Backends (of any VIP, any mode) and gateways: what they send to the
  // appliance is probe answers and routing, so control traffic.
  bool control_source(uint32_t ip) const {
    for (const auto& port : config_->ports)
      if (port.gateway && htonl(*port.gateway) == ip) return true;
    for (const auto& v : config_->vips)
      for (const auto& b : v.backends)
        if (htonl(b.address) == ip) return true;
    return false;
  }
  uint32_t vip_service(uint32_t ip, uint16_t port, uint8_t proto) const {
    for (uint32_t i = 0; i < config_->vips.size(); ++i) {
      const auto& v = config_->vips[i];
      if (htonl(v.address) == ip && htons(v.port) == port && proto_of(v) == proto) return i;
    }
    return dataplane::LookupTable::kNotFound;
  }
  bool snat_address(uint32_t ip) const { return has(snat_ever_, ip); }
  bool dnat_backend(uint32_t ip, uint16_t port, uint8_t proto) const {
    return has(dnat_ever_, {ip, port, proto});
  }
  const std::vector<uint32_t>& snat_addresses() const { return snat_ever_; }

 private:
  using Service = std::tuple<uint32_t, uint16_t, uint8_t>;
  template <typename T>
  static void add(std::vector<T>& v, const T& x) {
    if (!has(v, x)) v.push_back(x);
  }
  template <typename T>
  static bool has(const std::vector<T>& v, const T& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }
  const config::Config* config_;
  std::vector<uint32_t> snat_ever_;
  std::vector<Service> dnat_ever_;
};

// DESIGN §3 step 3, rule by rule in its order, for a packet received by
// worker `self` of `workers` (`handed_off`: another worker passed it over).
inline Expected model_classify(const ModelView& m, const dataplane::SnatPartition& partition,
                               uint32_t workers, uint32_t self, bool handed_off, const ParsedPacket& p) {
  using dataplane::PacketKind;
  Expected e;
  e.owner = self;
  const auto drop = [&](DropReason r) {
    e.route = Route::kDrop;
    e.drop = r;
    return e;
  };
  const auto to = [&](Route r) {
    e.route = r;
    return e;
  };
  switch (p.kind) {
    case PacketKind::kDrop:
      return drop(p.drop);  // step 2: malformed
    case PacketKind::kArp:
      return to(Route::kControl);  // 3.1
    case PacketKind::kIpv6:
      // No IPv6 service yet: the kernel's; neighbour discovery as control.
      if (p.proto == 58 && p.icmp_type >= 133 && p.icmp_type <= 137 && !p.is_fragment()) return to(Route::kControl);
      return to(Route::kSlowPath);
    case PacketKind::kIpv4:
      break;
  }
  // 3.2: sources no peer can have.
  const uint8_t first = static_cast<uint8_t>(ntohl(p.src_ip) >> 24);
  if (first == 0 || first == 127 || first >= 224) return drop(DropReason::kBadSourceAddress);
  if (p.src_ip == p.dst_ip) return drop(DropReason::kLand);
  if (m.own(p.src_ip) || m.vip_address(p.src_ip)) return drop(DropReason::kSpoofedSource);

  const bool l4 = p.proto == dataplane::kProtoTcp || p.proto == dataplane::kProtoUdp;
  const uint16_t dport = ntohs(p.dst_port);
  const bool snat_reply = l4 && partition.contains(dport) && m.snat_address(p.dst_ip);
  // 3.3: the appliance's own address, unless an SNAT reply.
  if (!snat_reply && m.own(p.dst_ip))
    return to(m.control_source(p.src_ip) ? Route::kControl : Route::kSlowPath);
  if (l4) {
    // 3.4: a VIP's service.
    const uint32_t vip = m.vip_service(p.dst_ip, p.dst_port, p.proto);
    if (vip != dataplane::LookupTable::kNotFound) {
      e.route = Route::kForward;
      e.vip = vip;
      if (m.config().vips[vip].mode == config::NatMode::kDnat)
        e.owner = dataplane::dnat_owner(p.src_ip, p.src_port, workers);
    } else if (snat_reply) {  // 3.5
      e.route = Route::kReverse;
      e.owner = partition.owner(dport);
    } else if (m.dnat_backend(p.src_ip, p.src_port, p.proto)) {  // 3.6
      e.route = Route::kReverse;
      e.owner = dataplane::dnat_owner(p.dst_ip, p.dst_port, workers);
    }
    if (e.route != Route::kDrop) {
      e.hand_off = e.owner != self && !handed_off;
      return e;
    }
  }
  // 3.7: a VIP address, no service.
  if (m.vip_address(p.dst_ip)) {
    if (l4) return to(Route::kClosedPort);
    if (p.proto == dataplane::kProtoIcmp) return to(Route::kSlowPath);
    return drop(DropReason::kClosedVipPort);
  }
  return drop(DropReason::kNotForUs);  // 3.8
}

// DESIGN §3 step 0, ahead of model_classify: an ICMP error from a valid
// source, addressed to the source of the TCP/UDP packet it quotes, when
// that packet is one l4lbd sends for a flow: from an SNAT address and
// port, from a VIP service, or to a DNAT backend from a non-own address.
// Its owner follows the flow's (FNAT's from a VIP: the receiving worker).
inline bool model_icmp_error(const ModelView& m, const dataplane::SnatPartition& partition, uint32_t workers,
                             uint32_t self, bool handed_off, const ParsedPacket& p, const uint8_t* frame,
                             Expected& e) {
  if (p.kind != dataplane::PacketKind::kIpv4 || p.proto != dataplane::kProtoIcmp ||
      !dataplane::is_icmp_error(p.icmp_type))
    return false;
  const uint8_t first = static_cast<uint8_t>(ntohl(p.src_ip) >> 24);
  if (first == 0 || first == 127 || first >= 224 || m.own(p.src_ip) || m.vip_address(p.src_ip)) return false;
  dataplane::IcmpQuote q;
  if (!dataplane::parse_icmp_quote(frame, p, q) || p.dst_ip != q.src_ip) return false;
  uint32_t owner = self;
  bool round = false;
  const uint16_t sport = ntohs(q.src_port);
  const uint32_t vip = m.vip_service(q.src_ip, q.src_port, q.proto);
  if (partition.contains(sport) && m.snat_address(q.src_ip)) {
    owner = partition.owner(sport);
  } else if (vip != dataplane::LookupTable::kNotFound) {
    if (m.config().vips[vip].mode == config::NatMode::kDnat) owner = dataplane::dnat_owner(q.dst_ip, q.dst_port, workers);
    else round = workers > 1;
  } else if (!m.own(q.src_ip) && !m.vip_address(q.src_ip) && m.dnat_backend(q.dst_ip, q.dst_port, q.proto)) {
    owner = dataplane::dnat_owner(q.src_ip, q.src_port, workers);
  } else {
    return false;
  }
  e = Expected{};
  e.route = Route::kIcmpError;
  e.owner = owner;
  e.hand_off = owner != self && !handed_off;
  e.round = round;
  return true;
}

// IPv4 TCP/UDP to a VIP address on a port/protocol no VIP serves.
inline bool to_unserved_vip_port(const ModelView& m, const ParsedPacket& p) {
  return p.kind == dataplane::PacketKind::kIpv4 &&
         (p.proto == dataplane::kProtoTcp || p.proto == dataplane::kProtoUdp) && m.vip_address(p.dst_ip) &&
         m.vip_service(p.dst_ip, p.dst_port, p.proto) == dataplane::LookupTable::kNotFound;
}

// ------------------------------------------------------------ RST window
// DESIGN §3: each side's tracked ACK is the top 16 bits of the last ACK it
// sent, moved only forward and by at most 1 MiB per segment; a RST towards
// a side is believed within 1 MiB of that side's ACK (the receiver's next
// expected sequence number, RFC 5961 §3). Written here in whole 32-bit
// sequence arithmetic (flow_state.h counts 64 KiB units): the RST's
// sequence number may be 1 MiB below the ACK's 64 KiB unit to 1 MiB above
// its end.
inline bool model_rst_in_window(uint32_t seq, uint16_t ack_unit) {
  const int32_t diff = static_cast<int32_t>(seq - (uint32_t{ack_unit} << 16));
  return diff >= -(1 << 20) && diff < (1 << 20) + (1 << 16);
}
inline uint16_t model_advance(uint16_t ack_unit, uint32_t ack) {
  const int32_t diff = static_cast<int32_t>(ack - (uint32_t{ack_unit} << 16));
  return diff >= (1 << 16) && diff < (1 << 20) + (1 << 16) ? static_cast<uint16_t>(ack >> 16) : ack_unit;
}

// ------------------------------------------------------------ TCP states
// DESIGN §3's flow states for a TCP packet of a known flow whose RST (if
// any) was believed. `fins`: bit 0 the client sent FIN, bit 1 the backend;
// `confirmed` as FlowEntry's. `restart`: a pure client SYN on a closing
// flow, which replaces the flow instead.
struct ModelStep {
  FlowState next;
  bool restart = false;
};
inline ModelStep model_tcp(FlowState s, uint8_t flags, bool from_backend, uint8_t& fins, bool& confirmed) {
  using dataplane::kTcpAck;
  using dataplane::kTcpFin;
  using dataplane::kTcpRst;
  using dataplane::kTcpSyn;
  const bool closing = s == FlowState::kFinWait || s == FlowState::kTimeWait || s == FlowState::kClose;
  const bool pure_client_syn = !from_backend && (flags & kTcpSyn) && !(flags & kTcpAck);
  if (flags & kTcpRst) return {FlowState::kClose};
  if (s == FlowState::kClose) return {s, pure_client_syn};  // only a new connection leaves close
  if (flags & kTcpFin) {
    fins |= from_backend ? 2 : 1;
    return {fins == 3 ? FlowState::kTimeWait : FlowState::kFinWait};
  }
  if (closing) return {s, pure_client_syn};
  if (s == FlowState::kSynSent && from_backend && (flags & kTcpSyn) && (flags & kTcpAck))
    return {FlowState::kSynRecv};
  if (s == FlowState::kSynRecv && !from_backend && (flags & kTcpAck) && !(flags & kTcpSyn)) {
    confirmed = true;  // the client's ACK: both peers shown real
    return {FlowState::kEstablished};
  }
  if (s == FlowState::kMidstream && from_backend) {
    confirmed = true;  // the backend still had the connection
    return {FlowState::kEstablished};
  }
  return {s};
}

// The state a new flow starts in for the packet that made it, or kFree when
// that packet makes none (a RST, or a non-SYN miss under tcp_miss: drop).
inline FlowState model_new_flow_state(const ParsedPacket& p, bool drop_tcp_miss) {
  if (p.proto != dataplane::kProtoTcp) return FlowState::kUdpUnreplied;
  const uint8_t f = p.tcp_flags;
  if ((f & dataplane::kTcpSyn) && !(f & (dataplane::kTcpAck | dataplane::kTcpRst)))
    return FlowState::kSynSent;
  if ((f & dataplane::kTcpRst) || drop_tcp_miss) return FlowState::kFree;
  return FlowState::kMidstream;
}

// Each state's idle timeout in seconds (DESIGN §3, config keys of §9).
inline uint32_t model_timeout_s(const config::Timeouts& t, FlowState s) {
  switch (s) {
    case FlowState::kSynSent:
      return t.tcp_syn_s;
    case FlowState::kSynRecv:
    case FlowState::kMidstream:
      return t.tcp_syn_recv_s;
    case FlowState::kEstablished:
      return t.tcp_established_s;
    case FlowState::kFinWait:
      return t.tcp_fin_wait_s;
    case FlowState::kTimeWait:
      return t.tcp_time_wait_s;
    case FlowState::kClose:
      return t.tcp_close_s;
    case FlowState::kUdpUnreplied:
      return t.udp_unreplied_s;
    case FlowState::kUdp:
      return t.udp_s;
    default:
      return 0;
  }
}

}  // namespace l4lb::fuzz
