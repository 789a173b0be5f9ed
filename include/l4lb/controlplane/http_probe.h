// The text of an `http` health probe (DESIGN §6): the request it sends and
// how it reads the answer's status line. Pure functions over strings, so
// the parsing is tested without a server; HealthChecker (health.h) does the
// socket work.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace l4lb::controlplane {

// A status line longer than this is not HTTP worth reading further
// ("HTTP/1.1 503 Service Unavailable\r\n" is 34 bytes).
inline constexpr size_t kMaxHttpStatusLine = 512;

// "GET path HTTP/1.0" to the backend at `address` (host byte order).
std::string http_probe_request(uint32_t address, const std::string& path);

// The first line of `response` without its line end ("\n" or "\r\n"), or
// all of it when it has no line end yet.
std::string_view http_first_line(std::string_view response);

// The status code of "HTTP/<version> <3 digits>[ reason]", or -1.
int parse_http_status_code(std::string_view line);

// The first 40 bytes of `text`, each byte outside printable ASCII as '?':
// what a log line may quote of a peer's bad answer.
std::string printable_excerpt(std::string_view text);

}  // namespace l4lb::controlplane
