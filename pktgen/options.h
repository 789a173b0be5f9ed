// l4lb-pktgen's own command line (after "--"; without "--" every argument is
// ours, so --help and --pcap need no EAL). Slow path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "flow_set.h"
#include "packet_builder.h"

namespace l4lb::pktgen {

inline constexpr uint16_t kMaxQueues = 16;  // --queues
inline constexpr uint32_t kMaxInFlight = 65536;  // --in-flight: the slot is the ISN's top 16 bits

enum class Mode { kEstablished, kNew, kReverse, kChurn };
enum class Pattern { kRoundRobin, kZipf };

struct Options {
  Mode mode = Mode::kEstablished;
  uint8_t proto = kProtoTcp;
  Pattern pattern = Pattern::kRoundRobin;
  double zipf_s = 1.0;
  uint64_t flows = 1024;
  std::vector<Service> vips;  // default 10.99.0.100:8080
  uint32_t client_net = 0;    // host order; default 10.100.0.0/16
  uint32_t client_prefix = 16;
  uint16_t frame_len = 64;
  uint16_t vlan = 0;
  uint64_t rate_pps = 0;         // 0: as fast as the port takes them
  uint64_t warmup_rate_pps = 0;  // 0: same as rate_pps
  double duration_s = 10.0;      // measured phase; reverse mode: 0 = until SIGINT
  uint64_t count = 0;            // packets (churn: connections) in the measured phase; 0 = no limit
  uint64_t window = 0;           // most of our packets unanswered at a time; 0 = no limit
  bool warmup = true;
  bool from_backend = false;  // established: send the backend side of each flow
  uint32_t in_flight = 1024;          // churn: connections open at a time
  bool backend_closes_first = false;  // churn: --close backend
  double conn_timeout_s = 1.0;        // churn: a connection not done by then has failed
  bool answer = true;         // answer as a backend what is not for a client
  bool dst_mac_set = false;
  Mac dst_mac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  Mac src_mac{{0x02, 0x4c, 0x34, 0x50, 0x47, 0x01}};  // --pcap only; live runs use the port's MAC
  std::string port;                                   // name or index; empty = first port
  unsigned mbufs = 32768;
  uint16_t descriptors = 1024;
  uint16_t queues = 1;  // RX and TX queues; a packet goes out on hash(5-tuple) % queues
  double link_timeout_s = 30.0;
  double drain_s = 1.0;     // longest wait for answers after sending stops
  double progress_s = 1.0;  // 0 = no progress lines
  std::string json_path;    // write the report as JSON here ("-" = stdout)
  std::string pcap_path;    // write what would be sent, then exit (no EAL)
  uint64_t pcap_count = 10000;
  bool hold = false;  // after the report, keep the port open until SIGINT/SIGTERM
  bool help = false;
};

Options parse_options(const std::vector<std::string>& args);  // throws std::invalid_argument
std::string usage(const std::string& program);
const char* mode_name(Mode m);

}  // namespace l4lb::pktgen
