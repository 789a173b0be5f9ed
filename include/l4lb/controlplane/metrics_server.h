// The HTTP endpoint at `metrics.listen` (DESIGN §6, §9): Prometheus text at
// /metrics and a readiness answer at /healthz, served by GNU libmicrohttpd
// (Debian's libmicrohttpd12) rather than a parser of our own.
//
// MHD runs without a thread of its own ("external select" mode with epoll):
// the management core's loop calls poll(), which runs MHD_run() once. So
// the access handler, and with it render() and healthz(), run on the core
// that owns the counters, config and health state: nothing is shared with
// another thread, nothing is copied for one, and an answer from /healthz
// also proves that the management loop turns. MHD's sockets are
// non-blocking and it waits on epoll with a zero timeout, so a slow or
// silent client costs memory, never time.
//
//   GET /metrics  -> 200, text/plain; version=0.0.4, body = render()
//   GET /healthz  -> 200 "ok\n" if healthz() returns "", else 503 and its text
//   GET other     -> 404          other methods -> 405 (Allow: GET)
//   malformed request -> 400 or closed (MHD, strict: HTTP/1.1 needs Host)
//   header block past the memory limit (8 KiB served) -> 431 and closed
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

struct MHD_Connection;
struct MHD_Daemon;
struct MHD_Response;

namespace l4lb::controlplane {

struct MetricsServerOptions {
  // At this many clients MHD stops accepting (MHD_OPTION_CONNECTION_LIMIT):
  // newcomers wait in the kernel's listen backlog until one leaves or times
  // out, so established scrapers keep their keep-alive connections.
  unsigned max_connections = 64;
  // A connection that sends nothing (an unfinished request too) and takes
  // nothing for this long is closed (MHD_OPTION_CONNECTION_TIMEOUT).
  unsigned idle_timeout_s = 30;
  // Memory MHD may use per connection for the request line, the headers and
  // the response's headers (MHD_OPTION_CONNECTION_MEMORY_LIMIT): a request
  // whose header block does not fit is answered 431 and closed (the answer
  // may be lost to the reset of closing with input unread). The body of a
  // response is held apart from it. 9 KiB serves a header block of 8 KiB,
  // the limit before libmicrohttpd, and refuses one of 9000 bytes (tested).
  size_t connection_memory_bytes = 9 * 1024;
};

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  // "" when the appliance is ready for traffic, else why not (one line).
  using Healthz = std::function<std::string()>;

  // Binds `listen` ("A.B.C.D:PORT"; port 0 picks a free one) with
  // SO_REUSEADDR, listens, and hands the socket to MHD. Throws
  // std::invalid_argument if `listen` is not of that form or an option is
  // 0, and std::runtime_error naming the address and the errno text if the
  // socket cannot be bound or listened on, or naming MHD if it refuses to
  // start. Management core only (start-up); never blocks.
  MetricsServer(const std::string& listen, Render render, Healthz healthz, MetricsServerOptions options = {});
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Runs MHD once: accepts, reads, answers, writes, and closes connections
  // past their timeout or over the limits. Call from the management core's
  // loop about every millisecond; management core only; never blocks.
  // render() runs at most once per call, however many scrapes arrive in it.
  // If render() throws, the scraper gets a 500 and the exception propagates
  // to the caller (for logging) once MHD_run() is done, so the next poll()
  // carries on. Throws std::runtime_error if MHD_run() itself fails.
  void poll();

  // The bound port, useful after listening on port 0. Any thread.
  uint16_t port() const { return port_; }
  // Open client connections. Management core only (tests, status).
  size_t connection_count() const;

 private:
  // MHD's access handler (in the .cc) calls answer() on the poll() thread.
  friend struct MetricsServerAccess;
  // Queues the answer to one request; false if MHD refused it (MHD then
  // closes the connection).
  bool answer(MHD_Connection* connection, const char* url, const char* method);
  // The response for /metrics in this poll(), rendered on first use; null
  // when render() threw (the error is kept for poll() to rethrow).
  MHD_Response* metrics_response();

  Render render_;
  Healthz healthz_;
  std::string listen_text_;
  uint16_t port_ = 0;
  MHD_Daemon* daemon_ = nullptr;
  MHD_Response* rendered_ = nullptr;  // this poll()'s /metrics answer, reference held until its end
  std::exception_ptr render_error_;
};

}  // namespace l4lb::controlplane
