#include "l4lb/controlplane/readiness.h"

namespace l4lb::controlplane {

std::string readiness_problem(std::span<const WorkerProgress> workers, std::span<const Publication> published,
                              uint64_t now_ms) {
  if (workers.empty()) return "no workers running yet";
  for (const WorkerProgress& w : workers)
    for (const Publication& p : published) {
      if (p.generation <= w.acked_generation) continue;
      // The oldest generation this worker has missed decides.
      const uint64_t waited_ms = now_ms >= p.published_ms ? now_ms - p.published_ms : 0;
      if (waited_ms >= kSnapshotAckGraceMs)
        return "worker " + std::to_string(w.index) + " is on snapshot generation " +
               std::to_string(w.acked_generation) + " and has not picked up generation " +
               std::to_string(p.generation) + " published " + std::to_string(waited_ms) + " ms ago";
      break;
    }
  return "";
}

}  // namespace l4lb::controlplane
