// The states a flow goes through, each with its own idle timeout (DESIGN §3),
// and the TCP transitions between them as seen from the middle of the path.
// Pure and header-only: the worker calls tcp_transition per TCP packet of a
// known flow, and the unit tests drive it without DPDK.
#pragma once

#include <cstddef>
#include <cstdint>

#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::dataplane {

enum class FlowState : uint8_t {
  kFree = 0,
  kSynSent,       // the client's SYN, no answer yet (tcp_syn_s)
  // The backend answered SYN-ACK, the client has not ACKed yet
  // (tcp_syn_recv_s). A spoofed SYN is answered by the backend too, so only
  // the client's ACK proves a peer.
  kSynRecv,
  // A TCP packet other than a SYN with no flow, forwarded to the Maglev
  // choice (tcp_miss: forward) in case the backend still holds the
  // connection (a restart, an ECMP change). Confirmed by the backend's
  // answer; until then it is as cheap to lose as a half-open flow
  // (tcp_syn_recv_s).
  kMidstream,
  kEstablished,   // tcp_established_s
  kFinWait,       // one side sent FIN (tcp_fin_wait_s)
  kTimeWait,      // both sides sent FIN (tcp_time_wait_s)
  kClose,         // a RST inside the tracked window (tcp_close_s)
  kUdpUnreplied,  // UDP, no reply yet (udp_unreplied_s)
  kUdp,           // UDP that has seen a reply (udp_s)
  kCount
};

inline constexpr const char* kFlowStateNames[] = {"free",     "syn_sent",  "syn_recv", "midstream",
                                                  "established", "fin_wait", "time_wait", "close",
                                                  "udp_unreplied", "udp"};
static_assert(sizeof(kFlowStateNames) / sizeof(kFlowStateNames[0]) == static_cast<size_t>(FlowState::kCount));

// Flows keep time in coarse ticks of 2^20 TSC cycles (about 0.3-0.5 ms on
// 2-3 GHz parts): 32 bits last 2^31 ticks (8-12 days) before comparisons
// wrap, far past the longest timeout (86400 s), and save 4 bytes per flow.
inline constexpr unsigned kFlowClockShift = 20;
inline uint32_t flow_clock(uint64_t tsc) { return static_cast<uint32_t>(tsc >> kFlowClockShift); }
inline uint32_t flow_clock_ticks(uint64_t seconds, uint64_t tsc_hz) {
  return static_cast<uint32_t>((seconds * tsc_hz) >> kFlowClockShift);
}
// `now` is past `since` by more than `ticks` (false when a test's clock
// went backwards).
inline bool flow_clock_elapsed(uint32_t now, uint32_t since, uint32_t ticks) {
  const int32_t d = static_cast<int32_t>(now - since);
  return d > 0 && static_cast<uint32_t>(d) > ticks;
}

// A TCP flow past its FINs or RST: a new SYN on its tuple is a new
// connection, with a fresh Maglev choice and SNAT port.
inline bool is_closing(FlowState s) {
  return s == FlowState::kFinWait || s == FlowState::kTimeWait || s == FlowState::kClose;
}

// FlowEntry::flags.
inline constexpr uint8_t kFlowConfirmed = 0x01;   // both peers proved (see tcp_transition)
inline constexpr uint8_t kFlowDnat = 0x02;        // NatMode::kDnat
inline constexpr uint8_t kFlowResetOnDown = 0x04; // down_policy: reset
inline constexpr uint8_t kFlowFinClient = 0x08;   // the client sent FIN
inline constexpr uint8_t kFlowFinBackend = 0x10;  // the backend sent FIN
inline constexpr uint8_t kFlowBackendClosedFirst = 0x20;  // ... before the client did
inline constexpr uint8_t kFlowAckClient = 0x40;   // FlowEntry::ack_hi[0] is known
inline constexpr uint8_t kFlowAckBackend = 0x80;  // FlowEntry::ack_hi[1] is known

// What a packet of a known TCP flow does to it. `reverse`: the packet comes
// from the backend. A RST reaches here only once the caller found it inside
// the window. `flags` is the entry's kFlow* bits, updated in place.
//  - syn_sent --backend SYN-ACK--> syn_recv --client ACK--> established
//    (confirmed: only now has each side shown it is real)
//  - midstream --backend answers with anything but RST--> established
//  - any --FIN--> fin_wait --FIN from the other side--> time_wait
//  - any --RST--> close
// A pure SYN from the client on a closing flow is a new connection: the
// caller sees `restart` and replaces the flow; nothing changes here.
struct TcpStep {
  FlowState next;
  bool restart;
};
inline TcpStep tcp_transition(FlowState state, uint8_t tcp_flags, bool reverse, uint8_t& flags) {
  if (tcp_flags & kTcpRst) return {FlowState::kClose, false};
  const bool new_connection = !reverse && (tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
  if (state == FlowState::kClose) return {state, new_connection};
  if (tcp_flags & kTcpFin) {
    const uint8_t mine = reverse ? kFlowFinBackend : kFlowFinClient;
    const uint8_t theirs = reverse ? kFlowFinClient : kFlowFinBackend;
    if (reverse && !(flags & kFlowFinClient)) flags |= kFlowBackendClosedFirst;
    flags |= mine;
    return {(flags & theirs) ? FlowState::kTimeWait : FlowState::kFinWait, false};
  }
  if (is_closing(state)) return {state, new_connection};
  switch (state) {
    case FlowState::kSynSent:
      if (reverse && (tcp_flags & kTcpSyn) && (tcp_flags & kTcpAck)) return {FlowState::kSynRecv, false};
      break;
    case FlowState::kSynRecv:
      if (!reverse && !(tcp_flags & kTcpSyn) && (tcp_flags & kTcpAck)) {
        flags |= kFlowConfirmed;
        return {FlowState::kEstablished, false};
      }
      break;
    case FlowState::kMidstream:
      if (reverse) {
        flags |= kFlowConfirmed;
        return {FlowState::kEstablished, false};
      }
      break;
    default:
      break;
  }
  return {state, false};
}

// RSTs are judged as the receiver would (RFC 5961 §3: a RST is acceptable
// at the receiver's next expected sequence number, which is exactly what the
// receiver sends as its ACK). A flow keeps, per side, the top 16 bits of the
// last ACK that side sent, so a RST towards a side is believed when its
// sequence number lies within 1 MiB of that side's ACK. The window is
// counted in 64 KiB units; exactness is the endpoints' job.
inline constexpr int kRstWindowUnits = 16;      // 1 MiB either way
inline constexpr int kAckAdvanceUnitsMax = 16;  // how far one segment may move the tracked ACK

// True when a RST with sequence number `seq` is plausible for a receiver
// whose last ACK's top bits are `ack_hi`.
inline bool rst_in_window(uint32_t seq, uint16_t ack_hi) {
  const int d = static_cast<int16_t>(static_cast<uint16_t>(seq >> 16) - ack_hi);
  return d >= -kRstWindowUnits && d <= kRstWindowUnits;
}

// The tracked ACK after a segment acknowledging `ack`: it only moves
// forward, and only by a step a real receiver makes, so one spoofed segment
// cannot drag the window to where its RST lands.
inline uint16_t advance_ack_hi(uint16_t ack_hi, uint32_t ack) {
  const uint16_t hi = static_cast<uint16_t>(ack >> 16);
  const int d = static_cast<int16_t>(static_cast<uint16_t>(hi - ack_hi));
  return d > 0 && d <= kAckAdvanceUnitsMax ? hi : ack_hi;
}

}  // namespace l4lb::dataplane
