#include "l4lb/dpdk/port.h"

#include <rte_errno.h>
#include <rte_ethdev.h>

#include <cstdio>
#include <stdexcept>

#include "l4lb/common/address_text.h"

namespace l4lb::dpdk {

namespace {
[[noreturn]] void fail(uint16_t port, const char* what, int rc) {
  throw std::runtime_error("port " + std::to_string(port) + ": " + what + ": " + rte_strerror(-rc));
}
}  // namespace

uint16_t Port::find(const std::string& name_or_index) {
  uint16_t id;
  if (rte_eth_dev_get_port_by_name(name_or_index.c_str(), &id) == 0) return id;
  if (!name_or_index.empty() && name_or_index.find_first_not_of("0123456789") == std::string::npos) {
    const unsigned long n = std::stoul(name_or_index);
    if (n < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port(static_cast<uint16_t>(n)))
      return static_cast<uint16_t>(n);
  }
  throw std::runtime_error("no DPDK port named '" + name_or_index +
                           "' (give it to the EAL, e.g. --vdev net_tap0,iface=dp0, or bind the NIC)");
}

Port::Port(uint16_t port_id, const PortQueues& queues, rte_mempool* pool) : id_(port_id) {
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(id_, &info); rc != 0) fail(id_, "dev_info_get", rc);
  if (queues.rx > info.max_rx_queues || queues.tx > info.max_tx_queues)
    throw std::runtime_error("port " + std::to_string(id_) + " (" + info.driver_name + ") offers " +
                             std::to_string(info.max_rx_queues) + " rx / " +
                             std::to_string(info.max_tx_queues) + " tx queues, need " +
                             std::to_string(queues.rx) + " / " + std::to_string(queues.tx));
  driver_ = info.driver_name ? info.driver_name : "";
  rte_eth_conf conf{};
  if (queues.rss && queues.rx > 1) {
    rss_hf_ = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    if (rss_hf_) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = rss_hf_;
    }
  }
  if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
    conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;  // one pool, refcnt 1
  int rc = rte_eth_dev_configure(id_, queues.rx, queues.tx, &conf);
  if (rc != 0 && rss_hf_) {
    // Some PMDs advertise hash types they cannot program in this set-up
    // (TAP without its BPF/qdisc support): fall back to the device's own
    // queue choice rather than fail.
    rss_hf_ = 0;
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
    conf.rx_adv_conf.rss_conf.rss_hf = 0;
    rc = rte_eth_dev_configure(id_, queues.rx, queues.tx, &conf);
  }
  if (rc != 0) fail(id_, "configure", rc);
  uint16_t rx_desc = queues.rx_descriptors, tx_desc = queues.tx_descriptors;
  if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id_, &rx_desc, &tx_desc); rc != 0)
    fail(id_, "adjust descriptors", rc);
  const int socket = rte_eth_dev_socket_id(id_);
  for (uint16_t q = 0; q < queues.rx; ++q)
    if (int rc = rte_eth_rx_queue_setup(id_, q, rx_desc, socket, nullptr, pool); rc != 0)
      fail(id_, "rx queue setup", rc);
  rte_eth_txconf txconf = info.default_txconf;
  txconf.offloads = conf.txmode.offloads;
  for (uint16_t q = 0; q < queues.tx; ++q)
    if (int rc = rte_eth_tx_queue_setup(id_, q, tx_desc, socket, &txconf); rc != 0)
      fail(id_, "tx queue setup", rc);
  if (int rc = rte_eth_dev_start(id_); rc != 0) fail(id_, "start", rc);
  // Not every PMD has promiscuous mode (ring, null); that is fine for them.
  rte_eth_promiscuous_enable(id_);
  rte_eth_macaddr_get(id_, &mac_);
}

Port::~Port() {
  rte_eth_dev_stop(id_);
  rte_eth_dev_close(id_);
}

std::string Port::name() const {
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(id_, name);
  return name;
}

std::string format_mac(const rte_ether_addr& mac) { return l4lb::format_mac(mac.addr_bytes); }

}  // namespace l4lb::dpdk
