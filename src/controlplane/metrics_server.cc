#include "l4lb/controlplane/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace l4lb::controlplane {

namespace {

constexpr uint64_t kListenId = 0;
// Bounds on the work one poll() may do, so a flood of clients or bytes
// cannot hold the management core for long: events per epoll_wait, accepts
// per poll, and recv calls per readable connection.
constexpr int kMaxEvents = 64;
constexpr int kMaxAcceptsPerPoll = 16;
constexpr int kMaxReadsPerEvent = 4;
constexpr size_t kReadChunk = 16 * 1024;
// After the last response the write side is shut and unread input drained
// for at most this long; closing with unread input would make the kernel
// send a reset that can destroy the response before the client reads it.
constexpr uint64_t kLingerMs = 2'000;
constexpr int kListenBacklog = 128;

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kIndexBody =
    "<html><head><title>l4lb</title></head>"
    "<body><h1>l4lb</h1><p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

std::string errno_text(int err) {
  return std::strerror(err);
}

// RFC 9110 §5.6.2 token characters (methods and header names).
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits off the next line of a header block; accepts CRLF and, as RFC 9112
// §2.2 allows, a bare LF.
std::string_view next_line(std::string_view& rest) {
  const size_t lf = rest.find('\n');
  std::string_view line = rest.substr(0, lf);
  rest.remove_prefix(lf == std::string_view::npos ? rest.size() : lf + 1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

// Offset just past the blank line that ends the header block, or npos.
// `scanned` remembers how far earlier calls got, so a request arriving one
// byte at a time is not searched from the start each time.
size_t find_header_end(const std::string& in, size_t& scanned) {
  for (size_t i = scanned; i < in.size(); ++i) {
    if (in[i] != '\n') continue;
    if (i + 1 >= in.size()) {
      scanned = i;
      return std::string::npos;
    }
    if (in[i + 1] == '\n') return i + 2;
    if (in[i + 1] == '\r') {
      if (i + 2 >= in.size()) {
        scanned = i;
        return std::string::npos;
      }
      if (in[i + 2] == '\n') return i + 3;
    }
  }
  scanned = in.size();
  return std::string::npos;
}

std::string_view status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 500:
      return "Internal Server Error";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

}  // namespace

MetricsServer::MetricsServer(const std::string& listen, Render render, MetricsServerOptions options)
    : render_(std::move(render)), options_(std::move(options)), listen_text_(listen) {
  if (!render_) throw std::invalid_argument("metrics: no render function");
  if (options_.max_connections == 0) throw std::invalid_argument("metrics: max_connections must be >= 1");

  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  {
    const size_t colon = listen.rfind(':');
    bool ok = colon != std::string::npos;
    unsigned port = 0;
    if (ok) {
      const std::string host = listen.substr(0, colon);
      const std::string_view port_text = std::string_view(listen).substr(colon + 1);
      const char* end = port_text.data() + port_text.size();
      const auto [ptr, ec] = std::from_chars(port_text.data(), end, port);
      ok = !port_text.empty() && ec == std::errc() && ptr == end && port <= 65535 &&
           inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1;
    }
    if (!ok) throw std::invalid_argument("metrics: listen address '" + listen + "' is not A.B.C.D:PORT");
    addr.sin_port = htons(static_cast<uint16_t>(port));
  }

  // The destructor does not run for a throwing constructor, so close here.
  auto fail = [this](const char* what) {
    const int err = errno;
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    epoll_fd_ = listen_fd_ = -1;
    throw std::runtime_error("metrics: cannot " + std::string(what) + " " + listen_text_ + ": " +
                             errno_text(err));
  };

  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) fail("create a socket for");
  // A restarted l4lbd must be able to rebind while old connections sit in TIME_WAIT.
  const int one = 1;
  if (::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) fail("set SO_REUSEADDR on");
  if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) fail("bind");
  if (::listen(listen_fd_, kListenBacklog) != 0) fail("listen on");
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len) != 0) fail("read the port of");
  port_ = ntohs(bound.sin_port);

  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) fail("create an epoll fd for");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenId;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) fail("watch");
}

