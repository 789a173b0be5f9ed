// Pure fast-path pieces on plain buffers: parser verdicts, checksum
// arithmetic, NAT rewrite, lookup table.
#include <gtest/gtest.h>

#include <random>

#include "../../common/packet_builder.h"
#include "l4lb/common/checksum.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/lookup_table.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/packet_parser.h"

using namespace l4lb;
using namespace l4lb::dataplane;
using test::build_packet;
using test::ip;
using test::PacketSpec;
using test::port;

TEST(PacketParser, ParsesTcpSyn) {
  const auto f = build_packet(PacketSpec{});
  const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
  ASSERT_EQ(p.kind, PacketKind::kIpv4);
  EXPECT_EQ(p.proto, kProtoTcp);
  EXPECT_EQ(p.src_ip, ip("10.99.0.10"));
  EXPECT_EQ(p.dst_ip, ip("10.99.0.100"));
  EXPECT_EQ(p.src_port, port(40000));
  EXPECT_EQ(p.dst_port, port(8080));
  EXPECT_EQ(p.tcp_flags, kTcpSyn);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.l4_offset, 34);
}

TEST(PacketParser, ParsesVlanUdp) {
  PacketSpec s;
  s.vlan = true;
  s.proto = kProtoUdp;
  s.payload = "hello";
  const auto f = build_packet(s);
  const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
  ASSERT_EQ(p.kind, PacketKind::kIpv4);
  EXPECT_EQ(p.l3_offset, 18);
  EXPECT_EQ(p.proto, kProtoUdp);
  EXPECT_EQ(p.dst_port, port(8080));
}

TEST(PacketParser, AcceptsEthernetPadding) {
  auto f = build_packet(PacketSpec{});
  f.resize(f.size() + 6, 0);  // minimum-frame padding after the datagram
  EXPECT_EQ(parse_packet(f.data(), static_cast<uint32_t>(f.size())).kind, PacketKind::kIpv4);
}

TEST(PacketParser, EveryTruncationIsDroppedWithAReason) {
  PacketSpec s;
  s.payload = "abcdef";
  const auto f = build_packet(s);
  // Any prefix shorter than the IPv4 total length is malformed; the parser
  // must say so without reading past `len` (ASan builds check the reads).
  for (size_t len = 0; len < f.size(); ++len) {
    std::vector<uint8_t> cut(f.begin(), f.begin() + static_cast<long>(len));
    const ParsedPacket p = parse_packet(cut.data(), static_cast<uint32_t>(len));
    EXPECT_EQ(p.kind, PacketKind::kDrop) << "len " << len;
    EXPECT_NE(p.drop, DropReason::kCount) << "len " << len;
  }
}

struct MalformedCase {
  const char* name;
  void (*mutate)(std::vector<uint8_t>&);
  DropReason expected;
};

TEST(PacketParser, MalformedTable) {
  const MalformedCase cases[] = {
      {"ip version 6 in ipv4 ethertype", [](auto& f) { f[14] = 0x65; }, DropReason::kBadIpVersion},
      {"ihl 4", [](auto& f) { f[14] = 0x44; }, DropReason::kBadIhl},
      {"ihl 6 (options)", [](auto& f) { f[14] = 0x46; }, DropReason::kIpOptions},
      {"total length > frame", [](auto& f) { f[16] = 0x05; }, DropReason::kBadIpLength},
      {"total length < ihl", [](auto& f) { f[16] = 0; f[17] = 10; }, DropReason::kBadIpLength},
      {"more fragments, 20 bytes (not a multiple of 8)", [](auto& f) { f[20] = 0x20; }, DropReason::kBadFragment},
      {"empty fragment", [](auto& f) { f[16] = 0; f[17] = 20; f[20] = 0x20; }, DropReason::kBadFragment},
      {"fragment ending past 65535", [](auto& f) { f[20] = 0x1F; f[21] = 0xFF; }, DropReason::kFragmentOversized},
      {"tcp data offset 4", [](auto& f) { f[46] = 0x40; }, DropReason::kBadTcpOffset},
      {"tcp data offset past end", [](auto& f) { f[46] = 0xF0; }, DropReason::kBadTcpOffset},
      {"unknown ethertype", [](auto& f) { f[12] = 0x88; f[13] = 0xCC; }, DropReason::kUnsupportedEthertype},
  };
  for (const auto& c : cases) {
    auto f = build_packet(PacketSpec{});
    c.mutate(f);
    const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
    EXPECT_EQ(p.kind, PacketKind::kDrop) << c.name;
    EXPECT_EQ(p.drop, c.expected) << c.name << ": got " << drop_reason_name(p.drop);
  }
  PacketSpec udp;
  udp.proto = kProtoUdp;
  auto f = build_packet(udp);
  f[38] = 0;
  f[39] = 4;  // UDP length below its header
  EXPECT_EQ(parse_packet(f.data(), static_cast<uint32_t>(f.size())).drop, DropReason::kBadUdpLength);
}

TEST(PacketParser, ArpIsRecognised) {
  auto f = build_packet(PacketSpec{});
  f[12] = 0x08;
  f[13] = 0x06;
  EXPECT_EQ(parse_packet(f.data(), static_cast<uint32_t>(f.size())).kind, PacketKind::kArp);
}

