// l4lb-pktgen's command line (options.cc): every option tools/bench, the e2e
// tests and operators use is accepted in both "--opt value" and "--opt=value"
// forms and lands in its field; bad values, unknown options and the
// cross-option rules are refused with a message naming the option (main.cc
// prints it above the usage and exits 2). Pure: no EAL.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "options.h"

using namespace l4lb::pktgen;

namespace {

Options parse(std::vector<std::string> args) {
  return parse_options(args);
}

// The message of the std::invalid_argument parse_options throws, or "" if it
// accepted the arguments.
std::string refusal(std::vector<std::string> args) {
  try {
    parse_options(args);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(PktgenOptions, DefaultsWithoutArguments) {
  const Options o = parse({});
  EXPECT_EQ(o.mode, Mode::kEstablished);
  EXPECT_EQ(o.proto, kProtoTcp);
  EXPECT_EQ(o.flows, 1024u);
  ASSERT_EQ(o.vips.size(), 1u);
  EXPECT_EQ(o.vips[0].ip, htonl(0x0a630064));  // 10.99.0.100
  EXPECT_EQ(o.vips[0].port, htons(8080));
  EXPECT_EQ(o.client_net, 0x0a640000u);  // 10.100.0.0
  EXPECT_EQ(o.client_prefix, 16u);
  EXPECT_TRUE(o.warmup);
  EXPECT_TRUE(o.answer);
  EXPECT_FALSE(o.help);
}

TEST(PktgenOptions, HelpStopsBeforeTheCrossOptionRules) {
  // --help must print usage even beside options that would be refused.
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"-h", "--duration", "0"}).help);
  EXPECT_NE(refusal({"--help=yes"}), "");
}

// The command line tools/bench builds for an established case (bench_cases.py).
TEST(PktgenOptions, EveryOptionInSeparateValueForm) {
  const Options o = parse({"--mode",         "established",
                           "--proto",        "udp",
                           "--flows",        "1M",
                           "--vip",          "10.99.0.100:80",
                           "--vip",          "10.99.0.101:81",
                           "--clients",      "10.200.0.0/12",
                           "--pattern",      "zipf",
                           "--zipf-s",       "1.2",
                           "--size",         "128",
                           "--vlan",         "100",
                           "--rate",         "2.5M",
                           "--warmup-rate",  "64K",
                           "--duration",     "3",
                           "--count",        "1Ki",
                           "--window",       "16384",
                           "--dst-mac",      "02:00:00:00:00:01",
                           "--src-mac",      "02:00:00:00:00:02",
                           "--port",         "net_memif0",
                           "--mbufs",        "65536",
                           "--descriptors",  "2048",
                           "--queues",       "4",
                           "--link-timeout", "5",
                           "--drain",        "0.5",
                           "--progress",     "0",
                           "--json",         "r.json",
                           "--pcap",         "out.pcap",
                           "--pcap-count",   "10",
                           "--no-answer",    "--hold"});
  EXPECT_EQ(o.mode, Mode::kEstablished);
  EXPECT_EQ(o.proto, kProtoUdp);
  EXPECT_EQ(o.flows, 1000000u);
  ASSERT_EQ(o.vips.size(), 2u);
  EXPECT_EQ(o.vips[1].ip, htonl(0x0a630065));
  EXPECT_EQ(o.vips[1].port, htons(81));
  EXPECT_EQ(o.client_net, 0x0ac80000u);
  EXPECT_EQ(o.client_prefix, 12u);
  EXPECT_EQ(o.pattern, Pattern::kZipf);
  EXPECT_DOUBLE_EQ(o.zipf_s, 1.2);
  EXPECT_EQ(o.frame_len, 128);
  EXPECT_EQ(o.vlan, 100);
  EXPECT_EQ(o.rate_pps, 2500000u);
  EXPECT_EQ(o.warmup_rate_pps, 64000u);
  EXPECT_DOUBLE_EQ(o.duration_s, 3.0);
  EXPECT_EQ(o.count, 1024u);
  EXPECT_EQ(o.window, 16384u);
  EXPECT_TRUE(o.dst_mac_set);
  EXPECT_EQ(o.dst_mac.bytes[5], 0x01);
  EXPECT_EQ(o.src_mac.bytes[5], 0x02);
  EXPECT_EQ(o.port, "net_memif0");
  EXPECT_EQ(o.mbufs, 65536u);
  EXPECT_EQ(o.descriptors, 2048);
  EXPECT_EQ(o.queues, 4);
  EXPECT_DOUBLE_EQ(o.link_timeout_s, 5.0);
  EXPECT_DOUBLE_EQ(o.drain_s, 0.5);
  EXPECT_DOUBLE_EQ(o.progress_s, 0.0);
  EXPECT_EQ(o.json_path, "r.json");
  EXPECT_EQ(o.pcap_path, "out.pcap");
  EXPECT_EQ(o.pcap_count, 10u);
  EXPECT_FALSE(o.answer);
  EXPECT_TRUE(o.hold);
}

