#include "options.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "l4lb/common/cli_args.h"

namespace l4lb::pktgen {

namespace {

using cli::parse_choice;
using cli::parse_count;
using cli::parse_count_in;
using cli::parse_non_negative;

Mac parse_mac(const std::string& opt, const std::string& text) {
  Mac m;
  unsigned b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                  &tail) != 6)
    throw std::invalid_argument(opt + ": expected a MAC like 02:00:00:00:00:01, got '" + text + "'");
  for (int i = 0; i < 6; ++i) m.bytes[i] = static_cast<uint8_t>(b[i]);
  return m;
}

}  // namespace

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kEstablished:
      return "established";
    case Mode::kNew:
      return "new";
    case Mode::kReverse:
      return "reverse";
    case Mode::kChurn:
      return "churn";
  }
  return "?";
}

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  bool clients_set = false;
  bool window_set = false;
  cli::OptionWalker arg(args);
  while (arg.next()) {
    const std::string& a = arg.name();
    if (arg.is("--help", "-h")) {
      o.help = arg.flag();
    } else if (arg.is("--mode")) {
      o.mode = parse_choice<Mode>(a, arg.value(),
                                  {{"established", Mode::kEstablished},
                                   {"new", Mode::kNew},
                                   {"churn", Mode::kChurn},
                                   {"reverse", Mode::kReverse}});
    } else if (arg.is("--proto")) {
      o.proto = parse_choice<uint8_t>(a, arg.value(), {{"tcp", kProtoTcp}, {"udp", kProtoUdp}});
    } else if (arg.is("--flows")) {
      o.flows = parse_count(a, arg.value());
    } else if (arg.is("--vip")) {
      o.vips.push_back(parse_service(arg.value()));
    } else if (arg.is("--clients")) {
      parse_cidr(arg.value(), o.client_net, o.client_prefix);
      clients_set = true;
    } else if (arg.is("--pattern")) {
      o.pattern = parse_choice<Pattern>(
          a, arg.value(),
          {{"rr", Pattern::kRoundRobin}, {"round-robin", Pattern::kRoundRobin}, {"zipf", Pattern::kZipf}});
    } else if (arg.is("--zipf-s")) {
      o.zipf_s = parse_non_negative(a, arg.value());
    } else if (arg.is("--size")) {
      o.frame_len = static_cast<uint16_t>(parse_count_in(a, arg.value(), 0, kMaxFrame));
    } else if (arg.is("--vlan")) {
      o.vlan = static_cast<uint16_t>(parse_count_in(a, arg.value(), 1, 4094));
    } else if (arg.is("--rate")) {
      o.rate_pps = parse_count(a, arg.value());
    } else if (arg.is("--warmup-rate")) {
      o.warmup_rate_pps = parse_count(a, arg.value());
    } else if (arg.is("--duration")) {
      o.duration_s = parse_non_negative(a, arg.value());
    } else if (arg.is("--count")) {
      o.count = parse_count(a, arg.value());
    } else if (arg.is("--window")) {
      o.window = parse_count(a, arg.value());
      window_set = true;
    } else if (arg.is("--in-flight")) {
      o.in_flight = static_cast<uint32_t>(parse_count_in(a, arg.value(), 1, kMaxInFlight));
    } else if (arg.is("--close")) {
      o.backend_closes_first = parse_choice<bool>(a, arg.value(), {{"client", false}, {"backend", true}});
    } else if (arg.is("--conn-timeout")) {
      o.conn_timeout_s = parse_non_negative(a, arg.value());
      if (o.conn_timeout_s <= 0) throw std::invalid_argument("--conn-timeout: more than 0 seconds");
    } else if (arg.is("--no-warmup")) {
      arg.flag();
      o.warmup = false;
    } else if (arg.is("--from-backend")) {
      o.from_backend = arg.flag();
    } else if (arg.is("--no-answer")) {
      arg.flag();
      o.answer = false;
    } else if (arg.is("--dst-mac")) {
      o.dst_mac = parse_mac(a, arg.value());
      o.dst_mac_set = true;
    } else if (arg.is("--src-mac")) {
      o.src_mac = parse_mac(a, arg.value());
    } else if (arg.is("--port")) {
      o.port = arg.value();
    } else if (arg.is("--mbufs")) {
      o.mbufs = static_cast<unsigned>(std::min<uint64_t>(parse_count(a, arg.value()), 1u << 24));
    } else if (arg.is("--descriptors")) {
      o.descriptors = static_cast<uint16_t>(std::min<uint64_t>(parse_count(a, arg.value()), 16384));
    } else if (arg.is("--queues")) {
      o.queues = static_cast<uint16_t>(parse_count_in(a, arg.value(), 1, kMaxQueues));
    } else if (arg.is("--link-timeout")) {
      o.link_timeout_s = parse_non_negative(a, arg.value());
    } else if (arg.is("--drain")) {
      o.drain_s = parse_non_negative(a, arg.value());
    } else if (arg.is("--progress")) {
      o.progress_s = parse_non_negative(a, arg.value());
    } else if (arg.is("--json")) {
      o.json_path = arg.value();
    } else if (arg.is("--pcap")) {
      o.pcap_path = arg.value();
    } else if (arg.is("--hold")) {
      o.hold = arg.flag();
    } else if (arg.is("--pcap-count")) {
      o.pcap_count = parse_count(a, arg.value());
    } else {
      arg.unknown();
    }
  }
  if (o.help) return o;
  if (!clients_set) parse_cidr("10.100.0.0/16", o.client_net, o.client_prefix);
  if (o.vips.empty()) o.vips.push_back(parse_service("10.99.0.100:8080"));
  const uint16_t min = min_frame(o.proto, o.vlan != 0);
  if (o.frame_len < min)
    throw std::invalid_argument("--size " + std::to_string(o.frame_len) +
                                " is too small: " + (o.proto == kProtoTcp ? "TCP" : "UDP") +
                                (o.vlan ? " with a VLAN tag" : "") + " needs at least " +
                                std::to_string(min) + " bytes (headers + 10-byte stamp)");
  if (o.from_backend && o.mode != Mode::kEstablished)
    throw std::invalid_argument("--from-backend goes with --mode established");
  if (o.from_backend && !o.warmup)
    throw std::invalid_argument("--from-backend needs the warm-up (it learns the NAT'd tuples there)");
  if (o.mode == Mode::kChurn) {
    if (o.proto != kProtoTcp) throw std::invalid_argument("--mode churn is TCP only");
    if (!o.answer) throw std::invalid_argument("--mode churn answers as the backend itself (no --no-answer)");
    if (window_set)
      throw std::invalid_argument("--window does not apply to --mode churn: --in-flight bounds its connections");
  }
  if (o.mode != Mode::kReverse && o.duration_s == 0 && o.count == 0)
    throw std::invalid_argument("--duration 0 needs --count N (or the run never ends)");
  if (o.mbufs < 2048) throw std::invalid_argument("--mbufs: at least 2048");
  return o;
}

