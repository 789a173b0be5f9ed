// The Prometheus scrape endpoint (DESIGN §9 `metrics: {listen: ADDR:PORT}`):
// a small HTTP/1.1 server that lives inside the management core's loop
// rather than on a thread of its own, so rendering reads counters and
// snapshots from the only core that owns them and needs no locking.
//
// Because it shares that loop with health probes and the exception path,
// poll() never blocks: sockets are non-blocking, readiness comes from one
// epoll fd waited on with timeout 0, and every connection keeps its own
// input and output buffers so a slow or silent client only costs memory.
//
//   GET /metrics  -> 200, text/plain; version=0.0.4, body = render()
//   GET /         -> 200, a short page pointing at /metrics
//   GET other     -> 404          other methods -> 405 (Allow: GET)
//   malformed request, header block over 8 KiB -> 400 and close
//
// HTTP/1.1 connections stay open (Prometheus reuses them) unless the client
// sends `Connection: close`; HTTP/1.0 connections close after one response.
// No DPDK and no logging here: errors are thrown, the caller logs them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace l4lb::controlplane {

struct MetricsServerOptions {
  // More clients than this at once: the one idle the longest is dropped to
  // make room (a busy scraper's keep-alive connection is the last to go).
  size_t max_connections = 64;
  // A connection that neither sends nor takes bytes for this long is closed.
  uint64_t idle_timeout_ms = 30'000;
  // Request line plus headers; a larger block is answered 400.
  size_t max_header_bytes = 8 * 1024;
  // Milliseconds on a monotonic clock; empty = std::chrono::steady_clock.
  // Injected so tests can step over the idle timeout without sleeping.
  std::function<uint64_t()> now_ms;
};

class MetricsServer {
 public:
  using Render = std::function<std::string()>;

  // Binds `listen` ("A.B.C.D:PORT"; port 0 picks a free one) with
  // SO_REUSEADDR and listens. Throws std::invalid_argument if `listen` is
  // not of that form and std::runtime_error naming the address and the
  // errno text if the socket cannot be bound or listened on. Management
  // core only (start-up or reload, not the hot loop); never blocks.
  MetricsServer(const std::string& listen, Render render, MetricsServerOptions options = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Does whatever the sockets allow right now: accepts, reads, answers,
  // writes, and closes idle connections. Call from the management core's
  // loop about every millisecond; management core only; never blocks.
  // render() runs at most once per call, however many scrapes arrive in it.
  // If render() throws, the scraper gets a 500 and the exception propagates
  // to the caller (for logging) after the server's state is consistent, so
  // the next poll() carries on. Throws std::runtime_error if epoll itself
  // fails, which means a bug (such as a closed fd), not a client's doing.
  void poll();

  // The bound port, useful after listening on port 0. Any thread.
  uint16_t port() const { return port_; }
  // Open client connections. Management core only (tests, status).
  size_t connection_count() const { return connections_.size(); }

 private:
  struct Connection {
    int fd = -1;
    uint64_t id = 0;  // epoll key: a reused fd number cannot be mistaken for it
    std::string in;
    size_t scanned = 0;  // bytes of `in` already searched for the header end
    std::string out;
    size_t out_sent = 0;
    uint64_t last_active_ms = 0;
    bool close_after_write = false;  // the response in `out` is the last one
    bool peer_shut_write = false;    // the client will send nothing more
    bool want_write = false;         // epoll interest is EPOLLOUT, not EPOLLIN
    bool lingering = false;          // last response sent, write side shut, draining input
  };

  void accept_ready(uint64_t now);
  // These return false if they closed the connection (`c` is then gone).
  bool on_readable(Connection& c, uint64_t now);
  bool serve_buffered(Connection& c, uint64_t now);
  bool flush(Connection& c, uint64_t now);
  void handle_request(Connection& c, std::string_view head);
  void respond(Connection& c, int status, std::string_view content_type, std::string_view body, bool close,
               std::string_view extra_headers = {});
  bool set_interest(Connection& c, bool want_write);
  void close_connection(uint64_t id);
  void drop_longest_idle();
  void close_idle(uint64_t now);
  uint64_t now_ms() const;

  Render render_;
  MetricsServerOptions options_;
  std::string listen_text_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  uint16_t port_ = 0;
  uint64_t next_id_ = 1;  // 0 is the listening socket
  std::unordered_map<uint64_t, Connection> connections_;
  // render() output for the current poll() call, or what it threw.
  std::string render_cache_;
  bool render_valid_ = false;
  std::exception_ptr render_error_;
};

}  // namespace l4lb::controlplane
