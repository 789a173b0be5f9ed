// An Ethernet address as plain bytes: what flow entries, snapshots and the
// neighbour table store, and what the worker copies into frames. No DPDK
// type, so pure code and tests use it without an EAL.
#pragma once

#include <cstdint>
#include <cstring>

namespace l4lb {

struct MacAddress {
  uint8_t bytes[6];

  friend bool operator==(const MacAddress& a, const MacAddress& b) {
    return std::memcmp(a.bytes, b.bytes, sizeof a.bytes) == 0;
  }
};
static_assert(sizeof(MacAddress) == 6);

}  // namespace l4lb
