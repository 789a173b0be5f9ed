// Runs control-API requests on the management core. Telemetry callbacks run
// on DPDK's telemetry thread, but config, health state and operator
// overrides belong to the management core: a callback queues a job here and
// waits; the management core runs queued jobs between its other duties.
// Jobs must capture by value (or shared_ptr): after a timeout the caller is
// gone while the job may still run.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>

namespace l4lb::controlplane {

class ControlQueue {
 public:
  // Any thread but the management core. Returns false if the job did not
  // finish within `timeout` (the management core is stopping or stuck).
  bool call(std::function<void()> job, std::chrono::milliseconds timeout) {
    auto item = std::make_shared<Item>();
    item->job = std::move(job);
    std::future<void> done = item->done.get_future();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      items_.push_back(item);
    }
    return done.wait_for(timeout) == std::future_status::ready;
  }

  // Management core only. Runs every job queued so far; the lock is held
  // only to take them, never while a job runs.
  void run_pending() {
    std::deque<std::shared_ptr<Item>> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (items_.empty()) return;
      batch.swap(items_);
    }
    for (auto& item : batch) {
      item->job();
      item->done.set_value();
    }
  }

 private:
  struct Item {
    std::function<void()> job;
    std::promise<void> done;
  };
  std::mutex mutex_;
  std::deque<std::shared_ptr<Item>> items_;
};

}  // namespace l4lb::controlplane
