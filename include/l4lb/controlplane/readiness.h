// The rule behind GET /healthz (DESIGN §6): is the data plane running the
// config the management core has in force? Pure; any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace l4lb::controlplane {

// A worker's progress as the management core sees it.
struct WorkerProgress {
  uint32_t index = 0;
  uint64_t acked_generation = 0;  // the snapshot it switched to last
};

// How long a freshly published snapshot may wait for every worker's ack
// before /healthz says so: workers pick a snapshot up between bursts, so a
// healthy one acks within microseconds; a reload or a health change must
// not make /healthz flap, and a stuck worker must show within a scrape.
constexpr uint64_t kSnapshotAckGraceMs = 1000;

// When the management core published a snapshot generation.
struct Publication {
  uint64_t generation = 0;
  uint64_t published_ms = 0;
};

// "" (ready) when there are workers and none of them has missed, for
// kSnapshotAckGraceMs or longer, a snapshot published since the one it
// acknowledged. `published` lists the generations not yet acknowledged by
// every worker (older ones may be left out), oldest first. Otherwise one
// line saying why: no workers yet, or the first worker behind, the
// generation it is on, and the oldest one it has missed and for how long.
// A worker that stops turning its loop is caught by the first snapshot it
// fails to pick up.
std::string readiness_problem(std::span<const WorkerProgress> workers, std::span<const Publication> published,
                              uint64_t now_ms);

}  // namespace l4lb::controlplane
