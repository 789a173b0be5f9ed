// l4lb-pktgen's churn segments (packet_builder.h): the frames each end of a
// connection builds are valid, carry a real pair of peers' sequence and
// acknowledgment numbers, and walk l4lbd's TCP states (flow_state.h) from
// syn_sent to time_wait with every sequence number inside the tracked RST
// window. Pure: no EAL; the DUT between the two ends is left out (a NAT
// rewrites addresses and ports, not sequence numbers).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "l4lb/dataplane/flow_state.h"
#include "l4lb/dataplane/packet_parser.h"
#include "packet_builder.h"

using namespace l4lb;
using namespace l4lb::pktgen;
using dataplane::FlowState;
using dataplane::ParsedPacket;

namespace {

constexpr uint16_t kFrame = 64;

// Ones'-complement sum over the IPv4 header, and over the TCP pseudo-header
// and segment: both fold to 0xffff when the checksums are right.
void expect_checksums_valid(const std::vector<uint8_t>& f, const ParsedPacket& p) {
  EXPECT_EQ(csum_fold(csum_partial(f.data() + p.l3_offset, 20)), 0xFFFF);
  const uint32_t l4_len = p.ip_total_length - 20u;
  uint8_t pseudo[12] = {};
  std::memcpy(pseudo, f.data() + p.l3_offset + 12, 8);
  pseudo[9] = kProtoTcp;
  const uint16_t len_wire = htons(static_cast<uint16_t>(l4_len));
  std::memcpy(pseudo + 10, &len_wire, 2);
  EXPECT_EQ(csum_fold(csum_partial(f.data() + p.l4_offset, l4_len, csum_partial(pseudo, 12))), 0xFFFF);
}

struct Templates {
  PacketTemplate syn, ack, fin, data;
  Templates() {
    FrameSpec spec;
    spec.frame_len = kFrame;
    spec.l4_payload = 0;
    spec.tcp_flags = kTcpSyn;
    syn.init(spec);
    spec.tcp_flags = kTcpAck;
    ack.init(spec);
    spec.tcp_flags = kTcpFin | kTcpAck;
    fin.init(spec);
    spec.l4_payload = kFillFrame;
    spec.tcp_flags = kTcpPsh | kTcpAck;
    data.init(spec);
  }
};

// The sequence space a segment occupies: payload, plus one each for SYN
// and FIN.
uint32_t seq_len(const std::vector<uint8_t>& frame, const ParsedPacket& p) {
  const uint32_t doff = (frame[p.l4_offset + 12] >> 4) * 4u;
  return p.ip_total_length - (p.l4_offset - p.l3_offset) - doff + ((p.tcp_flags & kTcpSyn) ? 1 : 0) +
         ((p.tcp_flags & kTcpFin) ? 1 : 0);
}

// The middle of the path: l4lbd's state walk and per-side ACK edges
// (worker.cc's handle_flow_packet, without the NAT).
struct Middle {
  FlowState state = FlowState::kSynSent;
  uint8_t flags = 0;
  uint16_t ack_hi[2] = {0, 0};
  bool known[2] = {false, false};
  void see(const ParsedPacket& p, bool from_backend) {
    if (p.tcp_flags & kTcpAck) {
      uint16_t& hi = ack_hi[from_backend];
      hi = known[from_backend] ? dataplane::advance_ack_hi(hi, p.tcp_ack) : static_cast<uint16_t>(p.tcp_ack >> 16);
      known[from_backend] = true;
    }
    state = dataplane::tcp_transition(state, p.tcp_flags, from_backend, flags).next;
  }
};

struct Wire {
  std::vector<uint8_t> frame = std::vector<uint8_t>(kFrame);
  ParsedPacket p;
  ParsedPacket parse() {
    p = dataplane::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()));
    EXPECT_EQ(p.kind, dataplane::PacketKind::kIpv4);
    expect_checksums_valid(frame, p);
    return p;
  }
  uint32_t ack() const { return tcp_ack_of(frame.data(), p); }
  uint32_t end() const { return p.tcp_seq + seq_len(frame, p); }
};

const Tuple kClient{htonl(0x0A640001), htonl(0x0A630064), htons(1024), htons(8080)};
const Mac kMac{{0x02, 0, 0, 0, 0, 1}};

TEST(ChurnPackets, PureSegmentsCarryNoPayloadAndThePaddingIsNotPartOfIp) {
  Templates t;
  Wire w;
  t.syn.build_tcp(w.frame.data(), kClient, 0x00050000, 0, 0, 0, 5);
  const ParsedPacket p = w.parse();
  EXPECT_EQ(p.ip_total_length, 40);
  EXPECT_EQ(p.tcp_flags, kTcpSyn);
  EXPECT_EQ(p.tcp_seq, 0x00050000u);
  EXPECT_EQ(seq_len(w.frame, p), 1u);
  EXPECT_EQ(t.syn.length(), kFrame);
  Wire d;
  t.data.build_tcp(d.frame.data(), kClient, 0x00050001, 0x12345678, 0, 0, 5);
  const ParsedPacket q = d.parse();
  EXPECT_EQ(q.ip_total_length, kFrame - 14);
  EXPECT_EQ(seq_len(d.frame, q), kFrame - 54u);
  EXPECT_EQ(d.ack(), 0x12345678u);
}

