// Drives crafted packets through the real worker pipeline: an EAL with
// --no-huge --no-pci, a net_ring port (rte_eth_from_rings) whose rx ring the
// test fills and whose tx ring it drains, a snapshot built by the real
// builder. Checks verdicts, rewrites (checksums verified from scratch, not
// incrementally), flow state, counters, and that no mbuf leaks.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include <cstring>
#include <memory>
#include <vector>

#include "../common/packet_builder.h"
#include "forwarding_config.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/worker.h"
#include "l4lb/dpdk/port.h"
#include "pipeline_fixture.h"
#include "test_eal.h"

using namespace l4lb;
using namespace l4lb::dataplane;
using test::build_packet;
using test::host_ip;
using test::ip;
using test::make_config;
using test::neighbours;
using test::PacketSpec;
using test::port;
using test::reply_to;
using test::g_pool;
using test::kHz;
using test::kSecond;
using test::Pipeline;
using test::TwoWorkers;

namespace {

TEST_F(Pipeline, SynCreatesFlowAndIsFullNatted) {
  const auto out = open_flow(40000);
  ASSERT_FALSE(out.empty());
  const ParsedPacket p = parse(out);
  ASSERT_EQ(p.kind, PacketKind::kIpv4);
  EXPECT_EQ(p.src_ip, ip("10.99.0.1"));  // SNAT address
  const uint16_t snat_port = ntohs(p.src_port);
  EXPECT_GE(snat_port, config_.dataplane.snat_port_min);
  EXPECT_LE(snat_port, config_.dataplane.snat_port_max);
  EXPECT_EQ(p.dst_port, port(80));
  const uint32_t b = ntohl(p.dst_ip);
  EXPECT_TRUE(b == host_ip("10.99.0.21") || b == host_ip("10.99.0.22") || b == host_ip("10.99.0.23"));
  EXPECT_EQ(out[5], static_cast<uint8_t>(b & 0xFF)) << "dst MAC is the backend's neighbour entry";
  EXPECT_EQ(out[6], 0x02);
  EXPECT_EQ(out[7], 0xAA) << "src MAC is the port's";
  EXPECT_TRUE(test::checksums_valid(out.data(), out.size()));
  EXPECT_EQ(worker_->counters().flows_created.get(), 1u);
  EXPECT_EQ(worker_->flows().active(), 1u);
}

TEST_F(Pipeline, ReplyIsReverseNattedWithValidChecksums) {
  const auto fwd = open_flow(40001);
  ASSERT_FALSE(fwd.empty());
  send(reply_to(fwd, kTcpSyn | kTcpAck, "hello"));
  const auto back = sent();
  ASSERT_FALSE(back.empty());
  const ParsedPacket p = parse(back);
  EXPECT_EQ(p.src_ip, ip("10.99.0.100"));
  EXPECT_EQ(p.src_port, port(8080));
  EXPECT_EQ(p.dst_ip, ip("10.99.0.10"));
  EXPECT_EQ(p.dst_port, port(40001));
  EXPECT_EQ(back[5], 0x10) << "replies go to the MAC the client's packets came from";
  EXPECT_TRUE(test::checksums_valid(back.data(), back.size()));
  EXPECT_EQ(worker_->counters().reverse_packets.get(), 1u);
  // The connection is established now: a data packet follows the same flow.
  PacketSpec data;
  data.src_port = port(40001);
  data.tcp_flags = kTcpAck;
  data.payload = "GET / HTTP/1.1\r\n\r\n";
  send(build_packet(data));
  const auto out2 = sent();
  ASSERT_FALSE(out2.empty());
  EXPECT_EQ(parse(out2).src_port, parse(fwd).src_port);
  EXPECT_EQ(parse(out2).dst_ip, parse(fwd).dst_ip);
  EXPECT_TRUE(test::checksums_valid(out2.data(), out2.size()));
  EXPECT_EQ(worker_->counters().flows_created.get(), 1u);
}

TEST_F(Pipeline, SameTupleSameBackendAndFlowsSpread) {
  std::map<uint32_t, int> per_backend;
  for (uint16_t i = 0; i < 300; ++i) per_backend[parse(open_flow(static_cast<uint16_t>(20000 + i))).dst_ip]++;
  EXPECT_EQ(per_backend.size(), 3u);
  for (const auto& [b, n] : per_backend) {
    EXPECT_GT(n, 60) << "backend share far from a third";
    EXPECT_LT(n, 140);
  }
}

TEST_F(Pipeline, FinMovesToClosingAndAgingFreesFlowAndSnatPort) {
  const auto fwd = open_flow(40002, 1000);
  send(reply_to(fwd, kTcpSyn | kTcpAck), 1000);
  sent();
  const uint32_t free_before = free_ports(fwd);
  PacketSpec fin;
  fin.src_port = port(40002);
  fin.tcp_flags = kTcpFin | kTcpAck;
  send(build_packet(fin), 2000);
  ASSERT_FALSE(sent().empty());
  // Not yet past tcp_closing_s (10 s).
  for (int i = 0; i < 20; ++i) worker_->age_flows(2000 + 9 * kSecond, 1024);
  EXPECT_EQ(worker_->flows().active(), 1u);
  worker_->age_flows(2000 + 11 * kSecond, 1024);
  EXPECT_EQ(worker_->flows().active(), 0u);
  EXPECT_EQ(worker_->counters().flows_closed.get(), 1u);
  EXPECT_EQ(worker_->counters().flows_active.get(), 0u);
  EXPECT_EQ(free_ports(fwd), free_before + 1);
  // The reverse key is gone too: a late reply is dropped, not forwarded.
  send(reply_to(fwd, kTcpAck), 2000 + 12 * kSecond);
  EXPECT_TRUE(sent().empty());
  EXPECT_EQ(drops(DropReason::kReverseNoFlow), 1u);
}

TEST_F(Pipeline, RstClosesAndEstablishedIdleExpires) {
  const auto fwd = open_flow(40003, 1000);
  send(reply_to(fwd, kTcpRst), 1000);
  sent();
  worker_->age_flows(1000 + 11 * kSecond, 1024);
  EXPECT_EQ(worker_->counters().flows_closed.get(), 1u);

  const auto fwd2 = open_flow(40004, 1000);
  complete_handshake(fwd2, 40004);
  worker_->age_flows(1000 + 99 * kSecond, 1024);
  EXPECT_EQ(worker_->flows().active(), 1u) << "established flow kept before tcp_established_s";
  worker_->age_flows(1000 + 101 * kSecond, 1024);
  EXPECT_EQ(worker_->flows().active(), 0u);
  EXPECT_EQ(worker_->counters().flows_expired.get(), 1u);
}

TEST_F(Pipeline, SynWithoutAnswerExpiresAfterSynTimeout) {
  open_flow(40005, 1000);
  worker_->age_flows(1000 + 4 * kSecond, 1024);
  EXPECT_EQ(worker_->flows().active(), 1u);
  worker_->age_flows(1000 + 6 * kSecond, 1024);
  EXPECT_EQ(worker_->flows().active(), 0u);
}

TEST_F(Pipeline, NonSynMissIsForwardedByDefault) {
  PacketSpec s;
  s.src_port = port(40006);
  s.tcp_flags = kTcpAck;
  send(build_packet(s));
  const auto out = sent();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(worker_->counters().flows_created.get(), 1u);
  EXPECT_TRUE(test::checksums_valid(out.data(), out.size()));
  // An RST never opens a flow.
  s.src_port = port(40007);
  s.tcp_flags = kTcpRst;
  send(build_packet(s));
  EXPECT_TRUE(sent().empty());
  EXPECT_EQ(drops(DropReason::kTcpMissPolicy), 1u);
}

class PipelineDropMiss : public Pipeline {
 protected:
  void SetUp() override { start(config::TcpMissPolicy::kDrop); }
};

TEST_F(PipelineDropMiss, NonSynMissIsDroppedByPolicy) {
  PacketSpec s;
  s.src_port = port(40008);
  s.tcp_flags = kTcpAck;
  send(build_packet(s));
  EXPECT_TRUE(sent().empty());
  EXPECT_EQ(drops(DropReason::kTcpMissPolicy), 1u);
  EXPECT_EQ(worker_->counters().flows_created.get(), 0u);
}

TEST_F(Pipeline, UdpCreatesFlowAndExpires) {
  PacketSpec s;
  s.proto = kProtoUdp;
  s.dst_port = port(53);
  s.payload = "query";
  send(build_packet(s), 1000);
  const auto out = sent();
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(test::checksums_valid(out.data(), out.size()));
  send(reply_to(out, 0, "answer"), 1000);
  const auto back = sent();
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(parse(back).src_port, port(53));
  EXPECT_TRUE(test::checksums_valid(back.data(), back.size()));
  worker_->age_flows(1000 + 31 * kSecond, 1024);
  EXPECT_EQ(worker_->counters().flows_expired.get(), 1u);
}

TEST_F(Pipeline, TwoPacketsOfANewFlowInOneBurstMakeOneFlow) {
  PacketSpec s;
  s.proto = kProtoUdp;
  s.dst_port = port(53);
  for (int i = 0; i < 2; ++i) {
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    const auto f = build_packet(s);
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
    rte_ring_enqueue(rx_, m);
  }
  worker_->poll_once(1000);
  EXPECT_FALSE(sent().empty());
  EXPECT_FALSE(sent().empty());
  EXPECT_EQ(worker_->counters().flows_created.get(), 1u);
  EXPECT_EQ(worker_->flows().active(), 1u);
}

TEST_F(Pipeline, ArpAndPingToUsGoToTheSlowPath) {
  auto arp = build_packet(PacketSpec{});
  arp[12] = 0x08;
  arp[13] = 0x06;
  send(arp);
  PacketSpec ping;
  ping.proto = kProtoIcmp;
  ping.dst_ip = ip("10.99.0.100");
  send(build_packet(ping));
  ping.dst_ip = ip("10.99.0.1");
  send(build_packet(ping));
  EXPECT_EQ(rte_ring_count(slow_), 3u) << "no control ring here: ARP shares the slow path's";
  EXPECT_EQ(worker_->counters().control_packets.get(), 1u);
  EXPECT_EQ(worker_->counters().slow_path_packets.get(), 2u);
  ping.dst_ip = ip("192.0.2.1");
  send(build_packet(ping));
  EXPECT_EQ(drops(DropReason::kNotForUs), 1u);
}

TEST_F(Pipeline, Ipv6NeighbourDiscoveryIsControlTheRestTheKernelsAndMalformedIsDropped) {
  test::Ipv6Spec ns;
  ns.proto = kProtoIcmpv6;
  ns.icmp_type = 135;  // neighbour solicitation
  ns.payload = std::string(16, '\0');
  send(test::build_packet6(ns));
  EXPECT_EQ(worker_->counters().control_packets.get(), 1u) << "IPv6's ARP, never rate-limited";
  test::Ipv6Spec ping = ns;
  ping.icmp_type = 128;  // echo request
  send(test::build_packet6(ping));
  EXPECT_EQ(worker_->counters().slow_path_packets.get(), 1u);
  test::Ipv6Spec routed;
  routed.extensions = {{kIpv6Routing, test::ipv6_options(1)}};
  routed.extensions[0].second[2] = 1;  // a segment left
  send(test::build_packet6(routed));
  EXPECT_EQ(drops(DropReason::kIpv6RoutingHeader), 1u);
  EXPECT_EQ(rte_ring_count(slow_), 2u);
}

TEST_F(Pipeline, MalformedPacketsAreDroppedCountedAndFreed) {
  struct Case {
    const char* name;
    std::vector<uint8_t> frame;
    DropReason reason;
  };
  std::vector<Case> cases;
  PacketSpec base;
  base.payload = "xyz";
  const auto good = build_packet(base);
  // Truncated at every header boundary and one byte either side.
  for (size_t len : {0ul, 6ul, 13ul}) cases.push_back({"cut in ethernet", {good.begin(), good.begin() + long(len)}, DropReason::kTruncatedEthernet});
  for (size_t len : {14ul, 20ul, 33ul}) cases.push_back({"cut in ipv4", {good.begin(), good.begin() + long(len)}, DropReason::kTruncatedIpv4});
  for (size_t len : {34ul, 40ul, 53ul, 56ul}) cases.push_back({"cut in tcp/payload", {good.begin(), good.begin() + long(len)}, DropReason::kBadIpLength});
  auto mutate = [&](const char* name, size_t at, uint8_t value, DropReason r) {
    auto f = good;
    f[at] = value;
    cases.push_back({name, f, r});
  };
  mutate("bad ihl", 14, 0x43, DropReason::kBadIhl);
  mutate("ip options", 14, 0x47, DropReason::kIpOptions);
  mutate("total length > frame", 16, 0x09, DropReason::kBadIpLength);
  mutate("first fragment of 23 bytes (not a multiple of 8)", 20, 0x20, DropReason::kBadFragment);
  auto oversized = good;
  oversized[20] = 0x1F;
  oversized[21] = 0xFF;
  cases.push_back({"fragment ending past 65535", oversized, DropReason::kFragmentOversized});
  mutate("tcp data offset < 5", 46, 0x30, DropReason::kBadTcpOffset);
  mutate("not ipv4", 14, 0x55, DropReason::kBadIpVersion);
  PacketSpec vlan = base;
  vlan.vlan = true;
  const auto tagged = build_packet(vlan);
  cases.push_back({"vlan cut", {tagged.begin(), tagged.begin() + 16}, DropReason::kTruncatedVlan});

  for (const auto& c : cases) {
    const uint64_t before = drops(c.reason);
    send(c.frame);
    EXPECT_EQ(drops(c.reason), before + 1) << c.name << " (" << c.frame.size() << " bytes)";
    EXPECT_TRUE(sent().empty()) << c.name;
  }
  EXPECT_EQ(worker_->counters().flows_created.get(), 0u);
  EXPECT_EQ(rte_ring_count(slow_), 0u);
  // TearDown checks the mempool is back where it started.
}

TEST_F(Pipeline, HostileSourcesAndDocumentedPolicies) {
  struct Case {
    const char* name;
    PacketSpec spec;
    bool forwarded;
    DropReason reason;  // when not forwarded
  };
  auto with = [](auto change) {
    PacketSpec s;
    change(s);
    return s;
  };
  const Case cases[] = {
      {"source is the VIP", with([](PacketSpec& s) { s.src_ip = ip("10.99.0.100"); s.dst_ip = ip("10.99.0.1"); }), false,
       DropReason::kSpoofedSource},
      {"source is our own (SNAT) address", with([](PacketSpec& s) { s.src_ip = ip("10.99.0.1"); }), false,
       DropReason::kSpoofedSource},
      {"LAND", with([](PacketSpec& s) { s.src_ip = s.dst_ip = ip("10.99.0.50"); }), false, DropReason::kLand},
      {"multicast source", with([](PacketSpec& s) { s.src_ip = ip("224.0.0.5"); }), false,
       DropReason::kBadSourceAddress},
      {"broadcast source", with([](PacketSpec& s) { s.src_ip = ip("255.255.255.255"); }), false,
       DropReason::kBadSourceAddress},
      {"zero source", with([](PacketSpec& s) { s.src_ip = ip("0.0.0.0"); }), false, DropReason::kBadSourceAddress},
      {"loopback source", with([](PacketSpec& s) { s.src_ip = ip("127.0.0.1"); }), false,
       DropReason::kBadSourceAddress},
      // Policy: l4lbd rewrites addresses but is not a routing hop, so TTL is
      // neither checked nor decremented (the backend's kernel judges it).
      {"TTL 0", with([](PacketSpec& s) { s.ttl = 0; s.src_port = port(45000); }), true, DropReason::kCount},
      {"TTL 1", with([](PacketSpec& s) { s.ttl = 1; s.src_port = port(45001); }), true, DropReason::kCount},
  };
  for (const auto& c : cases) {
    const uint64_t before = c.forwarded ? 0 : drops(c.reason);
    send(build_packet(c.spec));
    const auto out = sent();
    EXPECT_EQ(!out.empty(), c.forwarded) << c.name;
    if (!c.forwarded) {
      EXPECT_EQ(drops(c.reason), before + 1) << c.name;
    }
  }
  // Policy: checksums are not verified (the backend's stack does that); an
  // incremental update keeps a bad checksum bad, never makes it valid.
  PacketSpec bad;
  bad.src_port = port(45002);
  auto frame = build_packet(bad);
  frame[50] ^= 0xFF;
  send(frame);
  const auto out = sent();
  ASSERT_FALSE(out.empty());
  EXPECT_FALSE(test::checksums_valid(out.data(), out.size()));
  // A stack of two VLAN tags is not parsed past the first.
  PacketSpec qinq;
  qinq.vlan = true;
  auto tagged = build_packet(qinq);
  tagged.insert(tagged.begin() + 16, {0x81, 0x00, 0x00, 0x0A});
  const uint64_t unsupported = drops(DropReason::kUnsupportedEthertype);
  send(tagged);
  EXPECT_EQ(drops(DropReason::kUnsupportedEthertype), unsupported + 1);
  EXPECT_EQ(worker_->counters().flows_created.get(), 3u) << "only the forwarded cases made flows";
}

TEST_F(Pipeline, SwitchesSnapshotAndAcknowledges) {
  EXPECT_EQ(worker_->acked_generation(), 1u);
  config_.vips[0].backends.resize(1);  // only 10.99.0.21 left
  controlplane::SnapshotInputs in{&config_, &neighbours_, {{0x02, 0xAA, 0, 0, 0, 1}}, kHz, 2};
  auto next = controlplane::build_snapshot(in, snat_slots_);
  ASSERT_EQ(rte_ring_enqueue(snap_ring_, next.get()), 0);
  worker_->poll_once(1000);
  EXPECT_EQ(worker_->acked_generation(), 2u);
  for (uint16_t i = 0; i < 20; ++i) EXPECT_EQ(parse(open_flow(static_cast<uint16_t>(30000 + i))).dst_ip, ip("10.99.0.21"));
  worker_.reset();  // before `next` goes away
}

TEST_F(Pipeline, DownBackendFlowsAreKeptByDefault) {
  const auto fwd = open_flow(41000);
  const uint32_t backend = parse(fwd).dst_ip;
  std::map<std::string, bool> health;
  for (const auto& b : config_.vips[0].backends)
    health[controlplane::backend_key("web", b.address, b.port)] = htonl(b.address) != backend;
  controlplane::SnapshotInputs in{&config_, &neighbours_, {{0x02, 0xAA, 0, 0, 0, 1}}, kHz, 2, &health};
  auto next = controlplane::build_snapshot(in, snat_slots_);
  ASSERT_EQ(rte_ring_enqueue(snap_ring_, next.get()), 0);
  PacketSpec data;
  data.src_port = port(41000);
  data.tcp_flags = kTcpAck;
  send(build_packet(data));
  const auto out = sent();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(parse(out).dst_ip, backend) << "down_policy keep: the flow stays with its backend";
  for (uint16_t i = 0; i < 30; ++i)
    EXPECT_NE(parse(open_flow(static_cast<uint16_t>(42000 + i))).dst_ip, backend) << "no new flows to a down backend";
  worker_.reset();
}

TEST_F(Pipeline, DownBackendFlowsAreResetWhenThePolicySaysSo) {
  config_.vips[0].down_policy = config::DownPolicy::kReset;
  auto with_policy = controlplane::build_snapshot(
      {&config_, &neighbours_, {{0x02, 0xAA, 0, 0, 0, 1}}, kHz, 2}, snat_slots_);
  ASSERT_EQ(rte_ring_enqueue(snap_ring_, with_policy.get()), 0);
  worker_->poll_once(1000);
  const auto fwd = open_flow(41001);
  const ParsedPacket f = parse(fwd);
  const uint32_t free_before = free_ports(fwd);
  std::map<std::string, bool> health;
  for (const auto& b : config_.vips[0].backends)
    health[controlplane::backend_key("web", b.address, b.port)] = htonl(b.address) != f.dst_ip;
  auto down = controlplane::build_snapshot(
      {&config_, &neighbours_, {{0x02, 0xAA, 0, 0, 0, 1}}, kHz, 3, &health}, snat_slots_);
  ASSERT_EQ(rte_ring_enqueue(snap_ring_, down.get()), 0);

  PacketSpec data;
  data.src_port = port(41001);
  data.tcp_flags = kTcpAck | 0x08;  // PSH
  data.payload = "GET /";
  auto frame = build_packet(data);
  // A known ack number, so the RST's sequence number can be checked (the
  // segment's own checksum goes stale; l4lbd does not verify it).
  frame[42] = 0xAB;
  frame[43] = 0xCD;
  frame[44] = 0x00;
  frame[45] = 0x01;
  send(frame);
  const auto rst = sent();
  ASSERT_FALSE(rst.empty()) << "the client gets a RST";
  const ParsedPacket r = parse(rst);
  EXPECT_EQ(r.src_ip, ip("10.99.0.100"));
  EXPECT_EQ(r.src_port, port(8080));
  EXPECT_EQ(r.dst_ip, ip("10.99.0.10"));
  EXPECT_EQ(r.dst_port, port(41001));
  EXPECT_EQ(r.tcp_flags, kTcpRst);
  EXPECT_EQ(rst[38], 0xAB) << "RST seq = the segment's ack";
  EXPECT_EQ(rst[41], 0x01);
  EXPECT_EQ(rst.size(), 54u);
  EXPECT_EQ(rst[0], 0x02);
  EXPECT_EQ(rst[5], 0x10) << "to the client's MAC";
  EXPECT_TRUE(test::checksums_valid(rst.data(), rst.size()));
  EXPECT_EQ(worker_->counters().flows_reset.get(), 1u);
  EXPECT_EQ(worker_->flows().active(), 0u);
  EXPECT_EQ(free_ports(fwd), free_before + 1);
  worker_.reset();
}

TEST_F(Pipeline, FullTableEvictsTheOldestEmbryonicFlowNeverAnEstablishedOne) {
  // 1000 established flows, then embryonic ones up to the capacity (1024).
  for (uint16_t i = 0; i < 1000; ++i) {
    const auto fwd = open_flow(static_cast<uint16_t>(20000 + i));
    ASSERT_FALSE(fwd.empty());
    complete_handshake(fwd, static_cast<uint16_t>(20000 + i));
  }
  for (uint16_t i = 0; i < 24; ++i) ASSERT_FALSE(open_flow(static_cast<uint16_t>(30000 + i)).empty());
  ASSERT_EQ(worker_->flows().active(), 1024u);
  EXPECT_EQ(worker_->counters().flows_embryonic.get(), 24u);
  // A flood of new SYNs: each evicts the oldest embryonic flow.
  for (uint16_t i = 0; i < 100; ++i) EXPECT_FALSE(open_flow(static_cast<uint16_t>(40000 + i)).empty()) << i;
  EXPECT_EQ(worker_->counters().flows_evicted.get(), 100u);
  EXPECT_EQ(drops(DropReason::kFlowTableFull), 0u);
  EXPECT_EQ(worker_->flows().active(), 1024u);
  EXPECT_EQ(worker_->counters().flows_embryonic.get(), 24u);
  // Every established flow is still there and still forwarded.
  PacketSpec data;
  data.tcp_flags = kTcpAck;
  for (uint16_t i = 0; i < 1000; i += 111) {
    data.src_port = port(static_cast<uint16_t>(20000 + i));
    send(build_packet(data));
    EXPECT_FALSE(sent().empty()) << "established flow " << i << " lost";
  }
  EXPECT_EQ(worker_->counters().flows_created.get(), 1124u);
}

TEST_F(Pipeline, MaxEmbryonicLimitsSynsPerVip) {
  config_.vips[0].max_embryonic = 10;
  auto limited = controlplane::build_snapshot({&config_, &neighbours_, {{0x02, 0xAA, 0, 0, 0, 1}}, kHz, 2},
                                              snat_slots_);
  ASSERT_EQ(rte_ring_enqueue(snap_ring_, limited.get()), 0);
  worker_->poll_once(1000);
  std::vector<std::vector<uint8_t>> opened;
  for (uint16_t i = 0; i < 15; ++i) opened.push_back(open_flow(static_cast<uint16_t>(50000 + i)));
  EXPECT_EQ(worker_->counters().flows_created.get(), 10u);
  EXPECT_EQ(drops(DropReason::kSynLimit), 5u);
  // The backend's SYN-ACK alone does not free the quota (a spoofed SYN
  // gets one too); the client's ACK completing the handshake does.
  send(reply_to(opened[0], kTcpSyn | kTcpAck));
  sent();
  EXPECT_TRUE(open_flow(50099).empty());
  EXPECT_EQ(drops(DropReason::kSynLimit), 6u);
  PacketSpec ack;
  ack.src_port = port(50000);
  ack.tcp_flags = kTcpAck;
  send(build_packet(ack));
  sent();
  EXPECT_FALSE(open_flow(50100).empty());
  EXPECT_TRUE(open_flow(50101).empty());
  EXPECT_EQ(drops(DropReason::kSynLimit), 7u);
  // The embryonic flows age out after tcp_syn_s (5 s), freeing the quota.
  worker_->age_flows(1000 + 6 * kSecond, 1024);
  EXPECT_EQ(worker_->counters().flows_embryonic.get(), 0u);
  EXPECT_FALSE(open_flow(50102, 1000 + 6 * kSecond).empty());
  worker_.reset();
}

class PipelineRefuseWhenFull : public Pipeline {
 protected:
  void SetUp() override { start(config::TcpMissPolicy::kForward, false); }
};

TEST_F(PipelineRefuseWhenFull, FullTableRefusesNewFlows) {
  for (uint16_t i = 0; i < 1024; ++i) ASSERT_FALSE(open_flow(static_cast<uint16_t>(20000 + i)).empty());
  EXPECT_TRUE(open_flow(40000).empty());
  EXPECT_EQ(drops(DropReason::kFlowTableFull), 1u);
  EXPECT_EQ(worker_->counters().flows_evicted.get(), 0u);
}

TEST_F(Pipeline, InjectedPacketsAreTransmitted) {
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  const auto f = build_packet(PacketSpec{});
  std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
  ASSERT_EQ(rte_ring_enqueue(inject_, m), 0);
  worker_->poll_once(1000);
  EXPECT_EQ(sent(), f);
  EXPECT_EQ(worker_->counters().injected_packets.get(), 1u);
}


TEST_F(TwoWorkers, FnatReplyOnTheWrongCoreIsHandedToItsOwnerOnce) {
  // The SYN arrives on queue 0: worker 0 owns the flow and its SNAT port.
  send(0, build_packet(PacketSpec{}));
  const auto fwd = sent(0);
  ASSERT_FALSE(fwd.empty());
  const uint16_t snat_port = ntohs(parse(fwd).src_port);
  EXPECT_LE(snat_port, workers_[0]->snat_pools().last_port()) << "worker 0 allocates from its own slice";
  // The backend's reply lands on queue 1.
  send(1, reply_to(fwd, kTcpSyn | kTcpAck));
  EXPECT_TRUE(sent(1).empty()) << "worker 1 must not rewrite a flow it does not own";
  const auto back = sent(0);
  ASSERT_FALSE(back.empty());
  EXPECT_TRUE(sent(0).empty()) << "delivered exactly once";
  EXPECT_EQ(parse(back).src_ip, ip("10.99.0.100"));
  EXPECT_EQ(parse(back).dst_port, port(40000));
  EXPECT_TRUE(test::checksums_valid(back.data(), back.size()));
  EXPECT_EQ(workers_[1]->counters().handoffs_out[0].get(), 1u);
  EXPECT_EQ(workers_[0]->counters().handoffs_in.get(), 1u);
  EXPECT_EQ(workers_[1]->flows().active(), 0u);
  EXPECT_EQ(workers_[0]->counters().reverse_packets.get(), 1u);
}

TEST_F(TwoWorkers, DnatFlowLivesOnTheClientHashOwnerInBothDirections) {
  PacketSpec syn;
  syn.dst_port = port(9090);
  const uint32_t owner = dnat_owner(syn.src_ip, syn.src_port, 2);
  const int other = 1 - static_cast<int>(owner);
  send(other, build_packet(syn));  // lands on the non-owner
  EXPECT_EQ(workers_[other]->flows().active(), 0u);
  EXPECT_EQ(workers_[owner]->flows().active(), 1u);
  const auto fwd = sent(static_cast<int>(owner));
  ASSERT_FALSE(fwd.empty());
  const ParsedPacket f = parse(fwd);
  EXPECT_EQ(f.src_ip, ip("10.99.0.10")) << "DNAT keeps the client's address";
  EXPECT_EQ(f.src_port, port(40000));
  EXPECT_EQ(f.dst_ip, ip("10.99.0.31"));
  EXPECT_TRUE(test::checksums_valid(fwd.data(), fwd.size()));
  // The backend answers the client directly (we are its gateway); the reply
  // also lands on the non-owner.
  send(other, reply_to(fwd, kTcpSyn | kTcpAck));
  const auto back = sent(static_cast<int>(owner));
  ASSERT_FALSE(back.empty());
  EXPECT_EQ(parse(back).src_ip, ip("10.99.0.100"));
  EXPECT_EQ(parse(back).src_port, port(9090));
  EXPECT_EQ(parse(back).dst_ip, ip("10.99.0.10"));
  EXPECT_TRUE(test::checksums_valid(back.data(), back.size()));
  EXPECT_EQ(workers_[other]->counters().handoffs_out[owner].get(), 2u);
}

TEST_F(TwoWorkers, AClientSideIcmpErrorFindsItsFnatFlowOnAnotherWorker) {
  // Worker 0 holds the flow (the SYN came on its queue) ...
  send(0, build_packet(PacketSpec{}));
  const auto fwd = sent(0);
  ASSERT_FALSE(fwd.empty());
  const ParsedPacket f = parse(fwd);
  send(0, reply_to(fwd, kTcpSyn | kTcpAck));
  const auto back = sent(0);  // VIP -> client
  ASSERT_FALSE(back.empty());
  // ... and a router on the client's side answers that reply with
  // "fragmentation needed", which RSS gives worker 1.
  const uint8_t port_mac[6] = {0x02, 0xAA, 0, 0, 0, 1};
  const uint8_t router_mac[6] = {0x02, 0, 0, 0, 0, 0x54};
  send(1, test::build_icmp_error(ip("198.51.100.1"), ip("10.99.0.100"), 3, 4, 1280, back, 28, port_mac, router_mac));
  EXPECT_TRUE(sent(1).empty());
  const auto out = sent(0);
  ASSERT_FALSE(out.empty()) << "worker 1 has no such flow: it passes the error on";
  const ParsedPacket e = parse(out);
  EXPECT_EQ(e.proto, kProtoIcmp);
  EXPECT_EQ(e.src_ip, ip("10.99.0.1")) << "to the backend, from the SNAT address";
  EXPECT_EQ(e.dst_ip, f.dst_ip);
  EXPECT_EQ(workers_[0]->counters().icmp_errors_translated.get(), 1u);
  EXPECT_EQ(workers_[1]->counters().handoffs_out[0].get(), 1u);

  // An error about no flow at all goes round once and is dropped.
  auto stray = back;
  stray[14 + 20 + 2] = 0x9F;  // another client port (the quote's destination)
  send(1, test::build_icmp_error(ip("198.51.100.1"), ip("10.99.0.100"), 3, 4, 1280, stray, 28, port_mac, router_mac));
  for (int q = 0; q < 2; ++q) workers_[q]->poll_once(1000);
  EXPECT_TRUE(sent(0).empty() && sent(1).empty());
  const auto no_flow = [&](int w) {
    return workers_[w]->counters().drops[static_cast<size_t>(DropReason::kIcmpErrorNoFlow)].get();
  };
  EXPECT_EQ(no_flow(0) + no_flow(1), 1u);
  EXPECT_EQ(workers_[0]->counters().handoffs_out[1].get(), 0u) << "not passed back";
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("worker_pipeline_test", "512", "0")) return 1;
  g_pool = l4lb::test::make_test_pool("test_mbufs", 4095);
  if (!g_pool) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_mempool_free(g_pool);
  rte_eal_cleanup();
  return rc;
}
