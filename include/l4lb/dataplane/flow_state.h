// TCP/UDP connection states the flow table tracks, each with its own idle timeout.
#pragma once

#include <cstdint>

namespace l4lb::dataplane {

enum class FlowState : uint8_t {
  kFree = 0,
  kSynSent,      // client SYN seen, no answer yet (tcp_syn_s)
  // The backend answered SYN-ACK, the client has not ACKed yet (tcp_syn_s).
  // Still embryonic: a spoofed SYN is answered by the backend too, so only
  // the client's ACK proves a real peer.
  kSynRecv,
  kEstablished,  // handshake done, or a non-SYN miss was forwarded (tcp_established_s)
  kClosing,      // FIN or RST seen in either direction (tcp_closing_s)
  kUdp,          // udp_s
  kCount
};

inline constexpr const char* kFlowStateNames[] = {"free", "syn_sent", "syn_recv", "established", "closing",
                                                  "udp"};

// Embryonic flows (no complete handshake) are the ones a full table may
// evict and max_embryonic counts.
inline bool is_embryonic(FlowState s) { return s == FlowState::kSynSent || s == FlowState::kSynRecv; }

}  // namespace l4lb::dataplane
