// Plain configuration structs: what the YAML file (DESIGN §9) says, validated.
// Addresses are IPv4 in host byte order; the snapshot builder converts them to
// the wire order the fast path compares against.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace l4lb::config {

struct Ipv4Cidr {
  uint32_t address = 0;  // host byte order
  uint8_t prefix_len = 32;
};

enum class Protocol : uint8_t { kTcp, kUdp };
enum class NatMode : uint8_t { kFnat, kDnat };
enum class HealthType : uint8_t { kNone, kTcp, kHttp };
enum class TcpMissPolicy : uint8_t { kForward, kDrop };
// ICMP errors about a flow's packets (DESIGN §3 step 0): translate them to
// the flow's other side, or ignore them (the kernel gets those addressed to
// the appliance, the rest is dropped, as for any ICMP).
enum class IcmpErrorPolicy : uint8_t { kTranslate, kIgnore };
// A DNAT backend's reply that finds no flow on this worker: drop it
// (reverse_no_flow), or translate it from the config alone (the VIP the
// backend serves) because replies may come back through an appliance that
// does not hold the flow (several appliances behind ECMP, DESIGN §12).
enum class DnatReverse : uint8_t { kFlow, kStateless };
// What happens to established flows of a backend that goes down or is
// removed: keep them until they end or time out (Maglev, Katran), or reset
// them (the client gets a TCP RST at its next packet; UDP flows end).
enum class DownPolicy : uint8_t { kKeep, kReset };
// A new flow when the worker's flow table (or its SNAT port pool) is full:
// refuse it, or first evict the oldest unconfirmed flow that frees what is
// missing (dataplane/flow_state.h: a TCP flow whose handshake has not
// completed in both directions, a midstream flow the backend has not
// answered, a UDP flow with no reply). Confirmed flows are never evicted.
enum class TableFullPolicy : uint8_t { kEvictEmbryonic, kRefuse };
// TCP or UDP to a VIP address on a port/protocol no VIP serves: drop it
// (counted), or answer like a closed port would (TCP RST, ICMP port
// unreachable), rate-limited. Never handed to the appliance's kernel.
enum class ClosedVipPortPolicy : uint8_t { kDrop, kReject };

struct DataplaneConfig {
  uint32_t workers = 1;
  uint32_t flows_per_worker = 1u << 20;
  uint32_t mbufs = 65536;
  // Source ports FNAT may use on every snat address. Must stay clear of the
  // kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by
  // default) because the same address also carries the kernel's own traffic.
  uint16_t snat_port_min = 10240;
  uint16_t snat_port_max = 32767;
  // 0 (default): workers poll without pause, as a dedicated core should.
  // Otherwise a worker that found nothing to do for a while sleeps this
  // long between polls: for cores shared with other work (a laptop, a CI
  // VM running several lcores per CPU). Costs up to this much latency.
  uint32_t idle_sleep_us = 0;
  TableFullPolicy table_full = TableFullPolicy::kEvictEmbryonic;
  ClosedVipPortPolicy closed_vip_ports = ClosedVipPortPolicy::kDrop;
  IcmpErrorPolicy icmp_errors = IcmpErrorPolicy::kTranslate;
  // FNAT source ports are unique per (SNAT address, backend address:port):
  // each worker keeps one pool per such pair, made when a flow first needs
  // it, out of this many preallocated (see dataplane/snat_pool.h for the
  // memory per pool). The loader refuses a config with more pairs.
  uint32_t snat_pools_per_worker = 1024;
  // Seconds l4lbd keeps forwarding after SIGTERM/SIGINT while connections
  // carrying data remain (established, fin_wait, replied UDP); 0: stop at
  // once. A second signal cuts it short. Read when the signal arrives, so
  // a reload applies it.
  uint32_t shutdown_drain_s = 0;
  // 1-based line of each key given in the file (e.g. "flows_per_worker"),
  // and "" -> the section's own: for errors found after loading, such as
  // tables that do not fit in memory at start. Empty without the section.
  std::map<std::string, int> key_lines;
};

struct PortConfig {
  std::string name;                 // DPDK device name or port index
  std::vector<Ipv4Cidr> addresses;  // the appliance's own addresses (>= 1)
  std::optional<uint32_t> gateway;  // host byte order
  std::string kernel_iface;         // exception-path interface; default l4lbk<index>
  int line = 0;
};

