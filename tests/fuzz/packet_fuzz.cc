// libFuzzer target for the packet path (issue 8, issue 13): parse ->
// classify -> NAT rewrite -> TCP reset, each checked for invariants on
// arbitrary bytes, against a model of DESIGN §3 of our own (packet_model.h);
// then the same frame through the real Worker on a net_ring port, as a short
// scenario whose every step is checked (worker_rig.h). Built with
// -fsanitize=fuzzer,address,undefined (tests/fuzz/meson.build), so a read
// past the frame, an overflow or any UB is a finding too.
//
// Input: a 16-byte control block, then the frame (tests/fuzz/make_seeds.py
// writes seeds in this layout).
//   [0, 4)   source address for the arbitrary rewrite (wire order)
//   [4, 8)   destination address
//   [8, 10)  source port, [10, 12) destination port (wire order)
//   [12]     bits 0-1: workers - 1; bits 2-3: this worker's index (mod
//            workers); bits 4-5: SNAT port range preset (kRanges); bit 6:
//            fix_checksums leaves a zero UDP checksum alone; bit 7: the
//            input ends in steps (below)
//   [13, 16) seed of the MACs set_ethernet_addresses writes; [13] bit 0
//            also: closed_vip_ports reject, when there are no steps
// Without steps the worker gets the frame, the backend's answer, RSTs out
// of and inside the window, a SYN on the tuple, and time past every
// timeout. With bit 7 the last byte is a step count n (mod 17), the byte
// before it options, and before that n steps of 8 bytes; the frame is what
// lies between the control block and the steps.
//   options  bit 0: closed_vip_ports reject; bit 1: table_full refuse;
//            bits 2-3: flow table capacity (kCapacities); bits 4-5: SNAT
//            pools (kPools); bit 6: max_embryonic 8 on every VIP
//   step     [0] op (worker_rig.h Op, mod kCount): client segment, backend
//            answer, wait, reload, the frame as it came; [1] TCP flags;
//            [2, 6) sequence number relative to the sender's next
//            (big-endian); [6] pause before the step in 50 ms (bits 0-2 are
//            also the backend answer's payload length); [7] client/backend:
//            which flow (added to the frame's source port), wait: seconds,
//            reload: what changes (Scenario::reload)
// The frame is copied into a heap buffer of exactly its length, so ASan sees
// any byte read outside it.
//
// The snapshots come from controlplane::build_snapshot on a fixed config
// (FNAT and DNAT, TCP and UDP, a drained VIP, unresolved backends, a
// gateway). The model (packet_model.h) mirrors DESIGN §3 from that config;
// dataplane::classify and the worker are checked against it. Keep them in
// step.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "../common/packet_builder.h"
#include "l4lb/common/checksum.h"
#include "l4lb/config/config.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/classify.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/flow_owner.h"
#include "l4lb/dataplane/lookup_table.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/snapshot.h"
#include "l4lb/dataplane/tcp_reset.h"

