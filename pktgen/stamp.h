// What l4lb-pktgen writes at the start of the L4 payload of every packet it
// originates, and reads back from what returns: the TSC at build time (the
// latency stamp), a magic byte, a kind byte, and, when the frame has room,
// the flow index and a per-packet sequence number.
//
//   offset  0  u64 tsc     rte_rdtsc() when built (0 in --pcap output)
//   offset  8  u8  magic   kStampMagic
//   offset  9  u8  kind    StampKind bits
//   offset 10  u32 flow    flow index in the flow set (full stamp only)
//   offset 14  u32 seq     per-run packet sequence (full stamp only)
//
// Fields are in host order: only this program (on this machine, same TSC)
// reads them. A 64-byte TCP frame has room for the short stamp (10 bytes)
// only; warm-up frames are always built long enough for the full one, because
// the flow index is what lets the generator learn each flow's NAT'd tuple.
#pragma once

#include <cstdint>
#include <cstring>

namespace l4lb::pktgen {

inline constexpr uint8_t kStampMagic = 0xA7;
inline constexpr uint16_t kStampShort = 10;
inline constexpr uint16_t kStampFull = 18;

// Bits of the kind byte.
inline constexpr uint8_t kStampRefuse = 0x01;  // the responder answers this SYN with RST+ACK

struct Stamp {
  uint64_t tsc = 0;
  uint8_t kind = 0;
  bool full = false;  // flow and seq present
  uint32_t flow = 0;
  uint32_t seq = 0;
};

inline void write_stamp(uint8_t* payload, uint16_t room, uint64_t tsc, uint8_t kind, uint32_t flow,
                        uint32_t seq) {
  std::memcpy(payload, &tsc, 8);
  payload[8] = kStampMagic;
  payload[9] = kind;
  if (room >= kStampFull) {
    std::memcpy(payload + 10, &flow, 4);
    std::memcpy(payload + 14, &seq, 4);
  }
}

// Reads a stamp from `room` bytes of payload; false when there is none.
inline bool read_stamp(const uint8_t* payload, uint32_t room, Stamp& out) {
  if (room < kStampShort || payload[8] != kStampMagic) return false;
  std::memcpy(&out.tsc, payload, 8);
  out.kind = payload[9];
  out.full = room >= kStampFull;
  if (out.full) {
    std::memcpy(&out.flow, payload + 10, 4);
    std::memcpy(&out.seq, payload + 14, 4);
  }
  return true;
}

}  // namespace l4lb::pktgen
