#include "l4lb/controlplane/bird_announcer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "l4lb/common/address_text.h"

namespace l4lb::controlplane {

namespace {

// A reply line: "NNNN-text" (more follow) or "NNNN text" (the last).
struct ReplyLine {
  int code = -1;  // -1: a continuation line (" text") or not a reply line
  bool last = false;
  std::string text;
};

ReplyLine parse_reply_line(const std::string& line) {
  ReplyLine r;
  if (line.size() < 5 || !std::all_of(line.begin(), line.begin() + 4, [](char c) { return c >= '0' && c <= '9'; }))
    return r;
  if (line[4] != ' ' && line[4] != '-') return r;
  r.code = std::stoi(line.substr(0, 4));
  r.last = line[4] == ' ';
  r.text = line.substr(5);
  return r;
}

std::string errno_text(const std::string& what, int err) { return what + ": " + std::strerror(err); }

}  // namespace

BirdAnnouncer::BirdAnnouncer(BirdAnnouncerOptions options) : options_(std::move(options)) {}

BirdAnnouncer::~BirdAnnouncer() { close_socket(); }

std::string BirdAnnouncer::routes_text(const std::vector<uint32_t>& prefixes, const std::string& kernel_iface) {
  std::string text = "# Written by l4lbd (bgp.routes_file); rewritten whenever what it announces changes.\n";
  for (const uint32_t p : prefixes) text += "route " + format_ipv4(p) + "/32 via \"" + kernel_iface + "\";\n";
  return text;
}

std::string BirdAnnouncer::write_file_atomically(const std::string& path, const std::string& text) {
  std::error_code ec;
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  if (ec) return "cannot create " + target.parent_path().string() + ": " + ec.message();
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_text("cannot write " + tmp, errno);
  fchmod(fd, 0644);  // whatever the umask: BIRD reads it as its own user
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = errno_text("cannot write " + tmp, errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return why;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return errno_text("cannot write " + tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text("cannot rename " + tmp + " to " + path, errno);
    ::unlink(tmp.c_str());
    return why;
  }
  return "";
}

void BirdAnnouncer::set_routes(std::vector<uint32_t> prefixes) {
  std::sort(prefixes.begin(), prefixes.end());
  prefixes.erase(std::unique(prefixes.begin(), prefixes.end()), prefixes.end());
  if (prefixes == status_.wanted) return;
  status_.wanted = std::move(prefixes);
  status_.in_sync = false;
  dirty_ = true;
  next_try_ms_ = 0;  // a change is worth a try at once, even after a failure
}

std::vector<std::string> BirdAnnouncer::events() { return std::exchange(events_, {}); }

void BirdAnnouncer::close_socket() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  input_.clear();
  phase_ = Phase::kIdle;
}

void BirdAnnouncer::finish(bool ok, const std::string& error, uint64_t now_ms) {
  close_socket();
  if (ok) {
    ++status_.configures_ok;
    status_.announced = sending_;
    status_.last_error.clear();
    status_.last_ok_ms = now_ms;
    status_.in_sync = status_.announced == status_.wanted;
    dirty_ = !status_.in_sync;
    events_.push_back("BIRD reconfigured: " + std::to_string(sending_.size()) + " routes announced");
  } else {
    ++status_.configures_failed;
    status_.in_sync = false;
    dirty_ = true;
    next_try_ms_ = now_ms + options_.retry_ms;
    // The same failure again and again is logged once.
    if (error != status_.last_error) events_.push_back("BIRD: " + error + "; retrying every " +
                                                       std::to_string(options_.retry_ms) + " ms");
    status_.last_error = error;
  }
}

void BirdAnnouncer::start(uint64_t now_ms) {
  sending_ = status_.wanted;
  const std::string written =
      write_file_atomically(options_.routes_file, routes_text(sending_, options_.kernel_iface));
  if (!written.empty()) return finish(false, written, now_ms);

  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.socket_path.size() >= sizeof(addr.sun_path))
    return finish(false, "control socket path too long: " + options_.socket_path, now_ms);
  std::memcpy(addr.sun_path, options_.socket_path.c_str(), options_.socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return finish(false, errno_text("socket", errno), now_ms);
  deadline_ms_ = now_ms + options_.timeout_ms;
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    phase_ = Phase::kGreeting;
  } else if (errno == EINPROGRESS || errno == EAGAIN) {
    phase_ = Phase::kConnecting;  // a full listen backlog: wait for writability
  } else {
    return finish(false, errno_text("connect " + options_.socket_path, errno), now_ms);
  }
}

void BirdAnnouncer::poll(uint64_t now_ms) {
  if (phase_ == Phase::kIdle) {
    if (!dirty_ || now_ms < next_try_ms_) return;
    start(now_ms);
    if (phase_ == Phase::kIdle) return;
  }
  if (now_ms >= deadline_ms_)
    return finish(false, "no answer from " + options_.socket_path + " within " +
                             std::to_string(options_.timeout_ms) + " ms", now_ms);
  if (phase_ == Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EAGAIN) return;
    if (err != 0) return finish(false, errno_text("connect " + options_.socket_path, err), now_ms);
    phase_ = Phase::kGreeting;
  }
  on_readable(now_ms);
}

void BirdAnnouncer::on_readable(uint64_t now_ms) {
  char buf[1024];
  while (fd_ >= 0) {
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOTCONN) return;
      return finish(false, errno_text("read " + options_.socket_path, errno), now_ms);
    }
    if (n == 0) return finish(false, "BIRD closed its control socket mid-answer", now_ms);
    input_.append(buf, static_cast<size_t>(n));
    if (input_.size() > 64 * 1024) return finish(false, "answer of more than 64 KiB from BIRD", now_ms);
    for (size_t eol; fd_ >= 0 && (eol = input_.find('\n')) != std::string::npos;) {
      const ReplyLine line = parse_reply_line(input_.substr(0, eol));
      input_.erase(0, eol + 1);
      if (line.code < 0 || !line.last) continue;  // a continuation, or more to come
      if (line.code >= 8000) return finish(false, "BIRD refused: " + line.text, now_ms);
      if (phase_ == Phase::kGreeting) {
        static constexpr char kConfigure[] = "configure\n";
        // A few bytes to a fresh local socket: it takes them whole or fails.
        if (::send(fd_, kConfigure, sizeof(kConfigure) - 1, MSG_NOSIGNAL) != sizeof(kConfigure) - 1)
          return finish(false, errno_text("write " + options_.socket_path, errno), now_ms);
        phase_ = Phase::kAnswer;
      } else {
        return finish(true, "", now_ms);
      }
    }
  }
}

}  // namespace l4lb::controlplane
