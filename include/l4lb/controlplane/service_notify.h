// Tells a service manager (systemd's Type=notify) how l4lbd is doing, with
// the datagram protocol of sd_notify(3): "KEY=VALUE" lines sent to the unix
// socket named by $NOTIFY_SOCKET ('@' at the start: the abstract namespace).
// Our own few lines rather than libsystemd: the protocol is one sendto(),
// documented as stable, and the daemon then links nothing beyond what it
// already does. Without $NOTIFY_SOCKET every call does nothing.
//
// Management core only (not thread-safe); never blocks: a full socket
// buffer loses the message, as a supervisor that stopped reading would.
// No DPDK, no logging: the caller logs what a failure means to it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace l4lb::controlplane {

class ServiceNotifier {
 public:
  // Off: every call does nothing.
  ServiceNotifier() = default;
  // `socket_name`: a path, or '@' + an abstract name; "" means off.
  // `watchdog_usec`: the supervisor's watchdog timeout, 0 for none.
  // Throws std::invalid_argument for a name that is neither (relative
  // path, too long for sockaddr_un) and std::runtime_error when no socket
  // can be made.
  ServiceNotifier(const std::string& socket_name, uint64_t watchdog_usec);
  ~ServiceNotifier();
  ServiceNotifier(ServiceNotifier&& other) noexcept;
  ServiceNotifier& operator=(ServiceNotifier&& other) noexcept;
  ServiceNotifier(const ServiceNotifier&) = delete;
  ServiceNotifier& operator=(const ServiceNotifier&) = delete;

  // From $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID (the watchdog is
  // ours only when WATCHDOG_PID is unset or our pid). Throws as the
  // constructor does, and std::invalid_argument for a WATCHDOG_USEC that
  // is not a positive number.
  static ServiceNotifier from_environment();

  bool enabled() const { return fd_ >= 0; }

  // Sends `message` (newline-separated KEY=VALUE lines) as one datagram.
  // True when sent, or when off; false when the send failed.
  bool send(std::string_view message) const;

  bool ready(std::string_view status) const;
  // RELOADING=1 with MONOTONIC_USEC (what Type=notify-reload also wants);
  // follow it with ready() whatever the reload's outcome.
  bool reloading(std::string_view status) const;
  bool stopping(std::string_view status) const;
  bool status(std::string_view status) const;

  // How often the watchdog wants WATCHDOG=1: half its timeout, so one late
  // loop does not cost a restart. 0 when there is no watchdog.
  uint64_t watchdog_interval_usec() const { return watchdog_usec_ / 2; }
  // Sends WATCHDOG=1 when an interval has passed since the last one;
  // `now_usec` from CLOCK_MONOTONIC. Call from the loop whose liveness the
  // watchdog is to prove.
  void watchdog_tick(uint64_t now_usec);

 private:
  int fd_ = -1;
  sockaddr_un address_{};
  socklen_t address_length_ = 0;
  uint64_t watchdog_usec_ = 0;
  uint64_t last_watchdog_usec_ = 0;
};

// CLOCK_MONOTONIC in microseconds, the clock systemd reads MONOTONIC_USEC in.
uint64_t monotonic_usec();

}  // namespace l4lb::controlplane
