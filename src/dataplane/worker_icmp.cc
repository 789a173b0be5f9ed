// ICMP errors about a flow's packets (DESIGN §3): found by the quoted
// packet, translated as the flow's packets are, sent to the other side.
// Out of line: errors are rare, and the common packet pays one compare.
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>

#include "l4lb/dataplane/classify.h"
#include "l4lb/dataplane/flow_key.h"
#include "l4lb/dataplane/icmp_error.h"
#include "l4lb/dataplane/nat_rewrite.h"
#include "l4lb/dataplane/worker.h"

namespace l4lb::dataplane {

bool Worker::handle_icmp_error(rte_mbuf* m, const ParsedPacket& p, bool handed_off) {
  const Snapshot& snap = *snapshot_;
  // Errors from sources no router has are the normal path's to drop.
  if (!snap.translate_icmp_errors || !is_valid_source(p.src_ip) || snap.address_kind(p.src_ip)) return false;
  uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
  IcmpQuote q;
  // A router addresses the error to the quoted packet's source.
  if (!parse_icmp_quote(frame, p, q) || p.dst_ip != q.src_ip) return false;

  // Which packet of a flow the quote is, and so which worker holds the flow:
  //  - one sent to a backend from an SNAT address (FNAT): the port's owner;
  //  - one sent to a client from a VIP service (FNAT or DNAT reply);
  //  - one sent to a DNAT backend for a client (not from an own address:
  //    that is a health probe): the client's hash.
  uint32_t owner = kAnyOwner;
  bool any_worker = false;  // FNAT from a VIP: whichever worker RSS gave the client
  const uint16_t sport = be16_to_host(q.src_port);
  if (partition_.contains(sport) && snap.snat_slot_by_address.find(address_key(q.src_ip)) != LookupTable::kNotFound) {
    owner = partition_.owner(sport);
  } else if (const uint32_t vip = snap.vip_by_service.find(service_key(q.src_ip, q.src_port, q.proto));
             vip != LookupTable::kNotFound) {
    if (snap.vips[vip].mode == NatMode::kDnat)
      owner = dnat_owner(q.dst_ip, q.dst_port, setup_.worker_count);
    else
      any_worker = true;
  } else if (!snap.address_kind(q.src_ip) &&
             snap.dnat_vip_by_backend.find(service_key(q.dst_ip, q.dst_port, q.proto)) != LookupTable::kNotFound) {
    owner = dnat_owner(q.src_ip, q.src_port, setup_.worker_count);
  } else {
    return false;  // the appliance's own traffic (probes, BGP): the kernel's
  }
  if (owner != kAnyOwner && owner != setup_.index && !handed_off) {
    hand_off(m, owner);
    return true;
  }

  // The quoted packet went from q.src to q.dst: the flow's key for a packet
  // coming back the other way. Towards a backend it is the reply key, towards
  // a client the forward key.
  const uint32_t value = flows_.lookup(make_flow_key(q.dst_ip, q.src_ip, q.dst_port, q.src_port, q.proto));
  if (value == FlowTable::kMiss) {
    // No way to compute which worker holds an FNAT flow from the client's
    // side: the error goes round the workers, each looking once.
    if (any_worker && setup_.worker_count > 1 && icmp_hops_offset_ >= 0) {
      uint8_t* left = RTE_MBUF_DYNFIELD(m, icmp_hops_offset_, uint8_t*);
      if (!handed_off) *left = static_cast<uint8_t>(setup_.worker_count - 1);
      if (*left) {
        --*left;
        hand_off(m, (setup_.index + 1) % setup_.worker_count);
        return true;
      }
    }
    drop(m, DropReason::kIcmpErrorNoFlow);
    return true;
  }
  const FlowEntry& e = flows_.entry(FlowTable::entry_of(value));
  IcmpTranslation t;
  if (FlowTable::is_reverse(value)) {
    // About a packet to the backend: the client sent it, to the VIP.
    t = {e.vip_ip, e.client_ip, e.client_ip, e.vip_ip, e.client_port, e.vip_port};
    rewrite_icmp_error(frame, p, q, t);
    set_ethernet_addresses(frame, e.client_mac, snap.port_mac);
  } else {
    // About a reply to the client: the backend sent it, to the SNAT side
    // (for DNAT that is the client itself). From the SNAT address, or for
    // DNAT the VIP: the router's own address would come back to it as a
    // source it owns when it is also the way to the backend.
    const NextHop& hop = snap.next_hop[e.backend_id];
    if (!hop.known) {
      drop(m, DropReason::kNeighbourUnresolved);
      return true;
    }
    t = {e.dnat() ? e.vip_ip : e.snat_ip, e.backend_ip, e.backend_ip, e.snat_ip, e.backend_port, e.snat_port};
    rewrite_icmp_error(frame, p, q, t);
    set_ethernet_addresses(frame, hop.mac, snap.port_mac);
  }
  counters_.icmp_errors_translated.add();
  to_tx(m);
  return true;
}

}  // namespace l4lb::dataplane
