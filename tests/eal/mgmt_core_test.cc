// The management core as l4lbd builds it, without workers: its exception
// interface (a real TAP), its probes and its reloads (issue 13).
//
//   - a reload that gives a VIP a health probe keeps its backends in service
//     (before, every backend restarted down and the VIP failed open);
//   - with ports[].gateway, the kernel routes what is sent on the exception
//     interface to addresses outside the port's subnets through the gateway:
//     a probe to such a backend asks for the gateway's MAC, not the
//     backend's own;
//   - the soft RLIMIT_NOFILE is raised to cover every probe, and a config
//     that even the hard limit cannot cover is refused, at start and at a
//     reload, naming the backend key and line.
//
// The binary first moves into a network namespace of its own
// (unshare(CLONE_NEWNET), needs root), so its TAP interfaces, addresses and
// routes touch nothing else on the machine and vanish with the process.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_mempool.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "l4lb/config/config_loader.h"
#include "l4lb/controlplane/fd_limit.h"
#include "l4lb/controlplane/mgmt_core.h"
#include "test_eal.h"

using namespace l4lb;
using namespace std::chrono_literals;

namespace {

rte_mempool* g_pool;
const rte_ether_addr kPortMac{{0x02, 0x00, 0x00, 0x00, 0x13, 0x01}};

// A config file in a temporary directory that the test rewrites for reloads.
class ConfigFile {
 public:
  ConfigFile() {
    char dir[] = "/tmp/l4lb-mgmt-test.XXXXXX";
    dir_ = mkdtemp(dir);
    path_ = dir_ + "/l4lb.yaml";
  }
  ~ConfigFile() {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  const std::string& write(const std::string& text) {
    std::ofstream(path_) << text;
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

// One port 198.18.0.1/24 (RFC 2544 benchmark space) on kernel interface
// `iface`, VIP web with backends .21 and .22 (static neighbours, so both
// are resolved), `health` as given, and `extra` appended to the port.
std::string web_config(const std::string& iface, const std::string& health, const std::string& extra = "") {
  // clang-format off
  return "ports:\n"
         "  - name: net_null0\n"
         "    address: 198.18.0.1/24\n"
         "    kernel_iface: " + iface + "\n" + extra +
         "vips:\n"
         "  - name: web\n"
         "    address: 198.18.0.100\n"
         "    port: 80\n"
         "    snat: [198.18.0.1]\n"
         "    health: " + health + "\n"
         "    backends:\n"
         "      - {address: 198.18.0.21, port: 80}\n"
         "      - {address: 198.18.0.22, port: 80}\n"
         "neighbors:\n"
         "  - {address: 198.18.0.21, mac: \"02:00:00:00:00:21\"}\n"
         "  - {address: 198.18.0.22, mac: \"02:00:00:00:00:22\"}\n";
  // clang-format on
}

std::unique_ptr<controlplane::ManagementCore> make_core(const std::string& path) {
  return std::make_unique<controlplane::ManagementCore>(config::load_config_file(path), path, 0, kPortMac,
                                                        g_pool, std::vector<controlplane::WorkerRings>{});
}

// Polls `done` every 10 ms for up to `limit`; true once it held.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Addresses the kernel has a neighbour entry for on `iface`, complete or
// not (an incomplete one is an ARP request in progress).
std::vector<std::string> arp_entries(const std::string& iface) {
  std::vector<std::string> out;
  std::ifstream f("/proc/net/arp");
  std::string line;
  std::getline(f, line);
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string ip, hw_type, flags, mac, mask, dev;
    if (in >> ip >> hw_type >> flags >> mac >> mask >> dev && dev == iface) out.push_back(ip);
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(ManagementCore, ReloadGivingAVipAProbeKeepsItsBackendsInService) {
  const std::string iface = "l4lbt" + std::to_string(getpid() % 100000) + "a";
  ConfigFile file;
  auto core = make_core(file.write(web_config(iface, "{type: none}")));
  const dataplane::Snapshot* s = core->initial_snapshot();
  ASSERT_EQ(s->vips.size(), 1u);
  EXPECT_FALSE(s->vips[0].fail_open);

  // Probes nobody answers soon (no listener, long interval): the reload
  // alone must not take the backends out of service.
  file.write(web_config(iface, "{type: tcp, interval_ms: 10000, timeout_ms: 500, rise: 2, fall: 2}"));
  ASSERT_EQ(core->reload_config(), "");
  s = core->initial_snapshot();  // the current one
  ASSERT_EQ(s->vips.size(), 1u);
  EXPECT_FALSE(s->vips[0].fail_open) << "every backend restarted down: the VIP fails open";
  for (const auto& b : s->vips[0].backends) EXPECT_EQ(s->backend_alive.at(b.id), 1) << "backend id " << b.id;
}

// logging.level is documented as applied on reload (l4lb.yaml(5)): a reload
// that only changes it is accepted and takes effect at once.
TEST(ManagementCore, ReloadAppliesTheLogLevel) {
  const std::string iface = "l4lbt" + std::to_string(getpid() % 100000) + "l";
  ConfigFile file;
  auto core = make_core(file.write(web_config(iface, "{type: none}") + "logging: {level: info}\n"));
  spdlog::set_level(spdlog::level::info);  // what l4lbd sets at start from this file
  file.write(web_config(iface, "{type: none}") + "logging: {level: warn}\n");
  ASSERT_EQ(core->reload_config(), "");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::warn);
  file.write(web_config(iface, "{type: none}") + "logging: {level: info}\n");
  ASSERT_EQ(core->reload_config(), "");
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
}

// Item 2 of issue 13: a backend outside the port's subnets is reached
// through ports[].gateway. A probe-like connect from a socket bound to the
// exception interface (what HealthChecker does) must make the kernel ask
// for the gateway's MAC; without a route it takes the backend for on-link
// and asks for the backend's own, which nobody behind a router answers.
TEST(ManagementCore, ProbesToBackendsBehindTheGatewayGoThroughIt) {
  const std::string iface = "l4lbt" + std::to_string(getpid() % 100000) + "g";
  ConfigFile file;
  auto core = make_core(file.write(web_config(iface, "{type: none}", "    gateway: 198.18.0.254\n")));

  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface.c_str(), static_cast<socklen_t>(iface.size())),
            0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(80);
  inet_pton(AF_INET, "198.19.7.21", &to.sin_addr);  // outside 198.18.0.0/24
  const int rc = connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  EXPECT_TRUE(rc == 0 || errno == EINPROGRESS) << std::strerror(errno);
  EXPECT_TRUE(wait_for([&] { return !arp_entries(iface).empty(); }, 2000ms)) << "no ARP request at all";
  const auto asked = arp_entries(iface);
  close(fd);
  EXPECT_TRUE(contains(asked, "198.18.0.254")) << "the gateway's MAC was not asked for";
  EXPECT_FALSE(contains(asked, "198.19.7.21")) << "the backend was taken for on-link";
}

// VIP web probed by tcp (long interval: no probe runs during the test) with
// `n` backends on 198.18.0.21, ports 1000 and up, one per line.
std::string many_backends_config(const std::string& iface, int n) {
  // clang-format off
  std::string text = "ports:\n"
                     "  - name: net_null0\n"
                     "    address: 198.18.0.1/24\n"
                     "    kernel_iface: " + iface + "\n"
                     "vips:\n"
                     "  - name: web\n"
                     "    address: 198.18.0.100\n"
                     "    port: 80\n"
                     "    snat: [198.18.0.1]\n"
                     "    health: {type: tcp, interval_ms: 60000, timeout_ms: 500}\n"
                     "    backends:\n";
  // clang-format on
  for (int i = 0; i < n; ++i)
    text += "      - {address: 198.18.0.21, port: " + std::to_string(1000 + i) + "}\n";
  return text;
}
constexpr int kFirstBackendLine = 12;  // of many_backends_config()

// Sets RLIMIT_NOFILE for the scope of a test and puts the old one back
// (the test runs as root, which may raise a hard limit again).
class FdLimitScope {
 public:
  FdLimitScope(rlim_t soft, rlim_t hard) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    const rlimit limit{soft, hard};
    ok_ = setrlimit(RLIMIT_NOFILE, &limit) == 0;
  }
  ~FdLimitScope() { setrlimit(RLIMIT_NOFILE, &saved_); }
  bool ok() const { return ok_; }
  static rlim_t soft() {
    rlimit r{};
    getrlimit(RLIMIT_NOFILE, &r);
    return r.rlim_cur;
  }

 private:
  rlimit saved_{};
  bool ok_ = false;
};

// Item 3 of issue 13: at start the soft RLIMIT_NOFILE is raised to cover a
// socket for every probe (before, it stayed at what the shell gave, often
// 1024, and probes beyond it failed and marked their backends down).
TEST(ManagementCore, StartRaisesTheSoftFdLimitForEveryProbe) {
  constexpr int kBackends = 600;
  const std::string iface = "l4lbt" + std::to_string(getpid() % 100000) + "s";
  ConfigFile file;
  file.write(many_backends_config(iface, kBackends));
  const rlim_t open = controlplane::count_open_fds();
  FdLimitScope limit(open + 100, open + 2000);
  ASSERT_TRUE(limit.ok());
  auto core = make_core(file.path());
  EXPECT_GE(FdLimitScope::soft(), open + kBackends) << "soft limit not raised for " << kBackends << " probes";
  EXPECT_LE(FdLimitScope::soft(), open + 2000);
}

// When even the hard limit cannot cover the probes, the config is refused
// with the key and line of the first backend whose probe would not get a
// descriptor: at start (l4lbd exits) and at a reload (the running config
// stays).
TEST(ManagementCore, ProbesBeyondTheHardFdLimitAreRefusedAtStartAndReload) {
  constexpr int kBackends = 400;
  const std::string iface = "l4lbt" + std::to_string(getpid() % 100000) + "h";
  ConfigFile file;
  file.write(many_backends_config(iface, kBackends));
  const rlim_t open = controlplane::count_open_fds();
  {
    FdLimitScope limit(open + 300, open + 300);
    ASSERT_TRUE(limit.ok());
    try {
      make_core(file.path());
      ADD_FAILURE() << "a config with " << kBackends << " probes started under a hard limit of "
                    << open + 300;
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(file.path() + ":"), std::string::npos) << what;
      EXPECT_NE(what.find("vips[0].backends["), std::string::npos) << what;
      EXPECT_NE(what.find("hard RLIMIT_NOFILE"), std::string::npos) << what;
    }
  }