// Both closes, each as the generator plays it: every segment starts where
// the other side acknowledged and acknowledges the other side's end.
void walk(bool backend_first) {
  Templates t;
  Middle mid;
  const uint32_t c_isn = 7u << 16 | 3u << 13;
  const uint32_t b_isn = c_isn ^ 0xFFFF0000u;
  Wire w;
  t.syn.build_tcp(w.frame.data(), kClient, c_isn, 0, 0, 0, 7);
  mid.see(w.parse(), false);
  ASSERT_EQ(mid.state, FlowState::kSynSent);

  answer_tcp_in_place(w.frame.data(), w.p, kMac, kTcpSyn | kTcpAck, b_isn, w.end());  // backend SYN+ACK
  mid.see(w.parse(), true);
  ASSERT_EQ(mid.state, FlowState::kSynRecv);
  EXPECT_EQ(w.ack(), c_isn + 1);

  const uint32_t c_seq = w.ack(), c_ack = w.end();
  t.ack.build_tcp(w.frame.data(), kClient, c_seq, c_ack, 0, 0, 7);  // handshake ACK
  mid.see(w.parse(), false);
  ASSERT_EQ(mid.state, FlowState::kEstablished);
  EXPECT_TRUE(mid.flags & dataplane::kFlowConfirmed);
  t.data.build_tcp(w.frame.data(), kClient, c_seq, c_ack, 0, 0, 7);  // data
  mid.see(w.parse(), false);
  const uint32_t data_len = seq_len(w.frame, w.p);

  answer_tcp_in_place(w.frame.data(), w.p, kMac, kTcpAck | kTcpPsh, w.ack(), w.end());  // data+ACK
  mid.see(w.parse(), true);
  EXPECT_EQ(mid.state, FlowState::kEstablished);
  EXPECT_EQ(w.p.tcp_seq, b_isn + 1);
  EXPECT_EQ(w.ack(), c_isn + 1 + data_len);

  Tuple back{w.p.src_ip, w.p.dst_ip, w.p.src_port, w.p.dst_port};
  if (!backend_first) {
    t.fin.build_tcp(w.frame.data(), kClient, w.ack(), w.end(), 0, 0, 7);  // client FIN
    mid.see(w.parse(), false);
    EXPECT_EQ(mid.state, FlowState::kFinWait);
    answer_tcp_in_place(w.frame.data(), w.p, kMac, kTcpFin | kTcpAck, w.ack(), w.end());  // backend FIN
    mid.see(w.parse(), true);
    EXPECT_EQ(mid.state, FlowState::kTimeWait);
    t.ack.build_tcp(w.frame.data(), kClient, w.ack(), w.end(), 0, 0, 7);  // last ACK
    mid.see(w.parse(), false);
    EXPECT_FALSE(mid.flags & dataplane::kFlowBackendClosedFirst);
  } else {
    t.fin.build_tcp(w.frame.data(), back, w.p.tcp_seq + data_len, w.ack(), 0, 0, 7);  // backend FIN
    // (built from the data+ACK it follows: seq after its payload)
    mid.see(w.parse(), true);
    EXPECT_EQ(mid.state, FlowState::kFinWait);
    EXPECT_TRUE(mid.flags & dataplane::kFlowBackendClosedFirst);
    t.fin.build_tcp(w.frame.data(), kClient, w.ack(), w.end(), 0, 0, 7);  // client FIN+ACK
    mid.see(w.parse(), false);
    EXPECT_EQ(mid.state, FlowState::kTimeWait);
    answer_tcp_in_place(w.frame.data(), w.p, kMac, kTcpAck, w.ack(), w.end());  // backend's last ACK
    mid.see(w.parse(), true);
  }
  EXPECT_EQ(mid.state, FlowState::kTimeWait);
  // Each side's next sequence number is where the other acknowledged, so a
  // RST from either side would be believed: the numbers are consistent.
  EXPECT_EQ(seq_len(w.frame, w.p), 0u);
  const int last = backend_first ? 0 : 1;  // the side that sent the last ACK
  EXPECT_TRUE(dataplane::rst_in_window(w.ack(), mid.ack_hi[last]));
  EXPECT_TRUE(dataplane::rst_in_window(w.p.tcp_seq, mid.ack_hi[1 - last]));
}

TEST(ChurnPackets, ClientFirstCloseWalksToTimeWaitWithConsistentNumbers) { walk(false); }
TEST(ChurnPackets, BackendFirstCloseIsSeenAsTheBackendClosingFirst) { walk(true); }

}  // namespace
