// A worker's IPv4 datagrams in fragments (DESIGN §3 step 2a): which pieces
// have been seen, what became of the first fragment, and the later ones
// held until it comes.
//
// Fragments are not reassembled. The first fragment carries the ports, so
// it is balanced and translated as a whole packet would be; each later
// fragment gets the same new Ethernet and IP addresses (the L4 checksum,
// in the first, already covers the whole datagram). Fragments keep their
// size, so nothing has to be fragmented again, and no packet is ever more
// than one segment. What this costs is holding the fragments that arrive
// before their first, and these bounds:
//  - a fixed number of datagrams per worker; a new one evicts the oldest;
//  - a datagram lives kFragmentTimeoutSeconds from its first piece;
//  - at most kMaxPieces separate runs of bytes per datagram (in-order
//    fragments merge into one), at most kMaxHeldPerDatagram held fragments
//    and a fixed number held per worker.
// Overlapping pieces (including exact duplicates) drop the datagram, as
// RFC 5722 requires of IPv6 and as is safe for IPv4 (a later piece could
// otherwise rewrite a header the first was judged by).
//
// Pure bookkeeping: held packets are opaque pointers the worker frees.
// Single writer (its worker); created on the slow path.
#pragma once

#include <cstdint>
#include <memory>

#include "l4lb/common/hash.h"

namespace l4lb::dataplane {

// Wire order, as parsed.
struct FragmentKey {
  uint32_t src_ip;
  uint32_t dst_ip;
  uint16_t id;
  uint8_t proto;
  bool operator==(const FragmentKey&) const = default;
};

inline uint64_t fragment_hash(const FragmentKey& k) {
  return fmix64((uint64_t{k.src_ip} << 32 | k.dst_ip) ^ fmix64((uint64_t{k.id} << 8 | k.proto) + kGoldenGamma));
}

// A datagram's fragments are followed this long from the first one seen
// (Linux waits 30 s to reassemble; a balancer has no use for a datagram
// whose pieces are seconds apart, and the slot is better freed).
inline constexpr double kFragmentTimeoutSeconds = 2.0;

// Which worker follows a datagram's fragments when there are several: all
// of them must meet on one, and only the key is in every fragment.
inline uint32_t fragment_owner(const FragmentKey& k, uint32_t workers) {
  return workers <= 1 ? 0 : static_cast<uint32_t>(fragment_hash(k) % workers);
}

// What the first fragment became; the later ones follow it.
enum class FragmentVerdict : uint8_t {
  kPending,   // first fragment not seen yet: hold
  kForward,   // translated: apply `FragmentRewrite`
  kHandOff,   // passed to the flow's owner: pass the rest there too
  kSlowPath,  // to the kernel (it reassembles what is its own)
  kControl,
  kDrop,
};

struct FragmentRewrite {
  uint8_t l2[18];  // Ethernet header as sent (with the VLAN tag if any)
  uint8_t l2_len;
  uint8_t owner;    // kHandOff: the worker
  bool reverse;     // kForward: counted as reverse traffic
  uint16_t vip_id;  // kForward: counted to this VIP (kNoVip: not a flow's)
  uint32_t src_ip;  // kForward: the new addresses, wire order
  uint32_t dst_ip;
  static constexpr uint16_t kNoVip = 0xFFFF;
};

class FragmentTable {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kMaxPieces = 8;
  static constexpr uint32_t kMaxHeldPerDatagram = 64;  // a 64 KiB datagram at MTU 1500 is 45

  struct Datagram {
    FragmentKey key;
    FragmentVerdict verdict;
    uint8_t pieces;
    uint16_t held;
    uint32_t end;         // payload bytes in all, 0 until the last fragment is seen
    uint16_t piece[kMaxPieces][2];  // [begin, end) in bytes, sorted, never touching
    uint64_t born_tsc;
    uint32_t hash_next;
    uint32_t age_prev;
    uint32_t age_next;
    uint32_t held_head;  // FIFO of held fragments through held_next_
    uint32_t held_tail;
    FragmentRewrite rewrite;
  };

  enum class Piece : uint8_t {
    kAdded,     // more to come
    kComplete,  // every byte of the datagram has been seen
    kOverlap,
    kTooMany,   // more than kMaxPieces separate runs
  };

  FragmentTable(uint32_t datagrams, uint32_t held_packets);

  uint32_t find(const FragmentKey& key) const;
  bool full() const { return free_head_ == kNone; }
  // Requires !full(). The new datagram is the youngest.
  uint32_t insert(const FragmentKey& key, uint64_t now_tsc);
  // Requires the datagram to hold no fragment (release them first).
  void remove(uint32_t index);

  Datagram& at(uint32_t index) { return slots_[index]; }
  const Datagram& at(uint32_t index) const { return slots_[index]; }

  // Records bytes [offset, offset + length) of the payload; `last`: no more
  // fragments follow this one.
  Piece add_piece(uint32_t index, uint32_t offset, uint32_t length, bool last);

  // Held fragments, first in first out. hold() fails when the datagram or
  // the table holds its limit.
  bool hold(uint32_t index, void* packet);
  void* release(uint32_t index);

  // The oldest datagram, and whether it has outlived the timeout.
  uint32_t oldest() const { return age_oldest_; }
  bool expired(uint32_t index, uint64_t now_tsc, uint64_t timeout_tsc) const {
    return now_tsc - slots_[index].born_tsc >= timeout_tsc;
  }

  uint32_t size() const { return used_; }
  uint32_t capacity() const { return capacity_; }
  uint32_t held() const { return held_used_; }

 private:
  uint32_t bucket_of(const FragmentKey& key) const { return static_cast<uint32_t>(fragment_hash(key)) & bucket_mask_; }

  uint32_t capacity_;
  uint32_t bucket_mask_;
  std::unique_ptr<Datagram[]> slots_;
  std::unique_ptr<uint32_t[]> buckets_;
  uint32_t free_head_ = kNone;  // through hash_next
  uint32_t age_oldest_ = kNone;
  uint32_t age_youngest_ = kNone;
  uint32_t used_ = 0;
  // Held fragments: a pool of slots, free ones chained through held_next_.
  std::unique_ptr<void*[]> held_packet_;
  std::unique_ptr<uint32_t[]> held_next_;
  uint32_t held_free_ = kNone;
  uint32_t held_used_ = 0;
};

}  // namespace l4lb::dataplane
