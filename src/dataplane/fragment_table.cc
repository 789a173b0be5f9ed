#include "l4lb/dataplane/fragment_table.h"

#include <bit>
#include <cstring>
#include <stdexcept>

namespace l4lb::dataplane {

FragmentTable::FragmentTable(uint32_t datagrams, uint32_t held_packets)
    : capacity_(datagrams) {
  if (datagrams == 0 || datagrams > (1u << 24)) throw std::invalid_argument("fragment table size");
  const uint32_t buckets = std::bit_ceil(datagrams * 2);
  bucket_mask_ = buckets - 1;
  slots_ = std::make_unique<Datagram[]>(datagrams);
  buckets_ = std::make_unique<uint32_t[]>(buckets);
  for (uint32_t b = 0; b < buckets; ++b) buckets_[b] = kNone;
  for (uint32_t i = 0; i < datagrams; ++i) slots_[i].hash_next = i + 1 < datagrams ? i + 1 : kNone;
  free_head_ = 0;
  held_packet_ = std::make_unique<void*[]>(held_packets ? held_packets : 1);
  held_next_ = std::make_unique<uint32_t[]>(held_packets ? held_packets : 1);
  for (uint32_t i = 0; i < held_packets; ++i) held_next_[i] = i + 1 < held_packets ? i + 1 : kNone;
  held_free_ = held_packets ? 0 : kNone;
}

uint32_t FragmentTable::find(const FragmentKey& key) const {
  for (uint32_t i = buckets_[bucket_of(key)]; i != kNone; i = slots_[i].hash_next)
    if (slots_[i].key == key) return i;
  return kNone;
}

uint32_t FragmentTable::insert(const FragmentKey& key, uint64_t now_tsc) {
  const uint32_t index = free_head_;
  Datagram& d = slots_[index];
  free_head_ = d.hash_next;
  std::memset(&d, 0, sizeof d);
  d.key = key;
  d.verdict = FragmentVerdict::kPending;
  d.born_tsc = now_tsc;
  d.held_head = d.held_tail = kNone;
  uint32_t& bucket = buckets_[bucket_of(key)];
  d.hash_next = bucket;
  bucket = index;
  d.age_prev = age_youngest_;
  d.age_next = kNone;
  if (age_youngest_ != kNone)
    slots_[age_youngest_].age_next = index;
  else
    age_oldest_ = index;
  age_youngest_ = index;
  ++used_;
  return index;
}

void FragmentTable::remove(uint32_t index) {
  Datagram& d = slots_[index];
  for (uint32_t* link = &buckets_[bucket_of(d.key)]; *link != kNone; link = &slots_[*link].hash_next) {
    if (*link == index) {
      *link = d.hash_next;
      break;
    }
  }
  (d.age_prev != kNone ? slots_[d.age_prev].age_next : age_oldest_) = d.age_next;
  (d.age_next != kNone ? slots_[d.age_next].age_prev : age_youngest_) = d.age_prev;
  d.hash_next = free_head_;
  free_head_ = index;
  --used_;
}

FragmentTable::Piece FragmentTable::add_piece(uint32_t index, uint32_t offset, uint32_t length, bool last) {
  Datagram& d = slots_[index];
  const uint32_t begin = offset;
  const uint32_t end = offset + length;
  // The last fragment fixes the datagram's end; nothing may lie past it,
  // and a second, different end is as bad as an overlap.
  if (last) {
    if ((d.end && d.end != end) || (d.pieces && d.piece[d.pieces - 1][1] > end)) return Piece::kOverlap;
  } else if (d.end && end > d.end) {
    return Piece::kOverlap;
  }
  uint32_t at = 0;  // first piece that ends at or after `begin`
  while (at < d.pieces && d.piece[at][1] < begin) ++at;
  // Pieces never touch (touching ones are merged): the one at `at` either
  // ends where this begins (join on the left) or ends after it begins; the
  // first piece past that must begin at or after this one's end.
  const bool join_left = at < d.pieces && d.piece[at][1] == begin;
  const uint32_t right = join_left ? at + 1 : at;
  if (right < d.pieces && d.piece[right][0] < end) return Piece::kOverlap;
  const bool join_right = right < d.pieces && d.piece[right][0] == end;
  if (join_left && join_right) {
    d.piece[at][1] = d.piece[right][1];
    for (uint32_t i = right; i + 1 < d.pieces; ++i) std::memcpy(d.piece[i], d.piece[i + 1], sizeof d.piece[i]);
    --d.pieces;
  } else if (join_left) {
    d.piece[at][1] = static_cast<uint16_t>(end);
  } else if (join_right) {
    d.piece[right][0] = static_cast<uint16_t>(begin);
  } else {
    if (d.pieces == kMaxPieces) return Piece::kTooMany;
    for (uint32_t i = d.pieces; i > at; --i) std::memcpy(d.piece[i], d.piece[i - 1], sizeof d.piece[i]);
    d.piece[at][0] = static_cast<uint16_t>(begin);
    d.piece[at][1] = static_cast<uint16_t>(end);
    ++d.pieces;
  }
  if (last) d.end = end;
  return d.end && d.pieces == 1 && d.piece[0][0] == 0 && d.piece[0][1] == d.end ? Piece::kComplete : Piece::kAdded;
}

bool FragmentTable::hold(uint32_t index, void* packet) {
  Datagram& d = slots_[index];
  if (held_free_ == kNone || d.held >= kMaxHeldPerDatagram) return false;
  const uint32_t slot = held_free_;
  held_free_ = held_next_[slot];
  held_packet_[slot] = packet;
  held_next_[slot] = kNone;
  if (d.held_tail != kNone)
    held_next_[d.held_tail] = slot;
  else
    d.held_head = slot;
  d.held_tail = slot;
  ++d.held;
  ++held_used_;
  return true;
}

void* FragmentTable::release(uint32_t index) {
  Datagram& d = slots_[index];
  const uint32_t slot = d.held_head;
  if (slot == kNone) return nullptr;
  d.held_head = held_next_[slot];
  if (d.held_head == kNone) d.held_tail = kNone;
  --d.held;
  --held_used_;
  void* packet = held_packet_[slot];
  held_next_[slot] = held_free_;
  held_free_ = slot;
  return packet;
}

}  // namespace l4lb::dataplane
