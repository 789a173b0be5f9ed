#include "options.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace l4lb::pktgen {

namespace {

// "1000", "64K", "1M", "10M", "1Ki", "2.5M": K/M/G are powers of 1000,
// Ki/Mi/Gi powers of 1024.
uint64_t parse_count(const std::string& opt, const std::string& text) {
  size_t pos = 0;
  double v;
  try {
    v = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw std::invalid_argument(opt + ": not a number: '" + text + "'");
  }
  const std::string suffix = text.substr(pos);
  double mult = 1;
  if (suffix == "K" || suffix == "k")
    mult = 1e3;
  else if (suffix == "M")
    mult = 1e6;
  else if (suffix == "G")
    mult = 1e9;
  else if (suffix == "Ki")
    mult = 1024.0;
  else if (suffix == "Mi")
    mult = 1024.0 * 1024;
  else if (suffix == "Gi")
    mult = 1024.0 * 1024 * 1024;
  else if (!suffix.empty())
    throw std::invalid_argument(opt + ": bad suffix in '" + text + "'");
  if (!(v >= 0) || std::isinf(v) || v * mult > 1.8e19)
    throw std::invalid_argument(opt + ": out of range: '" + text + "'");
  return static_cast<uint64_t>(std::llround(v * mult));
}

double parse_seconds(const std::string& opt, const std::string& text) {
  size_t pos = 0;
  double v;
  try {
    v = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw std::invalid_argument(opt + ": not a number: '" + text + "'");
  }
  if (pos != text.size() || !(v >= 0) || std::isinf(v))
    throw std::invalid_argument(opt + ": bad value '" + text + "'");
  return v;
}

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
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    auto need = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
      return args[++i];
    };
    auto flag = [&] {
      if (has_value) throw std::invalid_argument(a + " takes no value");
    };
    if (a == "--help" || a == "-h") {
      flag();
      o.help = true;
    } else if (a == "--mode") {
      const std::string v = need();
      if (v == "established")
        o.mode = Mode::kEstablished;
      else if (v == "new")
        o.mode = Mode::kNew;
      else if (v == "reverse")
        o.mode = Mode::kReverse;
      else if (v == "churn")
        o.mode = Mode::kChurn;
      else
        throw std::invalid_argument("--mode: established | new | churn | reverse, got '" + v + "'");
    } else if (a == "--proto") {
      const std::string v = need();
      if (v == "tcp")
        o.proto = kProtoTcp;
      else if (v == "udp")
        o.proto = kProtoUdp;
      else
        throw std::invalid_argument("--proto: tcp | udp, got '" + v + "'");
    } else if (a == "--flows") {
      o.flows = parse_count(a, need());
    } else if (a == "--vip") {
      o.vips.push_back(parse_service(need()));
    } else if (a == "--clients") {
      parse_cidr(need(), o.client_net, o.client_prefix);
      clients_set = true;
    } else if (a == "--pattern") {
      const std::string v = need();
      if (v == "rr" || v == "round-robin")
        o.pattern = Pattern::kRoundRobin;
      else if (v == "zipf")
        o.pattern = Pattern::kZipf;
      else
        throw std::invalid_argument("--pattern: rr | zipf, got '" + v + "'");
    } else if (a == "--zipf-s") {
      o.zipf_s = parse_seconds(a, need());
    } else if (a == "--size") {
      const uint64_t v = parse_count(a, need());
      if (v > kMaxFrame) throw std::invalid_argument("--size: at most " + std::to_string(kMaxFrame));
      o.frame_len = static_cast<uint16_t>(v);
    } else if (a == "--vlan") {
      const uint64_t v = parse_count(a, need());
      if (v < 1 || v > 4094) throw std::invalid_argument("--vlan: 1..4094");
      o.vlan = static_cast<uint16_t>(v);
    } else if (a == "--rate") {
      o.rate_pps = parse_count(a, need());
    } else if (a == "--warmup-rate") {
      o.warmup_rate_pps = parse_count(a, need());
    } else if (a == "--duration") {
      o.duration_s = parse_seconds(a, need());
    } else if (a == "--count") {
      o.count = parse_count(a, need());
    } else if (a == "--window") {
      o.window = parse_count(a, need());
      window_set = true;
    } else if (a == "--in-flight") {
      const uint64_t v = parse_count(a, need());
      if (v < 1 || v > kMaxInFlight)
        throw std::invalid_argument("--in-flight: 1.." + std::to_string(kMaxInFlight));
      o.in_flight = static_cast<uint32_t>(v);
    } else if (a == "--close") {
      const std::string v = need();
      if (v == "client")
        o.backend_closes_first = false;
      else if (v == "backend")
        o.backend_closes_first = true;
      else
        throw std::invalid_argument("--close: client | backend, got '" + v + "'");
    } else if (a == "--conn-timeout") {
      o.conn_timeout_s = parse_seconds(a, need());
      if (o.conn_timeout_s <= 0) throw std::invalid_argument("--conn-timeout: more than 0 seconds");
    } else if (a == "--no-warmup") {
      flag();
      o.warmup = false;
    } else if (a == "--from-backend") {
      flag();
      o.from_backend = true;
    } else if (a == "--no-answer") {
      flag();
      o.answer = false;
    } else if (a == "--dst-mac") {
      o.dst_mac = parse_mac(a, need());
      o.dst_mac_set = true;
    } else if (a == "--src-mac") {
      o.src_mac = parse_mac(a, need());
    } else if (a == "--port") {
      o.port = need();
    } else if (a == "--mbufs") {
      o.mbufs = static_cast<unsigned>(std::min<uint64_t>(parse_count(a, need()), 1u << 24));
    } else if (a == "--descriptors") {
      o.descriptors = static_cast<uint16_t>(std::min<uint64_t>(parse_count(a, need()), 16384));
    } else if (a == "--queues") {
      const uint64_t v = parse_count(a, need());
      if (v < 1 || v > kMaxQueues) throw std::invalid_argument("--queues: 1.." + std::to_string(kMaxQueues));
      o.queues = static_cast<uint16_t>(v);
    } else if (a == "--link-timeout") {
      o.link_timeout_s = parse_seconds(a, need());
    } else if (a == "--drain") {
      o.drain_s = parse_seconds(a, need());
    } else if (a == "--progress") {
      o.progress_s = parse_seconds(a, need());
    } else if (a == "--json") {
      o.json_path = need();
    } else if (a == "--pcap") {
      o.pcap_path = need();
    } else if (a == "--hold") {
      flag();
      o.hold = true;
    } else if (a == "--pcap-count") {
      o.pcap_count = parse_count(a, need());
    } else {
      throw std::invalid_argument("unknown argument '" + args[i] + "'");
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
