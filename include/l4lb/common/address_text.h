// Addresses as operators read them, in one place: logs, errors, l4lbctl's
// tables, metrics labels and the tools all print the same text.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "l4lb/common/mac_address.h"

namespace l4lb {

// A host-order IPv4 address as dotted quad ("10.0.0.1").
inline std::string format_ipv4(uint32_t host_order) {
  char text[16];
  std::snprintf(text, sizeof text, "%u.%u.%u.%u", host_order >> 24, (host_order >> 16) & 0xff,
                (host_order >> 8) & 0xff, host_order & 0xff);
  return text;
}

// A wire-order (network byte order) IPv4 address, as packets and flow
// entries hold it.
inline std::string format_ipv4_wire(uint32_t wire_order) {
  const auto* b = reinterpret_cast<const uint8_t*>(&wire_order);
  return format_ipv4(uint32_t{b[0]} << 24 | uint32_t{b[1]} << 16 | uint32_t{b[2]} << 8 | b[3]);
}

// "ADDR:PORT" for a host-order address and port.
inline std::string format_endpoint(uint32_t host_order, uint16_t port) {
  return format_ipv4(host_order) + ":" + std::to_string(port);
}

// Six bytes as lower-case colon-separated hex ("02:00:00:00:00:01").
inline std::string format_mac(const uint8_t bytes[6]) {
  char text[18];
  std::snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3],
                bytes[4], bytes[5]);
  return text;
}
inline std::string format_mac(const MacAddress& mac) { return format_mac(mac.bytes); }

}  // namespace l4lb
