#include "l4lb/dpdk/eal.h"

#include <rte_eal.h>
#include <rte_errno.h>

#include <stdexcept>

namespace l4lb::dpdk {

Eal::Eal(const std::vector<std::string>& args) {
  std::vector<std::string> copy = args;  // rte_eal_init may permute argv
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (rte_eal_init(static_cast<int>(copy.size()), argv.data()) < 0)
    throw std::runtime_error(std::string("EAL initialisation failed: ") + rte_strerror(rte_errno));
}

Eal::~Eal() { rte_eal_cleanup(); }

}  // namespace l4lb::dpdk
