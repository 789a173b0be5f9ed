// IPv4 fragments through the real worker (DESIGN §3 step 2a): the first
// fragment is balanced and translated, the later ones follow it whatever
// their order, and every way a datagram can go wrong is dropped, counted
// and freed. Outputs are checked by reassembling them and verifying the
// checksums from scratch.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "pipeline_fixture.h"
#include "test_eal.h"

using namespace l4lb;
using namespace l4lb::dataplane;
using test::build_packet;
using test::fragment_frame;
using test::ip;
using test::kSecond;
using test::PacketSpec;
using test::Pipeline;
using test::port;
using test::reply_to;
using test::reassemble_frames;
using test::TwoWorkers;

namespace {

using Frames = std::vector<std::vector<uint8_t>>;

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
  return s;
}

// A UDP datagram from the test client to the UDP VIP (10.99.0.100:53),
// carrying `bytes` of payload, as 1480-byte fragments (MTU 1500).
Frames datagram_to_vip(size_t bytes, uint16_t client_port = 40000, uint16_t id = 0x1234) {
  PacketSpec s;
  s.proto = kProtoUdp;
  s.dst_port = port(53);
  s.src_port = port(client_port);
  s.payload = pattern(bytes);
  auto whole = build_packet(s);
  whole[18] = static_cast<uint8_t>(id >> 8);
  whole[19] = static_cast<uint8_t>(id);
  return fragment_frame(whole, 1480);
}

// An unfragmented one on the same flow.
PacketSpec small_datagram_to_vip() {
  PacketSpec s;
  s.proto = kProtoUdp;
  s.dst_port = port(53);
  s.payload = "hello";
  return s;
}

class Fragments : public Pipeline {
 protected:
  uint64_t counter(const Counter WorkerCounters::*c) const { return (worker_->counters().*c).get(); }

  // Several frames in one rx burst.
  void send_burst(const Frames& frames, uint64_t now = 1000) {
    for (const auto& f : frames) {
      rte_mbuf* m = rte_pktmbuf_alloc(test::g_pool);
      ASSERT_NE(m, nullptr);
      std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())), f.data(), f.size());
      ASSERT_EQ(rte_ring_enqueue(rx_, m), 0);
    }
    worker_->poll_once(now);
  }

  Frames all_sent() {
    Frames out;
    for (auto f = sent(); !f.empty(); f = sent()) out.push_back(std::move(f));
    return out;
  }

  // Every sent fragment carries the first's Ethernet header and addresses,
  // and a valid header checksum; together they make the translated datagram.
  std::vector<uint8_t> check_and_reassemble(const Frames& out) {
    EXPECT_FALSE(out.empty());
    if (out.empty()) return {};
    for (const auto& f : out) {
      EXPECT_TRUE(std::equal(f.begin(), f.begin() + 14, out[0].begin())) << "same Ethernet header";
      EXPECT_TRUE(std::equal(f.begin() + 26, f.begin() + 34, out[0].begin() + 26)) << "same addresses";
      EXPECT_EQ(test::full_checksum(f.data() + 14, 20), 0) << "IPv4 header checksum";
    }
    const auto whole = reassemble_frames(out);
    EXPECT_FALSE(whole.empty()) << "a piece is missing";
    if (!whole.empty()) {
      EXPECT_TRUE(test::checksums_valid(whole.data(), whole.size())) << "UDP checksum over the datagram";
    }
    return whole;
  }
};

TEST_F(Fragments, InOrderFragmentsFollowTheFirstToItsBackend) {
  const Frames in = datagram_to_vip(4000);
  ASSERT_EQ(in.size(), 3u);
  send_burst(in);
  const Frames out = all_sent();
  ASSERT_EQ(out.size(), 3u);
  const auto whole = check_and_reassemble(out);
  const ParsedPacket p = parse(whole);
  EXPECT_EQ(p.src_ip, ip("10.99.0.1")) << "SNAT address";
  EXPECT_EQ(p.dst_port, port(80));
  EXPECT_EQ(whole.size(), 14u + 20 + 8 + 4000);
  EXPECT_EQ(counter(&WorkerCounters::fragment_datagrams), 1u);
  EXPECT_EQ(counter(&WorkerCounters::fragments_followed), 2u);
  EXPECT_EQ(counter(&WorkerCounters::forward_packets), 3u);
  EXPECT_EQ(worker_->counters().vips[1].forward_packets.get(), 3u) << "every fragment counts to the VIP";
  EXPECT_EQ(worker_->flows().active(), 1u);
  EXPECT_EQ(worker_->fragments().size(), 0u) << "a complete datagram leaves the table";
}