MetricsServer::~MetricsServer() {
  for (auto& [id, c] : connections_) ::close(c.fd);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

uint64_t MetricsServer::now_ms() const {
  if (options_.now_ms) return options_.now_ms();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

void MetricsServer::poll() {
  const uint64_t now = now_ms();
  render_valid_ = false;
  render_error_ = nullptr;

  epoll_event events[kMaxEvents];
  const int n = ::epoll_wait(epoll_fd_, events, kMaxEvents, 0);  // timeout 0: never wait
  if (n < 0 && errno != EINTR) throw std::runtime_error("metrics: epoll_wait: " + errno_text(errno));

  for (int i = 0; i < n; ++i) {
    const uint64_t id = events[i].data.u64;
    const uint32_t ev = events[i].events;
    if (id == kListenId) {
      accept_ready(now);
      continue;
    }
    // Looked up by id: an earlier event in this batch may have closed it.
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Connection& c = it->second;
    if (ev & EPOLLERR) {
      close_connection(id);
      continue;
    }
    // EPOLLHUP is handled by the read or write it makes fail.
    if (c.want_write) {
      if (!flush(c, now)) continue;
      if (c.out.empty() && !c.lingering) serve_buffered(c, now);
    } else {
      on_readable(c, now);
    }
  }

  close_idle(now);
  render_cache_.clear();
  render_valid_ = false;
  if (render_error_) {
    std::exception_ptr error = std::exchange(render_error_, nullptr);
    std::rethrow_exception(error);
  }
}

void MetricsServer::accept_ready(uint64_t now) {
  for (int i = 0; i < kMaxAcceptsPerPoll; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // EAGAIN: nothing more waiting. EMFILE and friends: leave the client
      // in the backlog and try again next poll rather than spin here.
      return;
    }
    if (connections_.size() >= options_.max_connections) drop_longest_idle();
    // Responses leave in one send, but a keep-alive connection's last
    // partial segment would otherwise wait on the client's delayed ACK.
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const uint64_t id = next_id_++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    Connection& c = connections_[id];
    c.fd = fd;
    c.id = id;
    c.last_active_ms = now;
  }
}

bool MetricsServer::on_readable(Connection& c, uint64_t now) {
  char buf[kReadChunk];
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    const ssize_t n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      // Draining after the last response: discard, and do not extend the
      // linger deadline, or a client that keeps sending would hold the slot.
      if (c.lingering) continue;
      c.last_active_ms = now;
      c.in.append(buf, static_cast<size_t>(n));
      // Enough to tell a too-large header block; the rest can wait.
      if (c.in.size() > options_.max_header_bytes) break;
      continue;
    }
    if (n == 0) {
      if (c.lingering) {
        close_connection(c.id);
        return false;
      }
      c.peer_shut_write = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    close_connection(c.id);
    return false;
  }
  if (c.lingering) return true;
  return serve_buffered(c, now);
}

bool MetricsServer::serve_buffered(Connection& c, uint64_t now) {
  // One request at a time: the next is parsed only once the previous
  // response has left, so pipelined requests cannot pile up output.
  while (c.out.empty() && !c.close_after_write) {
    // RFC 9112 §2.2: ignore empty lines before a request line.
    size_t blank = 0;
    while (blank < c.in.size() && (c.in[blank] == '\r' || c.in[blank] == '\n')) ++blank;
    if (blank > 0 && blank < c.in.size()) {
      c.in.erase(0, blank);
      c.scanned = 0;
    } else if (blank > 0 && c.in[blank - 1] == '\n') {
      c.in.clear();  // only blank lines so far (keep a lone CR: its LF may follow)
      c.scanned = 0;
    }

    const size_t end = find_header_end(c.in, c.scanned);
    if (end == std::string::npos) {
      if (c.in.size() > options_.max_header_bytes) {
        respond(c, 400, "text/plain", "request header block too large\n", true);
      } else if (c.peer_shut_write) {
        if (c.in.empty()) {
          close_connection(c.id);
          return false;
        }
        respond(c, 400, "text/plain", "incomplete request\n", true);
      } else {
        return true;  // wait for more bytes
      }
    } else if (end > options_.max_header_bytes) {
      respond(c, 400, "text/plain", "request header block too large\n", true);
    } else {
      handle_request(c, std::string_view(c.in).substr(0, end));
      c.in.erase(0, end);
      c.scanned = 0;
    }
    if (!flush(c, now)) return false;
  }
  return true;
}

