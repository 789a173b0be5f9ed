// TCP/UDP connection states the flow table tracks, each with its own idle timeout.
#pragma once

#include <cstdint>

namespace l4lb::dataplane {

enum class FlowState : uint8_t {
  kFree = 0,
  kSynSent,      // client SYN seen, no answer yet (tcp_syn_s)
  kEstablished,  // backend answered SYN, or a non-SYN miss was forwarded (tcp_established_s)
  kClosing,      // FIN or RST seen in either direction (tcp_closing_s)
  kUdp,          // udp_s
  kCount
};

inline constexpr const char* kFlowStateNames[] = {"free", "syn_sent", "established", "closing",
                                                  "udp"};

}  // namespace l4lb::dataplane
