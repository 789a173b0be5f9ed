// The config and next-hop MACs the EAL tests forward with: one port
// 10.99.0.1/24, VIPs "web" (10.99.0.100:8080/tcp) and "dns" (:53/udp), both
// FNAT from 10.99.0.1 to backends 10.99.0.21-23 port 80 with static MACs
// 02:00:00:00:00:21-23. Shared by worker_pipeline_test and
// mbuf_exhaustion_test.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>

#include "../common/packet_builder.h"
#include "l4lb/config/config.h"
#include "l4lb/controlplane/snapshot_builder.h"

namespace l4lb::test {

inline config::Config make_config(config::TcpMissPolicy miss = config::TcpMissPolicy::kForward) {
  config::Config c;
  c.dataplane.flows_per_worker = 1024;
  config::PortConfig p;
  p.name = "ring";
  p.addresses = {{host_ip("10.99.0.1"), 24}};
  c.ports.push_back(p);
  config::VipConfig web;
  web.name = "web";
  web.address = host_ip("10.99.0.100");
  web.port = 8080;
  web.snat = {host_ip("10.99.0.1")};
  web.table_size = 251;
  web.tcp_miss = miss;
  for (const char* b : {"10.99.0.21", "10.99.0.22", "10.99.0.23"})
    web.backends.push_back({host_ip(b), 80, 1, 0});
  c.vips.push_back(web);
  config::VipConfig dns = web;
  dns.name = "dns";
  dns.port = 53;
  dns.protocol = config::Protocol::kUdp;
  c.vips.push_back(dns);
  c.timeouts.tcp_syn_s = c.timeouts.tcp_syn_recv_s = 5;
  c.timeouts.tcp_established_s = 100;
  c.timeouts.tcp_fin_wait_s = c.timeouts.tcp_time_wait_s = c.timeouts.tcp_close_s = 10;
  c.timeouts.udp_s = c.timeouts.udp_unreplied_s = 30;
  c.timeouts.snat_port_hold_s = 60;
  return c;
}

inline controlplane::NeighbourMap neighbours() {
  controlplane::NeighbourMap n;
  for (uint8_t i : {21, 22, 23})
    n[host_ip(("10.99.0." + std::to_string(i)).c_str())] = {{0x02, 0, 0, 0, 0, i}};
  return n;
}

}  // namespace l4lb::test
