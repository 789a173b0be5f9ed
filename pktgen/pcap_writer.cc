#include "pcap_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "packet_builder.h"

namespace l4lb::pktgen {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

void put(std::FILE* f, const void* p, size_t n, const std::string& path) {
  if (std::fwrite(p, 1, n, f) != n)
    throw std::runtime_error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace

uint64_t write_pcap(const Options& o, const FlowSet& flows) {
  if (o.mode == Mode::kReverse)
    throw std::invalid_argument("--pcap: mode reverse only answers; nothing to write");
  if (o.mode == Mode::kChurn)
    throw std::invalid_argument(
        "--pcap: churn builds each packet in answer to the DUT's previous one; nothing fixed to write");
  if (o.from_backend)
    throw std::invalid_argument(
        "--pcap: --from-backend needs the DUT's NAT'd tuples, known only in a live run");
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(o.pcap_path.c_str(), "wb"));
  if (!f) throw std::runtime_error(o.pcap_path + ": " + std::strerror(errno));

  struct {
    uint32_t magic = 0xa1b2c3d4;
    uint16_t major = 2, minor = 4;
    int32_t thiszone = 0;
    uint32_t sigfigs = 0, snaplen = 65535, linktype = 1;
  } header;
  put(f.get(), &header, sizeof header, o.pcap_path);

  FrameSpec spec;
  spec.proto = o.proto;
  spec.vlan = o.vlan;
  spec.src_mac = o.src_mac;
  spec.dst_mac = o.dst_mac;
  spec.frame_len = std::max<uint16_t>(o.frame_len, header_bytes(o.proto, o.vlan != 0) + kStampFull);
  spec.tcp_flags = kTcpSyn;
  PacketTemplate opener, data, syn_new;
  opener.init(spec);
  spec.frame_len = o.frame_len;
  syn_new.init(spec);
  spec.tcp_flags = kTcpAck | kTcpPsh;
  data.init(spec);

  std::vector<uint32_t> zipf;
  if (o.pattern == Pattern::kZipf)
    zipf = make_zipf_sequence(flows.flows(), o.zipf_s, size_t{1} << 20, 0x4c344c42);
  const uint64_t gap_ns = 1000000000ull / (o.rate_pps ? o.rate_pps : 1000000);
  uint8_t frame[kMaxFrame];
  uint64_t written = 0, t_ns = 0;
  uint32_t seq = 0;
  auto emit = [&](uint16_t len) {
    const uint32_t rec[4] = {static_cast<uint32_t>(t_ns / 1000000000ull),
                             static_cast<uint32_t>(t_ns % 1000000000ull / 1000), len, len};
    put(f.get(), rec, sizeof rec, o.pcap_path);
    put(f.get(), frame, len, o.pcap_path);
    t_ns += gap_ns;
    ++written;
  };
  if (o.warmup)
    for (uint64_t i = 0; i < flows.flows() && written < o.pcap_count; ++i) {
      opener.build(frame, flows.client_tuple(i), 0, 0, static_cast<uint32_t>(i), seq++);
      emit(opener.length());
    }
  uint64_t rr = 0, next_new = flows.flows(), z = 0;
  while (written < o.pcap_count) {
    if (o.mode == Mode::kNew) {
      const uint64_t i = next_new++;
      syn_new.build(frame, flows.client_tuple(i), 0, kStampRefuse, static_cast<uint32_t>(i), seq++);
      emit(syn_new.length());
    } else {
      uint64_t i;
      if (zipf.empty()) {
        i = rr;
        if (++rr == flows.flows()) rr = 0;
      } else {
        i = zipf[z++ & (zipf.size() - 1)];
      }
      data.build(frame, flows.client_tuple(i), 0, 0, static_cast<uint32_t>(i), seq++);
      emit(data.length());
    }
  }
  if (std::fflush(f.get()) != 0) throw std::runtime_error(o.pcap_path + ": " + std::strerror(errno));
  return written;
}

}  // namespace l4lb::pktgen
