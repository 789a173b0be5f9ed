// Micro-benchmarks of the fast path (DESIGN §10), with Google Benchmark:
// parse, flow lookup hit/miss at 1K/1M/10M flows, Maglev pick, NAT rewrite,
// and whole bursts through the real Worker (established flows and new
// connections). Packets are real mbufs; the worker transmits into net_null,
// which frees them. Reports ns per packet (or per key) and, for the flow
// table, the DPDK memory each flow takes (both directions).
//
// EAL arguments come from L4LB_BENCH_EAL (default: hugepages, in memory).
#include <benchmark/benchmark.h>
#include <rte_bus_vdev.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <arpa/inet.h>

#include <algorithm>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <sstream>
#include <vector>

#include "../../tests/common/packet_builder.h"
#include "l4lb/controlplane/snapshot_builder.h"
#include "l4lb/dataplane/flow_table.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/packet_parser.h"
#include "l4lb/dataplane/worker.h"
#include "l4lb/dpdk/port.h"

using namespace l4lb;
using namespace l4lb::dataplane;

namespace {

rte_mempool* g_pool;
uint16_t g_null_port;

size_t heap_bytes() {
  rte_malloc_socket_stats st{};
  rte_malloc_get_socket_stats(0, &st);
  return st.heap_allocsz_bytes;
}

FlowKey key_of(uint32_t i) {
  // Clients 10.0.0.0/8 with ports 1024+: unique per i up to ~2^34.
  return make_flow_key(htonl(0x0A000000u | (i >> 6)), htonl(0x0A63'0064u), htons(static_cast<uint16_t>(1024 + (i & 63))),
                       htons(8080), kProtoTcp);
}

void BM_Parse(benchmark::State& state) {
  test::PacketSpec s;
  s.tcp_flags = kTcpAck;
  auto f = test::build_packet(s);
  f.resize(64, 0);
  for (auto _ : state) {
    ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
    benchmark::DoNotOptimize(p);
  }
  state.counters["ns_per_packet"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Parse);

void BM_NatRewrite(benchmark::State& state) {
  test::PacketSpec s;
  s.tcp_flags = kTcpAck;
  auto f = test::build_packet(s);
  const ParsedPacket p = parse_packet(f.data(), static_cast<uint32_t>(f.size()));
  const Ipv4Tuple to{test::ip("10.99.0.1"), test::ip("10.99.0.21"), htons(10240), htons(8080)};
  const MacAddress a{{2, 0, 0, 0, 0, 1}}, b{{2, 0, 0, 0, 0, 2}};
  for (auto _ : state) {
    rewrite_ipv4_tuple(f.data(), p, to);
    set_ethernet_addresses(f.data(), a, b);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_NatRewrite);

void BM_MaglevPick(benchmark::State& state) {
  std::vector<std::pair<std::string, uint32_t>> backends;
  for (int i = 0; i < 100; ++i) backends.emplace_back("10.1.0." + std::to_string(i) + ":80", 1);
  controlplane::MaglevCache cache;
  const auto table = cache.get("bench", 65537, backends).slots;
  uint32_t i = 0;
  for (auto _ : state) {
    const FlowKey k = key_of(i++ * 2654435761u);
    const uint64_t h = maglev_flow_hash(k.src_ip, k.src_port, k.dst_ip, k.dst_port, k.proto);
    benchmark::DoNotOptimize((*table)[h % table->size()]);
  }
}
BENCHMARK(BM_MaglevPick);

// A filled table, shared by the lookup benchmarks of one size.
struct FilledTable {
  std::unique_ptr<FlowTable> table;
  double bytes_per_flow = 0;
};

FilledTable& filled(uint32_t flows) {
  static std::map<uint32_t, FilledTable> tables;
  auto& t = tables[flows];
  if (t.table) return t;
  tables.clear();  // one big table at a time
  auto& fresh = tables[flows];
  const size_t before = heap_bytes();
  fresh.table = std::make_unique<FlowTable>("bench_" + std::to_string(flows), flows, 0);
  fresh.bytes_per_flow = static_cast<double>(heap_bytes() - before) / flows;
  for (uint32_t i = 0; i < flows; ++i) {
    const uint32_t idx = fresh.table->allocate();
    FlowEntry& e = fresh.table->entry(idx);
    const FlowKey k = key_of(i);
    e = FlowEntry{};
    e.client_ip = k.src_ip;
    e.vip_ip = k.dst_ip;
    e.client_port = k.src_port;
    e.vip_port = k.dst_port;
    e.backend_ip = htonl(0x0A630000u | (i & 0xFF));
    e.backend_port = htons(8080);
    e.snat_ip = htonl(0x0A630001u);
    e.snat_port = htons(static_cast<uint16_t>(i));
    e.proto = kProtoTcp;
    e.state = FlowState::kEstablished;
    // Reverse keys must be unique too: vary the backend address by i.
    e.backend_ip = htonl(0x0B000000u | (i >> 8));
    e.snat_port = htons(static_cast<uint16_t>(i & 0xFF));
    if (!fresh.table->insert(idx)) std::abort();
  }
  return fresh;
}

void lookup_bench(benchmark::State& state, bool hit) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  FilledTable* table = nullptr;
  try {
    table = &filled(flows);
  } catch (const std::exception& e) {
    state.SkipWithError((std::string(e.what()) + ": reserve more hugepages").c_str());
    for (auto _ : state) {
    }
    return;
  }
  FilledTable& t = *table;
  std::mt19937 rng(1);
  constexpr uint32_t kBurst = 32;
  std::vector<FlowKey> keys(1 << 16);
  for (auto& k : keys) k = key_of(hit ? rng() % flows : flows + rng() % flows);
  const FlowKey* ptrs[kBurst];
  uint32_t values[kBurst];
  size_t at = 0;
  for (auto _ : state) {
    for (uint32_t i = 0; i < kBurst; ++i) ptrs[i] = &keys[(at + i) & (keys.size() - 1)];
    at += kBurst;
    benchmark::DoNotOptimize(t.table->lookup_bulk(ptrs, kBurst, values));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kBurst);
  state.counters["ns_per_key"] = benchmark::Counter(static_cast<double>(state.iterations()) * kBurst,
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_flow"] = t.bytes_per_flow;
}
void BM_FlowLookupHit(benchmark::State& state) { lookup_bench(state, true); }
void BM_FlowLookupMiss(benchmark::State& state) { lookup_bench(state, false); }

// The whole worker pipeline on bursts of 64-byte TCP segments.
struct PipelineRig {
  config::Config config;
  controlplane::NeighbourMap neighbours;
  controlplane::BuildState build;
  std::unique_ptr<Snapshot> snapshot;
  rte_ring *snap_ring, *slow, *inject;
  std::unique_ptr<Worker> worker;
  std::vector<uint8_t> frame;

  explicit PipelineRig(uint32_t capacity) {
    config.dataplane.workers = 1;
    config.dataplane.flows_per_worker = capacity;
    config::PortConfig p;
    p.name = "null";
    p.addresses = {{ntohl(test::ip("10.99.0.1")), 16}};
    config.ports.push_back(p);
    config::VipConfig v;
    v.name = "web";
    v.address = ntohl(test::ip("10.99.0.100"));
    v.port = 8080;
    // FNAT holds one SNAT port per flow: 64 addresses x 22528 ports covers
    // 1.4M flows. Beyond that the rig uses DNAT, which needs no port.
    if (capacity <= (1u << 21)) {
      for (uint32_t a = 1; a <= 64; ++a) v.snat.push_back(ntohl(test::ip("10.99.0.0")) + a);
    } else {
      v.mode = config::NatMode::kDnat;
    }
    for (int i = 0; i < 16; ++i) {
      const uint32_t a = ntohl(test::ip("10.99.1.0")) + static_cast<uint32_t>(i);
      v.backends.push_back({a, 8080, 1, 0});
      neighbours[a] = {{2, 0, 0, 0, 1, static_cast<uint8_t>(i)}};
    }
    config.vips.push_back(v);
    snapshot = controlplane::build_snapshot({&config, &neighbours, {{2, 0xAA, 0, 0, 0, 1}}, rte_get_tsc_hz(), 1},
                                            build);
    static int n = 0;
    const std::string id = std::to_string(n++);
    snap_ring = rte_ring_create(("bsn" + id).c_str(), 16, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    slow = rte_ring_create(("bsl" + id).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    inject = rte_ring_create(("bin" + id).c_str(), 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
    WorkerSetup s;
    s.port_id = g_null_port;
    s.snapshot_ring = snap_ring;
    s.slow_path_ring = slow;
    s.inject_ring = inject;
    s.flow_capacity = capacity;
    worker = std::make_unique<Worker>(s, snapshot.get());
    test::PacketSpec spec;
    frame = test::build_packet(spec);
    frame.resize(64, 0);
  }
  ~PipelineRig() {
    worker.reset();
    rte_ring_free(snap_ring);
    rte_ring_free(slow);
    rte_ring_free(inject);
  }

  // Fills a burst with segments carrying keys[at..] (wrapping), addresses and
  // ports as in the key: what a client or a backend would send.
  void fill_burst(rte_mbuf** pkts, const std::vector<FlowKey>& keys, size_t& at, uint8_t flags) {
    if (rte_pktmbuf_alloc_bulk(g_pool, pkts, kBurstSize) != 0) std::abort();
    for (uint32_t i = 0; i < kBurstSize; ++i) {
      auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(pkts[i], 64));
      std::memcpy(d, frame.data(), 64);
      std::memcpy(d + 26, &keys[at].src_ip, 8);    // source and destination address
      std::memcpy(d + 34, &keys[at].src_port, 4);  // source and destination port
      d[47] = flags;
      if (++at == keys.size()) at = 0;
    }
  }

  // Opens flows 0..flows-1 with a whole handshake (client SYN, backend
  // SYN-ACK, client ACK), so that they are established, the state nearly
  // every packet meets; returns each flow's key in the direction asked, in
  // random order (traffic does not visit flows in the order they were
  // created, and neither may the benchmark). Empty if any flow is not
  // established.
  std::vector<FlowKey> open_flows(uint32_t flows, bool reverse) {
    rte_mbuf* pkts[kBurstSize];
    for (uint32_t at = 0; at < flows; at += kBurstSize) {
      make_burst(pkts, at, flows, kTcpSyn);
      worker->process_burst(pkts, kBurstSize, 1);
    }
    std::vector<FlowKey> forward, backward;
    const FlowTable& table = worker->flows();
    for (uint32_t i = 0; i < table.capacity(); ++i)
      if (table.entry(i).state != FlowState::kFree) {
        forward.push_back(forward_key(table.entry(i)));
        backward.push_back(reverse_key(table.entry(i)));
      }
    send_each(backward, kTcpSyn | kTcpAck);
    send_each(forward, kTcpAck);
    for (uint32_t i = 0; i < table.capacity(); ++i)
      if (table.entry(i).state != FlowState::kFree && table.entry(i).state != FlowState::kEstablished) return {};
    std::vector<FlowKey> keys = reverse ? backward : forward;
    std::shuffle(keys.begin(), keys.end(), std::mt19937(5));
    return keys;
  }

  // One segment with `flags` for every key (whole bursts: the last wraps
  // round to the first keys again).
  void send_each(const std::vector<FlowKey>& keys, uint8_t flags) {
    rte_mbuf* pkts[kBurstSize];
    size_t at = 0;
    for (size_t sent = 0; sent < keys.size(); sent += kBurstSize) {
      fill_burst(pkts, keys, at, flags);
      worker->process_burst(pkts, kBurstSize, 1);
    }
  }

  // Fills a burst with client segments of flows first..first+n (mod flows).
  void make_burst(rte_mbuf** pkts, uint32_t first, uint32_t flows, uint8_t flags) {
    if (rte_pktmbuf_alloc_bulk(g_pool, pkts, kBurstSize) != 0) std::abort();
    for (uint32_t i = 0; i < kBurstSize; ++i) {
      auto* d = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(pkts[i], 64));
      std::memcpy(d, frame.data(), 64);
      const FlowKey k = key_of((first + i) % flows);
      std::memcpy(d + 26, &k.src_ip, 4);
      std::memcpy(d + 34, &k.src_port, 2);
      d[47] = flags;
    }
  }
};

void BM_GenerateOnly(benchmark::State& state) {
  PipelineRig rig(1024);
  rte_mbuf* pkts[kBurstSize];
  uint32_t at = 0;
  for (auto _ : state) {
    rig.make_burst(pkts, at, 1 << 20, kTcpAck);
    at += kBurstSize;
    rte_pktmbuf_free_bulk(pkts, kBurstSize);
  }
  state.counters["ns_per_packet"] = benchmark::Counter(static_cast<double>(state.iterations()) * kBurstSize,
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_GenerateOnly);

// Builds a rig, or marks the benchmark skipped (with DPDK's reason) when the
// hugepages reserved cannot hold the table.
std::unique_ptr<PipelineRig> make_rig(benchmark::State& state, uint32_t capacity) {
  try {
    return std::make_unique<PipelineRig>(capacity);
  } catch (const std::exception& e) {
    state.SkipWithError((std::string(e.what()) + ": reserve more hugepages").c_str());
    return nullptr;
  }
}

// Established flows, all open before the measured loop, packets spread at
// random over them: forward (client -> VIP) or reverse (backend -> SNAT).
void pipeline_bench(benchmark::State& state, bool reverse) {
  const auto flows = static_cast<uint32_t>(state.range(0));
  auto rig_ptr = make_rig(state, flows);
  if (!rig_ptr) {
    for (auto _ : state) {
    }
    return;
  }
  PipelineRig& rig = *rig_ptr;
  const std::vector<FlowKey> keys = rig.open_flows(flows, reverse);
  if (keys.empty()) {
    state.SkipWithError("the handshake left flows not established");
    for (auto _ : state) {
    }
    return;
  }
  const auto& c = rig.worker->counters();
  const uint64_t before = reverse ? c.reverse_packets.get() : c.forward_packets.get();
  rte_mbuf* pkts[kBurstSize];
  size_t at = 0;
  for (auto _ : state) {
    rig.fill_burst(pkts, keys, at, kTcpAck);
    rig.worker->process_burst(pkts, kBurstSize, 2);
  }
  state.counters["ns_per_packet"] = benchmark::Counter(static_cast<double>(state.iterations()) * kBurstSize,
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["flows"] = static_cast<double>(rig.worker->flows().active());
  // Every packet must have been NATed, or the figure means nothing.
  const uint64_t moved = (reverse ? c.reverse_packets.get() : c.forward_packets.get()) - before;
  if (moved != static_cast<uint64_t>(state.iterations()) * kBurstSize) state.SkipWithError("not every packet was forwarded");
}

void BM_PipelineEstablished(benchmark::State& state) { pipeline_bench(state, false); }
// The reverse direction: the backends' replies of the same open flows
// (backend -> SNAT address and port), to compare with the forward figure.
void BM_PipelineReverse(benchmark::State& state) { pipeline_bench(state, true); }

void BM_PipelineNewFlows(benchmark::State& state) {
  const auto capacity = static_cast<uint32_t>(state.range(0));
  auto rig_ptr = make_rig(state, capacity);
  if (!rig_ptr) {
    for (auto _ : state) {
    }
    return;
  }
  PipelineRig& rig = *rig_ptr;
  rte_mbuf* pkts[kBurstSize];
  uint32_t at = 0;
  for (auto _ : state) {
    rig.make_burst(pkts, at, capacity, kTcpSyn);
    at += kBurstSize;
    rig.worker->process_burst(pkts, kBurstSize, 1);
  }
  const auto& c = rig.worker->counters();
  state.counters["ns_per_packet"] = benchmark::Counter(static_cast<double>(state.iterations()) * kBurstSize,
                                                       benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["new_flows_per_s"] =
      benchmark::Counter(static_cast<double>(c.flows_created.get()), benchmark::Counter::kIsRate);
  state.counters["created"] = static_cast<double>(c.flows_created.get());
  state.SetLabel(capacity <= (1u << 21) ? "fnat" : "dnat");
  if (c.flows_evicted.get() || c.flows_created.get() != static_cast<uint64_t>(state.iterations()) * kBurstSize)
    state.SkipWithError("the table filled up: this measures inserts, not eviction");
}

}  // namespace

BENCHMARK(BM_FlowLookupHit)->Arg(1 << 10)->Arg(1 << 20)->Arg(10 << 20);
BENCHMARK(BM_FlowLookupMiss)->Arg(1 << 10)->Arg(1 << 20)->Arg(10 << 20);
BENCHMARK(BM_PipelineEstablished)->Arg(1 << 10)->Arg(1 << 20)->Arg(10 << 20)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_PipelineReverse)->Arg(1 << 10)->Arg(1 << 20)->Arg(10 << 20)->Unit(benchmark::kNanosecond);
// Each iteration opens 32 flows: the iteration count keeps the table from filling.
// 1M: FNAT (a SNAT port per flow); 8M: DNAT (see PipelineRig). Iterations
// stop short of filling the table: this measures inserts, not eviction.
// 15000 and 100000 bursts of kBurstSize (64) open 0.96M and 6.4M flows.
BENCHMARK(BM_PipelineNewFlows)->Arg(1 << 20)->Iterations(15000);
BENCHMARK(BM_PipelineNewFlows)->Arg(8 << 20)->Iterations(100000);

int main(int argc, char** argv) {
  const char* env = std::getenv("L4LB_BENCH_EAL");
  std::istringstream in(env ? env : "--in-memory --no-pci -l 0 --log-level lib.eal:warning");
  std::vector<std::string> args{"fast_path_bench"};
  for (std::string a; in >> a;) args.push_back(a);
  std::vector<char*> eal_argv;
  for (auto& a : args) eal_argv.push_back(a.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::fprintf(stderr, "fast_path_bench: cannot start the EAL (hugepages? set L4LB_BENCH_EAL)\n");
    return 1;
  }
  g_pool = rte_pktmbuf_pool_create("bench_mbufs", 8191, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
  if (!g_pool || rte_vdev_init("net_null0", "") != 0) {
    std::fprintf(stderr, "fast_path_bench: no mbuf pool or net_null port\n");
    return 1;
  }
  uint16_t port;
  rte_eth_dev_get_port_by_name("net_null0", &port);
  g_null_port = port;
  dpdk::Port null_port(port, dpdk::PortQueues{1, 1, 1024, 1024, false}, g_pool);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
