// Where a packet goes (classify.h), rule by rule and in the order DESIGN §3
// states. Pure: a hand-built snapshot, parsed packets from the test packet
// builder, no EAL.
#include <gtest/gtest.h>

#include "../../common/packet_builder.h"
#include "l4lb/dataplane/classify.h"

using namespace l4lb::dataplane;
using l4lb::test::build_packet;
using l4lb::test::ip;
using l4lb::test::PacketSpec;
using l4lb::test::port;

namespace {

class Classify : public ::testing::Test {
 protected:
  // Appliance 10.99.0.1 (also the SNAT address), gateway 10.99.0.254;
  // FNAT VIP 10.99.0.100:8080/tcp, DNAT VIP 10.99.0.101:9090/tcp with
  // backend 10.99.0.31:9090; backends 10.99.0.21-23:80.
  void SetUp() override {
    snap_.addresses.insert(address_key(ip("10.99.0.1")), kAddressOwn);
    snap_.addresses.insert(address_key(ip("10.99.0.100")), kAddressVip);
    snap_.addresses.insert(address_key(ip("10.99.0.101")), kAddressVip);
    snap_.snat_slot_by_address.insert(address_key(ip("10.99.0.1")), 0);
    snap_.snat_addresses[0] = ip("10.99.0.1");
    for (const char* a : {"10.99.0.21", "10.99.0.22", "10.99.0.23", "10.99.0.31", "10.99.0.254"})
      snap_.control_sources.insert(address_key(ip(a)), 1);
    SnapshotVip fnat;
    fnat.ip = ip("10.99.0.100");
    fnat.port = port(8080);
    fnat.proto = kProtoTcp;
    SnapshotVip dnat = fnat;
    dnat.ip = ip("10.99.0.101");
    dnat.port = port(9090);
    dnat.mode = NatMode::kDnat;
    snap_.vips = {fnat, dnat};
    snap_.vip_by_service.insert(service_key(fnat.ip, fnat.port, kProtoTcp), 0);
    snap_.vip_by_service.insert(service_key(dnat.ip, dnat.port, kProtoTcp), 1);
    snap_.dnat_vip_by_backend.insert(service_key(ip("10.99.0.31"), port(9090), kProtoTcp), 1);
  }

  Classification of(const PacketSpec& s, uint32_t workers = 1) {
    frame_ = build_packet(s);
    parsed_ = parse_packet(frame_.data(), static_cast<uint32_t>(frame_.size()));
    return classify(snap_, parsed_, partition_, workers);
  }
  static PacketSpec from(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                         uint8_t proto = kProtoTcp) {
    PacketSpec s;
    s.src_ip = ip(src);
    s.dst_ip = ip(dst);
    s.src_port = port(sport);
    s.dst_port = port(dport);
    s.proto = proto;
    return s;
  }

