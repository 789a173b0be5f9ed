// sd_notify messages arrive, as sent, on a datagram socket the test binds:
// a file path and an abstract name; the environment is read as systemd
// sets it; bad names are refused; the watchdog keeps its pace.
#include "l4lb/controlplane/service_notify.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

namespace l4lb::controlplane {
namespace {

// A bound SOCK_DGRAM socket playing the supervisor.
class Supervisor {
 public:
  explicit Supervisor(const std::string& name) : name_(name) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, name.data(), name.size());
    const bool abstract = name[0] == '@';
    if (abstract) a.sun_path[0] = '\0';
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));
    if (!abstract) ::unlink(name.c_str());
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), length) != 0) throw std::runtime_error("bind " + name);
  }
  ~Supervisor() {
    ::close(fd_);
    if (name_[0] == '/') ::unlink(name_.c_str());
  }
  // The next datagram within `timeout_ms`, or nothing.
  std::optional<std::string> receive(int timeout_ms = 1000) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return std::nullopt;
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<size_t>(n));
  }

 private:
  std::string name_;
  int fd_ = -1;
};

std::string temp_socket_path() {
  return "/tmp/l4lb_notify_test_" + std::to_string(::getpid()) + ".sock";
}

TEST(ServiceNotify, OffWithoutASocketName) {
  ServiceNotifier off;
  EXPECT_FALSE(off.enabled());
  EXPECT_TRUE(off.ready("nothing to tell"));
  EXPECT_EQ(off.watchdog_interval_usec(), 0u);
}

TEST(ServiceNotify, ReadyReloadingStoppingReachAPathSocket) {
  const std::string path = temp_socket_path();
  Supervisor supervisor(path);
  ServiceNotifier notifier(path, 0);
  ASSERT_TRUE(notifier.enabled());

  ASSERT_TRUE(notifier.ready("serving 2 VIPs"));
  EXPECT_EQ(supervisor.receive(), "READY=1\nSTATUS=serving 2 VIPs");

  ASSERT_TRUE(notifier.reloading("reloading"));
  const auto reloading = supervisor.receive();
  ASSERT_TRUE(reloading);
  EXPECT_EQ(reloading->rfind("RELOADING=1\nMONOTONIC_USEC=", 0), 0u) << *reloading;
  EXPECT_NE(reloading->find("\nSTATUS=reloading"), std::string::npos) << *reloading;
  const uint64_t stamped = std::stoull(reloading->substr(reloading->find('=', 12) + 1));
  EXPECT_LE(stamped, monotonic_usec());
  EXPECT_GT(stamped, 0u);

  ASSERT_TRUE(notifier.stopping("stopping"));
  EXPECT_EQ(supervisor.receive(), "STOPPING=1\nSTATUS=stopping");
  ASSERT_TRUE(notifier.status("draining"));
  EXPECT_EQ(supervisor.receive(), "STATUS=draining");
}

TEST(ServiceNotify, AbstractNamespaceWhenTheNameStartsWithAt) {
  const std::string name = "@l4lb_notify_test_" + std::to_string(::getpid());
  Supervisor supervisor(name);
  ServiceNotifier notifier(name, 0);
  ASSERT_TRUE(notifier.ready("abstract"));
  EXPECT_EQ(supervisor.receive(), "READY=1\nSTATUS=abstract");
}

TEST(ServiceNotify, ASendToNobodyFailsWithoutThrowing) {
  ServiceNotifier notifier("/tmp/l4lb_notify_test_nobody_listens.sock", 0);
  EXPECT_FALSE(notifier.ready("lost"));
}

TEST(ServiceNotify, RefusesNamesThatAreNotSocketNames) {
  EXPECT_THROW(ServiceNotifier("relative/path", 0), std::invalid_argument);
  EXPECT_THROW(ServiceNotifier("/" + std::string(200, 'x'), 0), std::invalid_argument);
}

TEST(ServiceNotify, ReadsTheEnvironmentAsSystemdSetsIt) {
  const std::string path = temp_socket_path();
  Supervisor supervisor(path);
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  ::setenv("WATCHDOG_USEC", "4000000", 1);
  ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
  ServiceNotifier mine = ServiceNotifier::from_environment();
  EXPECT_TRUE(mine.enabled());
  EXPECT_EQ(mine.watchdog_interval_usec(), 2000000u);

  // A watchdog armed for another process is not ours to feed.
  ::setenv("WATCHDOG_PID", "1", 1);
  EXPECT_EQ(ServiceNotifier::from_environment().watchdog_interval_usec(), 0u);

  ::setenv("WATCHDOG_USEC", "soon", 1);
  EXPECT_THROW(ServiceNotifier::from_environment(), std::invalid_argument);

  ::unsetenv("WATCHDOG_USEC");
  ::unsetenv("WATCHDOG_PID");
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_FALSE(ServiceNotifier::from_environment().enabled());
}

TEST(ServiceNotify, WatchdogPingsAtHalfTheTimeout) {
  const std::string path = temp_socket_path();
  Supervisor supervisor(path);
  ServiceNotifier notifier(path, 1000000);  // 1 s timeout: a ping every 0.5 s
  uint64_t now = 10000000;
  notifier.watchdog_tick(now);
  EXPECT_EQ(supervisor.receive(), "WATCHDOG=1");
  notifier.watchdog_tick(now + 499999);
  EXPECT_EQ(supervisor.receive(50), std::nullopt);
  notifier.watchdog_tick(now + 500000);
  EXPECT_EQ(supervisor.receive(), "WATCHDOG=1");
}

TEST(ServiceNotify, NoWatchdogPingsWithoutAWatchdog) {
  const std::string path = temp_socket_path();
  Supervisor supervisor(path);
  ServiceNotifier notifier(path, 0);
  notifier.watchdog_tick(10000000);
  EXPECT_EQ(supervisor.receive(50), std::nullopt);
}

}  // namespace
}  // namespace l4lb::controlplane
