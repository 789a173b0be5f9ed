// l4lb-pktgen: traffic generator and sink on one DPDK port (DESIGN §10).
//
// Start-up order, torn down in reverse:
//   1. options (no EAL: --help and --pcap stop here)
//   2. EAL
//   3. port and mbuf pool; wait for the link (the memif peer)
//   4. flow set and generator (bitmaps, learned tuples, Zipf sequence)
//   5. the poll loop on the first worker lcore, progress lines from the main
//      lcore (or the poll loop on the main lcore when it is the only one)
//   6. report (text on stdout, JSON with --json)
// SIGINT/SIGTERM end the current phase early; the report says so.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "flow_set.h"
#include "generator.h"
#include "l4lb/common/cli_args.h"
#include "options.h"
#include "pcap_writer.h"
#include "port.h"
#include "report.h"

namespace {

using namespace l4lb::pktgen;

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
}

class Eal {
 public:
  explicit Eal(std::vector<std::string> args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (rte_eal_init(static_cast<int>(args.size()), argv.data()) < 0)
      throw std::runtime_error(std::string("EAL initialisation failed: ") + rte_strerror(rte_errno));
  }
  ~Eal() { rte_eal_cleanup(); }
  Eal(const Eal&) = delete;
  Eal& operator=(const Eal&) = delete;
};

struct LaunchArgs {
  Generator* gen;
};

int poll_main(void* arg) {
  static_cast<LaunchArgs*>(arg)->gen->run(g_stop);
  return 0;
}

void print_progress(const Generator& gen, const Options& o, double elapsed, const CounterValues& prev,
                    uint64_t prev_conns, double interval) {
  const LiveCounters& live = gen.live();
  const CounterValues now = live.values();
  const CounterValues d = now - prev;
  const auto phase = static_cast<Phase>(live.phase.load(std::memory_order_relaxed));
  const double s = interval > 0 ? interval : 1.0;
  std::fprintf(stderr,
               "progress phase=%s pass=%u t=%.1f tx_mpps=%.3f dut_mpps=%.3f fwd_mpps=%.3f ret_mpps=%.3f "
               "opened=%llu/%llu",
               phase_name(phase), live.pass.load(std::memory_order_relaxed), elapsed,
               static_cast<double>(d.tx) / s / 1e6, static_cast<double>(d.forwarded + d.returned) / s / 1e6,
               static_cast<double>(d.forwarded) / s / 1e6, static_cast<double>(d.returned) / s / 1e6,
               static_cast<unsigned long long>(live.opened.get()), static_cast<unsigned long long>(o.flows));
  if (o.mode == Mode::kChurn)
    std::fprintf(stderr, " conns_kps=%.1f conns_failed=%llu",
                 static_cast<double>(live.conns_completed.get() - prev_conns) / s / 1e3,
                 static_cast<unsigned long long>(live.conns_failed.get()));
  std::fputc('\n', stderr);
}

int run(const Options& o, const std::vector<std::string>& eal_args) {
  Eal eal(eal_args);
  const uint64_t hz = rte_get_tsc_hz();
  GenPort port(o.port, o.mbufs, o.descriptors, o.queues);
  Mac our_mac;
  std::memcpy(our_mac.bytes, port.mac().addr_bytes, 6);
  std::fprintf(stderr, "l4lb-pktgen: port %u (%s) MAC %s, %u rx/tx queue(s), waiting up to %.0f s for the link\n",
               port.id(), port.name().c_str(), l4lb::format_mac(our_mac.bytes).c_str(), port.queues(), o.link_timeout_s);
  if (!port.wait_link(o.link_timeout_s)) {
    std::fprintf(stderr, "l4lb-pktgen: link of %s still down after %.0f s (is the peer running?)\n",
                 port.name().c_str(), o.link_timeout_s);
    return 1;
  }
  std::fprintf(stderr, "l4lb-pktgen: link up\n");

  const FlowSet flows(o.client_net, o.client_prefix, o.vips, o.flows);
  auto gen = std::make_unique<Generator>(o, flows, port.id(), port.pool(), our_mac, hz);
  LaunchArgs args{gen.get()};

  const unsigned worker = rte_get_next_lcore(-1, 1, 0);
  if (worker < RTE_MAX_LCORE) {
    if (rte_eal_remote_launch(poll_main, &args, worker) != 0)
      throw std::runtime_error("cannot launch the poll loop on lcore " + std::to_string(worker));
    const auto t0 = std::chrono::steady_clock::now();
    auto last = t0;
    CounterValues prev = gen->live().values();
    uint64_t prev_conns = gen->live().conns_completed.get();
    while (static_cast<Phase>(gen->live().phase.load(std::memory_order_acquire)) != Phase::kDone) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const auto now = std::chrono::steady_clock::now();
      const double since = std::chrono::duration<double>(now - last).count();
      if (o.progress_s > 0 && since >= o.progress_s) {
        print_progress(*gen, o, std::chrono::duration<double>(now - t0).count(), prev, prev_conns, since);
        prev = gen->live().values();
        prev_conns = gen->live().conns_completed.get();
        last = now;
      }
    }
    rte_eal_wait_lcore(worker);
  } else {
    poll_main(&args);
  }

  RunInfo info;
  info.port_name = port.name();
  info.port_mac = our_mac;
  info.tsc_hz = hz;
  const std::string text = report_text(o, info, gen->warmup(), gen->measure());
  const std::string json = report_json(o, info, gen->warmup(), gen->measure());
  std::fputs(text.c_str(), o.json_path == "-" ? stderr : stdout);
  if (o.json_path == "-") {
    std::fputs(json.c_str(), stdout);
  } else if (!o.json_path.empty()) {
    std::ofstream out(o.json_path);
    out << json;
    if (!out) throw std::runtime_error("cannot write " + o.json_path);
  }
  std::fflush(stdout);
  if (o.hold) {
    std::fprintf(stderr, "l4lb-pktgen: done; holding the port until SIGINT/SIGTERM\n");
    while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const l4lb::cli::SplitArgs split = l4lb::cli::split_eal_args(argc, argv, "l4lb-pktgen");
  const std::string program = argc > 0 ? argv[0] : "l4lb-pktgen";
  Options o;
  try {
    o = parse_options(split.app);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n\n%s", program.c_str(), e.what(), usage(program).c_str());
    return 2;
  }
  if (o.help) {
    std::fputs(usage(program).c_str(), stdout);
    return 0;
  }
  try {
    if (!o.pcap_path.empty()) {
      const FlowSet flows(o.client_net, o.client_prefix, o.vips, o.flows);
      const uint64_t n = write_pcap(o, flows);
      std::printf("%s: wrote %llu packets to %s\n", program.c_str(), static_cast<unsigned long long>(n),
                  o.pcap_path.c_str());
      return 0;
    }
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    return run(o, split.eal);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 1;
  }
}