TEST_F(Fragments, EarlyFragmentsWaitForTheFirstThenFollowInArrivalOrder) {
  const Frames in = datagram_to_vip(9000);
  ASSERT_EQ(in.size(), 7u);
  // Everything but the first, last to second, one per burst.
  for (size_t i = in.size() - 1; i >= 1; --i) {
    send_burst({in[i]});
    EXPECT_TRUE(sent().empty()) << "nothing leaves before the first fragment";
  }
  EXPECT_EQ(counter(&WorkerCounters::fragments_held), 6u);
  send_burst({in[0]});
  const Frames out = all_sent();
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(out[0][20] & 0x1F, 0) << "the first fragment leaves first";
  EXPECT_EQ(out[1].size(), in[6].size()) << "then the held ones, in the order they came";
  const auto whole = check_and_reassemble(out);
  EXPECT_EQ(whole.size(), 14u + 20 + 8 + 9000);
  EXPECT_EQ(counter(&WorkerCounters::fragments_held), 0u);
  EXPECT_EQ(counter(&WorkerCounters::fragments_followed), 6u);
  EXPECT_EQ(worker_->fragments().size(), 0u);
}

TEST_F(Fragments, FragmentsOfAFlowReachTheBackendItsWholePacketsReach) {
  send(build_packet(small_datagram_to_vip()));
  const auto first = sent();
  ASSERT_FALSE(first.empty());
  send_burst(datagram_to_vip(4000));
  const auto whole = check_and_reassemble(all_sent());
  EXPECT_EQ(parse(whole).dst_ip, parse(first).dst_ip);
  EXPECT_EQ(parse(whole).src_port, parse(first).src_port) << "same flow, same SNAT port";
  EXPECT_EQ(worker_->counters().flows_created.get(), 1u);
}

TEST_F(Fragments, AFragmentedReplyGoesBackToTheClientFromTheVip) {
  send(build_packet(small_datagram_to_vip()));
  const auto fwd = sent();
  ASSERT_FALSE(fwd.empty());
  auto reply = reply_to(fwd, 0, pattern(4000));
  reply[18] = 0x77;  // IP id
  const Frames in = fragment_frame(reply, 1480);
  send_burst({in[2], in[0], in[1]});
  const auto whole = check_and_reassemble(all_sent());
  const ParsedPacket p = parse(whole);
  EXPECT_EQ(p.src_ip, ip("10.99.0.100"));
  EXPECT_EQ(p.src_port, port(53));
  EXPECT_EQ(p.dst_ip, ip("10.99.0.10"));
  EXPECT_EQ(p.dst_port, port(40000));
  EXPECT_EQ(counter(&WorkerCounters::reverse_packets), 3u);
}

TEST_F(Fragments, AnOverlapDropsTheDatagramWithWhatItHeld) {
  Frames in = datagram_to_vip(4000);
  send_burst({in[2], in[1]});
  auto overlapping = in[1];
  overlapping[21] = static_cast<uint8_t>(overlapping[21] - 1);  // 8 bytes earlier: into the first
  overlapping[24] = overlapping[25] = 0;
  const uint16_t sum = test::full_checksum(overlapping.data() + 14, 20);
  overlapping[24] = static_cast<uint8_t>(sum >> 8);
  overlapping[25] = static_cast<uint8_t>(sum);
  send_burst({in[0]});
  EXPECT_EQ(all_sent().size(), 3u) << "a well-formed datagram so far";
  const Frames second = datagram_to_vip(4000, 40000, 0x4321);
  send_burst({second[1], second[2]});
  overlapping[18] = 0x43;
  overlapping[19] = 0x21;
  overlapping[24] = overlapping[25] = 0;
  const uint16_t sum2 = test::full_checksum(overlapping.data() + 14, 20);
  overlapping[24] = static_cast<uint8_t>(sum2 >> 8);
  overlapping[25] = static_cast<uint8_t>(sum2);
  send_burst({overlapping});
  EXPECT_EQ(drops(DropReason::kFragmentOverlap), 3u) << "the overlapping one and the two it found held";
  send_burst({second[0]});
  EXPECT_TRUE(all_sent().empty()) << "nothing of a datagram dropped for an overlap goes on";
  EXPECT_EQ(drops(DropReason::kFragmentOfDropped), 1u);
  EXPECT_EQ(counter(&WorkerCounters::fragments_held), 0u);
}

TEST_F(Fragments, HeldFragmentsExpireAndAreFreed) {
  const Frames in = datagram_to_vip(4000);
  send_burst({in[1], in[2]}, 1000);
  EXPECT_EQ(counter(&WorkerCounters::fragments_held), 2u);
  worker_->poll_once(1000 + kSecond);
  EXPECT_EQ(drops(DropReason::kFragmentTimeout), 0u);
  worker_->poll_once(1000 + static_cast<uint64_t>(kFragmentTimeoutSeconds * kSecond));
  EXPECT_EQ(drops(DropReason::kFragmentTimeout), 2u);
  EXPECT_EQ(counter(&WorkerCounters::fragments_held), 0u);
  EXPECT_EQ(worker_->fragments().size(), 0u);
  // The first fragment, late, starts a datagram of its own and goes on.
  send_burst({in[0]}, 1000 + 3 * kSecond);
  EXPECT_EQ(all_sent().size(), 1u);
}