struct HealthConfig {
  HealthType type = HealthType::kNone;
  uint32_t interval_ms = 1000;
  uint32_t timeout_ms = 500;
  uint32_t rise = 2;
  uint32_t fall = 3;
  std::string path = "/";  // http only
  uint32_t expect = 200;   // http only
  bool operator==(const HealthConfig&) const = default;
};

struct BackendConfig {
  uint32_t address = 0;  // host byte order
  uint16_t port = 0;
  uint32_t weight = 1;   // 0 = draining: no new flows
  int line = 0;
};

struct VipConfig {
  std::string name;
  uint32_t address = 0;  // host byte order
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
  NatMode mode = NatMode::kFnat;
  std::vector<uint32_t> snat;  // fnat source addresses, host byte order
  uint32_t table_size = 65537;
  TcpMissPolicy tcp_miss = TcpMissPolicy::kForward;
  DnatReverse dnat_reverse = DnatReverse::kFlow;
  DownPolicy down_policy = DownPolicy::kKeep;
  // SYN-flood guard: at most this many unconfirmed flows (see
  // TableFullPolicy) for the VIP, split evenly between workers; further new
  // flows are dropped and counted (syn_limit). 0 = no limit.
  uint32_t max_embryonic = 0;
  HealthConfig health;
  std::vector<BackendConfig> backends;
  int line = 0;
};

struct NeighborConfig {
  uint32_t address = 0;  // host byte order
  std::array<uint8_t, 6> mac{};
  int line = 0;
};

// Idle timeouts per flow state, in seconds (DESIGN §3). The defaults are
// close to DPVS's: seconds, not minutes, once a connection closes, so a
// closed connection's table slot and SNAT port come back quickly.
// tcp_closing_s is the key of earlier versions: when given, it sets
// fin_wait, time_wait and close wherever their own keys are absent.
struct Timeouts {
  uint32_t tcp_syn_s = 3;            // syn_sent: client SYN, no answer yet
  uint32_t tcp_syn_recv_s = 10;      // syn_recv, and unconfirmed mid-stream pickups
  uint32_t tcp_established_s = 900;
  uint32_t tcp_fin_wait_s = 7;       // one side sent FIN
  uint32_t tcp_time_wait_s = 7;      // both sides sent FIN
  uint32_t tcp_close_s = 3;          // a RST was accepted
  uint32_t udp_s = 120;              // UDP that has seen a reply
  uint32_t udp_unreplied_s = 10;     // UDP with no reply yet
  // A port released by a flow whose backend closed first (so the backend
  // sits in TIME_WAIT, 60 s on Linux) is not handed out towards that backend
  // again before this.
  uint32_t snat_port_hold_s = 60;
};

// What an appliance announces when one of its VIPs has no backend up in its
// own view (DESIGN §12): withdraw the VIP (the other appliances, whose view
// may differ, take its traffic; if every appliance withdraws, the VIP is
// unreachable), or announce it anyway (fail open, as a lone appliance does).
enum class NoBackendPolicy : uint8_t { kWithdraw, kAnnounce };

// Route announcement through BIRD (DESIGN §12). l4lbd writes the routes it
// wants announced to `routes_file`, which the operator's BIRD config
// includes inside a static protocol, and asks BIRD to reload through its
// control socket.
struct BgpConfig {
  bool enabled = false;
  std::string bird_socket = "/run/bird/bird.ctl";
  std::string routes_file = "/run/l4lb/bird-routes.conf";
  std::vector<uint32_t> peers;  // host byte order; their packets to us are control traffic
  // The other appliances announcing the same VIPs (host byte order): a
  // draining appliance passes them the packets it holds no flow for, and
  // withdraws its VIPs once its own flows have ended (DESIGN §12).
  std::vector<uint32_t> appliances;
  bool announce_snat = true;    // this appliance's SNAT addresses, while it runs
  NoBackendPolicy when_no_backend = NoBackendPolicy::kWithdraw;
  // After BIRD confirmed the withdrawal of the VIPs at a stop, l4lbd keeps
  // forwarding this long so the routers stop sending before it is gone.
  uint32_t withdraw_wait_ms = 1000;
};

struct Config {
  DataplaneConfig dataplane;
  std::vector<PortConfig> ports;
  std::vector<VipConfig> vips;
  std::vector<NeighborConfig> neighbors;
  Timeouts timeouts;
  std::string log_level = "info";
  std::string metrics_listen;  // empty = metrics off
  BgpConfig bgp;
};

}  // namespace l4lb::config