void MetricsServer::handle_request(Connection& c, std::string_view head) {
  auto bad = [&](std::string_view why) { respond(c, 400, "text/plain", why, true); };

  // Request line: METHOD SP TARGET SP HTTP/x.y (RFC 9112 §3).
  const std::string_view request_line = next_line(head);
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return bad("malformed request line\n");
  const std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (!is_token(method) || target.empty()) return bad("malformed request line\n");
  for (char ch : target)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) return bad("malformed request target\n");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return bad("malformed HTTP version\n");
  if (version[5] != '1') {
    respond(c, 505, "text/plain", "only HTTP/1.x is served here\n", true);
    return;
  }
  const bool http10 = version[7] == '0';

  // Header fields: only the few that decide framing and persistence matter.
  bool close = http10;  // HTTP/1.0 closes after one response here
  bool has_host = false;
  bool has_body = false;
  bool have_length = false;
  uint64_t content_length = 0;
  while (!head.empty()) {
    const std::string_view line = next_line(head);
    if (line.empty()) break;
    // Obsolete line folding is rejected, as RFC 9112 §5.2 lets a server do.
    if (line.front() == ' ' || line.front() == '\t') return bad("folded header line\n");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return bad("header line without a colon\n");
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (!is_token(name)) return bad("malformed header name\n");
    for (char ch : value)
      if ((static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f)
        return bad("control character in a header value\n");

    if (iequals(name, "host")) {
      if (has_host) return bad("more than one Host header\n");
      has_host = true;
    } else if (iequals(name, "connection")) {
      std::string_view options = value;
      while (!options.empty()) {
        const size_t comma = options.find(',');
        const std::string_view option = trim_ows(options.substr(0, comma));
        if (iequals(option, "close")) close = true;
        options.remove_prefix(comma == std::string_view::npos ? options.size() : comma + 1);
      }
    } else if (iequals(name, "content-length")) {
      uint64_t length = 0;
      const char* end = value.data() + value.size();
      const auto [ptr, ec] = std::from_chars(value.data(), end, length);
      if (value.empty() || ec != std::errc() || ptr != end) return bad("malformed Content-Length\n");
      if (have_length && length != content_length) return bad("conflicting Content-Length headers\n");
      have_length = true;
      content_length = length;
      if (length > 0) has_body = true;
    } else if (iequals(name, "transfer-encoding")) {
      has_body = true;
    }
  }
  if (!http10 && !has_host) return bad("HTTP/1.1 request without Host\n");  // RFC 9112 §3.2
  // Nothing here takes a request body, so rather than parse one (and risk
  // reading its bytes as the next request) answer and close.
  if (has_body) close = true;

  if (method != "GET") {
    respond(c, 405, "text/plain", "only GET is allowed\n", close, "Allow: GET\r\n");
    return;
  }
  // Absolute form (RFC 9112 §3.2.2): keep only the path.
  if (target.starts_with("http://") || target.starts_with("https://")) {
    target.remove_prefix(target.find("//") + 2);
    const size_t slash = target.find('/');
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.front() != '/') return bad("malformed request target\n");
  target = target.substr(0, target.find_first_of("?#"));

  if (target == "/metrics") {
    // One render per poll() serves every scrape that arrives in it.
    if (!render_valid_ && !render_error_) {
      try {
        render_cache_ = render_();
        render_valid_ = true;
      } catch (...) {
        render_error_ = std::current_exception();
      }
    }
    if (render_valid_) {
      respond(c, 200, kMetricsContentType, render_cache_, close);
    } else {
      respond(c, 500, "text/plain", "rendering metrics failed\n", close);
    }
  } else if (target == "/") {
    respond(c, 200, "text/html; charset=utf-8", kIndexBody, close);
  } else {
    respond(c, 404, "text/plain", "not found; metrics are at /metrics\n", close);
  }
}

void MetricsServer::respond(Connection& c, int status, std::string_view content_type, std::string_view body,
                            bool close, std::string_view extra_headers) {
  char length[24];
  const auto [length_end, ec] = std::to_chars(length, length + sizeof(length), body.size());
  (void)ec;  // a size_t always fits
  std::string& out = c.out;
  out.reserve(out.size() + 160 + extra_headers.size() + body.size());
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += status_text(status);
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  out.append(length, length_end);
  out += "\r\n";
  out += extra_headers;
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  if (close) {
    c.close_after_write = true;
    c.in.clear();  // whatever follows the last request is never parsed
    c.scanned = 0;
  }
}

bool MetricsServer::flush(Connection& c, uint64_t now) {
  while (c.out_sent < c.out.size()) {
    const ssize_t n =
        ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_sent += static_cast<size_t>(n);
      c.last_active_ms = now;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return set_interest(c, true);
    close_connection(c.id);  // EPIPE, ECONNRESET: the client is gone
    return false;
  }
  c.out.clear();
  c.out_sent = 0;
  if (c.close_after_write) {
    if (c.peer_shut_write) {  // read to EOF already: nothing left to drain
      close_connection(c.id);
      return false;
    }
    ::shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    c.last_active_ms = now;
  }
  return set_interest(c, false);
}

bool MetricsServer::set_interest(Connection& c, bool want_write) {
  if (c.want_write == want_write) return true;
  epoll_event ev{};
  ev.events = want_write ? EPOLLOUT : EPOLLIN;
  ev.data.u64 = c.id;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
    close_connection(c.id);
    return false;
  }
  c.want_write = want_write;
  return true;
}

void MetricsServer::close_connection(uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  ::close(it->second.fd);  // also removes it from the epoll set
  connections_.erase(it);
}

void MetricsServer::drop_longest_idle() {
  // Lingering connections are finished already, so they go first; then the
  // longest idle; then the oldest.
  auto victim = connections_.end();
  for (auto it = connections_.begin(); it != connections_.end(); ++it) {
    if (victim == connections_.end()) {
      victim = it;
      continue;
    }
    const Connection& a = it->second;
    const Connection& b = victim->second;
    if (a.lingering != b.lingering) {
      if (a.lingering) victim = it;
      continue;
    }
    if (a.last_active_ms != b.last_active_ms) {
      if (a.last_active_ms < b.last_active_ms) victim = it;
      continue;
    }
    if (a.id < b.id) victim = it;
  }
  if (victim != connections_.end()) close_connection(victim->first);
}

void MetricsServer::close_idle(uint64_t now) {
  std::vector<uint64_t> expired;
  for (const auto& [id, c] : connections_) {
    const uint64_t limit =
        c.lingering ? std::min(kLingerMs, options_.idle_timeout_ms) : options_.idle_timeout_ms;
    if (now - c.last_active_ms >= limit) expired.push_back(id);
  }
  for (uint64_t id : expired) close_connection(id);
}

}  // namespace l4lb::controlplane