TEST(Checksum, IncrementalMatchesFullRecomputation) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    uint8_t buf[20];
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    buf[10] = buf[11] = 0;
    uint16_t sum = htons(test::full_checksum(buf, 20));
    std::memcpy(buf + 10, &sum, 2);
    uint32_t old_addr, new_addr = static_cast<uint32_t>(rng());
    std::memcpy(&old_addr, buf + 12, 4);
    sum = csum_update32(sum, old_addr, new_addr);
    std::memcpy(buf + 12, &new_addr, 4);
    std::memcpy(buf + 10, &sum, 2);
    ASSERT_EQ(test::full_checksum(buf, 20), 0) << "iteration " << i;
  }
}

TEST(NatRewrite, TcpAndUdpChecksumsVerifyAfterRewrite) {
  for (uint8_t proto : {kProtoTcp, kProtoUdp}) {
    PacketSpec s;
    s.proto = proto;
    s.payload = "some payload bytes";
    auto f = build_packet(s);
    ASSERT_TRUE(test::checksums_valid(f.data(), f.size()));
    const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
    rewrite_ipv4_tuple(f.data(), p, Ipv4Tuple{ip("10.99.0.1"), ip("10.99.0.21"), port(10240), port(80)});
    EXPECT_TRUE(test::checksums_valid(f.data(), f.size())) << int(proto);
    const ParsedPacket q = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
    EXPECT_EQ(q.src_ip, ip("10.99.0.1"));
    EXPECT_EQ(q.dst_ip, ip("10.99.0.21"));
    EXPECT_EQ(q.src_port, port(10240));
    EXPECT_EQ(q.dst_port, port(80));
  }
}

TEST(NatRewrite, RandomTuplesAndPayloadsVerify) {
  // All four fields change at once in one folded sum: random values (and the
  // all-zero / all-ones words where carries wrap) must still verify.
  std::mt19937 rng(11);
  const uint32_t edge[] = {0, 0xFFFFFFFF, 0x0000FFFF, 0xFFFF0000};
  for (int i = 0; i < 4000; ++i) {
    PacketSpec s;
    s.proto = (i & 1) ? kProtoTcp : kProtoUdp;
    s.payload.assign(static_cast<size_t>(rng() % 40), static_cast<char>(rng()));
    auto f = build_packet(s);
    const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
    auto pick = [&] { return (rng() % 8 == 0) ? edge[rng() % 4] : static_cast<uint32_t>(rng()); };
    const Ipv4Tuple to{pick(), pick(), static_cast<uint16_t>(pick()), static_cast<uint16_t>(pick())};
    rewrite_ipv4_tuple(f.data(), p, to);
    ASSERT_TRUE(test::checksums_valid(f.data(), f.size())) << "iteration " << i;
  }
}

TEST(NatRewrite, UdpWithoutChecksumStaysWithout) {
  PacketSpec s;
  s.proto = kProtoUdp;
  s.udp_zero_checksum = true;
  auto f = build_packet(s);
  const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
  rewrite_ipv4_tuple(f.data(), p, Ipv4Tuple{ip("1.2.3.4"), ip("5.6.7.8"), port(1), port(2)});
  EXPECT_EQ(f[40], 0);
  EXPECT_EQ(f[41], 0);
  EXPECT_TRUE(test::checksums_valid(f.data(), f.size()));
}

TEST(LookupTable, AddressesOfOneSubnetDoNotShareAProbeChain) {
  // Wire-order addresses of a /24 differ only in their top byte as loaded
  // on a little-endian host: the hash must still spread them.
  LookupTable services, addresses;
  for (uint32_t host = 1; host <= 64; ++host) {
    const uint32_t wire = ip("10.99.1.0") | (host << 24);
    ASSERT_TRUE(services.insert(service_key(wire, port(8080), kProtoTcp), host));
    ASSERT_TRUE(addresses.insert(address_key(wire), host));
  }
  EXPECT_LE(services.longest_probe(), 8u);
  EXPECT_LE(addresses.longest_probe(), 8u);
  for (uint32_t host = 1; host <= 64; ++host)
    EXPECT_EQ(services.find(service_key(ip("10.99.1.0") | (host << 24), port(8080), kProtoTcp)), host);
}

TEST(LookupTable, FindsWhatWasInsertedAndNothingElse) {
  LookupTable t;
  for (uint32_t i = 0; i < 1000; ++i) ASSERT_TRUE(t.insert(service_key(i * 7919, static_cast<uint16_t>(i), 6), i));
  EXPECT_FALSE(t.insert(service_key(0, 0, 6), 5));
  for (uint32_t i = 0; i < 1000; ++i) EXPECT_EQ(t.find(service_key(i * 7919, static_cast<uint16_t>(i), 6)), i);
  EXPECT_EQ(t.find(service_key(1, 1, 6)), LookupTable::kNotFound);
  EXPECT_EQ(t.find(service_key(0, 0, 17)), LookupTable::kNotFound);
}

TEST(FlowHash, IsStableAcrossRunsAndMachines) {
  // Golden values: a change here changes which backend every flow maps to.
  // Computed independently (Python model of the documented hash).
  EXPECT_EQ(maglev_flow_hash(ip("10.99.0.10"), port(40000), ip("10.99.0.100"), port(8080), 6),
            0x57D6BF78D27CFCF2ull);
  EXPECT_EQ(fmix64(0), 0u);
  EXPECT_EQ(fmix64(1), 0xB456BCFC34C2CB2Cull);
}
