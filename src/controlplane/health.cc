#include "l4lb/controlplane/health.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "l4lb/common/hash.h"
#include "l4lb/controlplane/fd_limit.h"
#include "l4lb/controlplane/http_probe.h"

namespace l4lb::controlplane {

namespace {

// Whether two configs send the same probe, so that results of one count
// toward the other: the same type and, for http, the same request and
// expected status. Only timing (interval, timeout, rise, fall) may differ.
// A field added to HealthConfig that changes what is probed belongs here.
bool same_probe(const config::HealthConfig& a, const config::HealthConfig& b) {
  if (a.type != b.type) return false;
  return a.type != config::HealthType::kHttp || (a.path == b.path && a.expect == b.expect);
}

std::string errno_text(const char* what, int err) {
  switch (err) {
    case ECONNREFUSED:
      return "connect refused";
    case ECONNRESET:
    case EPIPE:
      return "connection reset";
    default:
      return std::string(what) + ": " + std::strerror(err);
  }
}

int socket_error(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
  return err;
}

// Makes the process's fd table big enough for `count` more descriptors than
// are open now. The kernel grows the table on demand, and in a
// multi-threaded process (l4lbd's lcores are threads) each growth waits for
// an RCU grace period: milliseconds, which must be spent on the reload path
// rather than inside a later poll(). F_DUPFD with a high minimum forces the
// growth; the duplicate is closed at once. Best effort: above RLIMIT_NOFILE
// it fails and the table grows later as before.
void reserve_fds(int any_fd, size_t count) {
  const int lowest_free = fcntl(any_fd, F_DUPFD_CLOEXEC, 0);
  if (lowest_free < 0) return;
  close(lowest_free);
  constexpr size_t kHeadroom = 64;  // other modules open fds too
  const int high = fcntl(any_fd, F_DUPFD_CLOEXEC, static_cast<int>(lowest_free + count + kHeadroom));
  if (high >= 0) close(high);
}

const char* phase_text(bool connecting, bool sending) {
  if (connecting) return "connecting";
  if (sending) return "sending request";
  return "waiting for http status";
}

}  // namespace

// ---------------------------------------------------------------------------
// HealthChecker

HealthChecker::HealthChecker(std::string bind_iface) : bind_iface_(std::move(bind_iface)) {
  if (bind_iface_.size() >= IFNAMSIZ) {
    throw std::runtime_error("health: interface name '" + bind_iface_ + "' longer than " +
                             std::to_string(IFNAMSIZ - 1) + " characters");
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw std::runtime_error(std::string("health: epoll_create1: ") + std::strerror(errno));
}

HealthChecker::~HealthChecker() {
  for (auto& [key, target] : targets_) close_probe(target);
  close(epoll_fd_);
}

void HealthChecker::set_targets(const std::vector<ProbeTarget>& targets, uint64_t now_ms) {
  std::map<std::string, const ProbeTarget*> wanted;
  uint64_t probed = 0;
  for (const auto& t : targets)
    if (wanted.try_emplace(t.key, &t).second) probed += t.config.type != config::HealthType::kNone;
  // Every probe may be in flight at once (backends that do not answer hold
  // theirs for timeout_ms): room for all of them, beside what is open now.
  const uint64_t own_sockets = sockets_open();
  const uint64_t open_now = count_open_fds();
  raise_fd_limit(fds_needed(open_now - std::min(open_now, own_sockets), probed));
  reserve_fds(epoll_fd_, probed);

  for (auto it = targets_.begin(); it != targets_.end();) {
    if (wanted.count(it->first) != 0) {
      ++it;
      continue;
    }
    close_probe(it->second);
    unschedule(it->second);
    it = targets_.erase(it);
  }

  for (const auto& [key, spec] : wanted) {
    auto it = targets_.find(key);
    if (it == targets_.end()) {
      begin(targets_.try_emplace(key, *spec).first->second, now_ms);
      continue;
    }
    Target& target = it->second;
    if (target.spec.address != spec->address || target.spec.port != spec->port) {
      close_probe(target);
      unschedule(target);
      target.spec = *spec;
      begin(target, now_ms);
    } else if (!(target.spec.config == spec->config)) {
      reconfigure(target, *spec, now_ms);
    }
  }
}

// A reload changed the target's health config (not its address): keep the
// state, re-time or drop the probe in flight, re-time the next one (see
// set_targets() in the header).
void HealthChecker::reconfigure(Target& target, const ProbeTarget& spec, uint64_t now_ms) {
  const bool same = same_probe(target.spec.config, spec.config);
  const bool in_flight = target.phase != Phase::kIdle;
  const bool was_waiting = !in_flight && target.scheduled;
  target.spec = spec;
  const HealthState before = target.machine.state();
  target.machine.reconfigure(spec.config, same);
  ProbeStatus& status = target.status;
  status.state = target.machine.state();
  status.consecutive_ok = target.machine.consecutive_ok();
  status.consecutive_fail = target.machine.consecutive_fail();
  if (status.state != before) {  // only to `none`, which is up
    ++status.changes;
    status.last_change_ms = now_ms;
  }

  if (spec.config.type == config::HealthType::kNone) {
    close_probe(target);
    unschedule(target);
    return;
  }
  if (in_flight && same) {
    // While a probe runs, due_ms is when it started.
    target.deadline_ms = target.due_ms + spec.config.timeout_ms;
    schedule(target, target.deadline_ms);
    return;
  }
  close_probe(target);  // a probe of the old kind: its result would not count
  const uint64_t interval = std::max<uint32_t>(spec.config.interval_ms, 1);
  target.due_ms = was_waiting ? std::min(target.due_ms, now_ms + interval) : first_due(target, now_ms);
  schedule(target, target.due_ms);
}

// When a target that has no probe pending starts probing: a fixed fraction
// of its interval from now, taken from a hash of its key.
uint64_t HealthChecker::first_due(const Target& target, uint64_t now_ms) const {
  const uint64_t interval = std::max<uint32_t>(target.spec.config.interval_ms, 1);
  // FNV-1a is stable across runs and machines, so the spread of first probes is too.
  return now_ms + fnv1a64(target.spec.key) % interval;
}

size_t HealthChecker::sockets_open() const {
  size_t n = 0;
  for (const auto& [key, target] : targets_) n += target.fd >= 0;
  return n;
}

const ProbeStatus* HealthChecker::status(const std::string& key) const {
  auto it = targets_.find(key);
  return it == targets_.end() ? nullptr : &it->second.status;
}

std::vector<HealthChange> HealthChecker::poll(uint64_t now_ms) {
  std::vector<HealthChange> changes;

  // Sockets first, so an answer that arrived before its deadline is not
  // taken for a timeout because this call came late. Level-triggered: what
  // is left over beyond the bound is reported again next time.
  epoll_event events[kMaxEventsPerPoll];
  const int ready = epoll_wait(epoll_fd_, events, kMaxEventsPerPoll, 0);
  // Each fd appears at most once per epoll_wait and handling an event never
  // starts or removes another target's probe, so every pointer here is live.
  for (int i = 0; i < ready; ++i) {
    on_event(*static_cast<Target*>(events[i].data.ptr), events[i].events, now_ms, changes);
  }

  // Then deadlines and due starts, earliest first. A probe started here
  // schedules its deadline at now + timeout, so it is not seen again in
  // this loop.
  for (int budget = kMaxDuePerPoll; budget > 0 && !timers_.empty(); --budget) {
    auto first = timers_.begin();
    if (first->first > now_ms) break;
    Target& target = *first->second;
    unschedule(target);
    if (target.phase == Phase::kIdle) {
      start_probe(target, now_ms, changes);
    } else {
      std::string error = "timeout after " + std::to_string(target.spec.config.timeout_ms) + " ms (" +
                          phase_text(target.phase == Phase::kConnecting, target.phase == Phase::kSending) +
                          ")";
      finish(target, false, std::move(error), true, now_ms, changes);
    }
  }
  return changes;
}

// (Re)starts a target from scratch: initial state, zero counters, and the
// first probe at a hash-chosen point within the first interval.
void HealthChecker::begin(Target& target, uint64_t now_ms) {
  target.machine = ProbeStateMachine(target.spec.config);
  target.status = ProbeStatus{};
  target.status.state = target.machine.state();
  target.status.last_change_ms = now_ms;
  if (target.spec.config.type == config::HealthType::kNone) return;
  target.due_ms = first_due(target, now_ms);
  schedule(target, target.due_ms);
}

void HealthChecker::schedule(Target& target, uint64_t at_ms) {
  unschedule(target);
  target.timer = timers_.emplace(at_ms, &target);
  target.scheduled = true;
}

void HealthChecker::unschedule(Target& target) {
  if (!target.scheduled) return;
  timers_.erase(target.timer);
  target.scheduled = false;
}

void HealthChecker::close_probe(Target& target) {
  if (target.fd >= 0) {
    // Explicit removal, not only close(): the interest list must never keep a
    // pointer to a target about to be erased.
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, target.fd, nullptr);
    close(target.fd);
    target.fd = -1;
  }
  target.phase = Phase::kIdle;
  target.sent = 0;
  target.response.clear();
}

void HealthChecker::start_probe(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes) {
  ++target.status.probes;
  target.due_ms = now_ms;  // the next one is timed from this actual start
  target.started = std::chrono::steady_clock::now();
  target.phase = Phase::kConnecting;
  target.deadline_ms = now_ms + target.spec.config.timeout_ms;
  schedule(target, target.deadline_ms);

  target.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (target.fd < 0) return finish(target, false, errno_text("socket", errno), false, now_ms, changes);
  if (!bind_iface_.empty() && setsockopt(target.fd, SOL_SOCKET, SO_BINDTODEVICE, bind_iface_.c_str(),
                                         static_cast<socklen_t>(bind_iface_.size())) < 0) {
    return finish(target, false, errno_text(("bind to device " + bind_iface_).c_str(), errno), false, now_ms,
                  changes);
  }
  // Close with a reset rather than a FIN: a probe every interval to every
  // backend would otherwise leave thousands of TIME_WAIT sockets on the
  // management side (HAProxy's checks do the same).
  const linger no_linger{1, 0};
  setsockopt(target.fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof(no_linger));

  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.ptr = &target;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, target.fd, &ev) < 0) {
    return finish(target, false, errno_text("epoll_ctl", errno), false, now_ms, changes);
  }

  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(target.spec.address);
  to.sin_port = htons(target.spec.port);
  if (connect(target.fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) == 0) {
    return on_connected(target, now_ms, changes);
  }
  if (errno != EINPROGRESS) finish(target, false, errno_text("connect", errno), false, now_ms, changes);
}

