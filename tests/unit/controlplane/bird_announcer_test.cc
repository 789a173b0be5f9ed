// BirdAnnouncer against a real BIRD 2 (Debian's bird2, which tools/test
// installs): started here with a config of its own in a temporary directory
// (a device protocol and a static protocol that includes the routes file;
// no kernel protocol, so nothing reaches this machine's routing table), and
// read back with BIRD's own `show route` on its control socket.
#include "l4lb/controlplane/bird_announcer.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "../../common/packet_builder.h"

namespace l4lb::controlplane {
namespace {

namespace fs = std::filesystem;

uint64_t steady_ms() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

using test::host_ip;

const char* bird_binary() {
  for (const char* p : {"/usr/sbin/bird", "/usr/bin/bird"})
    if (access(p, X_OK) == 0) return p;
  return nullptr;
}

// A BIRD of the test's own.
class Bird {
 public:
  Bird() {
    char tmpl[] = "/tmp/l4lb-bird-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    socket_ = dir_ + "/bird.ctl";
    routes_ = dir_ + "/routes.conf";
    write_config("");
    std::ofstream(routes_) << "";
  }
  ~Bird() {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // `extra` goes at the end of bird.conf (e.g. a syntax error).
  void write_config(const std::string& extra) {
    std::ofstream(dir_ + "/bird.conf") << "router id 10.255.0.1;\n"
                                          "protocol device { scan time 10; }\n"
                                          "protocol static l4lb_routes {\n  ipv4;\n  include \""
                                       << routes_ << "\";\n}\n"
                                       << extra;
  }

  void start() {
    const char* bird = bird_binary();
    ASSERT_NE(bird, nullptr);
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      const std::string conf = dir_ + "/bird.conf";
      execl(bird, bird, "-f", "-c", conf.c_str(), "-s", socket_.c_str(), "-P", (dir_ + "/bird.pid").c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Up once it answers: the socket appears before BIRD has read its
    // config, and a config rewritten meanwhile would be read at start.
    std::string status;
    for (int i = 0; i < 1000; ++i) {
      if (fs::exists(socket_) && (status = ask("show status")).find("Daemon is up") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_NE(status.find("Daemon is up"), std::string::npos) << "BIRD does not answer: " << status;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGCONT);
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    std::error_code ec;
    fs::remove(socket_, ec);
  }
  void pause() { kill(pid_, SIGSTOP); }
  void resume() { kill(pid_, SIGCONT); }

  // The answer to a CLI command, blocking (the test's own reader).
  std::string ask(const std::string& command) const {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_.c_str());
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return "connect failed";
    }
    std::string all;
    const auto read_reply = [&] {
      char buf[4096];
      while (true) {
        const ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) return;
        all.append(buf, static_cast<size_t>(n));
        // The reply ends with a line "NNNN text" (a space after the code).
        const size_t start = all.rfind('\n', all.size() - 2);
        const std::string last = all.substr(start == std::string::npos ? 0 : start + 1);
        if (all.back() == '\n' && last.size() > 4 && last[4] == ' ') return;
      }
    };
    read_reply();  // the greeting
    all.clear();
    const std::string line = command + "\n";
    send(fd, line.data(), line.size(), MSG_NOSIGNAL);
    read_reply();
    close(fd);
    return all;
  }

  // Retry every 200 ms; a generous answer timeout, as meson runs the test
  // binaries in parallel and BIRD then reads its config slowly.
  BirdAnnouncerOptions options(uint64_t timeout_ms = 5000) const { return {socket_, routes_, "lo", 200, timeout_ms}; }
  const std::string& routes_file() const { return routes_; }

