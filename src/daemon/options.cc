#include "options.h"

#include <stdexcept>

#include "l4lb/common/cli_args.h"

namespace l4lb::daemon {

Options parse_options(const std::vector<std::string>& args) {
  Options o;
  cli::OptionWalker arg(args);
  while (arg.next()) {
    if (arg.is("--help", "-h"))
      o.help = arg.flag();
    else if (arg.is("--check"))
      o.check_only = arg.flag();
    else if (arg.is("--config", "-c"))
      o.config_path = arg.value("a FILE");
    else
      arg.unknown();
  }
  if (!o.help && o.config_path.empty()) throw std::invalid_argument("--config FILE is required");
  return o;
}

std::string usage(const std::string& program) {
  return "usage: " + program + " [EAL options] -- --config FILE [--check]\n"
         "\n"
         "  --config FILE, -c FILE  YAML configuration, also --config=FILE (required; no\n"
         "                          default path; every key: man 5 l4lb.yaml)\n"
         "  --check                 validate the configuration and exit (0 valid, 1 invalid)\n"
         "                          without starting the EAL (default: run the appliance)\n"
         "  --help, -h              print this text and exit 0\n"
         "\n"
         "EAL options (before --) choose lcores and ports, e.g.\n"
         "  " + program + " -l 0,1 --vdev net_tap0,iface=dp0 -- --config /etc/l4lb/l4lb.yaml\n"
         "The main lcore is the management core; one more lcore per worker.\n"
         "Signals: SIGTERM/SIGINT stop cleanly (after dataplane.shutdown_drain_s, if set;\n"
         "a second signal stops at once), SIGHUP reloads the configuration.\n"
         "With $NOTIFY_SOCKET (systemd Type=notify) it reports READY=1, RELOADING=1,\n"
         "STOPPING=1, STATUS= and, with $WATCHDOG_USEC, WATCHDOG=1.\n"
         "Exit status: 0 stopped or valid, 1 invalid config or start-up failure,\n"
         "2 bad arguments. More: man 8 l4lbd.\n";
}

}  // namespace l4lb::daemon
