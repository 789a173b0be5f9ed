#include "l4lb/controlplane/neighbours.h"

#include <cstring>

#include "l4lb/controlplane/kernel_interface.h"

namespace l4lb::controlplane {

namespace {
bool same(const NeighbourMap& a, const NeighbourMap& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib)
    if (ia->first != ib->first || std::memcmp(ia->second.bytes, ib->second.bytes, 6) != 0) return false;
  return true;
}
}  // namespace

bool Neighbours::set_static(const std::vector<config::NeighborConfig>& entries) {
  static_.clear();
  for (const auto& e : entries) {
    MacAddress mac;
    std::memcpy(mac.bytes, e.mac.data(), 6);
    static_[e.address] = mac;
  }
  return rebuild();
}

bool Neighbours::refresh(const std::vector<uint32_t>& wanted, uint64_t now_ms, uint64_t retry_ms,
                         uint64_t revalidate_ms) {
  for (const auto& n : read_arp_table(iface_)) learned_[n.address] = n.mac;
  for (uint32_t address : wanted) {
    if (address == 0 || static_.count(address)) continue;
    // Missing: ask every retry_ms. Learned: ask again now and then, so the
    // kernel re-validates the entry (its NUD probe) even when nothing else
    // talks to that neighbour, and a new MAC reaches the flows using it.
    const uint64_t every = learned_.count(address) ? revalidate_ms : retry_ms;
    uint64_t& last = last_solicit_ms_[address];
    if (last != 0 && now_ms - last < every) continue;
    last = now_ms;
    solicit_neighbour(iface_, address);
  }
  return rebuild();
}

bool Neighbours::rebuild() {
  NeighbourMap next = learned_;
  for (const auto& [address, mac] : static_) next[address] = mac;  // config wins
  if (same(next, merged_)) return false;
  merged_ = std::move(next);
  return true;
}

}  // namespace l4lb::controlplane
