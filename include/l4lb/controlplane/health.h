// Health probes of backends (DESIGN §6): `tcp` (a connect succeeds), `http`
// (GET path, the status code must equal `expect`) or `none` (always up).
//
// Probes go through the kernel's own stack as plain non-blocking sockets, all
// driven by one epoll fd the checker owns, so the management core's loop can
// call poll() between its other duties and never waits on a backend. The
// rise/fall rule is HAProxy's: `rise` consecutive successes bring a target
// up, `fall` consecutive failures take it down.
//
// Everything here belongs to the management core: one thread only, no locks.
// Includes no DPDK and no logging; the caller logs the changes poll() returns.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "l4lb/config/config.h"
#include "l4lb/controlplane/probe_state_machine.h"

namespace l4lb::controlplane {

// One thing to probe. `key` names it stably across reloads; the caller picks
// it (e.g. "web/10.99.0.21:8080", so one backend behind two VIPs with
// different health configs is two targets).
struct ProbeTarget {
  std::string key;
  uint32_t address = 0;  // host byte order
  uint16_t port = 0;
  config::HealthConfig config;
};

struct ProbeStatus {
  HealthState state = HealthState::kDown;
  uint32_t consecutive_ok = 0;
  uint32_t consecutive_fail = 0;
  uint64_t probes = 0;    // probes started
  uint64_t failures = 0;  // probes that failed (timeouts included)
  uint64_t changes = 0;   // state changes since the target (re)started
  // Duration of the last probe that got an answer (connect, plus the HTTP
  // status line for http), success or not; -1 before the first one and after
  // a timeout, when there was no answer to time. Taken when poll() sees the
  // answer, so it includes up to one period of the caller's loop.
  int64_t last_latency_us = -1;
  // Text of the most recent failure; kept after later successes so a
  // flapping backend still shows why it last failed. Empty if none yet.
  std::string last_error;
  uint64_t last_change_ms = 0;  // when `state` was last set (creation counts)
};

// A state change seen by poll(): log it, count it, rebuild the target's VIP.
struct HealthChange {
  std::string key;
  HealthState state;
  std::string reason;  // e.g. "3 consecutive failures, last: connect refused"
};

class HealthChecker {
 public:
  // Bounds on the work of one poll(), so a thousand targets falling due
  // together are worked off over a few calls instead of stalling the loop.
  static constexpr int kMaxEventsPerPoll = 64;  // socket events handled
  static constexpr int kMaxDuePerPoll = 32;     // probes started or timed out

  // `bind_iface`, if not empty, pins every probe socket to that device
  // (SO_BINDTODEVICE, which needs CAP_NET_RAW): the exception interface, so
  // probes leave through the appliance's data port even if the host has
  // another route to the backends. Throws std::runtime_error if the epoll fd
  // cannot be created or the name is too long for an interface.
  explicit HealthChecker(std::string bind_iface = "");
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Replaces the target set. A new key, or a key whose address or port
  // changed, starts as new: down (up if `none`), counters at zero. A key
  // whose health config changed keeps its state and counters (a reload must
  // not take healthy backends out of service):
  //  - only timing changed (interval_ms, timeout_ms, rise, fall): the
  //    consecutive counts and any probe in flight are kept; that probe's
  //    deadline becomes its start plus the new timeout, and an idle target's
  //    next probe comes no later than one new interval from now;
  //  - what is probed changed (type, or http path or expect): the consecutive
  //    counts restart and a probe in flight is dropped uncounted; the next
  //    probe starts within one interval, as a new target's first does;
  //  - either way the new rise/fall apply from the next result, so an up
  //    target goes down only after `fall` failures of the new probe, and one
  //    that becomes `none` is up.
  // The first probe of each new target is delayed by a fixed fraction of its
  // interval taken from a hash of its key, so a reload with 1000 backends
  // does not open 1000 connections at once. Sockets of removed targets are
  // closed before this returns. Later duplicates of a key are ignored.
  // Reports no changes: the caller is reloading anyway and reads status().
  // It raises the soft RLIMIT_NOFILE, up to the hard limit, to cover a
  // socket for every probed target at once beside what is open now
  // (fd_limit.h), so that no probe fails for want of a descriptor; the
  // caller refuses configs the hard limit cannot cover (probe_fd_shortfall).
  // It also grows the process's fd table for the new target count: in a
  // multi-threaded process each growth (past 256, 512, 1024 fds) waits for
  // an RCU grace period, 10-20 ms measured, paid here rather than in poll(). Management core only; never
  // waits on the network (no probe starts here).
  void set_targets(const std::vector<ProbeTarget>& targets, uint64_t now_ms);

  // Handles ready sockets, times out late probes and starts due ones, at
  // most kMaxEventsPerPoll + kMaxDuePerPoll of them. Returns the state
  // changes observed. `now_ms` is any monotonic millisecond clock, the same
  // one on every call; call every few ms, as timeouts and latencies are
  // only that precise (at one call per ms the bound still allows 32000
  // probe starts a second). Management core only; never blocks (epoll_wait
  // with a zero timeout, non-blocking sockets).
  std::vector<HealthChange> poll(uint64_t now_ms);

  // The target's status, or nullptr if the key is unknown. Valid until the
  // next set_targets(). Management core only.
  const ProbeStatus* status(const std::string& key) const;

  size_t size() const { return targets_.size(); }
  // Probe sockets open now (probes in flight).
  size_t sockets_open() const;

 private:
  enum class Phase : uint8_t { kIdle, kConnecting, kSending, kReading };
  struct Target;
  using Timers = std::multimap<uint64_t, Target*>;

  struct Target {
    ProbeTarget spec;
    ProbeStateMachine machine;
    ProbeStatus status;
    Phase phase = Phase::kIdle;
    int fd = -1;
    uint64_t due_ms = 0;                            // when the next probe is due, or the current one started
    uint64_t deadline_ms = 0;                       // when the probe in flight times out
    std::chrono::steady_clock::time_point started;  // for last_latency_us
    size_t sent = 0;                                // bytes of the HTTP request written
    std::string response;                           // bytes of the HTTP response read so far
    bool scheduled = false;
    Timers::iterator timer;  // the next start, or the deadline while in flight

    explicit Target(const ProbeTarget& t) : spec(t), machine(t.config) {}
  };

  void schedule(Target& target, uint64_t at_ms);
  void unschedule(Target& target);
  void close_probe(Target& target);
  void begin(Target& target, uint64_t now_ms);
  void reconfigure(Target& target, const ProbeTarget& spec, uint64_t now_ms);
  uint64_t first_due(const Target& target, uint64_t now_ms) const;
  void start_probe(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes);
  void on_connected(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes);
  void on_event(Target& target, uint32_t events, uint64_t now_ms, std::vector<HealthChange>& changes);
  void send_request(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes);
  void read_response(Target& target, uint64_t now_ms, std::vector<HealthChange>& changes);
  bool watch(Target& target, uint32_t events);
  void finish(Target& target, bool success, std::string error, bool timed_out, uint64_t now_ms,
              std::vector<HealthChange>& changes);

  std::string bind_iface_;
  int epoll_fd_ = -1;
  std::map<std::string, Target> targets_;  // map nodes never move: epoll and timers point at them
  Timers timers_;
};

}  // namespace l4lb::controlplane