void HealthChecker::on_event(Target& target, uint32_t events, uint64_t now_ms,
                             std::vector<HealthChange>& changes) {
  switch (target.phase) {
    case Phase::kIdle:
      return;
    case Phase::kConnecting: {
      const int err = socket_error(target.fd);
      if (err != 0) return finish(target, false, errno_text("connect", err), false, now_ms, changes);
      if (events & (EPOLLERR | EPOLLHUP))
        return finish(target, false, "connect failed", false, now_ms, changes);
      return on_connected(target, now_ms, changes);
    }
    case Phase::kSending:
      if (events & EPOLLERR) {
        return finish(target, false, errno_text("send", socket_error(target.fd)), false, now_ms, changes);
      }
      return send_request(target, now_ms, changes);
    case Phase::kReading:
      return read_response(target, now_ms, changes);
  }
}

void HealthChecker::on_connected(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes) {
  if (target.spec.config.type != config::HealthType::kHttp) {
    return finish(target, true, "", false, now_ms, changes);
  }
  target.phase = Phase::kSending;
  target.sent = 0;
  send_request(target, now_ms, changes);
}

bool HealthChecker::watch(Target& target, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = &target;
  return epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, target.fd, &ev) == 0;
}

void HealthChecker::send_request(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes) {
  const std::string request = http_probe_request(target.spec.address, target.spec.config.path);
  while (target.sent < request.size()) {
    const ssize_t n =
        send(target.fd, request.data() + target.sent, request.size() - target.sent, MSG_NOSIGNAL);
    if (n >= 0) {
      target.sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // still watching EPOLLOUT
    return finish(target, false, errno_text("send", errno), false, now_ms, changes);
  }
  target.phase = Phase::kReading;
  if (!watch(target, EPOLLIN)) finish(target, false, errno_text("epoll_ctl", errno), false, now_ms, changes);
}

void HealthChecker::read_response(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes) {
  // Only the status line matters; the loop ends within
  // kMaxHttpStatusLine / sizeof(buf) + 1 reads.
  char buf[256];
  bool eof = false;
  while (target.response.find('\n') == std::string::npos) {
    if (target.response.size() >= kMaxHttpStatusLine) {
      return finish(target, false, "bad http status line '" + printable_excerpt(target.response) + "'", false, now_ms,
                    changes);
    }
    const ssize_t n = recv(target.fd, buf, std::min(sizeof(buf), kMaxHttpStatusLine - target.response.size()), 0);
    if (n > 0) {
      target.response.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    return finish(target, false, errno_text("recv", errno), false, now_ms, changes);
  }
  if (eof && target.response.empty()) {
    return finish(target, false, "connection closed before http status line", false, now_ms, changes);
  }
  // A peer that closes after a status line without CRLF still gave one.
  const std::string_view line = http_first_line(target.response);
  const int code = parse_http_status_code(line);
  if (code < 0) {
    return finish(target, false, "bad http status line '" + printable_excerpt(line) + "'", false, now_ms, changes);
  }
  if (static_cast<uint32_t>(code) != target.spec.config.expect) {
    return finish(target, false,
                  "http status " + std::to_string(code) + " (expected " +
                      std::to_string(target.spec.config.expect) + ")",
                  false, now_ms, changes);
  }
  finish(target, true, "", false, now_ms, changes);
}

void HealthChecker::finish(Target& target, bool success, std::string error, bool timed_out, uint64_t now_ms,
                           std::vector<HealthChange>& changes) {
  close_probe(target);
  ProbeStatus& status = target.status;
  if (timed_out) {
    status.last_latency_us = -1;
  } else {
    status.last_latency_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::steady_clock::now() - target.started)
                                 .count();
  }
  if (!success) {
    ++status.failures;
    status.last_error = std::move(error);
  }

  const bool changed = target.machine.record(success);
  status.state = target.machine.state();
  status.consecutive_ok = target.machine.consecutive_ok();
  status.consecutive_fail = target.machine.consecutive_fail();
  if (changed) {
    ++status.changes;
    status.last_change_ms = now_ms;
    std::string reason;
    if (success) {
      const uint32_t n = status.consecutive_ok;
      reason = std::to_string(n) + (n == 1 ? " consecutive success" : " consecutive successes");
    } else {
      const uint32_t n = status.consecutive_fail;
      reason = std::to_string(n) + (n == 1 ? " consecutive failure" : " consecutive failures") +
               ", last: " + status.last_error;
    }
    changes.push_back({target.spec.key, status.state, std::move(reason)});
  }

  // The next probe is due one interval after this one started, whatever the
  // answer time; if that moment has passed (a probe slower than its
  // interval, or a late poll) it starts at once. Never two at a time.
  const uint64_t interval = std::max<uint32_t>(target.spec.config.interval_ms, 1);
  target.due_ms = std::max(target.due_ms + interval, now_ms);
  schedule(target, target.due_ms);
}

}  // namespace l4lb::controlplane
