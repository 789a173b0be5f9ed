// Keeps BIRD announcing the routes l4lbd wants (DESIGN §12), through BIRD's
// own interfaces: a file of static routes that the operator's bird.conf
// includes inside a static protocol, rewritten atomically, and a
// `configure` on BIRD's control socket so BIRD reads it again. BIRD speaks
// BGP to the routers; l4lbd never does.
//
// The control socket's protocol (BIRD's doc/prog "CLI"): BIRD greets with
// "0001 BIRD <version> ready."; every reply line starts with a 4-digit code,
// then '-' when more lines follow or ' ' on the last one; codes 0xxx are
// success, 8xxx and 9xxx errors. `configure` answers "0002-Reading
// configuration from ..." then "0003 Reconfigured" (or 0004, 0018, 0019),
// or an 8xxx line naming the file and line BIRD refused.
//
// Everything here belongs to the management core: poll() never blocks (a
// non-blocking socket, one exchange in flight at a time), writes a few
// hundred bytes to a local file, and holds no DPDK and no logging; the
// caller logs what events() returns.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace l4lb::controlplane {

struct BirdAnnouncerOptions {
  std::string socket_path;   // bird -s
  std::string routes_file;   // included by the operator's static protocol
  std::string kernel_iface;  // routes go `via "<iface>"`: dormant while it is gone
  // After a failed exchange (BIRD down, a refused config), the next try.
  uint64_t retry_ms = 1000;
  // An exchange that has not finished by then is abandoned and retried.
  uint64_t timeout_ms = 3000;
};

class BirdAnnouncer {
 public:
  struct Status {
    std::vector<uint32_t> wanted;     // host byte order, sorted
    std::vector<uint32_t> announced;  // what BIRD last took (configure succeeded), sorted
    bool in_sync = false;             // announced == wanted and BIRD confirmed it
    uint64_t configures_ok = 0;
    uint64_t configures_failed = 0;
    std::string last_error;  // of the last failed exchange; "" after a success
    uint64_t last_ok_ms = 0;
  };

  explicit BirdAnnouncer(BirdAnnouncerOptions options);
  ~BirdAnnouncer();
  BirdAnnouncer(const BirdAnnouncer&) = delete;
  BirdAnnouncer& operator=(const BirdAnnouncer&) = delete;

  // The routes (/32 prefixes, host byte order, any order, duplicates
  // ignored) BIRD should announce from now on. Cheap when unchanged; a
  // change starts an exchange at the next poll() (after the one in flight).
  void set_routes(std::vector<uint32_t> prefixes);

  // Advances the exchange with BIRD: writes the routes file, connects,
  // sends `configure`, reads the answer. Never blocks. `now_ms` is any
  // monotonic millisecond clock, the same on every call.
  void poll(uint64_t now_ms);

  // Lines for the log since the last call: each success and each failure.
  std::vector<std::string> events();

  const Status& status() const { return status_; }

  // The routes file's text for `prefixes` (sorted), e.g.
  //   route 10.99.0.100/32 via "l4lbk0";
  static std::string routes_text(const std::vector<uint32_t>& prefixes, const std::string& kernel_iface);

  // Writes `text` to `path` atomically (a temporary file in the same
  // directory, then rename), mode 0644 so BIRD's own user can read it,
  // creating the directory if needed. Returns "" or why not.
  static std::string write_file_atomically(const std::string& path, const std::string& text);

 private:
  enum class Phase : uint8_t { kIdle, kConnecting, kGreeting, kAnswer };

  void start(uint64_t now_ms);
  void finish(bool ok, const std::string& error, uint64_t now_ms);
  void on_readable(uint64_t now_ms);
  void close_socket();

  BirdAnnouncerOptions options_;
  Status status_;
  Phase phase_ = Phase::kIdle;
  int fd_ = -1;
  std::vector<uint32_t> sending_;  // the routes of the exchange in flight
  std::string input_;              // bytes read, not yet a whole line
  bool dirty_ = true;              // wanted changed since the last success
  uint64_t deadline_ms_ = 0;
  uint64_t next_try_ms_ = 0;
  std::vector<std::string> events_;
};

}  // namespace l4lb::controlplane
