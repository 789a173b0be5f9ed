// l4lb-maglev: builds a Maglev lookup table offline and prints it with each
// backend's share and the table's fingerprint (DESIGN §5, §8), so operators
// can see what a backend set and its weights do before loading them into
// l4lbd, and check a running appliance's table against it (the `maglev`
// column of `l4lbctl vips`). Uses the same library as the daemon, so the
// table printed is the table the appliance builds.
//
//   l4lb-maglev [--table-size M] --backend ADDR:PORT[=WEIGHT]... [--json]
//   l4lb-maglev [--table-size M] --backends-file FILE|- [--json]
//
// Exit status: 0 on success, 2 on a bad option or value (message and usage on
// stderr), 1 on an unexpected failure.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <istream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "l4lb/common/cli_args.h"
#include "l4lb/maglev/maglev.h"

namespace {

using l4lb::maglev::Backend;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr uint64_t kMaxPort = 65535;
constexpr uint64_t kMaxWeight = 65535;

constexpr const char* kUsage =
    "usage: l4lb-maglev [--table-size M] [--backend ADDR:PORT[=WEIGHT]]...\n"
    "                   [--backends-file FILE] [--json]\n"
    "\n"
    "Builds the Maglev lookup table l4lbd would build for a set of backends and\n"
    "prints each backend's share, the table's fingerprint (\"fingerprint: HEX\",\n"
    "16 hex digits, 0000000000000000 when no backend takes slots; l4lbctl vips\n"
    "shows the same value as maglev for a VIP with these backends up and these\n"
    "weights), then the backend of every slot.\n"
    "\n"
    "  --table-size M        prime number of slots, 2..16777213 (default 65537)\n"
    "  --backend SPEC        a backend ADDR:PORT[=WEIGHT]; ADDR is a dotted-quad\n"
    "                        IPv4 address, PORT 1-65535, WEIGHT 0-65535 (default 1;\n"
    "                        0 = takes no slots). Repeatable.\n"
    "  --backends-file FILE  read backends, one SPEC per line, from FILE ('-' for\n"
    "                        stdin); blank lines and '#' comments are ignored.\n"
    "                        Repeatable; combines with --backend.\n"
    "  --json                print one JSON object instead of text (the default):\n"
    "                        {\"table_size\": M, \"fingerprint\": \"HEX\", \"backends\":\n"
    "                        [{\"backend\": \"ADDR:PORT\", \"weight\": W, \"entries\": N},\n"
    "                        ...], \"table\": [\"ADDR:PORT\" or null, ...]}\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Exit status: 0 success, 2 bad option or value, 1 other failure.\n";

// A bad option or value: reported with the usage text and exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  uint32_t table_size = l4lb::maglev::kDefaultTableSize;
  std::vector<Backend> backends;
  std::vector<std::string> origins;  // where each backend was given, for messages
  bool json = false;
  bool help = false;
};