std::string usage(const std::string& program) {
  return "usage: " + program +
         " [EAL options] -- [options]\n"
         "       " +
         program +
         " --pcap FILE [options]     (no EAL: write what would be sent, exit)\n"
         "\n"
         "Generator and sink on one DPDK port (memif by default, any PMD by EAL\n"
         "arguments). It sends client traffic to the VIPs, answers as a backend what\n"
         "the DUT forwards to a backend (swapping the tuple), and counts and times what\n"
         "comes back to a client address.\n"
         "\n"
         "traffic:\n"
         "  --mode M          established (default): K flows opened in a warm-up, then\n"
         "                    only flow-table hits; new: every packet a TCP SYN of a\n"
         "                    fresh 5-tuple (answered with RST+ACK); churn: whole TCP\n"
         "                    connections on fresh 5-tuples (see below); reverse: only\n"
         "                    answer what arrives, as a backend would\n"
         "  --proto P         tcp (default) | udp\n"
         "  --flows N         established flows (default 1024; 1K .. 10M)\n"
         "  --vip ADDR:PORT   a VIP (repeatable; default 10.99.0.100:8080); flow i\n"
         "                    goes to VIP i mod count\n"
         "  --clients CIDR    client addresses (default 10.100.0.0/16)\n"
         "  --pattern P       rr (default) | zipf: which flow each packet belongs to\n"
         "  --zipf-s S        Zipf exponent (default 1.0)\n"
         "  --size BYTES      frame size without FCS (default 64)\n"
         "  --vlan VID        add an 802.1Q tag, VID 1..4094 (default: untagged)\n"
         "  --from-backend    established: after the warm-up, send each flow's\n"
         "                    backend side (the NAT'd tuple learned in the warm-up),\n"
         "                    so the DUT sees only its reverse path (default: client side)\n"
         "  --no-answer       do not answer as a backend on this port (another\n"
         "                    process in --mode reverse does, or nothing does;\n"
         "                    default: answer)\n"
         "\n"
         "churn (--mode churn; after the warm-up of K flows, if any, which stay open):\n"
         "  each connection, on a fresh 5-tuple, is client SYN, backend SYN+ACK, client\n"
         "  ACK, client data (one packet, --size), backend data+ACK (the payload\n"
         "  echoed), then client FIN+ACK, backend FIN+ACK, client ACK; with --close\n"
         "  backend the backend sends FIN+ACK right after its data, the client\n"
         "  answers FIN+ACK and the backend ACKs. Sequence and acknowledgment numbers\n"
         "  are those of real peers (client ISN = slot << 16). Both ends are this\n"
         "  program, so each packet goes through the DUT once; a connection completes\n"
         "  when its last packet is back (and its handshake ACK reached the backend).\n"
         "  --rate counts connections opened per second; --count connections.\n"
         "  --in-flight N     connections open at a time (default 1024, at most 65536):\n"
         "                    the closed loop's bound (--window does not apply); each\n"
         "                    holds at most two packets in the rings\n"
         "  --close WHO       client (default) | backend: who sends the first FIN\n"
         "  --conn-timeout S  a connection not complete S seconds after its SYN has\n"
         "                    failed; its slot is reused (default 1)\n"
         "\n"
         "timing:\n"
         "  --rate PPS        packets/s we originate (answers are extra; churn:\n"
         "                    connections opened/s); 0 = as fast as the port takes\n"
         "                    them (default)\n"
         "  --warmup-rate PPS warm-up rate (default: --rate)\n"
         "  --duration S      measured seconds (default 10; reverse mode: 0 = until\n"
         "                    SIGINT)\n"
         "  --count N         stop the measured phase after N packets (churn:\n"
         "                    connections opened)\n"
         "  --window N        closed loop: at most N of our packets unanswered at a\n"
         "                    time (0 = open loop, default): at full rate the DUT\n"
         "                    stays busy without overflowing the rings, so latency\n"
         "                    is not just the rings' depth and nothing is dropped\n"
         "  --no-warmup       skip the warm-up (default: open the flows first)\n"
         "  --drain S         longest wait for answers after sending (default 1)\n"
         "\n"
         "port and output:\n"
         "  --port NAME       DPDK port name or index (default: the first)\n"
         "  --dst-mac MAC     the DUT's MAC (default broadcast)\n"
         "  --mbufs N         mbuf pool size (default 32768)\n"
         "  --descriptors N   RX/TX ring size (default 1024)\n"
         "  --queues N        RX and TX queues (default 1): every RX queue is polled,\n"
         "                    and each packet (sent or answered) goes out on TX queue\n"
         "                    hash(its 5-tuple) mod N, so one flow direction keeps one\n"
         "                    queue (memif: the peer needs N queues too)\n"
         "  --link-timeout S  wait this long for the link (the memif peer; default 30)\n"
         "  --progress S      a progress line on stderr every S seconds (0 = none;\n"
         "                    default 1)\n"
         "  --json FILE       write the report as JSON (- = stdout; default: text only)\n"
         "  --hold            after the report, keep the port open (idle) until\n"
         "                    SIGINT/SIGTERM, so the peer can stop first: the memif\n"
         "                    PMD may crash a process whose lcore polls a ring while\n"
         "                    the peer disconnects (default: exit after the report)\n"
         "  --pcap FILE       write the packets it would send (warm-up, then the\n"
         "                    measured phase) to a pcap file and exit; no EAL\n"
         "                    (default: a live run on the port)\n"
         "  --pcap-count N    how many (default 10000)\n"
         "  --src-mac MAC     source MAC in --pcap output (default 02:4c:34:50:47:01;\n"
         "                    live runs use the port's)\n"
         "\n"
         "  -h, --help        print this text and exit\n"
         "\n"
         "example (memif; l4lbd is the other end):\n"
         "  " +
         program +
         " --lcores 0@0,1@0 --file-prefix gen --no-pci \\\n"
         "      --vdev net_memif0,role=server,socket=/run/l4lb-bench/m.sock,socket-abstract=no \\\n"
         "      -- --mode established --flows 1M --rate 1M --duration 10 --dst-mac 02:00:00:00:00:01\n"
         "With two or more lcores the first worker lcore polls and the main lcore\n"
         "prints progress; with one, the main lcore polls and prints none.\n"
         "Exit status: 0 when the run completed (whatever the loss), 1 on errors,\n"
         "2 on bad arguments.\n";
}

}  // namespace l4lb::pktgen