TEST_F(Fragments, AFullTableEvictsTheOldestDatagram) {
  TearDown();
  fragment_datagrams_ = 2;
  start(config::TcpMissPolicy::kForward);
  for (uint16_t id = 1; id <= 3; ++id) send_burst({datagram_to_vip(4000, 40000, id)[1]}, 1000 + id);
  EXPECT_EQ(drops(DropReason::kFragmentTableFull), 1u) << "datagram 1's held fragment";
  EXPECT_EQ(worker_->fragments().size(), 2u);
  EXPECT_EQ(counter(&WorkerCounters::fragments_held), 2u);
}

TEST_F(Fragments, WhenTheFirstIsRefusedTheRestAreDroppedToo) {
  // A UDP port the VIP does not serve (closed_vip_ports: drop): the first
  // fragment is dropped, the others have nowhere to go.
  PacketSpec s;
  s.proto = kProtoUdp;
  s.dst_port = port(54);
  s.payload = pattern(3000);
  const Frames in = fragment_frame(build_packet(s), 1480);
  send_burst({in[2], in[0], in[1]});
  EXPECT_TRUE(all_sent().empty());
  EXPECT_EQ(drops(DropReason::kClosedVipPort), 1u);
  EXPECT_EQ(drops(DropReason::kFragmentOfDropped), 2u);
  EXPECT_EQ(worker_->fragments().size(), 0u) << "complete, even if dropped";
}

TEST_F(Fragments, FragmentsToTheApplianceGoToTheKernelWhole) {
  PacketSpec ping;
  ping.proto = kProtoIcmp;
  ping.dst_ip = ip("10.99.0.1");  // the appliance's own address
  ping.payload = pattern(3000);
  send_burst(fragment_frame(build_packet(ping), 1480));
  EXPECT_EQ(counter(&WorkerCounters::slow_path_packets), 3u) << "the kernel reassembles its own";
  EXPECT_TRUE(sent().empty());
}

TEST_F(Fragments, AFirstFragmentMustHoldTheWholeTcpHeader) {
  PacketSpec s;
  s.payload = pattern(100);
  const Frames tiny = fragment_frame(build_packet(s), 16);  // 16 bytes: the TCP header cut
  send_burst({tiny[0]});
  EXPECT_EQ(drops(DropReason::kTruncatedL4), 1u);
  EXPECT_TRUE(sent().empty());
}

// Fragments land on both queues; they meet on the datagram's tracker, and
// the datagram leaves from the DNAT flow's owner, once.
class TwoWorkerFragments : public TwoWorkers {};

TEST_F(TwoWorkerFragments, FragmentsOnBothQueuesLeaveOnceFromTheFlowsOwner) {
  PacketSpec s;
  s.proto = kProtoUdp;
  s.dst_port = port(9091);  // the fixture's UDP DNAT VIP
  s.payload = pattern(4000);
  const Frames in = fragment_frame(build_packet(s), 1480);
  send(1, in[2]);
  send(0, in[0]);
  send(1, in[1]);
  for (int round = 0; round < 3; ++round)
    for (int q = 0; q < 2; ++q) workers_[q]->poll_once(1000);
  const uint32_t owner = dnat_owner(s.src_ip, s.src_port, 2);
  Frames out;
  for (auto f = sent(static_cast<int>(owner)); !f.empty(); f = sent(static_cast<int>(owner))) out.push_back(f);
  EXPECT_TRUE(sent(1 - static_cast<int>(owner)).empty()) << "only the flow's owner sends";
  ASSERT_EQ(out.size(), 3u);
  const auto whole = reassemble_frames(out);
  ASSERT_FALSE(whole.empty());
  EXPECT_TRUE(test::checksums_valid(whole.data(), whole.size()));
  EXPECT_EQ(parse(whole).dst_ip, ip("10.99.0.31"));
  EXPECT_EQ(parse(whole).dst_port, port(9091));
  EXPECT_EQ(parse(whole).src_ip, ip("10.99.0.10")) << "DNAT keeps the client's address";
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (!l4lb::test::start_test_eal("worker_fragment_test", "512", "0")) return 1;
  test::g_pool = l4lb::test::make_test_pool("test_mbufs", 4095);
  if (!test::g_pool) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_mempool_free(test::g_pool);
  rte_eal_cleanup();
  return rc;
}
