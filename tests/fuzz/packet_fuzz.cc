// libFuzzer target for the packet path without DPDK (issue 8): parse ->
// classify (the worker's snapshot lookups) -> NAT rewrite -> TCP reset, each
// checked for invariants on arbitrary bytes. Built with
// -fsanitize=fuzzer,address,undefined (tests/fuzz/meson.build), so a read past
// the frame, an overflow or any UB is a finding too.
//
// Input: a 16-byte control block, then the frame (tests/fuzz/make_seeds.py
// writes seeds in this layout).
//   [0, 4)   source address for the arbitrary rewrite (wire order)
//   [4, 8)   destination address
//   [8, 10)  source port, [10, 12) destination port (wire order)
//   [12]     bits 0-1: workers - 1; bits 2-3: this worker's index (mod
//            workers); bits 4-5: SNAT port range preset (kRanges); bit 6:
//            fix_checksums leaves a zero UDP checksum alone
//   [13, 16) spare: seed of the MACs set_ethernet_addresses writes
// The frame is copied into a heap buffer of exactly its length, so ASan sees
// any byte read outside it.
//
// Classification mirrors Worker::process_burst and handle_new_flow
// (src/dataplane/worker.cc, as of "Drop packets with impossible or spoofed
// sources") with the same pure lookups, on snapshots built by
// controlplane::build_snapshot from a fixed config (FNAT and DNAT, TCP and
// UDP, a drained VIP, an unresolved backend). Keep the two in step.
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

