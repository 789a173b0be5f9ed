// IPv6 parsing (DESIGN §3 step 2): the extension-header chain is walked
// within bounds to the upper-layer header, fragments are recognised, and
// every malformed or refused packet gets one drop reason.
#include <gtest/gtest.h>

#include "../../common/packet_builder.h"
#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::dataplane {
namespace {

using test::build_packet6;
using test::Ipv6Spec;
using test::ipv6_fragment;
using test::ipv6_options;
using test::port;

ParsedPacket parse(const std::vector<uint8_t>& f) { return parse_packet(f.data(), static_cast<uint32_t>(f.size())); }

TEST(Ipv6Parser, TcpUdpAndIcmpv6HeadersAreRead) {
  Ipv6Spec tcp;
  tcp.payload = "hello";
  const ParsedPacket t = parse(build_packet6(tcp));
  ASSERT_EQ(t.kind, PacketKind::kIpv6) << drop_reason_name(t.drop);
  EXPECT_EQ(t.proto, kProtoTcp);
  EXPECT_EQ(t.l3_offset, 14);
  EXPECT_EQ(t.l4_offset, 54);
  EXPECT_EQ(t.ip_total_length, 40 + 20 + 5);
  EXPECT_EQ(t.src_port, port(40000));
  EXPECT_EQ(t.dst_port, port(8080));
  EXPECT_EQ(t.tcp_flags, kTcpSyn);
  EXPECT_FALSE(t.is_fragment());

  Ipv6Spec udp;
  udp.proto = kProtoUdp;
  udp.dst_port = port(53);
  const ParsedPacket u = parse(build_packet6(udp));
  ASSERT_EQ(u.kind, PacketKind::kIpv6);
  EXPECT_EQ(u.dst_port, port(53));

  Ipv6Spec ns;
  ns.proto = kProtoIcmpv6;
  ns.icmp_type = 135;  // neighbour solicitation
  ns.payload = std::string(16, '\0');
  const ParsedPacket n = parse(build_packet6(ns));
  ASSERT_EQ(n.kind, PacketKind::kIpv6);
  EXPECT_EQ(n.icmp_type, 135);
}

TEST(Ipv6Parser, ExtensionHeadersAreWalkedToTheUpperLayer) {
  Ipv6Spec s;
  s.extensions = {{kIpv6HopByHop, ipv6_options(1)},
                  {kIpv6DestinationOptions, ipv6_options(2)},
                  {kIpv6Routing, ipv6_options(1)},  // segments left 0: already at its end
                  {kIpv6DestinationOptions, ipv6_options(1)}};
  const ParsedPacket p = parse(build_packet6(s));
  ASSERT_EQ(p.kind, PacketKind::kIpv6) << drop_reason_name(p.drop);
  EXPECT_EQ(p.proto, kProtoTcp);
  EXPECT_EQ(p.l4_offset, 14 + 40 + 8 + 16 + 8 + 8);
  EXPECT_EQ(p.dst_port, port(8080));
}

TEST(Ipv6Parser, RefusedChainsAreDroppedByReason) {
  struct Case {
    const char* name;
    std::vector<std::pair<uint8_t, std::vector<uint8_t>>> extensions;
    DropReason reason;
  };
  auto routing_with_segments_left = ipv6_options(1);
  routing_with_segments_left[2] = 1;
  const Case cases[] = {
      {"hop-by-hop not first", {{kIpv6DestinationOptions, ipv6_options(1)}, {kIpv6HopByHop, ipv6_options(1)}},
       DropReason::kIpv6ExtensionHeaders},
      {"routing header with a segment left", {{kIpv6Routing, routing_with_segments_left}}, DropReason::kIpv6RoutingHeader},
      {"two fragment headers", {{kIpv6Fragment, ipv6_fragment(0, true)}, {kIpv6Fragment, ipv6_fragment(0, true)}},
       DropReason::kIpv6ExtensionHeaders},
      {"nine headers", std::vector<std::pair<uint8_t, std::vector<uint8_t>>>(9, {kIpv6DestinationOptions, ipv6_options(1)}),
       DropReason::kIpv6ExtensionHeaders},
  };
  for (const auto& c : cases) {
    Ipv6Spec s;
    s.extensions = c.extensions;
    const ParsedPacket p = parse(build_packet6(s));
    EXPECT_EQ(p.kind, PacketKind::kDrop) << c.name;
    EXPECT_EQ(p.drop, c.reason) << c.name << ": got " << drop_reason_name(p.drop);
  }
  Ipv6Spec eight;
  eight.extensions.assign(8, {kIpv6DestinationOptions, ipv6_options(1)});
  EXPECT_EQ(parse(build_packet6(eight)).kind, PacketKind::kIpv6) << "eight is the limit";
}

TEST(Ipv6Parser, BadHeadersAndLengths) {
  const auto good = build_packet6(Ipv6Spec{});
  auto version4 = good;
  version4[14] = 0x40;
  EXPECT_EQ(parse(version4).drop, DropReason::kBadIpVersion);
  auto too_long = good;
  too_long[19] = static_cast<uint8_t>(too_long[19] + 1);
  EXPECT_EQ(parse(too_long).drop, DropReason::kBadIpLength);
  auto jumbo = good;
  jumbo[18] = jumbo[19] = 0;
  EXPECT_EQ(parse(jumbo).drop, DropReason::kBadIpLength);
  // An extension header whose length runs past the payload.
  Ipv6Spec s;
  s.extensions = {{kIpv6DestinationOptions, ipv6_options(1)}};
  auto overlong = build_packet6(s);
  overlong[14 + 40 + 1] = 200;
  EXPECT_EQ(parse(overlong).drop, DropReason::kIpv6ExtensionHeaders);
  // Every cut of a packet with a chain is dropped, with a reason.
  s.extensions = {{kIpv6HopByHop, ipv6_options(1)}, {kIpv6Fragment, ipv6_fragment(0, true)}};
  s.payload = std::string(16, 'x');
  const auto chained = build_packet6(s);
  for (size_t len = 0; len < chained.size(); ++len) {
    const ParsedPacket p = parse_packet(chained.data(), static_cast<uint32_t>(len));
    EXPECT_EQ(p.kind, PacketKind::kDrop) << "len " << len;
    EXPECT_NE(p.drop, DropReason::kCount) << "len " << len;
  }
  EXPECT_EQ(parse_packet(chained.data(), 14 + 39).drop, DropReason::kTruncatedIpv6);
}

TEST(Ipv6Parser, FragmentsAreRecognised) {
  Ipv6Spec first;
  first.proto = kProtoUdp;
  first.payload = std::string(16, 'f');
  first.extensions = {{kIpv6Fragment, ipv6_fragment(0, true, 0xA1B2C3D4)}};
  const ParsedPacket f = parse(build_packet6(first));
  ASSERT_EQ(f.kind, PacketKind::kIpv6) << drop_reason_name(f.drop);
  EXPECT_TRUE(f.is_fragment());
  EXPECT_TRUE(f.more_fragments());
  EXPECT_EQ(f.fragment_offset(), 0);
  EXPECT_EQ(f.fragment_id, htonl(0xA1B2C3D4));
  EXPECT_EQ(f.proto, kProtoUdp);
  EXPECT_EQ(f.src_port, port(40000)) << "a first fragment carries the ports";

  Ipv6Spec later = first;
  later.extensions = {{kIpv6Fragment, ipv6_fragment(1480, false)}};
  const ParsedPacket l = parse(build_packet6(later));
  ASSERT_EQ(l.kind, PacketKind::kIpv6) << drop_reason_name(l.drop);
  EXPECT_TRUE(l.is_fragment());
  EXPECT_FALSE(l.more_fragments());
  EXPECT_EQ(l.fragment_offset(), 1480);
  EXPECT_EQ(l.src_port, 0) << "a later one does not";
  EXPECT_EQ(l.l4_offset, 14 + 40 + 8);

  Ipv6Spec atomic = first;
  atomic.extensions = {{kIpv6Fragment, ipv6_fragment(0, false)}};
  const ParsedPacket a = parse(build_packet6(atomic));
  EXPECT_FALSE(a.is_fragment()) << "an atomic fragment is a whole packet (RFC 6946)";
  EXPECT_EQ(a.dst_port, port(8080));

  Ipv6Spec odd = first;
  odd.payload = std::string(15, 'o');  // 8 + 15 bytes after the fragment header, more to come
  EXPECT_EQ(parse(build_packet6(odd)).drop, DropReason::kBadFragment);
  Ipv6Spec oversized = first;
  oversized.extensions = {{kIpv6Fragment, ipv6_fragment(65528, false)}};
  EXPECT_EQ(parse(build_packet6(oversized)).drop, DropReason::kFragmentOversized);
  Ipv6Spec tiny = first;
  tiny.proto = kProtoTcp;
  tiny.payload.clear();
  auto cut = build_packet6(tiny);  // a first fragment of TCP that stops inside the header
  cut.resize(cut.size() - 12);
  cut[19] = static_cast<uint8_t>(cut[19] - 12);
  EXPECT_EQ(parse(cut).drop, DropReason::kTruncatedL4);
}

}  // namespace
}  // namespace l4lb::dataplane
