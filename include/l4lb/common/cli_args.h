// Command-line parsing shared by the programs (l4lbd, l4lb-pktgen, l4lb-maglev): the split
// of EAL arguments from the program's own at "--", a walk over long options
// in both "--name value" and "--name=value" forms, and parsers for the values
// they take. Pure (no DPDK), header-only, slow path: any thread may call it.
// Every error is std::invalid_argument with a message for the user that names
// the option; the programs print it above their usage and exit 2.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace l4lb::cli {

struct SplitArgs {
  std::vector<std::string> eal;  // argv[0] first: rte_eal_init wants a program name there
  std::vector<std::string> app;
};

// EAL arguments before the first "--", the program's own after it. Without
// "--" every argument is the program's own, so `--help` (and l4lbd's
// `--check`, pktgen's `--pcap`) work without starting an EAL.
inline SplitArgs split_eal_args(int argc, const char* const* argv, std::string_view default_program) {
  SplitArgs out;
  out.eal.emplace_back(argc > 0 && argv[0] ? argv[0] : std::string(default_program));
  int separator = -1;
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]) == "--") {
      separator = i;
      break;
    }
  const int first_own = separator < 0 ? 1 : separator + 1;
  for (int i = 1; i < separator; ++i) out.eal.emplace_back(argv[i]);
  for (int i = first_own; i < argc; ++i) out.app.emplace_back(argv[i]);
  return out;
}

// Walks a program's own arguments one at a time:
//
//   OptionWalker arg(args);
//   while (arg.next()) {
//     if (arg.is("--rate")) o.rate = parse_count(arg.name(), arg.value());
//     else if (arg.is("--hold")) o.hold = arg.flag();
//     else arg.unknown();
//   }
//
// A value comes after "=" or as the next argument; a flag refuses "=value"
// rather than ignore it. Only long options ("--...") split at "=".
class OptionWalker {
 public:
  explicit OptionWalker(const std::vector<std::string>& args) : args_(args) {}

  // Moves to the next argument; false once they are used up.
  bool next() {
    if (++index_ >= args_.size()) return false;
    const std::string& arg = args_[index_];
    const size_t eq = arg.find('=');
    inline_value_ = arg.starts_with("--") && eq != std::string::npos;
    name_ = inline_value_ ? arg.substr(0, eq) : arg;
    value_ = inline_value_ ? arg.substr(eq + 1) : std::string();
    return true;
  }

  // The option's name without any "=value" ("--rate" for "--rate=1M").
  const std::string& name() const { return name_; }

  bool is(std::string_view name) const { return name_ == name; }
  bool is(std::string_view long_name, std::string_view short_name) const {
    return name_ == long_name || name_ == short_name;
  }

  // The option's value, consuming the next argument unless it came after "=".
  // `what` says what is missing: "--config needs a FILE".
  std::string value(std::string_view what = "a value") {
    if (inline_value_) return value_;
    if (index_ + 1 >= args_.size()) throw std::invalid_argument(name_ + " needs " + std::string(what));
    return args_[++index_];
  }

  // For an option without a value; returns true so that `o.hold = arg.flag()`
  // reads as setting it.
  bool flag() const {
    if (inline_value_) throw std::invalid_argument(name_ + " takes no value");
    return true;
  }

  // Refuses the current argument, quoted as given (with any "=value").
  [[noreturn]] void unknown() const {
    throw std::invalid_argument("unknown argument '" + args_[index_] + "'");
  }

 private:
  const std::vector<std::string>& args_;
  size_t index_ = static_cast<size_t>(-1);  // next() moves to 0 first
  std::string name_;
  std::string value_;
  bool inline_value_ = false;
};

// One of a fixed set of words: parse_choice("--proto", v, {{"tcp", 6}, {"udp", 17}})
// refuses anything else with "--proto: tcp | udp, got 'sctp'".
template <typename T>
T parse_choice(std::string_view option, const std::string& text,
               std::initializer_list<std::pair<std::string_view, T>> choices) {
  std::string listed;
  for (const auto& [word, value] : choices) {
    if (text == word) return value;
    listed += (listed.empty() ? "" : " | ") + std::string(word);
  }
  throw std::invalid_argument(std::string(option) + ": " + listed + ", got '" + text + "'");
}

// The decimal number at the start of text (std::stod's rules: "1.5", "1e3",
// also "inf" and "nan", which the callers refuse); `used` is set to how many
// characters it took.
inline double leading_number(std::string_view option, const std::string& text, size_t& used) {
  try {
    return std::stod(text, &used);
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string(option) + ": not a number: '" + text + "'");
  }
}

// A count such as "1000", "64K", "1M", "2.5M", "1Ki": K/M/G are powers of 1000
// (as in packet rates), Ki/Mi/Gi powers of 1024; rounded to the nearest whole
// number, at most about 1.8e19 so that it fits in 64 bits.
inline uint64_t parse_count(std::string_view option, const std::string& text) {
  const std::string opt(option);
  size_t used = 0;
  const double number = leading_number(option, text, used);
  static constexpr std::pair<std::string_view, double> kSuffixes[] = {
      {"", 1},    {"K", 1e3},     {"k", 1e3},        {"M", 1e6},
      {"G", 1e9}, {"Ki", 1024.0}, {"Mi", 1048576.0}, {"Gi", 1073741824.0}};
  const std::string_view suffix = std::string_view(text).substr(used);
  double multiplier = 0;
  for (const auto& [name, factor] : kSuffixes)
    if (suffix == name) multiplier = factor;
  if (multiplier == 0) throw std::invalid_argument(opt + ": bad suffix in '" + text + "'");
  if (!(number >= 0) || std::isinf(number) || number * multiplier > 1.8e19)
    throw std::invalid_argument(opt + ": out of range: '" + text + "'");
  return static_cast<uint64_t>(std::llround(number * multiplier));
}

// A count (as parse_count) that must lie in [min, max]: "--vlan: 1..4094, got '0'".
inline uint64_t parse_count_in(std::string_view option, const std::string& text, uint64_t min, uint64_t max) {
  const uint64_t v = parse_count(option, text);
  if (v < min || v > max)
    throw std::invalid_argument(std::string(option) + ": " + std::to_string(min) + ".." +
                                std::to_string(max) + ", got '" + text + "'");
  return v;
}

// A finite, non-negative decimal number such as "10", "0.5" or "1e-3" (seconds,
// exponents), with nothing after it.
inline double parse_non_negative(std::string_view option, const std::string& text) {
  size_t used = 0;
  const double v = leading_number(option, text, used);
  if (used != text.size() || !(v >= 0) || std::isinf(v))
    throw std::invalid_argument(std::string(option) + ": bad value '" + text + "'");
  return v;
}

}  // namespace l4lb::cli