TEST(PktgenOptions, EveryOptionInEqualsForm) {
  const Options o =
      parse({"--mode=churn", "--flows=0", "--in-flight=8192", "--close=backend", "--conn-timeout=2",
             "--rate=1M", "--duration=6", "--no-warmup", "--pattern=round-robin", "--json=-", "--mbufs=4Ki"});
  EXPECT_EQ(o.mode, Mode::kChurn);
  EXPECT_EQ(o.flows, 0u);
  EXPECT_EQ(o.in_flight, 8192u);
  EXPECT_TRUE(o.backend_closes_first);
  EXPECT_DOUBLE_EQ(o.conn_timeout_s, 2.0);
  EXPECT_EQ(o.rate_pps, 1000000u);
  EXPECT_FALSE(o.warmup);
  EXPECT_EQ(o.pattern, Pattern::kRoundRobin);
  EXPECT_EQ(o.json_path, "-");
  EXPECT_EQ(o.mbufs, 4096u);
}

TEST(PktgenOptions, ModesAndTheirPartners) {
  EXPECT_EQ(parse({"--mode", "new"}).mode, Mode::kNew);
  EXPECT_EQ(parse({"--mode", "reverse", "--duration", "0"}).mode, Mode::kReverse);
  const Options b = parse({"--from-backend"});
  EXPECT_TRUE(b.from_backend);
  EXPECT_EQ(parse({"--close", "client"}).backend_closes_first, false);
  EXPECT_EQ(parse({"--pattern", "rr"}).pattern, Pattern::kRoundRobin);
  EXPECT_EQ(parse({"--duration", "0", "--count", "5"}).count, 5u);
}

TEST(PktgenOptions, UnknownAndMalformedArgumentsNameTheArgument) {
  EXPECT_EQ(refusal({"--bogus"}), "unknown argument '--bogus'");
  EXPECT_EQ(refusal({"--bogus=1"}), "unknown argument '--bogus=1'");
  EXPECT_EQ(refusal({"stray"}), "unknown argument 'stray'");
  EXPECT_EQ(refusal({"--rate"}), "--rate needs a value");
  EXPECT_EQ(refusal({"--hold=1"}), "--hold takes no value");
  EXPECT_EQ(refusal({"--no-warmup=no"}), "--no-warmup takes no value");
}

TEST(PktgenOptions, BadValuesNameTheOption) {
  EXPECT_NE(refusal({"--mode", "fast"}).find("--mode"), std::string::npos);
  EXPECT_NE(refusal({"--mode", "fast"}).find("'fast'"), std::string::npos);
  EXPECT_NE(refusal({"--proto", "sctp"}).find("--proto"), std::string::npos);
  EXPECT_NE(refusal({"--pattern", "x"}).find("--pattern"), std::string::npos);
  EXPECT_NE(refusal({"--close", "x"}).find("--close"), std::string::npos);
  EXPECT_EQ(refusal({"--flows", "many"}), "--flows: not a number: 'many'");
  EXPECT_EQ(refusal({"--flows", "1X"}), "--flows: bad suffix in '1X'");
  EXPECT_EQ(refusal({"--rate", "-1"}), "--rate: out of range: '-1'");
  EXPECT_EQ(refusal({"--duration", "1s"}), "--duration: bad value '1s'");
  EXPECT_EQ(refusal({"--duration", "soon"}), "--duration: not a number: 'soon'");
  EXPECT_NE(refusal({"--dst-mac", "02:00"}).find("--dst-mac"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "0"}).find("--vlan"), std::string::npos);
  EXPECT_NE(refusal({"--vlan", "4095"}).find("--vlan"), std::string::npos);
  EXPECT_NE(refusal({"--queues", "17"}).find("--queues"), std::string::npos);
  EXPECT_NE(refusal({"--in-flight", "0"}).find("--in-flight"), std::string::npos);
  EXPECT_NE(refusal({"--size", "2000"}).find("--size"), std::string::npos);
  EXPECT_NE(refusal({"--conn-timeout", "0"}).find("--conn-timeout"), std::string::npos);
  EXPECT_NE(refusal({"--mbufs", "100"}).find("--mbufs"), std::string::npos);
  EXPECT_NE(refusal({"--vip", "10.0.0.1"}), "");
  EXPECT_NE(refusal({"--clients", "10.0.0.0"}), "");
}

TEST(PktgenOptions, LimitsThatClampRatherThanRefuse) {
  EXPECT_EQ(parse({"--descriptors", "100000"}).descriptors, 16384);
  EXPECT_EQ(parse({"--mbufs", "1G"}).mbufs, 1u << 24);
}

TEST(PktgenOptions, CrossOptionRules) {
  EXPECT_NE(refusal({"--size", "60"}).find("too small"), std::string::npos);
  EXPECT_EQ(parse({"--size", "60", "--proto", "udp"}).frame_len, 60);
  EXPECT_NE(refusal({"--from-backend", "--mode", "new"}), "");
  EXPECT_NE(refusal({"--from-backend", "--no-warmup"}), "");
  EXPECT_NE(refusal({"--mode", "churn", "--proto", "udp"}), "");
  EXPECT_NE(refusal({"--mode", "churn", "--no-answer"}), "");
  EXPECT_NE(refusal({"--mode", "churn", "--window", "8"}), "");
  EXPECT_NE(refusal({"--duration", "0"}), "");
}

}  // namespace