// A broken invariant: say which, then abort so libFuzzer keeps the input.
#define L4LB_FUZZ_CHECK(cond)                                                                          \
  do {                                                                                                 \
    if (!(cond)) {                                                                                     \
      std::fprintf(stderr, "packet_fuzz: invariant failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                                    \
    }                                                                                                  \
  } while (0)

#include "packet_model.h"
#include "worker_rig.h"

namespace {

using namespace l4lb;
using namespace l4lb::dataplane;
using fuzz::Expected;
using fuzz::ModelView;
using fuzz::Route;

constexpr size_t kControlLen = 16;

// SNAT port range presets (host order): the default, a range only as wide as
// the largest worker count (one port per worker), and one at the top edge.
struct PortRange {
  uint16_t min;
  uint16_t max;
};
constexpr PortRange kRanges[4] = {{10240, 32767}, {1024, 1027}, {65532, 65535}, {40000, 40999}};

// An exact-size heap copy: ASan reports any access outside [0, len).
using Buffer = std::unique_ptr<uint8_t[]>;
Buffer copy_of(const uint8_t* data, size_t len) {
  Buffer b(new uint8_t[len ? len : 1]);
  if (len) std::memcpy(b.get(), data, len);
  return b;
}

// The config every snapshot comes from (host order, as the loader returns it).
config::Config fuzz_config(const PortRange& range) {
  using namespace config;
  const auto host = [](uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return uint32_t{a} << 24 | b << 16 | c << 8 | d;
  };
  Config cfg;
  cfg.dataplane.workers = 4;
  cfg.dataplane.snat_port_min = range.min;
  cfg.dataplane.snat_port_max = range.max;
  PortConfig port;
  port.name = "net_tap0";
  port.addresses = {{host(10, 99, 0, 1), 24}, {host(10, 98, 0, 1), 24}};
  port.gateway = host(10, 99, 0, 254);
  port.kernel_iface = "l4lbk0";
  cfg.ports.push_back(port);
  const auto vip = [&](const char* name, uint32_t address, uint16_t p, Protocol proto, config::NatMode mode) {
    VipConfig v;
    v.name = name;
    v.address = address;
    v.port = p;
    v.protocol = proto;
    v.mode = mode;
    v.table_size = 251;  // small prime: cheap to build, same code path as 65537
    return v;
  };
  VipConfig web = vip("web", host(10, 99, 0, 100), 8080, Protocol::kTcp, config::NatMode::kFnat);
  web.snat = {host(10, 99, 0, 1)};
  web.backends = {{host(10, 99, 0, 21), 8080, 1, 0},
                  {host(10, 99, 0, 22), 8080, 2, 0},
                  {host(10, 99, 0, 23), 8080, 1, 0}};
  VipConfig strict = vip("strict", host(10, 99, 0, 100), 8443, Protocol::kTcp, config::NatMode::kFnat);
  strict.snat = {host(10, 99, 0, 1), host(10, 99, 0, 2)};
  strict.tcp_miss = TcpMissPolicy::kDrop;
  strict.down_policy = DownPolicy::kReset;
  strict.backends = {{host(10, 99, 0, 21), 8443, 1, 0},
                     {host(10, 99, 0, 22), 8443, 1, 0},
                     {host(10, 99, 0, 24), 8443, 1, 0}};  // .24: no MAC
  VipConfig dns = vip("dns", host(10, 99, 0, 100), 53, Protocol::kUdp, config::NatMode::kFnat);
  dns.snat = {host(10, 99, 0, 2)};
  dns.backends = {{host(10, 99, 0, 21), 53, 1, 0}, {host(10, 99, 0, 22), 5353, 1, 0}};
  VipConfig api = vip("api", host(10, 99, 0, 101), 80, Protocol::kTcp, config::NatMode::kDnat);
  api.backends = {{host(10, 99, 0, 31), 80, 1, 0}, {host(10, 99, 0, 32), 80, 1, 0}};  // .32: no MAC
  VipConfig udp_dnat = vip("udp-dnat", host(10, 99, 0, 101), 4000, Protocol::kUdp, config::NatMode::kDnat);
  udp_dnat.backends = {{host(10, 99, 0, 31), 4000, 1, 0}};
  VipConfig drained = vip("drained", host(10, 99, 0, 102), 80, Protocol::kUdp, config::NatMode::kDnat);
  drained.backends = {{host(10, 99, 0, 41), 80, 0, 0}};  // weight 0: every slot empty
  cfg.vips = {web, strict, dns, api, udp_dnat, drained};
  for (uint8_t last : {21, 22, 23, 31, 41}) {
    NeighborConfig n;
    n.address = host(10, 99, 0, last);
    n.mac = {0x02, 0, 0, 0, 0, last};
    cfg.neighbors.push_back(n);
  }
  return cfg;
}

struct World {
  config::Config config;
  std::unique_ptr<Snapshot> snapshot;
  std::unique_ptr<ModelView> model;
};

World make_world(const PortRange& range) {
  World w;
  w.config = fuzz_config(range);
  controlplane::NeighbourMap neighbours;
  for (const auto& n : w.config.neighbors) std::memcpy(neighbours[n.address].bytes, n.mac.data(), 6);
  controlplane::BuildState state;
  controlplane::SnapshotInputs in;
  in.config = &w.config;
  in.neighbours = &neighbours;
  in.port_mac = fuzz::kPortMac;
  in.tsc_hz = fuzz::kTscHz;
  in.generation = 1;
  w.snapshot = controlplane::build_snapshot(in, state);
  w.model = std::make_unique<ModelView>(w.config);
  // The snapshot as the worker relies on it.
  const Snapshot& s = *w.snapshot;
  L4LB_FUZZ_CHECK(s.vips.size() == w.config.vips.size());
  for (const SnapshotVip& v : s.vips) {
    L4LB_FUZZ_CHECK(v.maglev && !v.maglev->empty());
    if (v.mode == NatMode::kFnat) L4LB_FUZZ_CHECK(!v.snat_slots.empty());
    for (uint16_t b : *v.maglev) L4LB_FUZZ_CHECK(b == kNoBackendSlot || b < v.backends.size());
  }
  return w;
}

// ------------------------------------------------------------ brute force
// The snapshot's LookupTables must agree with a scan of what they index.

uint32_t scan_vip(const Snapshot& s, uint32_t ip, uint16_t port, uint8_t proto) {
  for (uint32_t i = 0; i < s.vips.size(); ++i)
    if (s.vips[i].ip == ip && s.vips[i].port == port && s.vips[i].proto == proto) return i;
  return LookupTable::kNotFound;
}

bool scan_snat(const Snapshot& s, uint32_t ip) {
  for (const SnapshotVip& v : s.vips)
    for (uint8_t slot : v.snat_slots)
      if (s.snat_addresses[slot] == ip) return true;
  return false;
}

bool scan_dnat_backend(const Snapshot& s, uint32_t ip, uint16_t port, uint8_t proto) {
  for (const SnapshotVip& v : s.vips)
    if (v.mode == NatMode::kDnat && v.proto == proto)
      for (const SnapshotBackend& b : v.backends)
        if (b.ip == ip && b.port == port) return true;
  return false;
}

// The snapshot's other tables against the config the model reads.
void check_tables(const World& w, const ParsedPacket& p) {
  const Snapshot& snap = *w.snapshot;
  const ModelView& m = *w.model;
  for (uint32_t a : {p.src_ip, p.dst_ip}) {
    L4LB_FUZZ_CHECK(((snap.address_kind(a) & kAddressOwn) != 0) == m.own(a));
    L4LB_FUZZ_CHECK(((snap.address_kind(a) & kAddressVip) != 0) == m.vip_address(a));
    L4LB_FUZZ_CHECK((snap.control_sources.find(address_key(a)) != LookupTable::kNotFound) ==
                    m.control_source(a));
    const uint32_t snat = snap.snat_slot_by_address.find(address_key(a));
    L4LB_FUZZ_CHECK((snat != LookupTable::kNotFound) == scan_snat(snap, a));
    L4LB_FUZZ_CHECK((snat != LookupTable::kNotFound) == m.snat_address(a));
    if (snat != LookupTable::kNotFound)
      L4LB_FUZZ_CHECK(snat < kMaxSnatAddresses && snap.snat_addresses[snat] == a);
  }
  if (p.proto != kProtoTcp && p.proto != kProtoUdp) return;
  const uint32_t vip = snap.vip_by_service.find(service_key(p.dst_ip, p.dst_port, p.proto));
  L4LB_FUZZ_CHECK(vip == scan_vip(snap, p.dst_ip, p.dst_port, p.proto));
  L4LB_FUZZ_CHECK(vip == m.vip_service(p.dst_ip, p.dst_port, p.proto));
  const bool dnat_backend =
      snap.dnat_vip_by_backend.find(service_key(p.src_ip, p.src_port, p.proto)) != LookupTable::kNotFound;
  L4LB_FUZZ_CHECK(dnat_backend == scan_dnat_backend(snap, p.src_ip, p.src_port, p.proto));
  L4LB_FUZZ_CHECK(dnat_backend == m.dnat_backend(p.src_ip, p.src_port, p.proto));
}

// ------------------------------------------------------------ classify

// The model's decision for a packet that worker `self` received, checked
// against the snapshot's tables and against dataplane::classify.
Expected classify(const World& w, const SnatPartition& partition, uint32_t workers, uint32_t self,
                  bool handed_off, const ParsedPacket& p) {
  if (p.kind == PacketKind::kIpv4) check_tables(w, p);
  const Expected e = fuzz::model_classify(*w.model, partition, workers, self, handed_off, p);
  const Classification c = dataplane::classify(*w.snapshot, p, partition, workers);
  const Route oracle[] = {Route::kDrop,    Route::kControl, Route::kSlowPath,
                          Route::kForward, Route::kReverse, Route::kClosedPort};
  L4LB_FUZZ_CHECK(static_cast<size_t>(c.verdict) < std::size(oracle) &&
                  oracle[static_cast<size_t>(c.verdict)] == e.route);
  if (e.route == Route::kDrop) L4LB_FUZZ_CHECK(c.drop == e.drop);
  if (e.route == Route::kForward) L4LB_FUZZ_CHECK(c.vip == e.vip);
  if (e.route == Route::kForward || e.route == Route::kReverse) {
    L4LB_FUZZ_CHECK((c.owner == kAnyOwner ? self : c.owner) == e.owner);
    L4LB_FUZZ_CHECK(e.owner < workers);
  }
  // Nothing to a VIP's unserved port is for the kernel.
  if (fuzz::to_unserved_vip_port(*w.model, p))
    L4LB_FUZZ_CHECK(e.route != Route::kControl && e.route != Route::kSlowPath);
  return e;
}

// ------------------------------------------------------------ rewrite checks

bool in_field(size_t i, size_t at, size_t n) {
  return i >= at && i < at + n;
}

// rewrite_ipv4_tuple + set_ethernet_addresses on a copy of `in` (parsed as
// `p`, IPv4 TCP/UDP); checks the result and returns it with its parse.
Buffer rewrite_and_check(const uint8_t* in, uint32_t len, const ParsedPacket& p, const Ipv4Tuple& to,
                         const MacAddress& dst_mac, const MacAddress& src_mac, ParsedPacket& out_parsed) {
  Buffer out = copy_of(in, len);
  rewrite_ipv4_tuple(out.get(), p, to);
  set_ethernet_addresses(out.get(), dst_mac, src_mac);

  // Parses again, to the same kind and the new tuple; the length is the same.
  const ParsedPacket q = parse_packet(out.get(), len);
  L4LB_FUZZ_CHECK(q.kind == PacketKind::kIpv4);
  L4LB_FUZZ_CHECK(q.proto == p.proto && q.l3_offset == p.l3_offset && q.l4_offset == p.l4_offset);
  L4LB_FUZZ_CHECK(q.ip_total_length == p.ip_total_length && q.tcp_flags == p.tcp_flags);
  L4LB_FUZZ_CHECK(q.src_ip == to.src_ip && q.dst_ip == to.dst_ip);
  L4LB_FUZZ_CHECK(q.src_port == to.src_port && q.dst_port == to.dst_port);
  L4LB_FUZZ_CHECK(std::memcmp(out.get(), dst_mac.bytes, 6) == 0 &&
                  std::memcmp(out.get() + 6, src_mac.bytes, 6) == 0);

  // Only the MACs, addresses, ports and the two checksums change.
  const size_t l3 = p.l3_offset, l4 = p.l4_offset, l4_check = l4 + (p.proto == kProtoTcp ? 16 : 6);
  for (size_t i = 12; i < len; ++i) {
    if (in_field(i, l3 + 10, 10) || in_field(i, l4, 4) || in_field(i, l4_check, 2)) continue;
    L4LB_FUZZ_CHECK(out[i] == in[i]);
  }
  // A UDP datagram without a checksum keeps none (RFC 768).
  // and one with a checksum never gets 0 (a computed 0 is sent as 0xFFFF).
  if (p.proto == kProtoUdp) {
    const bool had = in[l4_check] != 0 || in[l4_check + 1] != 0;
    const bool has = out[l4_check] != 0 || out[l4_check + 1] != 0;
    L4LB_FUZZ_CHECK(had == has);
  }
  // The incremental update (RFC 1624) keeps valid checksums valid.
  const bool valid_in = test::checksums_valid(in, len);
  if (valid_in) L4LB_FUZZ_CHECK(test::checksums_valid(out.get(), len));

  // And back: the original tuple restores every byte but the MACs and the
  // checksum fields (which may come back as the other zero, 0x0000/0xFFFF).
  Buffer back = copy_of(out.get(), len);
  rewrite_ipv4_tuple(back.get(), q, Ipv4Tuple{p.src_ip, p.dst_ip, p.src_port, p.dst_port});
  for (size_t i = 12; i < len; ++i) {
    if (in_field(i, l3 + 10, 2) || in_field(i, l4_check, 2)) continue;
    L4LB_FUZZ_CHECK(back[i] == in[i]);
  }
  if (valid_in) L4LB_FUZZ_CHECK(test::checksums_valid(back.get(), len));

  out_parsed = q;
  return out;
}

// make_tcp_reset_reply on a parsed TCP segment: a shorter frame that parses
// as TCP with RST, swapped endpoints, and checksums that verify.
void reset_and_check(const uint8_t* in, uint32_t len, const ParsedPacket& p, const MacAddress& to_mac,
                     const MacAddress& from_mac) {
  Buffer out = copy_of(in, len);
  const uint32_t new_len = make_tcp_reset_reply(out.get(), p, to_mac, from_mac);
  L4LB_FUZZ_CHECK(new_len == p.l4_offset + 20u && new_len <= len);
  // Trimmed as the worker's rte_pktmbuf_trim does: only new_len bytes remain.
  Buffer reply = copy_of(out.get(), new_len);
  const ParsedPacket r = parse_packet(reply.get(), new_len);
  L4LB_FUZZ_CHECK(r.kind == PacketKind::kIpv4 && r.proto == kProtoTcp);
  L4LB_FUZZ_CHECK(r.l3_offset == p.l3_offset && r.ip_total_length == 40);
  L4LB_FUZZ_CHECK(r.tcp_flags & kTcpRst);
  L4LB_FUZZ_CHECK(r.src_ip == p.dst_ip && r.dst_ip == p.src_ip);
  L4LB_FUZZ_CHECK(r.src_port == p.dst_port && r.dst_port == p.src_port);
  L4LB_FUZZ_CHECK(test::checksums_valid(reply.get(), new_len));
  L4LB_FUZZ_CHECK(std::memcmp(reply.get(), to_mac.bytes, 6) == 0);
  // RFC 793 §3.4: to a segment with ACK, <SEQ=SEG.ACK><CTL=RST>; else
  // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SEG.LEN counting SYN and FIN.
  const auto be32 = [](const uint8_t* b) {
    return uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3];
  };
  const uint8_t* seg = in + p.l4_offset;
  const uint8_t* rst = reply.get() + p.l4_offset;
  if (seg[13] & kTcpAck) {
    L4LB_FUZZ_CHECK(rst[13] == kTcpRst && be32(rst + 4) == be32(seg + 8));
  } else {
    const uint32_t seg_len = p.ip_total_length - 20u - (seg[12] >> 4) * 4u + ((seg[13] & kTcpSyn) ? 1 : 0) +
                             ((seg[13] & kTcpFin) ? 1 : 0);
    L4LB_FUZZ_CHECK(rst[13] == (kTcpRst | kTcpAck) && be32(rst + 4) == 0);
    L4LB_FUZZ_CHECK(be32(rst + 8) == be32(seg + 4) + seg_len);
  }
}

// Parser postconditions that hold for any input.
void check_parse(const uint8_t* frame, uint32_t len, const ParsedPacket& p) {
  switch (p.kind) {
    case PacketKind::kDrop:
      L4LB_FUZZ_CHECK(p.drop <= DropReason::kUnsupportedEthertype);
      return;
    case PacketKind::kArp:
      L4LB_FUZZ_CHECK(p.l3_offset == 14 || p.l3_offset == 18);
      return;
    case PacketKind::kIpv6: {
      // The chain was walked inside the payload; the rest of the frame is
      // padding; one byte less than the payload is malformed.
      L4LB_FUZZ_CHECK(p.l3_offset == 14 || p.l3_offset == 18);
      const uint32_t end = p.l3_offset + uint32_t{p.ip_total_length};
      L4LB_FUZZ_CHECK(p.ip_total_length > 40 && end <= len);
      L4LB_FUZZ_CHECK(p.l4_offset >= p.l3_offset + 40 && p.l4_offset <= end);
      if (!p.is_fragment() || p.fragment_offset() == 0) {
        if (p.proto == kProtoTcp) L4LB_FUZZ_CHECK(p.l4_offset + 20u <= end);
        if (p.proto == kProtoUdp || p.proto == dataplane::kProtoIcmpv6) L4LB_FUZZ_CHECK(p.l4_offset + 8u <= end);
      }
      const Buffer cut = copy_of(frame, end - 1);
      const ParsedPacket t = parse_packet(cut.get(), end - 1);
      L4LB_FUZZ_CHECK(t.kind == PacketKind::kDrop);
      return;
    }
    case PacketKind::kIpv4:
      break;
  }
  L4LB_FUZZ_CHECK(p.l3_offset == 14 || p.l3_offset == 18);
  L4LB_FUZZ_CHECK(p.l4_offset == p.l3_offset + 20);
  L4LB_FUZZ_CHECK(p.ip_total_length >= 20 && p.l3_offset + uint32_t{p.ip_total_length} <= len);
  // Fragments: flagged exactly when the header says so; a later one has
  // no L4 fields, and its payload ends inside an IPv4 datagram's 65535.
  const uint8_t* ip = frame + p.l3_offset;
  L4LB_FUZZ_CHECK(p.is_fragment() == (((ip[6] & 0x3F) | ip[7]) != 0));
  if (p.is_fragment()) {
    L4LB_FUZZ_CHECK(p.ip_total_length > 20 && p.fragment_offset() + uint32_t{p.ip_total_length} <= 65535);
    L4LB_FUZZ_CHECK(!p.more_fragments() || (p.ip_total_length - 20) % 8 == 0);
  }
  if (p.is_fragment() && p.fragment_offset()) {
    L4LB_FUZZ_CHECK(p.src_port == 0 && p.dst_port == 0 && p.tcp_flags == 0);
  } else {
    if (p.proto == kProtoTcp) L4LB_FUZZ_CHECK(p.ip_total_length >= 40);
    if (p.proto == kProtoUdp || p.proto == kProtoIcmp) L4LB_FUZZ_CHECK(p.ip_total_length >= 28);
  }
  // Ethernet padding after the datagram changes nothing; one byte less than
  // the datagram is malformed.
  const uint32_t datagram_end = p.l3_offset + uint32_t{p.ip_total_length};
  if (datagram_end < len) {
    const Buffer exact = copy_of(frame, datagram_end);
    const ParsedPacket e = parse_packet(exact.get(), datagram_end);
    L4LB_FUZZ_CHECK(e.kind == p.kind && e.proto == p.proto && e.tcp_flags == p.tcp_flags);
    L4LB_FUZZ_CHECK(e.l3_offset == p.l3_offset && e.l4_offset == p.l4_offset);
    L4LB_FUZZ_CHECK(e.ip_total_length == p.ip_total_length);
    L4LB_FUZZ_CHECK(e.src_ip == p.src_ip && e.dst_ip == p.dst_ip);
    L4LB_FUZZ_CHECK(e.src_port == p.src_port && e.dst_port == p.dst_port);
  }
  const Buffer cut = copy_of(frame, datagram_end - 1);
  const ParsedPacket t = parse_packet(cut.get(), datagram_end - 1);
  L4LB_FUZZ_CHECK(t.kind == PacketKind::kDrop);
  // (A bare 20-byte header cut by one no longer holds an IPv4 header.)
  L4LB_FUZZ_CHECK(t.drop ==
                  (p.ip_total_length == 20 ? DropReason::kTruncatedIpv4 : DropReason::kBadIpLength));
}

// handle_new_flow's backend and SNAT choice, then the backend's reply and
// its reverse rewrite, each classified as the worker would.
void forward_and_reply(const World& w, const SnatPartition& partition, uint32_t workers, uint32_t self,
                       const uint8_t* frame, uint32_t len, const ParsedPacket& p, uint32_t vip_index) {
  const Snapshot& snap = *w.snapshot;
  const SnapshotVip& vip = snap.vips[vip_index];
  L4LB_FUZZ_CHECK(vip.ip == p.dst_ip && vip.port == p.dst_port && vip.proto == p.proto);
  if (p.proto == kProtoTcp && (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) != kTcpSyn &&
      (vip.drop_tcp_miss || (p.tcp_flags & kTcpRst)))
    return;  // kTcpMissPolicy
  const std::vector<uint16_t>& table = *vip.maglev;
  const uint64_t hash = maglev_flow_hash(p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.proto);
  const uint16_t b = table[hash % table.size()];
  if (b == kNoBackendSlot) return;  // kNoBackend
  L4LB_FUZZ_CHECK(b < vip.backends.size());
  const SnapshotBackend& backend = vip.backends[b];
  if (!backend.has_mac) return;  // kNeighbourUnresolved

  Ipv4Tuple fwd{p.src_ip, backend.ip, p.src_port, backend.port};  // DNAT keeps the client
  if (vip.mode == NatMode::kFnat) {
    const size_t count = vip.snat_slots.size();
    const uint8_t slot = vip.snat_slots[(hash >> 32) % count];
    L4LB_FUZZ_CHECK(slot < kMaxSnatAddresses);
    // Any port of this worker's slice (SnatPool hands them out in order).
    const uint16_t first = partition.first_port(self), last = partition.last_port(self);
    L4LB_FUZZ_CHECK(first <= last && partition.contains(first) && partition.contains(last));
    const uint16_t port = static_cast<uint16_t>(first + hash % (uint32_t{last} - first + 1));
    L4LB_FUZZ_CHECK(partition.owner(port) == self);
    fwd.src_ip = snap.snat_addresses[slot];
    fwd.src_port = htons(port);
  }
  ParsedPacket fp;
  const Buffer out = rewrite_and_check(frame, len, p, fwd, backend.mac, snap.port_mac, fp);

  // The backend answers: same datagram, endpoints swapped.
  ParsedPacket rp;
  const MacAddress backend_mac = backend.mac;
  const Buffer reply =
      rewrite_and_check(out.get(), len, fp, Ipv4Tuple{fwd.dst_ip, fwd.src_ip, fwd.dst_port, fwd.src_port},
                        snap.port_mac, backend_mac, rp);
  // Where the reply's destination is itself a VIP, or (DNAT) a client that
  // picked an SNAT address and port, the config is ambiguous, and a client
  // using the backend's own address makes the reply a LAND: skip.
  if (scan_vip(snap, rp.dst_ip, rp.dst_port, rp.proto) != LookupTable::kNotFound) return;
  if (rp.src_ip == rp.dst_ip) return;
  if (vip.mode == NatMode::kDnat && partition.contains(ntohs(rp.dst_port)) && scan_snat(snap, rp.dst_ip))
    return;
  // Every worker sends the reply to the flow's owner (DESIGN §4).
  for (uint32_t at = 0; at < workers; ++at) {
    const Expected c = classify(w, partition, workers, at, false, rp);
    L4LB_FUZZ_CHECK(c.route == Route::kReverse && c.vip == LookupTable::kNotFound);
    L4LB_FUZZ_CHECK(c.owner == self);
  }
  // Reverse rewrite: the client sees the VIP answer.
  ParsedPacket cp;
  const MacAddress client_mac{{frame[6], frame[7], frame[8], frame[9], frame[10], frame[11]}};
  const Buffer to_client =
      rewrite_and_check(reply.get(), len, rp, Ipv4Tuple{p.dst_ip, p.src_ip, p.dst_port, p.src_port},
                        client_mac, snap.port_mac, cp);
  // Same bytes as the client's datagram, but for the swapped tuple and checksums.
  if (test::checksums_valid(frame, len)) L4LB_FUZZ_CHECK(test::checksums_valid(to_client.get(), len));
}

const World& world(size_t preset) {
  static const World worlds[4] = {make_world(kRanges[0]), make_world(kRanges[1]), make_world(kRanges[2]),
                                  make_world(kRanges[3])};
  return worlds[preset];
}

// The worker's scenario for this input (worker_rig.h): steps and options
// when bit 7 of the control block says the input ends in them.
constexpr uint32_t kCapacities[4] = {4, 16, 64, 1024};
constexpr uint32_t kPools[4] = {1, 2, 4, 16};
constexpr size_t kStepLen = 8;

void run_worker(const World& w, uint32_t workers, uint32_t self, const uint8_t* control, const uint8_t* rest,
                size_t rest_len) {
  fuzz::RigOptions o;
  std::vector<fuzz::Step> steps;
  const bool scripted = control[12] & 0x80;
  size_t frame_len = rest_len;
  if (scripted) {
    if (rest_len < 2) return;
    const size_t n = rest[rest_len - 1] % 17;
    if (rest_len < 2 + n * kStepLen) return;
    const uint8_t options = rest[rest_len - 2];
    o.reject = options & 1;
    o.refuse = options & 2;
    o.capacity = kCapacities[(options >> 2) & 3];
    o.pools = kPools[(options >> 4) & 3];
    o.max_embryonic = (options & 0x40) ? 8 : 0;
    frame_len = rest_len - 2 - n * kStepLen;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* b = rest + frame_len + i * kStepLen;
      fuzz::Step s;
      s.op = static_cast<fuzz::Op>(b[0] % static_cast<uint8_t>(fuzz::Op::kCount));
      s.flags = b[1];
      s.delta = uint32_t{b[2]} << 24 | uint32_t{b[3]} << 16 | uint32_t{b[4]} << 8 | b[5];
      s.pause = b[6];
      s.arg = b[7];
      steps.push_back(s);
    }
  } else {
    o.reject = control[13] & 1;
  }
  fuzz::Scenario scenario(w.config, o, workers, self, rest, static_cast<uint32_t>(frame_len));
  if (!scenario.usable()) return;
  if (!scripted) return scenario.default_script();
  for (const fuzz::Step& s : steps) scenario.run(s);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::start_rig();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kControlLen) return 0;
  Ipv4Tuple any;
  std::memcpy(&any.src_ip, data, 4);
  std::memcpy(&any.dst_ip, data + 4, 4);
  std::memcpy(&any.src_port, data + 8, 2);
  std::memcpy(&any.dst_port, data + 10, 2);
  const uint32_t workers = (data[12] & 3u) + 1;
  const uint32_t self = ((data[12] >> 2) & 3u) % workers;
  const size_t preset = (data[12] >> 4) & 3u;
  const MacAddress mac_a{{0x02, data[13], data[14], data[15], 0, 1}};
  const MacAddress mac_b{{0x02, data[15], data[14], data[13], 0, 2}};
  const World& w = world(preset);
  // The worker first: it sees the frame with the steps still attached when
  // there are some, and cuts them off itself.
  run_worker(w, workers, self, data, data + kControlLen, size - kControlLen);

  uint32_t len = static_cast<uint32_t>(size - kControlLen);
  if (data[12] & 0x80) {
    if (len < 2 || len < 2 + (data[size - 1] % 17) * kStepLen) return 0;
    len -= static_cast<uint32_t>(2 + (data[size - 1] % 17) * kStepLen);
  }
  const Buffer frame = copy_of(data + kControlLen, len);
  const ParsedPacket p = parse_packet(frame.get(), len);
  check_parse(frame.get(), len, p);

  const SnatPartition partition(w.snapshot->snat_port_min, w.snapshot->snat_port_max, workers);
  const Expected c = classify(w, partition, workers, self, false, p);
  uint32_t owner = self;
  if (c.hand_off) {
    // The owner gets it over the hand-off ring and must take it.
    owner = c.owner;
    const Expected there = classify(w, partition, workers, owner, true, p);
    L4LB_FUZZ_CHECK(there.route == c.route && !there.hand_off && there.vip == c.vip && there.owner == owner);
  }

  if (p.kind != PacketKind::kIpv4 || (p.proto != kProtoTcp && p.proto != kProtoUdp)) return 0;
  // A later fragment has no L4 header to rewrite (the worker copies its
  // first's addresses instead).
  if (p.is_fragment() && p.fragment_offset()) return 0;

  // Any rewrite, on the frame as it came and with its checksums made valid.
  ParsedPacket q;
  rewrite_and_check(frame.get(), len, p, any, mac_a, mac_b, q);
  const Buffer fixed = copy_of(frame.get(), len);
  fuzz::fix_checksums(fixed.get(), p, (data[12] & 0x40) != 0);
  L4LB_FUZZ_CHECK(test::checksums_valid(fixed.get(), len));
  rewrite_and_check(fixed.get(), len, p, any, mac_a, mac_b, q);

  if (p.proto == kProtoTcp) {
    reset_and_check(frame.get(), len, p, mac_a, mac_b);
    reset_and_check(fixed.get(), len, p, mac_a, mac_b);
  }

  if (c.route == Route::kForward) {
    forward_and_reply(w, partition, workers, owner, frame.get(), len, p, c.vip);
    forward_and_reply(w, partition, workers, owner, fixed.get(), len, p, c.vip);
  }
  return 0;
}
