#include "l4lb/controlplane/config_diff.h"

#include <map>
#include <set>
#include <utility>

namespace l4lb::controlplane {

std::string restart_only_change(const config::Config& a, const config::Config& b) {
  if (a.dataplane.workers != b.dataplane.workers) return "dataplane.workers";
  if (a.dataplane.flows_per_worker != b.dataplane.flows_per_worker) return "dataplane.flows_per_worker";
  if (a.dataplane.mbufs != b.dataplane.mbufs) return "dataplane.mbufs";
  if (a.dataplane.idle_sleep_us != b.dataplane.idle_sleep_us) return "dataplane.idle_sleep_us";
  if (a.dataplane.table_full != b.dataplane.table_full) return "dataplane.table_full";
  if (a.dataplane.snat_pools_per_worker != b.dataplane.snat_pools_per_worker)
    return "dataplane.snat_pools_per_worker";
  if (a.dataplane.closed_vip_ports != b.dataplane.closed_vip_ports) return "dataplane.closed_vip_ports";
  if (a.dataplane.snat_port_min != b.dataplane.snat_port_min ||
      a.dataplane.snat_port_max != b.dataplane.snat_port_max)
    return "dataplane.snat_port_range";
  if (a.ports.size() != b.ports.size()) return "ports";
  for (size_t i = 0; i < a.ports.size(); ++i) {
    const auto& p = a.ports[i];
    const auto& q = b.ports[i];
    if (p.name != q.name || p.kernel_iface != q.kernel_iface || p.gateway != q.gateway ||
        p.addresses.size() != q.addresses.size())
      return "ports[" + std::to_string(i) + "]";
    for (size_t j = 0; j < p.addresses.size(); ++j)
      if (p.addresses[j].address != q.addresses[j].address || p.addresses[j].prefix_len != q.addresses[j].prefix_len)
        return "ports[" + std::to_string(i) + "].address";
  }
  if (a.metrics_listen != b.metrics_listen) return "metrics.listen";
  // Where l4lbd talks to BIRD; what it announces follows a reload.
  if (a.bgp.enabled != b.bgp.enabled) return "bgp.enabled";
  if (a.bgp.bird_socket != b.bgp.bird_socket) return "bgp.bird_socket";
  if (a.bgp.routes_file != b.bgp.routes_file) return "bgp.routes_file";
  return "";
}

// What a reload changes, for the log: "+vip x, -vip y, web: +1 -0 backends".
std::string describe_diff(const config::Config& a, const config::Config& b) {
  std::map<std::string, const config::VipConfig*> before, after;
  for (const auto& v : a.vips) before[v.name] = &v;
  for (const auto& v : b.vips) after[v.name] = &v;
  std::string out;
  const auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  for (const auto& [name, v] : after)
    if (!before.count(name)) add("+vip " + name);
  for (const auto& [name, v] : before)
    if (!after.count(name)) add("-vip " + name);
  for (const auto& [name, v] : after) {
    auto it = before.find(name);
    if (it == before.end()) continue;
    std::set<std::pair<uint32_t, uint16_t>> old_b, new_b;
    for (const auto& bc : it->second->backends) old_b.insert({bc.address, bc.port});
    for (const auto& bc : v->backends) new_b.insert({bc.address, bc.port});
    size_t added = 0, removed = 0;
    for (const auto& x : new_b) added += !old_b.count(x);
    for (const auto& x : old_b) removed += !new_b.count(x);
    if (added || removed) add(name + ": +" + std::to_string(added) + " -" + std::to_string(removed) + " backends");
  }
  return out.empty() ? "no VIP or backend changes" : out;
}

}  // namespace l4lb::controlplane
