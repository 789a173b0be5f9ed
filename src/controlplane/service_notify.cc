#include "l4lb/controlplane/service_notify.h"

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <utility>

namespace l4lb::controlplane {

namespace {

uint64_t parse_positive(const char* name, const char* text) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value == 0 || text[0] == '-')
    throw std::invalid_argument(std::string(name) + " must be a positive number, got '" + text + "'");
  return value;
}

}  // namespace

uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

ServiceNotifier::ServiceNotifier(const std::string& socket_name, uint64_t watchdog_usec) {
  if (socket_name.empty()) return;
  if (socket_name[0] != '/' && socket_name[0] != '@')
    throw std::invalid_argument("NOTIFY_SOCKET must be an absolute path or start with '@', got '" + socket_name +
                                "'");
  // An abstract name keeps its length exactly (no terminating NUL counts);
  // a path needs room for its NUL.
  const bool abstract = socket_name[0] == '@';
  if (socket_name.size() + (abstract ? 0 : 1) > sizeof(address_.sun_path))
    throw std::invalid_argument("NOTIFY_SOCKET is longer than a unix socket name may be: '" + socket_name + "'");
  address_.sun_family = AF_UNIX;
  std::memcpy(address_.sun_path, socket_name.data(), socket_name.size());
  if (abstract) address_.sun_path[0] = '\0';
  address_length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_name.size() + (abstract ? 0 : 1));
  fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("NOTIFY_SOCKET: socket(): ") + std::strerror(errno));
  watchdog_usec_ = watchdog_usec;
}

ServiceNotifier::~ServiceNotifier() {
  if (fd_ >= 0) ::close(fd_);
}

ServiceNotifier::ServiceNotifier(ServiceNotifier&& other) noexcept { *this = std::move(other); }

ServiceNotifier& ServiceNotifier::operator=(ServiceNotifier&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    address_ = other.address_;
    address_length_ = other.address_length_;
    watchdog_usec_ = other.watchdog_usec_;
    last_watchdog_usec_ = other.last_watchdog_usec_;
  }
  return *this;
}

ServiceNotifier ServiceNotifier::from_environment() {
  const char* socket_name = std::getenv("NOTIFY_SOCKET");
  if (!socket_name || !*socket_name) return ServiceNotifier();
  uint64_t watchdog_usec = 0;
  if (const char* usec = std::getenv("WATCHDOG_USEC"); usec && *usec) {
    watchdog_usec = parse_positive("WATCHDOG_USEC", usec);
    // The watchdog was meant for another process (we were started by a
    // process that got it): not ours to feed.
    if (const char* pid = std::getenv("WATCHDOG_PID"); pid && *pid)
      if (parse_positive("WATCHDOG_PID", pid) != static_cast<uint64_t>(::getpid())) watchdog_usec = 0;
  }
  return ServiceNotifier(socket_name, watchdog_usec);
}

bool ServiceNotifier::send(std::string_view message) const {
  if (fd_ < 0) return true;
  const ssize_t sent = ::sendto(fd_, message.data(), message.size(), MSG_NOSIGNAL,
                                reinterpret_cast<const sockaddr*>(&address_), address_length_);
  return sent == static_cast<ssize_t>(message.size());
}

bool ServiceNotifier::ready(std::string_view status) const {
  return send("READY=1\nSTATUS=" + std::string(status));
}

bool ServiceNotifier::reloading(std::string_view status) const {
  return send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()) + "\nSTATUS=" + std::string(status));
}

bool ServiceNotifier::stopping(std::string_view status) const {
  return send("STOPPING=1\nSTATUS=" + std::string(status));
}

bool ServiceNotifier::status(std::string_view status) const { return send("STATUS=" + std::string(status)); }

void ServiceNotifier::watchdog_tick(uint64_t now_usec) {
  if (fd_ < 0 || watchdog_usec_ == 0) return;
  if (last_watchdog_usec_ != 0 && now_usec - last_watchdog_usec_ < watchdog_interval_usec()) return;
  last_watchdog_usec_ = now_usec;
  send("WATCHDOG=1");
}

}  // namespace l4lb::controlplane
