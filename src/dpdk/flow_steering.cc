#include "l4lb/dpdk/flow_steering.h"

#include <rte_byteorder.h>
#include <rte_flow.h>

#include "l4lb/dataplane/packet_parser.h"

namespace l4lb::dpdk {

namespace {

struct Rule {
  rte_flow_attr attr{};
  rte_flow_item_ipv4 ip_spec{}, ip_mask{};
  rte_flow_item_tcp tcp_spec{}, tcp_last{}, tcp_mask{};
  rte_flow_item_udp udp_spec{}, udp_last{}, udp_mask{};
  rte_flow_item pattern[4]{};
  rte_flow_action_queue queue{};
  rte_flow_action actions[2]{};

  Rule(uint32_t address, uint8_t proto, uint16_t first, uint16_t last, uint16_t rx_queue) {
    attr.ingress = 1;
    ip_spec.hdr.dst_addr = address;
    ip_mask.hdr.dst_addr = 0xFFFFFFFF;
    pattern[0].type = RTE_FLOW_ITEM_TYPE_ETH;
    pattern[1] = {RTE_FLOW_ITEM_TYPE_IPV4, &ip_spec, nullptr, &ip_mask};
    if (proto == dataplane::kProtoTcp) {
      tcp_spec.hdr.dst_port = rte_cpu_to_be_16(first);
      tcp_last.hdr.dst_port = rte_cpu_to_be_16(last);
      tcp_mask.hdr.dst_port = 0xFFFF;
      pattern[2] = {RTE_FLOW_ITEM_TYPE_TCP, &tcp_spec, &tcp_last, &tcp_mask};
    } else {
      udp_spec.hdr.dst_port = rte_cpu_to_be_16(first);
      udp_last.hdr.dst_port = rte_cpu_to_be_16(last);
      udp_mask.hdr.dst_port = 0xFFFF;
      pattern[2] = {RTE_FLOW_ITEM_TYPE_UDP, &udp_spec, &udp_last, &udp_mask};
    }
    pattern[3].type = RTE_FLOW_ITEM_TYPE_END;
    queue.index = rx_queue;
    actions[0] = {RTE_FLOW_ACTION_TYPE_QUEUE, &queue};
    actions[1].type = RTE_FLOW_ACTION_TYPE_END;
  }
};

}  // namespace

SteeringResult steer_snat_replies(uint16_t port_id, const std::vector<uint32_t>& snat_addresses,
                                  const dataplane::SnatPartition& partition) {
  SteeringResult result;
  if (partition.workers() <= 1) {
    result.detail = "one worker: nothing to steer";
    return result;
  }
  if (snat_addresses.empty()) {
    result.detail = "no SNAT addresses: nothing to steer";
    return result;
  }
  std::vector<rte_flow*> created;
  for (uint32_t address : snat_addresses)
    for (uint8_t proto : {dataplane::kProtoTcp, dataplane::kProtoUdp})
      for (uint32_t w = 0; w < partition.workers(); ++w) {
        Rule rule(address, proto, partition.first_port(w), partition.last_port(w), static_cast<uint16_t>(w));
        rte_flow_error error{};
        rte_flow* flow = nullptr;
        if (rte_flow_validate(port_id, &rule.attr, rule.pattern, rule.actions, &error) == 0)
          flow = rte_flow_create(port_id, &rule.attr, rule.pattern, rule.actions, &error);
        if (!flow) {
          for (rte_flow* f : created) rte_flow_destroy(port_id, f, nullptr);
          result.detail = std::string("rte_flow refused (") + (error.message ? error.message : "no reason given") +
                          "): replies reaching the wrong worker are handed to their owner in software";
          return result;
        }
        created.push_back(flow);
      }
  result.hardware = true;
  result.detail = "rte_flow steers each worker's SNAT port slice to its queue (" +
                  std::to_string(created.size()) + " rules)";
  return result;
}

}  // namespace l4lb::dpdk