 private:
  std::string dir_, socket_, routes_;
  pid_t pid_ = -1;
};

// Polls until the announcer is in sync or `ms` pass; true if in sync.
bool settle(BirdAnnouncer& a, uint64_t ms = 8000) {
  const uint64_t end = steady_ms() + ms;
  while (steady_ms() < end) {
    a.poll(steady_ms());
    if (a.status().in_sync) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

TEST(BirdAnnouncer, RoutesTextIsOneStaticRoutePerPrefixViaTheKernelInterface) {
  EXPECT_EQ(BirdAnnouncer::routes_text({host_ip("10.99.0.100"), host_ip("10.99.0.101")}, "l4lbk0"),
            "# Written by l4lbd (bgp.routes_file); rewritten whenever what it announces changes.\n"
            "route 10.99.0.100/32 via \"l4lbk0\";\n"
            "route 10.99.0.101/32 via \"l4lbk0\";\n");
}

TEST(BirdAnnouncer, BirdAnnouncesWhatIsWantedAndWithdrawsWhatIsNot) {
  Bird bird;
  bird.start();
  BirdAnnouncer a(bird.options());
  a.set_routes({host_ip("10.99.0.101"), host_ip("10.99.0.100"), host_ip("10.99.0.100")});
  ASSERT_TRUE(settle(a)) << a.status().last_error;
  EXPECT_EQ(a.status().announced, (std::vector<uint32_t>{host_ip("10.99.0.100"), host_ip("10.99.0.101")}));
  std::string routes = bird.ask("show route protocol l4lb_routes");
  EXPECT_NE(routes.find("10.99.0.100/32"), std::string::npos) << routes;
  EXPECT_NE(routes.find("10.99.0.101/32"), std::string::npos) << routes;
  EXPECT_EQ(fs::status(bird.routes_file()).permissions() & fs::perms::all, fs::perms(0644));

  a.set_routes({host_ip("10.99.0.101")});
  ASSERT_TRUE(settle(a)) << a.status().last_error;
  routes = bird.ask("show route protocol l4lb_routes");
  EXPECT_EQ(routes.find("10.99.0.100/32"), std::string::npos) << routes;
  EXPECT_NE(routes.find("10.99.0.101/32"), std::string::npos) << routes;

  a.set_routes({});
  ASSERT_TRUE(settle(a));
  routes = bird.ask("show route protocol l4lb_routes");
  EXPECT_EQ(routes.find("10.99.0."), std::string::npos) << routes;
  EXPECT_EQ(a.status().configures_ok, 3u);
  EXPECT_EQ(a.status().configures_failed, 0u);
}

TEST(BirdAnnouncer, UnchangedRoutesDoNotReconfigureBird) {
  Bird bird;
  bird.start();
  BirdAnnouncer a(bird.options());
  a.set_routes({host_ip("10.99.0.100")});
  ASSERT_TRUE(settle(a));
  for (int i = 0; i < 50; ++i) {
    a.set_routes({host_ip("10.99.0.100")});
    a.poll(steady_ms());
  }
  EXPECT_EQ(a.status().configures_ok, 1u);
}

TEST(BirdAnnouncer, BirdAbsentIsRetriedUntilItComes) {
  Bird bird;
  BirdAnnouncer a(bird.options());
  a.set_routes({host_ip("10.99.0.100")});
  a.poll(steady_ms());
  EXPECT_FALSE(a.status().in_sync);
  EXPECT_EQ(a.status().configures_failed, 1u);
  EXPECT_NE(a.status().last_error.find("connect"), std::string::npos) << a.status().last_error;
  const auto events = a.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find("retrying"), std::string::npos) << events[0];
  // The routes file is written anyway: a BIRD that starts later reads it.
  std::ifstream in(bird.routes_file());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("route 10.99.0.100/32 via \"lo\";"), std::string::npos) << text;

  bird.start();
  ASSERT_TRUE(settle(a, 3000)) << a.status().last_error;  // within retry_ms (200)
  EXPECT_EQ(a.status().last_error, "");
  EXPECT_NE(bird.ask("show route protocol l4lb_routes").find("10.99.0.100/32"), std::string::npos);
}

TEST(BirdAnnouncer, ARefusedConfigIsReportedWithBirdsWordsAndRetried) {
  Bird bird;
  bird.start();
  bird.write_config("protocol static broken {\n");  // the operator's mistake, not ours
  BirdAnnouncer a(bird.options());
  a.set_routes({host_ip("10.99.0.100")});
  // Until BIRD has refused it at least twice (retries every 200 ms).
  const uint64_t end = steady_ms() + 5000;
  while (a.status().configures_failed < 2 && steady_ms() < end) {
    a.poll(steady_ms());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_FALSE(a.status().in_sync);
  EXPECT_GE(a.status().configures_failed, 2u);
  EXPECT_NE(a.status().last_error.find("BIRD refused"), std::string::npos) << a.status().last_error;
  EXPECT_NE(a.status().last_error.find("bird.conf"), std::string::npos) << a.status().last_error;
  // A failure that repeats is logged once.
  size_t refusals = 0;
  for (const std::string& line : a.events()) refusals += line.find("BIRD refused") != std::string::npos;
  EXPECT_EQ(refusals, 1u);
  bird.write_config("");
  ASSERT_TRUE(settle(a)) << a.status().last_error;
  EXPECT_NE(bird.ask("show route protocol l4lb_routes").find("10.99.0.100/32"), std::string::npos);
}

TEST(BirdAnnouncer, AStuckBirdTimesOutWithoutBlockingPoll) {
  Bird bird;
  bird.start();
  bird.pause();  // accepts connections (the kernel does), answers nothing
  BirdAnnouncer a(bird.options(500));
  a.set_routes({host_ip("10.99.0.100")});
  uint64_t slowest_us = 0;
  const uint64_t end = steady_ms() + 800;  // timeout_ms is 500
  while (steady_ms() < end) {
    const auto t0 = std::chrono::steady_clock::now();
    a.poll(steady_ms());
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
    slowest_us = std::max<uint64_t>(slowest_us, static_cast<uint64_t>(us.count()));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::printf("slowest poll() against a stopped BIRD: %llu us\n", static_cast<unsigned long long>(slowest_us));
  EXPECT_LT(slowest_us, 50000u);
  EXPECT_GE(a.status().configures_failed, 1u);
  EXPECT_NE(a.status().last_error.find("no answer"), std::string::npos) << a.status().last_error;
  bird.resume();
  ASSERT_TRUE(settle(a)) << a.status().last_error;
}

}  // namespace
}  // namespace l4lb::controlplane
