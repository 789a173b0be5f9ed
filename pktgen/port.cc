#include "port.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <chrono>
#include <stdexcept>
#include <thread>

namespace l4lb::pktgen {

namespace {
[[noreturn]] void fail(const std::string& port, const char* what, int rc) {
  throw std::runtime_error("port " + port + ": " + what + ": " + rte_strerror(rc < 0 ? -rc : rc));
}

uint16_t find_port(const std::string& name_or_index) {
  if (name_or_index.empty()) {
    uint16_t id;
    RTE_ETH_FOREACH_DEV(id) {
      return id;
    }
    throw std::runtime_error(
        "no DPDK port: give one to the EAL, e.g. --vdev net_memif0,role=server,socket=...");
  }
  uint16_t id;
  if (rte_eth_dev_get_port_by_name(name_or_index.c_str(), &id) == 0) return id;
  if (name_or_index.find_first_not_of("0123456789") == std::string::npos && name_or_index.size() < 6) {
    const unsigned long n = std::stoul(name_or_index);
    if (n < RTE_MAX_ETHPORTS && rte_eth_dev_is_valid_port(static_cast<uint16_t>(n)))
      return static_cast<uint16_t>(n);
  }
  throw std::runtime_error("no DPDK port named '" + name_or_index + "'");
}
}  // namespace

GenPort::GenPort(const std::string& name_or_index, unsigned mbufs, uint16_t descriptors, uint16_t queues)
    : queues_(queues) {
  id_ = find_port(name_or_index);
  char name[RTE_ETH_NAME_MAX_LEN] = {};
  rte_eth_dev_get_name_by_port(id_, name);
  name_ = name;
  const int socket =
      rte_eth_dev_socket_id(id_) < 0 ? static_cast<int>(rte_socket_id()) : rte_eth_dev_socket_id(id_);
  pool_ = rte_pktmbuf_pool_create("pktgen_mbufs", mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, socket);
  if (!pool_)
    throw std::runtime_error("cannot create a pool of " + std::to_string(mbufs) +
                             " mbufs: " + rte_strerror(rte_errno) + " (are hugepages reserved?)");
  try {
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(id_, &info); rc != 0) fail(name_, "dev_info_get", rc);
    if (queues_ > info.max_rx_queues || queues_ > info.max_tx_queues)
      throw std::runtime_error("port " + name_ + " (" + (info.driver_name ? info.driver_name : "?") +
                               ") offers " + std::to_string(info.max_rx_queues) + " rx / " +
                               std::to_string(info.max_tx_queues) + " tx queues, --queues asks for " +
                               std::to_string(queues_));
    rte_eth_conf conf{};
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)
      conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
    if (int rc = rte_eth_dev_configure(id_, queues_, queues_, &conf); rc != 0) fail(name_, "configure", rc);
    uint16_t rxd = descriptors, txd = descriptors;
    if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(id_, &rxd, &txd); rc != 0)
      fail(name_, "adjust descriptors", rc);
    for (uint16_t q = 0; q < queues_; ++q)
      if (int rc = rte_eth_rx_queue_setup(id_, q, rxd, socket, nullptr, pool_); rc != 0)
        fail(name_, "rx queue setup", rc);
    rte_eth_txconf txconf = info.default_txconf;
    txconf.offloads = conf.txmode.offloads;
    for (uint16_t q = 0; q < queues_; ++q)
      if (int rc = rte_eth_tx_queue_setup(id_, q, txd, socket, &txconf); rc != 0)
        fail(name_, "tx queue setup", rc);
    if (int rc = rte_eth_dev_start(id_); rc != 0) fail(name_, "start", rc);
    started_ = true;
    rte_eth_promiscuous_enable(id_);  // not every PMD has it; fine either way
    rte_eth_macaddr_get(id_, &mac_);
  } catch (...) {
    if (started_) rte_eth_dev_stop(id_);
    rte_mempool_free(pool_);
    throw;
  }
}

GenPort::~GenPort() {
  if (started_) rte_eth_dev_stop(id_);
  rte_eth_dev_close(id_);
  rte_mempool_free(pool_);
}

bool GenPort::wait_link(double timeout_s) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    rte_eth_link link{};
    if (rte_eth_link_get_nowait(id_, &link) == 0 && link.link_status == RTE_ETH_LINK_UP) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace l4lb::pktgen
