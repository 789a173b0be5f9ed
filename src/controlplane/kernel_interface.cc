#include "l4lb/controlplane/kernel_interface.h"

#include <arpa/inet.h>
#include <net/if_arp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "l4lb/common/address_text.h"

namespace l4lb::controlplane {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

void add_attr(nlmsghdr* msg, size_t capacity, uint16_t type, const void* data, size_t len) {
  const size_t attr_len = RTA_LENGTH(len);
  if (NLMSG_ALIGN(msg->nlmsg_len) + RTA_ALIGN(attr_len) > capacity) throw std::logic_error("netlink buffer");
  auto* rta = reinterpret_cast<rtattr*>(reinterpret_cast<char*>(msg) + NLMSG_ALIGN(msg->nlmsg_len));
  rta->rta_type = type;
  rta->rta_len = static_cast<unsigned short>(attr_len);
  std::memcpy(RTA_DATA(rta), data, len);
  msg->nlmsg_len = static_cast<uint32_t>(NLMSG_ALIGN(msg->nlmsg_len) + RTA_ALIGN(attr_len));
}

}  // namespace

void set_link_up(const std::string& iface) {
  Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (s.get() < 0) fail("socket");
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", iface.c_str());
  if (ioctl(s.get(), SIOCGIFFLAGS, &ifr) < 0) fail("SIOCGIFFLAGS " + iface);
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s.get(), SIOCSIFFLAGS, &ifr) < 0) fail("SIOCSIFFLAGS " + iface);
}

namespace {
// Sends one NETLINK_ROUTE request and reads its acknowledgement. An error
// other than `tolerated` (the errno that means "already so") throws, naming
// `what`.
void netlink_request(nlmsghdr* msg, int tolerated, const std::string& what) {
  Fd s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (s.get() < 0) fail("netlink socket");
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(s.get(), msg, msg->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
    fail("netlink send (" + what + ")");
  alignas(nlmsghdr) char reply[1024];
  const ssize_t n = recv(s.get(), reply, sizeof reply, 0);
  if (n < 0) fail("netlink recv");
  const auto* hdr = reinterpret_cast<const nlmsghdr*>(reply);
  if (NLMSG_OK(hdr, static_cast<unsigned>(n)) && hdr->nlmsg_type == NLMSG_ERROR) {
    const auto* err = static_cast<const nlmsgerr*>(NLMSG_DATA(hdr));
    if (err->error != 0 && err->error != -tolerated) {
      errno = -err->error;
      fail(what);
    }
  }
}

// RTM_NEWADDR / RTM_DELADDR for one IPv4 address; EEXIST when adding and
// EADDRNOTAVAIL when removing mean "already so".
void change_ipv4_address(const std::string& iface, uint32_t address, uint8_t prefix_len, bool add) {
  const unsigned index = if_nametoindex(iface.c_str());
  if (index == 0) fail("if_nametoindex " + iface);

  alignas(nlmsghdr) char buf[256] = {};
  auto* msg = reinterpret_cast<nlmsghdr*>(buf);
  msg->nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  msg->nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
  msg->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
  msg->nlmsg_seq = 1;
  auto* ifa = static_cast<ifaddrmsg*>(NLMSG_DATA(msg));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = prefix_len;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = index;
  const uint32_t wire = htonl(address);
  add_attr(msg, sizeof buf, IFA_LOCAL, &wire, 4);
  add_attr(msg, sizeof buf, IFA_ADDRESS, &wire, 4);
  if (prefix_len < 31) {
    const uint32_t broadcast = htonl(address | (prefix_len == 0 ? ~0u : ~(~0u << (32 - prefix_len))));
    add_attr(msg, sizeof buf, IFA_BROADCAST, &broadcast, 4);
  }
  netlink_request(msg, add ? EEXIST : EADDRNOTAVAIL,
                  std::string(add ? "adding address to " : "removing address from ") + iface);
}
}  // namespace

void add_default_route(const std::string& iface, uint32_t gateway, uint32_t metric) {
  const unsigned index = if_nametoindex(iface.c_str());
  if (index == 0) fail("if_nametoindex " + iface);
  alignas(nlmsghdr) char buf[256] = {};
  auto* msg = reinterpret_cast<nlmsghdr*>(buf);
  msg->nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
  msg->nlmsg_type = RTM_NEWROUTE;
  msg->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
  msg->nlmsg_seq = 1;
  auto* rtm = static_cast<rtmsg*>(NLMSG_DATA(msg));
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = 0;  // default
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_STATIC;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  const uint32_t wire = htonl(gateway);
  add_attr(msg, sizeof buf, RTA_GATEWAY, &wire, 4);
  const uint32_t oif = index;
  add_attr(msg, sizeof buf, RTA_OIF, &oif, 4);
  add_attr(msg, sizeof buf, RTA_PRIORITY, &metric, 4);
  netlink_request(msg, EEXIST, "adding default route via " + format_ipv4(gateway) + " on " + iface);
}

void add_ipv4_address(const std::string& iface, uint32_t address, uint8_t prefix_len) {
  change_ipv4_address(iface, address, prefix_len, true);
}

void remove_ipv4_address(const std::string& iface, uint32_t address, uint8_t prefix_len) {
  change_ipv4_address(iface, address, prefix_len, false);
}

void disable_ipv6(const std::string& iface) {
  std::ofstream f("/proc/sys/net/ipv6/conf/" + iface + "/disable_ipv6");
  if (f) f << "1\n";
}

void set_loose_reverse_path(const std::string& iface) {
  std::ofstream f("/proc/sys/net/ipv4/conf/" + iface + "/rp_filter");
  if (f) f << "2\n";
}

std::vector<KernelNeighbour> read_arp_table(const std::string& iface) {
  // IP address       HW type     Flags       HW address            Mask     Device
  std::vector<KernelNeighbour> out;
  std::ifstream f("/proc/net/arp");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string ip, hw_type, flags, mac, mask, dev;
    if (!(in >> ip >> hw_type >> flags >> mac >> mask >> dev) || dev != iface) continue;
    if (!(std::stoul(flags, nullptr, 16) & ATF_COM)) continue;  // incomplete
    in_addr a{};
    KernelNeighbour n{};
    unsigned b[6];
    if (inet_pton(AF_INET, ip.c_str(), &a) != 1 ||
        std::sscanf(mac.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
      continue;
    n.address = ntohl(a.s_addr);
    for (int i = 0; i < 6; ++i) n.mac.bytes[i] = static_cast<uint8_t>(b[i]);
    out.push_back(n);
  }
  return out;
}

PortRange kernel_ephemeral_ports() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned first = 0, last = 0;
  if (!(f >> first >> last) || first > 65535 || last > 65535) return {0, 0};
  return {static_cast<uint16_t>(first), static_cast<uint16_t>(last)};
}

bool solicit_neighbour(const std::string& iface, uint32_t address) {
  Fd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (s.get() < 0) return false;
  if (setsockopt(s.get(), SOL_SOCKET, SO_BINDTODEVICE, iface.c_str(), static_cast<socklen_t>(iface.size())) < 0)
    return false;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);  // discard
  to.sin_addr.s_addr = htonl(address);
  return sendto(s.get(), "", 0, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0;
}

}  // namespace l4lb::controlplane