  Snapshot snap_;
  SnatPartition partition_{10240, 32767, 1};
  std::vector<uint8_t> frame_;
  ParsedPacket parsed_;
};

TEST_F(Classify, AVipServiceIsTheForwardDirection) {
  const auto c = of(from("10.99.0.10", 40000, "10.99.0.100", 8080));
  EXPECT_EQ(c.verdict, Verdict::kForward);
  EXPECT_EQ(c.vip, 0u);
  EXPECT_EQ(c.owner, kAnyOwner) << "FNAT: the receiving worker owns new flows";
}

TEST_F(Classify, ARepliesToAnSnatPortIsReverseEvenOnTheAppliancesOwnAddress) {
  const auto c = of(from("10.99.0.21", 80, "10.99.0.1", 12000), 2);
  EXPECT_EQ(c.verdict, Verdict::kReverse);
  EXPECT_EQ(c.owner, partition_.owner(12000));
}

TEST_F(Classify, ProbeAnswersToTheApplianceAreControlTrafficEvenFromADnatBackend) {
  // The kernel's probe came from an ephemeral port outside the SNAT range.
  const auto tcp_probe = of(from("10.99.0.21", 80, "10.99.0.1", 45000));
  EXPECT_EQ(tcp_probe.verdict, Verdict::kControl);
  // A DNAT backend's answer to the appliance's own probe is not DNAT reply
  // traffic (it was once dropped as reverse_no_flow and every probe failed).
  const auto dnat_probe = of(from("10.99.0.31", 9090, "10.99.0.1", 45001));
  EXPECT_EQ(dnat_probe.verdict, Verdict::kControl);
}

TEST_F(Classify, OtherTrafficToTheApplianceIsBestEffortSlowPath) {
  EXPECT_EQ(of(from("10.99.0.10", 40000, "10.99.0.1", 22)).verdict, Verdict::kSlowPath);
  EXPECT_EQ(of(from("10.99.0.10", 40000, "10.99.0.1", 45000)).verdict, Verdict::kSlowPath);
  PacketSpec ping = from("10.99.0.10", 0, "10.99.0.1", 0, kProtoIcmp);
  EXPECT_EQ(of(ping).verdict, Verdict::kSlowPath);
}

TEST_F(Classify, ArpIsControl) {
  auto arp = build_packet(PacketSpec{});
  arp[12] = 0x08;
  arp[13] = 0x06;
  const ParsedPacket p = parse_packet(arp.data(), static_cast<uint32_t>(arp.size()));
  EXPECT_EQ(classify(snap_, p, partition_, 1).verdict, Verdict::kControl);
}

TEST_F(Classify, DnatRepliesAreReverseOnTheClientHashOwner) {
  const auto c = of(from("10.99.0.31", 9090, "10.98.0.10", 40000), 4);
  EXPECT_EQ(c.verdict, Verdict::kReverse);
  EXPECT_EQ(c.owner, dnat_owner(ip("10.98.0.10"), port(40000), 4));
  const auto f = of(from("10.98.0.10", 40000, "10.99.0.101", 9090), 4);
  EXPECT_EQ(f.verdict, Verdict::kForward);
  EXPECT_EQ(f.owner, c.owner) << "both directions on one worker";
}

TEST_F(Classify, AVipAddressOnAPortNobodyServesIsAClosedPortNeverTheKernel) {
  EXPECT_EQ(of(from("10.99.0.10", 40000, "10.99.0.100", 2222)).verdict, Verdict::kClosedPort);
  EXPECT_EQ(of(from("10.99.0.10", 40000, "10.99.0.100", 8080, kProtoUdp)).verdict, Verdict::kClosedPort)
      << "the service is TCP only";
  EXPECT_EQ(of(from("10.99.0.10", 40000, "10.99.0.101", 22)).verdict, Verdict::kClosedPort);
  PacketSpec ping = from("10.99.0.10", 0, "10.99.0.100", 0, kProtoIcmp);
  EXPECT_EQ(of(ping).verdict, Verdict::kSlowPath) << "the kernel answers echo to a VIP";
}

TEST_F(Classify, HostileSourcesAreDroppedBeforeAnyDestinationRule) {
  EXPECT_EQ(of(from("10.99.0.100", 1, "10.99.0.1", 22)).drop, DropReason::kSpoofedSource);
  EXPECT_EQ(of(from("10.99.0.1", 1, "10.99.0.100", 8080)).drop, DropReason::kSpoofedSource);
  EXPECT_EQ(of(from("127.0.0.1", 1, "10.99.0.100", 8080)).drop, DropReason::kBadSourceAddress);
  EXPECT_EQ(of(from("224.0.0.1", 1, "10.99.0.100", 8080)).drop, DropReason::kBadSourceAddress);
  EXPECT_EQ(of(from("10.99.0.50", 1, "10.99.0.50", 8080)).drop, DropReason::kLand);
}

TEST_F(Classify, AnythingElseIsNotForUs) {
  const auto c = of(from("10.99.0.10", 40000, "192.0.2.1", 80));
  EXPECT_EQ(c.verdict, Verdict::kDrop);
  EXPECT_EQ(c.drop, DropReason::kNotForUs);
  // An SNAT-range port on an address that is not an SNAT address.
  EXPECT_EQ(of(from("10.99.0.21", 80, "10.99.0.77", 12000)).drop, DropReason::kNotForUs);
}

}  // namespace
