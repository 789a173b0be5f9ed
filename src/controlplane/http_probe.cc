#include "l4lb/controlplane/http_probe.h"

#include "l4lb/common/address_text.h"

namespace l4lb::controlplane {

// HTTP/1.0 so a server that ignores `Connection: close` still closes after
// one response. Host carries the address: backends are addressed by IP and
// a name-based virtual host would be the operator's choice of path anyway.
std::string http_probe_request(uint32_t address, const std::string& path) {
  return "GET " + path + " HTTP/1.0\r\nHost: " + format_ipv4(address) +
         "\r\nUser-Agent: l4lb-health\r\nConnection: close\r\n\r\n";
}

// A peer that closes after a status line without CRLF still gave one.
std::string_view http_first_line(std::string_view response) {
  std::string_view line = response.substr(0, response.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

int parse_http_status_code(std::string_view line) {
  if (line.substr(0, 5) != "HTTP/") return -1;
  size_t i = line.find(' ');
  if (i == std::string_view::npos) return -1;
  while (i < line.size() && line[i] == ' ') ++i;
  if (i + 3 > line.size()) return -1;
  int code = 0;
  for (size_t k = i; k < i + 3; ++k) {
    if (line[k] < '0' || line[k] > '9') return -1;
    code = code * 10 + (line[k] - '0');
  }
  if (i + 3 < line.size() && line[i + 3] != ' ') return -1;
  return code;
}

std::string printable_excerpt(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 40)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return out;
}

}  // namespace l4lb::controlplane
