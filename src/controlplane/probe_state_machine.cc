#include "l4lb/controlplane/probe_state_machine.h"

#include <algorithm>

namespace l4lb::controlplane {

const char* to_string(HealthState state) {
  return state == HealthState::kUp ? "up" : "down";
}

ProbeStateMachine::ProbeStateMachine(const config::HealthConfig& config)
    : rise_(std::max<uint32_t>(config.rise, 1)),
      fall_(std::max<uint32_t>(config.fall, 1)),
      pinned_up_(config.type == config::HealthType::kNone),
      state_(pinned_up_ ? HealthState::kUp : HealthState::kDown) {}

void ProbeStateMachine::reconfigure(const config::HealthConfig& config, bool same_probe) {
  rise_ = std::max<uint32_t>(config.rise, 1);
  fall_ = std::max<uint32_t>(config.fall, 1);
  pinned_up_ = config.type == config::HealthType::kNone;
  if (pinned_up_) state_ = HealthState::kUp;
  if (!same_probe || pinned_up_) consecutive_ok_ = consecutive_fail_ = 0;
}

bool ProbeStateMachine::record(bool success) {
  if (pinned_up_) return false;
  // Saturating: a backend up for years must not wrap back to zero.
  if (success) {
    consecutive_fail_ = 0;
    if (consecutive_ok_ != UINT32_MAX) ++consecutive_ok_;
    if (state_ == HealthState::kDown && consecutive_ok_ >= rise_) {
      state_ = HealthState::kUp;
      return true;
    }
  } else {
    consecutive_ok_ = 0;
    if (consecutive_fail_ != UINT32_MAX) ++consecutive_fail_;
    if (state_ == HealthState::kUp && consecutive_fail_ >= fall_) {
      state_ = HealthState::kDown;
      return true;
    }
  }
  return false;
}

}  // namespace l4lb::controlplane