  // A reload: the core runs a small config, the new one probes too many.
  auto core = make_core(file.write(web_config(iface, "{type: none}")));
  const uint64_t generation = core->initial_snapshot()->generation;
  FdLimitScope limit(open + 300, open + 300);
  ASSERT_TRUE(limit.ok());
  file.write(many_backends_config(iface, kBackends));
  const std::string error = core->reload_config();
  // The first backend without room: open + 1 + i + headroom > hard, where
  // open counts this core's own descriptors too; the key and its line agree.
  const size_t at = error.find("vips[0].backends[");
  ASSERT_NE(at, std::string::npos) << error;
  const int index = std::stoi(error.substr(at + 17));
  EXPECT_GT(index, 0);
  EXPECT_LT(index, kBackends);
  EXPECT_NE(error.find(file.path() + ":" + std::to_string(kFirstBackendLine + index) + ": vips[0].backends[" +
                       std::to_string(index) + "]: health probe "),
            std::string::npos)
      << error;
  EXPECT_EQ(core->initial_snapshot()->generation, generation) << "the refused config was applied";
  EXPECT_EQ(core->initial_snapshot()->vips.at(0).backends.size(), 2u);
}

// Brings up the loopback interface of the fresh namespace.
bool loopback_up() {
  const int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return false;
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  ifr.ifr_flags |= IFF_UP;
  ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  close(fd);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (unshare(CLONE_NEWNET) != 0 || !loopback_up()) {
    std::fprintf(stderr, "FAIL: cannot enter a network namespace of its own (needs root): %s\n",
                 std::strerror(errno));
    return 1;
  }
  if (!l4lb::test::start_test_eal("mgmt_core_test", "256", "0")) return 1;
  // The exception TAP keeps 512 mbufs in its rx ring.
  g_pool = l4lb::test::make_test_pool("mgmt_mbufs", 2047);
  if (!g_pool) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_mempool_free(g_pool);
  rte_eal_cleanup();
  return rc;
}
