#include "l4lb/controlplane/metrics_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>

namespace l4lb::controlplane {

namespace {

constexpr int kListenBacklog = 128;
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kNotFoundBody = "not found; l4lbd serves /metrics and /healthz\n";
constexpr std::string_view kMethodBody = "only GET is allowed\n";
constexpr std::string_view kRenderFailedBody = "rendering metrics failed\n";
constexpr std::string_view kReadyBody = "ok\n";

// A response whose body MHD copies, so `body` may be a temporary.
MHD_Response* text_response(std::string_view body, const char* content_type) {
  MHD_Response* r =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
    MHD_destroy_response(r);
    return nullptr;
  }
  return r;
}

// Queues `r` (when it exists) and lets go of our reference: MHD keeps its own.
bool queue_and_release(MHD_Connection* connection, unsigned status, MHD_Response* r) {
  if (!r) return false;
  const bool queued = MHD_queue_response(connection, status, r) == MHD_YES;
  MHD_destroy_response(r);
  return queued;
}

// Whether the request announces a body (RFC 9112 §6.3).
bool announces_body(MHD_Connection* connection) {
  if (MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING))
    return true;
  const char* length =
      MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  return length && std::string_view(length) != "0";
}

// Where a request is, kept in MHD's per-request pointer.
char kHeadersRead;
char kAnswered;

}  // namespace

// Bridges MHD's C callback to the member function; poll()'s thread only.
struct MetricsServerAccess {
  static MHD_Result on_request(void* self, MHD_Connection* connection, const char* url, const char* method,
                               const char*, const char*, size_t* upload_data_size, void** request) {
    // MHD calls once when the headers are in, once per piece of body, and
    // once more when the request is complete. An answer queued before the
    // request is complete makes MHD close the connection, so requests
    // without a body are answered on the last call (the connection stays
    // open); one with a body (nothing here takes one) is answered at once,
    // and MHD closes rather than read the body as the next request.
    if (*request == nullptr) {
      *request = &kHeadersRead;
      if (!announces_body(connection)) return MHD_YES;
    } else if (*upload_data_size != 0) {
      *upload_data_size = 0;  // a body is discarded
      return MHD_YES;
    }
    if (*request == &kAnswered) return MHD_YES;
    *request = &kAnswered;
    return static_cast<MetricsServer*>(self)->answer(connection, url, method) ? MHD_YES : MHD_NO;
  }
};

MetricsServer::MetricsServer(const std::string& listen, Render render, Healthz healthz,
                             MetricsServerOptions options)
    : render_(std::move(render)), healthz_(std::move(healthz)), listen_text_(listen) {
  if (!render_) throw std::invalid_argument("metrics: no render function");
  if (!healthz_) throw std::invalid_argument("metrics: no healthz function");
  if (options.max_connections == 0) throw std::invalid_argument("metrics: max_connections must be >= 1");
  if (options.idle_timeout_s == 0) throw std::invalid_argument("metrics: idle_timeout_s must be >= 1");
  if (options.connection_memory_bytes == 0)
    throw std::invalid_argument("metrics: connection_memory_bytes must be >= 1");

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

  // We bind ourselves rather than let MHD do it so that a failure names the
  // address and errno (MHD_start_daemon only returns NULL).
  int fd = -1;
  auto fail = [&](const char* what) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("metrics: cannot " + std::string(what) + " " + listen_text_ + ": " +
                             std::strerror(err));
  };
  fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("create a socket for");
  // A restarted l4lbd must be able to rebind while old connections sit in TIME_WAIT.
  const int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) fail("set SO_REUSEADDR on");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) fail("bind");
  if (::listen(fd, kListenBacklog) != 0) fail("listen on");
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) != 0) fail("read the port of");
  port_ = ntohs(bound.sin_port);

  // No MHD_USE_INTERNAL_POLLING_THREAD: poll() drives it (see the header).
  // MHD_USE_EPOLL: one epoll set, so a poll() with many idle clients costs
  // one epoll_wait. MHD takes the listening socket and closes it in
  // MHD_stop_daemon. SIGPIPE: MHD sends with MSG_NOSIGNAL on Linux.
  daemon_ = MHD_start_daemon(MHD_USE_EPOLL, 0, nullptr, nullptr, &MetricsServerAccess::on_request, this,
                             MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
                             options.max_connections, MHD_OPTION_CONNECTION_TIMEOUT, options.idle_timeout_s,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, options.connection_memory_bytes,
                             MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
  if (!daemon_) {
    ::close(fd);
    throw std::runtime_error("metrics: libmicrohttpd refused to start on " + listen_text_);
  }
}

MetricsServer::~MetricsServer() {
  if (rendered_) MHD_destroy_response(rendered_);
  MHD_stop_daemon(daemon_);
}

size_t MetricsServer::connection_count() const {
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
  return info ? info->num_connections : 0;
}

void MetricsServer::poll() {
  render_error_ = nullptr;
  const MHD_Result ran = MHD_run(daemon_);
  // Scrapes of the next poll() see fresh numbers; MHD keeps the body alive
  // for connections still sending it.
  if (rendered_) {
    MHD_destroy_response(rendered_);
    rendered_ = nullptr;
  }
  if (ran != MHD_YES) throw std::runtime_error("metrics: MHD_run failed on " + listen_text_);
  if (render_error_) std::rethrow_exception(std::exchange(render_error_, nullptr));
}

MHD_Response* MetricsServer::metrics_response() {
  if (!rendered_ && !render_error_) {
    try {
      rendered_ = text_response(render_(), kMetricsContentType);
      if (!rendered_) throw std::runtime_error("libmicrohttpd could not make a response (out of memory?)");
    } catch (...) {
      render_error_ = std::current_exception();
    }
  }
  return rendered_;
}

bool MetricsServer::answer(MHD_Connection* connection, const char* url, const char* method) {
  if (std::string_view(method) != MHD_HTTP_METHOD_GET) {
    MHD_Response* r = text_response(kMethodBody, "text/plain");
    if (r && MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, MHD_HTTP_METHOD_GET) != MHD_YES) {
      MHD_destroy_response(r);
      r = nullptr;
    }
    return queue_and_release(connection, MHD_HTTP_METHOD_NOT_ALLOWED, r);
  }
  // MHD hands over the path without the query string.
  const std::string_view path = url;
  if (path == "/metrics") {
    if (MHD_Response* r = metrics_response())
      return MHD_queue_response(connection, MHD_HTTP_OK, r) == MHD_YES;
    return queue_and_release(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
                             text_response(kRenderFailedBody, "text/plain"));
  }
  if (path == "/healthz") {
    std::string problem;
    try {
      problem = healthz_();
    } catch (const std::exception& e) {
      problem = std::string("readiness check failed: ") + e.what();
    }
    if (problem.empty())
      return queue_and_release(connection, MHD_HTTP_OK, text_response(kReadyBody, "text/plain"));
    return queue_and_release(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                             text_response(problem + "\n", "text/plain"));
  }
  return queue_and_release(connection, MHD_HTTP_NOT_FOUND, text_response(kNotFoundBody, "text/plain"));
}

}  // namespace l4lb::controlplane