// Unsigned decimal, digits only (no sign, no spaces), at most `max`.
std::optional<uint64_t> parse_uint(std::string_view s, uint64_t max) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (max - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

// Strict dotted quad "a.b.c.d". Leading zeros are refused rather than
// normalised: inet_aton reads "010" as octal 8, so such input is ambiguous,
// and the address text is part of the backend's Maglev key.
bool valid_ipv4(std::string_view s) {
  int parts = 0;
  while (true) {
    const size_t dot = s.find('.');
    const std::string_view part = s.substr(0, dot);
    if (part.empty() || part.size() > 3) return false;
    if (part.size() > 1 && part[0] == '0') return false;
    if (!parse_uint(part, 255)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

// "ADDR:PORT[=WEIGHT]" -> Backend keyed "ADDR:PORT". Only canonical text is
// accepted (decimal, no leading zeros), so the key is the one the daemon gets
// by formatting a backend's numeric address and port, and the table printed
// here is the daemon's table.
Backend parse_backend(std::string_view spec) {
  // Built with append, not "'" + std::string(spec): GCC 12 at -O2 warns
  // (-Wrestrict, a known false positive) on a literal + string temporary.
  std::string quoted = "'";
  quoted.append(spec).append("'");
  std::string_view endpoint = spec;
  uint32_t weight = 1;
  if (const size_t eq = spec.find('='); eq != std::string_view::npos) {
    endpoint = spec.substr(0, eq);
    const auto w = parse_uint(spec.substr(eq + 1), kMaxWeight);
    if (!w) throw UsageError("backend " + quoted + ": weight must be an integer 0-65535");
    weight = static_cast<uint32_t>(*w);
  }
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string_view::npos) {
    throw UsageError("backend " + quoted + ": expected ADDR:PORT[=WEIGHT]");
  }
  const std::string_view addr = endpoint.substr(0, colon);
  const std::string_view port_text = endpoint.substr(colon + 1);
  if (!valid_ipv4(addr)) {
    throw UsageError("backend " + quoted + ": '" + std::string(addr) +
                     "' is not a dotted-quad IPv4 address (a.b.c.d, 0-255, no leading zeros)");
  }
  const auto port = parse_uint(port_text, kMaxPort);
  if (!port || *port == 0 || (port_text.size() > 1 && port_text[0] == '0')) {
    throw UsageError("backend " + quoted + ": port must be an integer 1-65535 without leading zeros");
  }
  return Backend{std::string(endpoint), weight};
}

void add_backend(Options& opts, std::string_view spec, std::string origin) {
  opts.backends.push_back(parse_backend(spec));
  opts.origins.push_back(std::move(origin));
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

void read_backends_file(Options& opts, const std::string& path) {
  std::ifstream file;
  std::istream* in = &std::cin;
  const std::string name = path == "-" ? "<stdin>" : path;
  if (path != "-") {
    file.open(path);
    if (!file) throw UsageError("cannot open backends file '" + path + "'");
    in = &file;
  }
  std::string line;
  for (int line_no = 1; std::getline(*in, line); ++line_no) {
    std::string_view text = line;
    if (const size_t hash = text.find('#'); hash != std::string_view::npos) text = text.substr(0, hash);
    text = trim(text);
    if (text.empty()) continue;
    const std::string where = name + ":" + std::to_string(line_no);
    try {
      add_backend(opts, text, where);
    } catch (const UsageError& e) {
      throw UsageError(where + ": " + e.what());
    }
  }
  if (in->bad()) throw UsageError("error reading backends file '" + name + "'");
}

uint32_t parse_table_size(std::string_view text) {
  const auto m = parse_uint(text, UINT64_MAX);
  if (!m) throw UsageError("--table-size: '" + std::string(text) + "' is not a number");
  if (*m < 2 || *m > l4lb::kMaxTableSize) {
    throw UsageError("--table-size: " + std::to_string(*m) + " is out of range 2.." +
                     std::to_string(l4lb::kMaxTableSize));
  }
  if (!l4lb::is_prime(*m)) {
    // Name the next prime: the usual mistake is a power of two such as 65536.
    const uint64_t next = l4lb::next_prime(*m + 1);
    throw UsageError("--table-size: " + std::to_string(*m) + " is not prime (next prime: " +
                     std::to_string(next) + ")");
  }
  return static_cast<uint32_t>(*m);
}

Options parse_args(int argc, char** argv) {
  Options opts;
  const std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  l4lb::cli::OptionWalker arg(args);
  try {
    while (arg.next()) {
      if (arg.is("--help", "-h")) {
        opts.help = arg.flag();
      } else if (arg.is("--json")) {
        opts.json = arg.flag();
      } else if (arg.is("--table-size")) {
        opts.table_size = parse_table_size(arg.value("a prime M"));
      } else if (arg.is("--backend")) {
        add_backend(opts, arg.value("ADDR:PORT[=WEIGHT]"), "--backend");
      } else if (arg.is("--backends-file")) {
        read_backends_file(opts, arg.value("a FILE"));
      } else {
        arg.unknown();
      }
    }
  } catch (const std::invalid_argument& e) {  // the walker's own errors
    throw UsageError(e.what());
  }
  if (opts.help) return opts;
  if (opts.backends.empty()) throw UsageError("no backends given (use --backend or --backends-file)");

  // build_table would refuse duplicates too, but only the tool knows where
  // each one came from.
  std::unordered_map<std::string_view, size_t> seen;
  for (size_t i = 0; i < opts.backends.size(); ++i) {
    const auto [it, inserted] = seen.emplace(opts.backends[i].key, i);
    if (!inserted) {
      throw UsageError("duplicate backend " + opts.backends[i].key + " (" + opts.origins[i] + ", first given by " +
                       opts.origins[it->second] + ")");
    }
  }
  return opts;
}

// Everything is written to one buffer and then to stdout at once: at
// M=655373 printf per slot is measurably slower than one fwrite.
void append_number(std::string& out, uint64_t v) { out += std::to_string(v); }

std::string format_json(const Options& opts, const std::vector<uint32_t>& table,
                        const std::vector<uint64_t>& entries, uint64_t fingerprint) {
  // Keys are validated "a.b.c.d:port", so no JSON escaping is needed.
  std::string out;
  out.reserve(table.size() * 20 + opts.backends.size() * 64);
  out += "{\"table_size\": ";
  append_number(out, opts.table_size);
  out += ", \"fingerprint\": \"" + l4lb::maglev::format_fingerprint(fingerprint) + "\"";
  out += ", \"backends\": [";
  for (size_t i = 0; i < opts.backends.size(); ++i) {
    if (i) out += ", ";
    out += "{\"backend\": \"" + opts.backends[i].key + "\", \"weight\": ";
    append_number(out, opts.backends[i].weight);
    out += ", \"entries\": ";
    append_number(out, entries[i]);
    out += "}";
  }
  out += "], \"table\": [";
  for (size_t s = 0; s < table.size(); ++s) {
    if (s) out += ", ";
    if (table[s] == l4lb::maglev::kNoBackend) {
      out += "null";
    } else {
      out += "\"" + opts.backends[table[s]].key + "\"";
    }
  }
  out += "]}\n";
  return out;
}

std::string format_text(const Options& opts, const std::vector<uint32_t>& table,
                        const std::vector<uint64_t>& entries, uint64_t fingerprint) {
  std::string out;
  out.reserve(table.size() * 24 + opts.backends.size() * 64);
  char line[128];
  std::snprintf(line, sizeof line, "%-21s %6s %9s %8s\n", "backend", "weight", "entries", "share%");
  out += line;
  for (size_t i = 0; i < opts.backends.size(); ++i) {
    std::snprintf(line, sizeof line, "%-21s %6u %9llu %8.3f\n", opts.backends[i].key.c_str(),
                  opts.backends[i].weight, static_cast<unsigned long long>(entries[i]),
                  100.0 * static_cast<double>(entries[i]) / opts.table_size);
    out += line;
  }
  out += "\nfingerprint: " + l4lb::maglev::format_fingerprint(fingerprint) + "\n";
  out += "\nslot backend\n";
  for (size_t s = 0; s < table.size(); ++s) {
    append_number(out, s);
    out += ' ';
    out += table[s] == l4lb::maglev::kNoBackend ? std::string("-") : opts.backends[table[s]].key;
    out += '\n';
  }
  return out;
}

int run(const Options& opts) {
  const std::vector<uint32_t> table = l4lb::maglev::build_table(opts.backends, opts.table_size);
  std::vector<uint64_t> entries(opts.backends.size(), 0);
  for (uint32_t b : table) {
    if (b != l4lb::maglev::kNoBackend) ++entries[b];
  }
  const uint64_t fingerprint = l4lb::maglev::table_fingerprint(table, opts.backends);
  const std::string out = opts.json ? format_json(opts, table, entries, fingerprint)
                                    : format_text(opts, table, entries, fingerprint);
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0) {
    std::perror("l4lb-maglev: write");
    return kExitFailure;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  try {
    opts = parse_args(argc, argv);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "l4lb-maglev: %s\n\n%s", e.what(), kUsage);
    return kExitUsage;
  }
  if (opts.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  try {
    return run(opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "l4lb-maglev: %s\n", e.what());
    return kExitFailure;
  }
}
