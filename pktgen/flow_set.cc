#include "flow_set.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

namespace l4lb::pktgen {

FlowSet::FlowSet(uint32_t client_net, uint32_t prefix_len, std::vector<Service> services, uint64_t flows)
    : services_(std::move(services)), flows_(flows) {
  if (services_.empty()) throw std::invalid_argument("at least one --vip is needed");
  if (prefix_len < 8 || prefix_len > 30)
    throw std::invalid_argument("client block must be /8 .. /30, got /" + std::to_string(prefix_len));
  const uint32_t mask = ~0u << (32 - prefix_len);
  first_client_ = (client_net & mask) + 1;
  client_count_ = (1u << (32 - prefix_len)) - 2;
  capacity_ = uint64_t{client_count_} << kPortBits;
  if (flows == 0) throw std::invalid_argument("--flows must be at least 1");
  if (flows > capacity_)
    throw std::invalid_argument(std::to_string(flows) + " flows do not fit the client block (" +
                                std::to_string(capacity_) + " tuples); use a shorter prefix");
  if (flows > (uint64_t{1} << 32)) throw std::invalid_argument("at most 2^32 flows");
}

std::vector<uint32_t> make_zipf_sequence(uint64_t flows, double s, size_t length, uint64_t seed) {
  if (length == 0 || (length & (length - 1)) != 0) throw std::invalid_argument("Zipf length must be 2^k");
  if (!(s > 0.0)) throw std::invalid_argument("Zipf exponent must be > 0");
  // CDF of P(rank k) ~ 1 / k^s, k = 1..flows.
  std::vector<double> cdf(flows);
  double sum = 0.0;
  for (uint64_t k = 0; k < flows; ++k) {
    sum += 1.0 / std::pow(static_cast<double>(k + 1), s);
    cdf[k] = sum;
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0.0, sum);
  std::vector<uint32_t> out(length);
  for (auto& v : out) {
    const double u = uniform(rng);
    const auto it = std::lower_bound(cdf.begin(), cdf.end(), u);
    v = static_cast<uint32_t>(std::min<uint64_t>(static_cast<uint64_t>(it - cdf.begin()), flows - 1));
  }
  return out;
}

namespace {
uint32_t parse_ipv4_host(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1)
    throw std::invalid_argument("not an IPv4 address: '" + text + "'");
  return ntohl(a.s_addr);
}
}  // namespace

Service parse_service(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("expected ADDR:PORT, got '" + text + "'");
  Service s;
  s.ip = htonl(parse_ipv4_host(text.substr(0, colon)));
  const std::string port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535)
    throw std::invalid_argument("bad port in '" + text + "'");
  s.port = htons(static_cast<uint16_t>(std::stoul(port)));
  return s;
}

void parse_cidr(const std::string& text, uint32_t& net_host, uint32_t& prefix_len) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw std::invalid_argument("expected ADDR/LEN, got '" + text + "'");
  net_host = parse_ipv4_host(text.substr(0, slash));
  const std::string len = text.substr(slash + 1);
  if (len.empty() || len.size() > 2 || len.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(len) > 32)
    throw std::invalid_argument("bad prefix length in '" + text + "'");
  prefix_len = static_cast<uint32_t>(std::stoul(len));
}

}  // namespace l4lb::pktgen
