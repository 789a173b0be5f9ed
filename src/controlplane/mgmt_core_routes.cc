// The management core's side of scale-out (DESIGN §12): what this appliance
// announces through BIRD, re-decided every few milliseconds, and the
// appliance's drain as l4lbctl and the metrics show it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "l4lb/common/address_text.h"
#include "l4lb/controlplane/mgmt_core.h"

namespace l4lb::controlplane {

namespace {

// How often the management loop re-decides what to announce: a health
// change or a stuck worker reaches BIRD within this (plus BIRD's own
// reconfigure, milliseconds).
constexpr uint64_t kAnnouncePeriodMs = 20;
// An `l4lbctl drain` without a time, on a config without shutdown_drain_s.
constexpr uint32_t kDefaultDrainS = 60;

}  // namespace

void ManagementCore::announce_routes(uint64_t now) {
  if (!bird_ || now < next_announce_ms_) return;
  next_announce_ms_ = now + kAnnouncePeriodMs;
  ApplianceState state;
  state.not_ready = readiness();
  if (state.not_ready.empty() && !port_up_) state.not_ready = "port " + std::to_string(port_id_) + " link down";
  state.draining = vips_withdrawn_;
  std::vector<RouteDecision> decisions = decide_routes(inputs(), state);
  // Logged when a route's verdict changes, not every 20 ms.
  for (const RouteDecision& d : decisions) {
    const auto old = std::find_if(routes_.begin(), routes_.end(),
                                  [&](const RouteDecision& r) { return r.prefix == d.prefix; });
    if (old != routes_.end() && old->announce == d.announce && old->reason == d.reason) continue;
    if (d.announce)
      spdlog::info("bgp: announcing {}/32 ({})", format_ipv4(d.prefix), d.owner);
    else
      spdlog::warn("bgp: withdrawing {}/32 ({}): {}", format_ipv4(d.prefix), d.owner, d.reason);
  }
  routes_ = std::move(decisions);
  bird_->set_routes(announced_prefixes(routes_));
  bird_->poll(now);
  for (const std::string& line : bird_->events()) {
    if (bird_->status().last_error.empty())
      spdlog::info("bgp: {}", line);
    else
      spdlog::error("bgp: {}", line);
  }
  const BirdAnnouncer::Status& st = bird_->status();
  control_.routes_wanted = st.wanted.size();
  control_.routes_announced = st.announced.size();
  control_.routes_in_sync = st.in_sync;
}

bool ManagementCore::vip_routes_withdrawn() const {
  if (!bird_) return true;
  const BirdAnnouncer::Status& st = bird_->status();
  for (const auto& v : config_.vips)
    if (std::binary_search(st.announced.begin(), st.announced.end(), v.address)) return false;
  // Until BIRD confirmed a configure, what it announces is not known.
  return st.configures_ok > 0 || st.wanted.empty();
}

void ManagementCore::withdraw_all_routes(uint64_t timeout_ms) {
  if (!bird_) return;
  bird_->set_routes({});
  // The management core's one clock (service_notify.h), as in run().
  const auto clock = [] { return monotonic_usec() / 1000; };
  const uint64_t end = clock() + timeout_ms;
  do {
    bird_->poll(clock());
    if (bird_->status().in_sync) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  } while (clock() < end);
  for (const std::string& line : bird_->events()) spdlog::info("bgp: {}", line);
  if (bird_->status().in_sync)
    spdlog::info("bgp: every route withdrawn");
  else
    spdlog::warn("bgp: BIRD did not confirm the withdrawal within {} ms ({}); the routes file is empty, and "
                 "the routes go with the kernel interface",
                 timeout_ms, bird_->status().last_error);
}

void ManagementCore::begin_drain() {
  if (draining_) return;
  draining_ = true;
  control_.draining = 1;
  publish_snapshot();  // with the other appliances' MACs, if any is resolved
  if (redirecting())
    spdlog::info("drain: new flows go to {} other appliance(s) (bgp.appliances); the VIPs stay announced "
                 "until this appliance's flows have ended",
                 publisher_.current()->redirect_macs.size());
  else
    withdraw_vips();
}

bool ManagementCore::redirecting() const { return draining_ && !publisher_.current()->redirect_macs.empty(); }

void ManagementCore::withdraw_vips() {
  if (vips_withdrawn_) return;
  vips_withdrawn_ = true;
  next_announce_ms_ = 0;  // at once
}

void ManagementCore::set_drain_progress(uint64_t flows_left, uint64_t seconds_left) {
  control_.drain_flows_left = flows_left;
  control_.drain_seconds_left = seconds_left;
}

std::string ManagementCore::request_drain(uint32_t seconds) {
  if (draining_ || drain_requested_s_) return "already draining";
  const uint32_t configured = config_.dataplane.shutdown_drain_s;
  drain_requested_s_ = seconds ? seconds : configured ? configured : kDefaultDrainS;
  spdlog::info("drain requested by the operator: up to {} s, then l4lbd exits", drain_requested_s_);
  return "";
}

ControlRowPage ManagementCore::route_rows(size_t start, size_t max) const {
  ControlRowPage page;
  page.total = routes_.size();
  const BirdAnnouncer::Status* st = bird_ ? &bird_->status() : nullptr;
  for (size_t i = start; i < routes_.size() && page.rows.size() < max; ++i) {
    const RouteDecision& d = routes_[i];
    const bool in_bird = st && std::binary_search(st->announced.begin(), st->announced.end(), d.prefix);
    page.rows.push_back({{"prefix", format_ipv4(d.prefix) + "/32"},
                         {"owner", d.owner},
                         {"announce", uint64_t{d.announce}},
                         {"in_bird", uint64_t{in_bird}},
                         {"reason", d.reason}});
  }
  return page;
}

void ManagementCore::render_route_metrics(PrometheusWriter& w) const {
  w.family("l4lb_draining", "gauge", "1 while the appliance drains (VIP routes withdrawn, l4lbd exits after)");
  w.sample("l4lb_draining", {}, uint64_t{draining_});
  if (!bird_) return;
  const BirdAnnouncer::Status& st = bird_->status();
  w.family("l4lb_bgp_routes", "gauge", "Routes l4lbd wants BIRD to announce, and those BIRD last took");
  w.sample("l4lb_bgp_routes", {{"state", "wanted"}}, uint64_t{st.wanted.size()});
  w.sample("l4lb_bgp_routes", {{"state", "announced"}}, uint64_t{st.announced.size()});
  w.family("l4lb_bgp_in_sync", "gauge", "1 when BIRD confirmed the routes l4lbd wants");
  w.sample("l4lb_bgp_in_sync", {}, uint64_t{st.in_sync});
  w.family("l4lb_bgp_configures_total", "counter", "Reconfigurations asked of BIRD, by result");
  w.sample("l4lb_bgp_configures_total", {{"result", "ok"}}, st.configures_ok);
  w.sample("l4lb_bgp_configures_total", {{"result", "failed"}}, st.configures_failed);
}

}  // namespace l4lb::controlplane
