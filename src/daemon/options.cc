#include "options.h"

#include <stdexcept>

namespace l4lb::daemon {

SplitArgs split_args(int argc, char** argv) {
  SplitArgs out;
  out.eal.push_back(argc > 0 ? argv[0] : "l4lbd");
  int sep = -1;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--") {
      sep = i;
      break;
    }
  if (sep < 0) {
    for (int i = 1; i < argc; ++i) out.app.emplace_back(argv[i]);
  } else {
    for (int i = 1; i < sep; ++i) out.eal.emplace_back(argv[i]);
    for (int i = sep + 1; i < argc; ++i) out.app.emplace_back(argv[i]);
  }
  return out;
}

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      o.help = true;
    } else if (a == "--check") {
      o.check_only = true;
    } else if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a FILE");
      o.config_path = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      o.config_path = a.substr(9);
    } else {
      throw std::invalid_argument("unknown argument '" + a + "'");
    }
  }
  if (!o.help && o.config_path.empty()) throw std::invalid_argument("--config FILE is required");
  return o;
}

std::string usage(const std::string& program) {
  return "usage: " + program + " [EAL options] -- --config FILE [--check]\n"
         "\n"
         "  --config FILE, -c FILE  YAML configuration (see config/l4lb.example.yaml)\n"
         "  --check                 validate the configuration and exit (0 valid, 1 invalid)\n"
         "  --help, -h              this text\n"
         "\n"
         "EAL options (before --) choose lcores and ports, e.g.\n"
         "  " + program + " -l 0,1 --vdev net_tap0,iface=dp0 -- --config /etc/l4lb.yaml\n"
         "The main lcore is the management core; one more lcore per worker.\n"
         "Signals: SIGTERM/SIGINT stop cleanly (after dataplane.shutdown_drain_s, if set;\n"
         "a second signal stops at once), SIGHUP reloads the configuration.\n"
         "With $NOTIFY_SOCKET (systemd Type=notify) it reports READY=1, RELOADING=1,\n"
         "STOPPING=1, STATUS= and, with $WATCHDOG_USEC, WATCHDOG=1.\n";
}

}  // namespace l4lb::daemon
