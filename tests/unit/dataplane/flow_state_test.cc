// The TCP states a flow walks through as seen from the middle of the path,
// and the sequence window RSTs are judged by (flow_state.h). Pure: no EAL.
#include <gtest/gtest.h>

#include "l4lb/dataplane/flow_state.h"

using namespace l4lb::dataplane;

namespace {

constexpr bool kFromClient = false;
constexpr bool kFromBackend = true;

struct Walk {
  FlowState state = FlowState::kSynSent;
  uint8_t flags = 0;
  bool restart = false;
  Walk& step(uint8_t tcp_flags, bool reverse) {
    const TcpStep s = tcp_transition(state, tcp_flags, reverse, flags);
    restart = s.restart;
    state = s.next;
    return *this;
  }
};

TEST(TcpTransition, HandshakeConfirmsOnlyOnTheClientsAck) {
  Walk w;
  w.step(kTcpSyn, kFromClient);
  EXPECT_EQ(w.state, FlowState::kSynSent) << "a retransmitted SYN changes nothing";
  w.step(kTcpSyn | kTcpAck, kFromBackend);
  EXPECT_EQ(w.state, FlowState::kSynRecv);
  EXPECT_FALSE(w.flags & kFlowConfirmed) << "a spoofed SYN gets a SYN-ACK too";
  w.step(kTcpAck, kFromBackend);
  EXPECT_EQ(w.state, FlowState::kSynRecv) << "only the client's ACK proves the client";
  w.step(kTcpAck, kFromClient);
  EXPECT_EQ(w.state, FlowState::kEstablished);
  EXPECT_TRUE(w.flags & kFlowConfirmed);
}

TEST(TcpTransition, MidstreamIsConfirmedByTheBackendsAnswerNotByTheClient) {
  Walk w{FlowState::kMidstream};
  w.step(kTcpAck, kFromClient);
  EXPECT_EQ(w.state, FlowState::kMidstream);
  EXPECT_FALSE(w.flags & kFlowConfirmed);
  w.step(kTcpAck, kFromBackend);
  EXPECT_EQ(w.state, FlowState::kEstablished);
  EXPECT_TRUE(w.flags & kFlowConfirmed);
  // A backend that does not know the connection answers RST instead.
  Walk lost{FlowState::kMidstream};
  lost.step(kTcpRst, kFromBackend);
  EXPECT_EQ(lost.state, FlowState::kClose);
  EXPECT_FALSE(lost.flags & kFlowConfirmed);
}

TEST(TcpTransition, FinsFromBothSidesReachTimeWaitAndRecordWhoClosedFirst) {
  Walk client_first{FlowState::kEstablished, kFlowConfirmed};
  client_first.step(kTcpFin | kTcpAck, kFromClient);
  EXPECT_EQ(client_first.state, FlowState::kFinWait);
  client_first.step(kTcpFin | kTcpAck, kFromClient);
  EXPECT_EQ(client_first.state, FlowState::kFinWait) << "a retransmitted FIN is not the other side's";
  client_first.step(kTcpFin | kTcpAck, kFromBackend);
  EXPECT_EQ(client_first.state, FlowState::kTimeWait);
  EXPECT_FALSE(client_first.flags & kFlowBackendClosedFirst);

  Walk backend_first{FlowState::kEstablished, kFlowConfirmed};
  backend_first.step(kTcpFin | kTcpAck, kFromBackend);
  EXPECT_EQ(backend_first.state, FlowState::kFinWait);
  backend_first.step(kTcpAck, kFromClient);
  EXPECT_EQ(backend_first.state, FlowState::kFinWait);
  backend_first.step(kTcpFin | kTcpAck, kFromClient);
  EXPECT_EQ(backend_first.state, FlowState::kTimeWait);
  EXPECT_TRUE(backend_first.flags & kFlowBackendClosedFirst);
}

TEST(TcpTransition, RstClosesFromAnyState) {
  for (FlowState s : {FlowState::kSynSent, FlowState::kSynRecv, FlowState::kMidstream, FlowState::kEstablished,
                      FlowState::kFinWait, FlowState::kTimeWait, FlowState::kClose}) {
    for (bool reverse : {false, true}) {
      Walk w{s};
      w.step(kTcpRst | kTcpAck, reverse);
      EXPECT_EQ(w.state, FlowState::kClose) << kFlowStateNames[static_cast<int>(s)];
      EXPECT_FALSE(w.restart);
    }
  }
}

TEST(TcpTransition, APureClientSynOnAClosingFlowIsANewConnection) {
  for (FlowState s : {FlowState::kFinWait, FlowState::kTimeWait, FlowState::kClose}) {
    Walk w{s, kFlowConfirmed};
    w.step(kTcpSyn, kFromClient);
    EXPECT_TRUE(w.restart) << kFlowStateNames[static_cast<int>(s)];
    Walk backend{s, kFlowConfirmed};
    backend.step(kTcpSyn, kFromBackend);
    EXPECT_FALSE(backend.restart) << "only the client opens connections";
    Walk syn_ack{s, kFlowConfirmed};
    syn_ack.step(kTcpSyn | kTcpAck, kFromClient);
    EXPECT_FALSE(syn_ack.restart);
  }
  for (FlowState s : {FlowState::kSynSent, FlowState::kSynRecv, FlowState::kEstablished}) {
    Walk w{s};
    w.step(kTcpSyn, kFromClient);
    EXPECT_FALSE(w.restart) << "a SYN on a live flow is a retransmission: " << kFlowStateNames[static_cast<int>(s)];
  }
}

TEST(RstWindow, AcceptsNearTheReceiversLastAckOnly) {
  const uint32_t ack = 0x12345678;  // what the receiver said it expects next
  const uint16_t hi = static_cast<uint16_t>(ack >> 16);
  EXPECT_TRUE(rst_in_window(ack, hi)) << "RFC 5961: exactly rcv_nxt";
  EXPECT_TRUE(rst_in_window(ack - 500000, hi));
  EXPECT_TRUE(rst_in_window(ack + 500000, hi)) << "the receiver's ACK we saw may lag its rcv_nxt";
  EXPECT_FALSE(rst_in_window(ack + 0x200000, hi));
  EXPECT_FALSE(rst_in_window(ack - 0x200000, hi));
  EXPECT_FALSE(rst_in_window(ack ^ 0x80000000u, hi));
  // Across the wrap of the sequence space.
  EXPECT_TRUE(rst_in_window(0x00001000, 0xFFFF));
  EXPECT_TRUE(rst_in_window(0xFFFF0000, 0x0000));
  // Of 2^16 guesses spread over the space a blind attacker makes, 33 land
  // (1 in ~2000).
  uint32_t accepted = 0;
  for (uint32_t guess = 0; guess < (1u << 16); ++guess) accepted += rst_in_window(guess << 16, hi);
  EXPECT_EQ(accepted, uint32_t{2 * kRstWindowUnits + 1});
}

TEST(RstWindow, TheTrackedAckMovesOnlyForwardAndOnlyByPlausibleSteps) {
  uint16_t hi = 0x1000;
  hi = advance_ack_hi(hi, 0x1001FFFF);
  EXPECT_EQ(hi, 0x1001);
  hi = advance_ack_hi(hi, 0x10000000);
  EXPECT_EQ(hi, 0x1001) << "an old ACK does not move it back";
  hi = advance_ack_hi(hi, 0x90000000);
  EXPECT_EQ(hi, 0x1001) << "one spoofed segment far away cannot drag the window to its RST";
  hi = advance_ack_hi(0xFFFF, 0x00050000);
  EXPECT_EQ(hi, 0x0005) << "forward across the wrap";
}

TEST(FlowClock, ElapsedIsWrapSafeAndIgnoresAClockGoingBack) {
  EXPECT_TRUE(flow_clock_elapsed(100, 10, 50));
  EXPECT_FALSE(flow_clock_elapsed(60, 10, 50));
  EXPECT_TRUE(flow_clock_elapsed(5, 0xFFFFFFF0u, 10)) << "across the 32-bit wrap";
  EXPECT_FALSE(flow_clock_elapsed(10, 100, 5)) << "a test clock set back never expires a flow";
  EXPECT_EQ(flow_clock_ticks(86400, 3'000'000'000ull), (86400ull * 3'000'000'000ull) >> kFlowClockShift);
  EXPECT_LT(flow_clock_ticks(86400, 4'000'000'000ull), 1u << 31) << "the longest timeout stays far from the wrap";
}

}  // namespace