namespace {

using namespace l4lb;
using namespace l4lb::dataplane;

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
  strict.backends = {{host(10, 99, 0, 21), 8443, 1, 0}, {host(10, 99, 0, 24), 8443, 1, 0}};  // .24: no MAC
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
  std::vector<uint32_t> local;  // wire order: own addresses and VIPs
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
  in.port_mac = MacAddress{{0x02, 0, 0, 0, 0, 0x01}};
  in.tsc_hz = 1000000000;
  in.generation = 1;
  w.snapshot = controlplane::build_snapshot(in, state);
  for (const auto& port : w.config.ports)
    for (const auto& cidr : port.addresses) w.local.push_back(htonl(cidr.address));
  for (const auto& vip : w.config.vips) w.local.push_back(htonl(vip.address));
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

bool scan_local(const World& w, uint32_t ip) {
  for (uint32_t a : w.local)
    if (a == ip) return true;
  return false;
}

// ------------------------------------------------------------ classify

enum class Verdict : uint8_t { kDrop, kSlowPath, kFlow };

struct Classified {
  Verdict verdict = Verdict::kDrop;
  DropReason drop = DropReason::kCount;
  uint32_t vip = LookupTable::kNotFound;  // forward: VIP index; reverse: kNotFound
  uint32_t owner = 0;                     // worker that must handle the packet
  bool hand_off = false;
};

// Worker::process_burst's per-packet decision for a parsed packet.
Classified classify(const World& w, const SnatPartition& partition, uint32_t workers, uint32_t self,
                    bool handed_off, const ParsedPacket& p) {
  const Snapshot& snap = *w.snapshot;
  Classified c;
  c.owner = self;
  switch (p.kind) {
    case PacketKind::kDrop:
      c.drop = p.drop;
      return c;
    case PacketKind::kArp:
    case PacketKind::kIpv6:
      c.verdict = Verdict::kSlowPath;
      return c;
    case PacketKind::kIpv4:
      break;
  }
  // Sources no real peer can have (worker.cc is_valid_source), LAND, and
  // spoofed own addresses or VIPs: dropped before any lookup by destination.
  const uint8_t src_first = reinterpret_cast<const uint8_t*>(&p.src_ip)[0];
  if (src_first == 0 || src_first == 127 || src_first >= 224) {
    c.drop = DropReason::kBadSourceAddress;
    return c;
  }
  if (p.src_ip == p.dst_ip) {
    c.drop = DropReason::kLand;
    return c;
  }
  const bool spoofed = snap.local_addresses.find(address_key(p.src_ip)) != LookupTable::kNotFound;
  L4LB_FUZZ_CHECK(spoofed == scan_local(w, p.src_ip));
  if (spoofed) {
    c.drop = DropReason::kSpoofedSource;
    return c;
  }
  const uint32_t local = snap.local_addresses.find(address_key(p.dst_ip));
  L4LB_FUZZ_CHECK((local != LookupTable::kNotFound) == scan_local(w, p.dst_ip));
  if (p.proto != kProtoTcp && p.proto != kProtoUdp) {
    if (local != LookupTable::kNotFound) {
      c.verdict = Verdict::kSlowPath;
    } else {
      c.drop = DropReason::kNotForUs;
    }
    return c;
  }
  const uint32_t vip = snap.vip_by_service.find(service_key(p.dst_ip, p.dst_port, p.proto));
  L4LB_FUZZ_CHECK(vip == scan_vip(snap, p.dst_ip, p.dst_port, p.proto));
  if (vip != LookupTable::kNotFound) {
    if (snap.vips[vip].mode == NatMode::kDnat) c.owner = dnat_owner(p.src_ip, p.src_port, workers);
  } else {
    const uint16_t dport = ntohs(p.dst_port);
    const uint32_t snat = snap.snat_slot_by_address.find(address_key(p.dst_ip));
    L4LB_FUZZ_CHECK((snat != LookupTable::kNotFound) == scan_snat(snap, p.dst_ip));
    if (snat != LookupTable::kNotFound) {
      L4LB_FUZZ_CHECK(snat < kMaxSnatAddresses && snap.snat_addresses[snat] == p.dst_ip);
    }
    const bool dnat_backend =
        snap.dnat_vip_by_backend.find(service_key(p.src_ip, p.src_port, p.proto)) != LookupTable::kNotFound;
    L4LB_FUZZ_CHECK(dnat_backend == scan_dnat_backend(snap, p.src_ip, p.src_port, p.proto));
    if (partition.contains(dport) && snat != LookupTable::kNotFound) {
      c.owner = partition.owner(dport);
    } else if (dnat_backend) {
      c.owner = dnat_owner(p.dst_ip, p.dst_port, workers);
    } else {
      if (local != LookupTable::kNotFound) {
        c.verdict = Verdict::kSlowPath;
      } else {
        c.drop = DropReason::kNotForUs;
      }
      return c;
    }
  }
  L4LB_FUZZ_CHECK(c.owner < workers);
  c.verdict = Verdict::kFlow;
  c.vip = vip;
  c.hand_off = c.owner != self && !handed_off;
  return c;
}

// ------------------------------------------------------------ rewrite checks

// Recomputes the IPv4 header and TCP/UDP checksums from scratch (over the
// datagram as checksums_valid reads it), so mutated inputs test the
// "valid stays valid" invariant too. keep_udp_zero: a zero UDP checksum stays.
void fix_checksums(uint8_t* frame, const ParsedPacket& p, bool keep_udp_zero) {
  uint8_t* ip4 = frame + p.l3_offset;
  ip4[10] = ip4[11] = 0;
  const uint16_t ip_sum = test::full_checksum(ip4, 20);
  ip4[10] = static_cast<uint8_t>(ip_sum >> 8);
  ip4[11] = static_cast<uint8_t>(ip_sum);
  uint8_t* l4 = frame + p.l4_offset;
  const size_t at = p.proto == kProtoTcp ? 16 : 6;
  if (p.proto == kProtoUdp && keep_udp_zero && l4[6] == 0 && l4[7] == 0) return;
  const size_t l4_len = p.ip_total_length - 20u;
  l4[at] = l4[at + 1] = 0;
  uint32_t pseudo = 0;
  for (int i = 12; i < 20; i += 2) pseudo += uint32_t{ip4[i]} << 8 | ip4[i + 1];
  pseudo += p.proto + static_cast<uint32_t>(l4_len);
  uint16_t sum = test::full_checksum(l4, l4_len, pseudo);
  if (p.proto == kProtoUdp && sum == 0) sum = 0xFFFF;
  l4[at] = static_cast<uint8_t>(sum >> 8);
  l4[at + 1] = static_cast<uint8_t>(sum);
}

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
    case PacketKind::kIpv6:
      L4LB_FUZZ_CHECK(p.l3_offset == 14 || p.l3_offset == 18);
      return;
    case PacketKind::kIpv4:
      break;
  }
  L4LB_FUZZ_CHECK(p.l3_offset == 14 || p.l3_offset == 18);
  L4LB_FUZZ_CHECK(p.l4_offset == p.l3_offset + 20);
  L4LB_FUZZ_CHECK(p.ip_total_length >= 20 && p.l3_offset + uint32_t{p.ip_total_length} <= len);
  if (p.proto == kProtoTcp) L4LB_FUZZ_CHECK(p.ip_total_length >= 40);
  if (p.proto == kProtoUdp || p.proto == kProtoIcmp) L4LB_FUZZ_CHECK(p.ip_total_length >= 28);
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
    const Classified c = classify(w, partition, workers, at, false, rp);
    L4LB_FUZZ_CHECK(c.verdict == Verdict::kFlow && c.vip == LookupTable::kNotFound);
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

}  // namespace

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

  const uint32_t len = static_cast<uint32_t>(size - kControlLen);
  const Buffer frame = copy_of(data + kControlLen, len);
  const ParsedPacket p = parse_packet(frame.get(), len);
  check_parse(frame.get(), len, p);

  const World& w = world(preset);
  const SnatPartition partition(w.snapshot->snat_port_min, w.snapshot->snat_port_max, workers);
  Classified c = classify(w, partition, workers, self, false, p);
  uint32_t owner = self;
  if (c.hand_off) {
    // The owner gets it over the hand-off ring and must take it.
    owner = c.owner;
    const Classified there = classify(w, partition, workers, owner, true, p);
    L4LB_FUZZ_CHECK(there.verdict == Verdict::kFlow && !there.hand_off && there.vip == c.vip);
  }

  if (p.kind != PacketKind::kIpv4 || (p.proto != kProtoTcp && p.proto != kProtoUdp)) return 0;

  // Any rewrite, on the frame as it came and with its checksums made valid.
  ParsedPacket q;
  rewrite_and_check(frame.get(), len, p, any, mac_a, mac_b, q);
  const Buffer fixed = copy_of(frame.get(), len);
  fix_checksums(fixed.get(), p, (data[12] & 0x40) != 0);
  L4LB_FUZZ_CHECK(test::checksums_valid(fixed.get(), len));
  rewrite_and_check(fixed.get(), len, p, any, mac_a, mac_b, q);

  if (p.proto == kProtoTcp) {
    reset_and_check(frame.get(), len, p, mac_a, mac_b);
    reset_and_check(fixed.get(), len, p, mac_a, mac_b);
  }

  if (c.verdict == Verdict::kFlow && c.vip != LookupTable::kNotFound) {
    forward_and_reply(w, partition, workers, owner, frame.get(), len, p, c.vip);
    forward_and_reply(w, partition, workers, owner, fixed.get(), len, p, c.vip);
  }
  return 0;
}
