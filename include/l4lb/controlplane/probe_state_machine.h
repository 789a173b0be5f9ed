// The rise/fall rule of health probes (DESIGN §6), HAProxy's: `rise`
// consecutive successes bring a target up, `fall` consecutive failures take
// it down. No sockets and no clock, so it can be tested by itself;
// HealthChecker (health.h) feeds it probe results.
#pragma once

#include <cstdint>

#include "l4lb/config/config.h"

namespace l4lb::controlplane {

enum class HealthState : uint8_t { kDown, kUp };

// "up" / "down", for logs and the control API.
const char* to_string(HealthState state);

// The rise/fall rule alone, without sockets, so it can be tested by itself.
class ProbeStateMachine {
 public:
  // Type `none` is up at once and stays up whatever is recorded; tcp and
  // http start down. A rise or fall of 0 counts as 1.
  explicit ProbeStateMachine(const config::HealthConfig& config);

  // Records one probe result. Returns true if the state changed.
  bool record(bool success);

  // Takes a new health config without a restart (a reload): the state is
  // kept, except that type `none` is up. `same_probe` says whether results
  // of the old config still count toward the new one (only timing changed):
  // if so the consecutive counts are kept, else they restart at zero. The
  // new rise and fall apply from the next record(), which alone changes the
  // state, so an up target never goes down before a result of the new probe.
  void reconfigure(const config::HealthConfig& config, bool same_probe);

  HealthState state() const { return state_; }
  uint32_t consecutive_ok() const { return consecutive_ok_; }
  uint32_t consecutive_fail() const { return consecutive_fail_; }

 private:
  uint32_t rise_;
  uint32_t fall_;
  bool pinned_up_;
  HealthState state_;
  uint32_t consecutive_ok_ = 0;
  uint32_t consecutive_fail_ = 0;
};

}  // namespace l4lb::controlplane
