// Sizing file descriptors for health probes (issue 13, fd_limit.h): the
// arithmetic, which backend a config that cannot be probed is refused at
// (key and line), and raising the soft limit without passing the hard one.
#include "l4lb/controlplane/fd_limit.h"

#include <sys/resource.h>

#include <gtest/gtest.h>

#include <string>

#include "l4lb/config/config_loader.h"

namespace l4lb::controlplane {
namespace {

// Two VIPs: `plain` unprobed with 5 backends (lines 10-14), `web` probed by
// tcp with 10 backends (lines 21-30).
const char* kConfig = R"(ports:
  - {name: net_tap0, address: 10.99.0.1/24}
vips:
  - name: plain
    address: 10.99.0.100
    port: 53
    protocol: udp
    snat: [10.99.0.1]
    backends:
      - {address: 10.99.0.21, port: 53}
      - {address: 10.99.0.22, port: 53}
      - {address: 10.99.0.23, port: 53}
      - {address: 10.99.0.24, port: 53}
      - {address: 10.99.0.25, port: 53}
  - name: web
    address: 10.99.0.100
    port: 80
    snat: [10.99.0.1]
    health: {type: tcp}
    backends:
      - {address: 10.99.0.31, port: 80}
      - {address: 10.99.0.32, port: 80}
      - {address: 10.99.0.33, port: 80}
      - {address: 10.99.0.34, port: 80}
      - {address: 10.99.0.35, port: 80}
      - {address: 10.99.0.36, port: 80}
      - {address: 10.99.0.37, port: 80}
      - {address: 10.99.0.38, port: 80}
      - {address: 10.99.0.39, port: 80}
      - {address: 10.99.0.40, port: 80}
)";

TEST(FdLimit, NeededIsOpenPlusProbesPlusHeadroom) {
  EXPECT_EQ(fds_needed(0, 0), kFdHeadroom);
  EXPECT_EQ(fds_needed(40, 1000), 40 + 1000 + kFdHeadroom);
  // The headroom covers the metrics server's 64 connections and more.
  EXPECT_GE(kFdHeadroom, 64u + 16u);
  const config::Config c = config::parse_config(kConfig);
  EXPECT_EQ(probe_count(c), 10u);  // the unprobed VIP's backends need none
}

TEST(FdLimit, ShortfallNamesTheFirstBackendThatDoesNotFit) {
  const config::Config c = config::parse_config(kConfig, "lb.yaml");
  const uint64_t open = 20;
  EXPECT_FALSE(probe_fd_shortfall(c, open, fds_needed(open, 10)).has_value());
  EXPECT_FALSE(probe_fd_shortfall(c, open, UINT64_MAX).has_value());
  // Room for 6 probes: the 7th backend of web is the first without.
  const auto s = probe_fd_shortfall(c, open, fds_needed(open, 6));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->key, "vips[1].backends[6]");
  EXPECT_EQ(s->line, 27);
  EXPECT_EQ(s->message, "health probe 7 of 10 cannot have a file descriptor: the probes need " +
                            std::to_string(fds_needed(open, 10)) + " (10 probes + 20 open + " +
                            std::to_string(kFdHeadroom) + " headroom), above the hard RLIMIT_NOFILE of " +
                            std::to_string(fds_needed(open, 6)) +
                            "; raise it (ulimit -Hn, systemd LimitNOFILE=) or probe fewer backends");
  // Not even one probe fits: the first probed backend.
  const auto none = probe_fd_shortfall(c, open, 10);
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->key, "vips[1].backends[0]");
  EXPECT_EQ(none->line, 21);
  // A config that probes nothing is never refused.
  config::Config unprobed = c;
  unprobed.vips.pop_back();
  EXPECT_FALSE(probe_fd_shortfall(unprobed, open, 1).has_value());
}

TEST(FdLimit, RaisesTheSoftLimitUpToTheHardOneAndNeverLowersIt) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 2048) GTEST_SKIP() << "hard limit below 2048";
  rlimit low = saved;
  low.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  EXPECT_EQ(fd_limit().soft, 256u);

  EXPECT_EQ(raise_fd_limit(1500).soft, 1500u);
  EXPECT_EQ(raise_fd_limit(300).soft, 1500u);  // never lowered
  // Past the hard limit: as far as the hard limit.
  const FdLimit at_most = raise_fd_limit(UINT64_MAX - 1);
  EXPECT_EQ(at_most.soft, at_most.hard);
  EXPECT_EQ(at_most.hard, fd_limit().hard);
  setrlimit(RLIMIT_NOFILE, &saved);
}

TEST(FdLimit, CountsOpenDescriptors) {
  const uint64_t before = count_open_fds();
  EXPECT_GE(before, 3u);  // stdin, stdout, stderr
  FILE* f = std::tmpfile();
  EXPECT_EQ(count_open_fds(), before + 1);
  std::fclose(f);
  EXPECT_EQ(count_open_fds(), before);
}

}  // namespace
}  // namespace l4lb::controlplane
