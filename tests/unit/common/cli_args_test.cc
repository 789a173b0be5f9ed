// common/cli_args.h: the EAL/"--" split, the option walk and the value
// parsers that l4lbd and l4lb-pktgen share. Pure: no EAL.
#include "l4lb/common/cli_args.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

using namespace l4lb::cli;

namespace {

SplitArgs split(std::vector<const char*> argv) {
  return split_eal_args(static_cast<int>(argv.size()), argv.data(), "prog");
}

std::string message_of(auto&& call) {
  try {
    call();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

using Strings = std::vector<std::string>;

TEST(SplitEalArgs, EalBeforeTheFirstSeparatorOursAfter) {
  const SplitArgs s = split({"l4lbd", "-l", "0,1", "--no-pci", "--", "--config", "f.yaml"});
  EXPECT_EQ(s.eal, (Strings{"l4lbd", "-l", "0,1", "--no-pci"}));
  EXPECT_EQ(s.app, (Strings{"--config", "f.yaml"}));
}

TEST(SplitEalArgs, WithoutSeparatorEverythingIsOurs) {
  const SplitArgs s = split({"l4lbd", "--config", "f.yaml", "--check"});
  EXPECT_EQ(s.eal, (Strings{"l4lbd"}));
  EXPECT_EQ(s.app, (Strings{"--config", "f.yaml", "--check"}));
}

TEST(SplitEalArgs, OnlyTheFirstSeparatorSplits) {
  const SplitArgs s = split({"p", "-l", "0", "--", "--json", "--", "x"});
  EXPECT_EQ(s.eal, (Strings{"p", "-l", "0"}));
  EXPECT_EQ(s.app, (Strings{"--json", "--", "x"}));
}

TEST(SplitEalArgs, SeparatorFirstOrLast) {
  EXPECT_EQ(split({"p", "--", "--help"}).eal, (Strings{"p"}));
  EXPECT_EQ(split({"p", "--", "--help"}).app, (Strings{"--help"}));
  EXPECT_EQ(split({"p", "-l", "0", "--"}).eal, (Strings{"p", "-l", "0"}));
  EXPECT_TRUE(split({"p", "-l", "0", "--"}).app.empty());
}

TEST(SplitEalArgs, NoArgvZeroTakesTheDefaultName) {
  const SplitArgs s = split_eal_args(0, nullptr, "l4lb-pktgen");
  EXPECT_EQ(s.eal, (Strings{"l4lb-pktgen"}));
  EXPECT_TRUE(s.app.empty());
}

// Collects what a walk over `args` sees, the way a program's parser uses it.
struct Parsed {
  std::string rate, config;
  bool hold = false;
};
Parsed walk(const Strings& args) {
  Parsed p;
  OptionWalker arg(args);
  while (arg.next()) {
    if (arg.is("--rate"))
      p.rate = arg.value();
    else if (arg.is("--config", "-c"))
      p.config = arg.value("a FILE");
    else if (arg.is("--hold"))
      p.hold = arg.flag();
    else
      arg.unknown();
  }
  return p;
}

TEST(OptionWalker, ValueAsNextArgumentOrAfterEquals) {
  const Parsed p = walk({"--rate", "1M", "--config=a=b.yaml", "--hold"});
  EXPECT_EQ(p.rate, "1M");
  EXPECT_EQ(p.config, "a=b.yaml");  // only the first "=" separates
  EXPECT_TRUE(p.hold);
  EXPECT_EQ(walk({"-c", "x.yaml"}).config, "x.yaml");
  EXPECT_EQ(walk({"--rate="}).rate, "");  // an explicit empty value is a value
}

TEST(OptionWalker, AValueMayLookLikeAnOption) {
  // "--rate --hold": --hold is the value, as in every getopt.
  const Parsed p = walk({"--rate", "--hold"});
  EXPECT_EQ(p.rate, "--hold");
  EXPECT_FALSE(p.hold);
}

TEST(OptionWalker, MissingValueNamesTheOptionAndWhatIsMissing) {
  EXPECT_EQ(message_of([] { walk({"--rate"}); }), "--rate needs a value");
  EXPECT_EQ(message_of([] { walk({"--hold", "--config"}); }), "--config needs a FILE");
}

TEST(OptionWalker, FlagRefusesAnAttachedValue) {
  EXPECT_EQ(message_of([] { walk({"--hold=yes"}); }), "--hold takes no value");
}

TEST(OptionWalker, UnknownQuotesTheArgumentAsGiven) {
  EXPECT_EQ(message_of([] { walk({"--bogus"}); }), "unknown argument '--bogus'");
  EXPECT_EQ(message_of([] { walk({"--bogus=1"}); }), "unknown argument '--bogus=1'");
  EXPECT_EQ(message_of([] { walk({"--hold", "stray"}); }), "unknown argument 'stray'");
  // Short options do not split at "=": "-c=x" is not "-c x".
  EXPECT_EQ(message_of([] { walk({"-x=1"}); }), "unknown argument '-x=1'");
}

TEST(OptionWalker, EmptyArgumentsWalkNothing) {
  const Strings none;
  OptionWalker arg(none);
  EXPECT_FALSE(arg.next());
}

enum class Proto { kTcp, kUdp };

TEST(ParseChoice, AcceptsListedWordsAndListsThemOnError) {
  const auto parse = [](const std::string& v) {
    return parse_choice<Proto>("--proto", v, {{"tcp", Proto::kTcp}, {"udp", Proto::kUdp}});
  };
  EXPECT_EQ(parse("tcp"), Proto::kTcp);
  EXPECT_EQ(parse("udp"), Proto::kUdp);
  EXPECT_EQ(message_of([&] { parse("TCP"); }), "--proto: tcp | udp, got 'TCP'");
  EXPECT_EQ(message_of([&] { parse(""); }), "--proto: tcp | udp, got ''");
}

TEST(ParseCount, SuffixesArePowersOfAThousandOrOf1024) {
  EXPECT_EQ(parse_count("--n", "1000"), 1000u);
  EXPECT_EQ(parse_count("--n", "64K"), 64000u);
  EXPECT_EQ(parse_count("--n", "64k"), 64000u);
  EXPECT_EQ(parse_count("--n", "2.5M"), 2500000u);
  EXPECT_EQ(parse_count("--n", "10G"), 10000000000u);
  EXPECT_EQ(parse_count("--n", "1Ki"), 1024u);
  EXPECT_EQ(parse_count("--n", "4Mi"), 4194304u);
  EXPECT_EQ(parse_count("--n", "1Gi"), 1073741824u);
  EXPECT_EQ(parse_count("--n", "0"), 0u);
  EXPECT_EQ(parse_count("--n", "1.4"), 1u);  // nearest whole number
  EXPECT_EQ(parse_count("--n", "1.5"), 2u);
}

TEST(ParseCount, RefusesWhatIsNotACount) {
  EXPECT_EQ(message_of([] { parse_count("--flows", "many"); }), "--flows: not a number: 'many'");
  EXPECT_EQ(message_of([] { parse_count("--flows", ""); }), "--flows: not a number: ''");
  EXPECT_EQ(message_of([] { parse_count("--flows", "1X"); }), "--flows: bad suffix in '1X'");
  EXPECT_EQ(message_of([] { parse_count("--flows", "1KM"); }), "--flows: bad suffix in '1KM'");
  EXPECT_EQ(message_of([] { parse_count("--flows", "1 K"); }), "--flows: bad suffix in '1 K'");
  EXPECT_EQ(message_of([] { parse_count("--flows", "-1"); }), "--flows: out of range: '-1'");
  EXPECT_EQ(message_of([] { parse_count("--flows", "nan"); }), "--flows: out of range: 'nan'");
  EXPECT_EQ(message_of([] { parse_count("--flows", "inf"); }), "--flows: out of range: 'inf'");
  EXPECT_EQ(message_of([] { parse_count("--flows", "20G"); }), "");
  EXPECT_EQ(message_of([] { parse_count("--flows", "19G"); }), "");
  EXPECT_EQ(message_of([] { parse_count("--flows", "20000000000G"); }),
            "--flows: out of range: '20000000000G'");
}

TEST(ParseCountIn, BoundsAreInclusiveAndNamedOnError) {
  EXPECT_EQ(parse_count_in("--vlan", "1", 1, 4094), 1u);
  EXPECT_EQ(parse_count_in("--vlan", "4094", 1, 4094), 4094u);
  EXPECT_EQ(message_of([] { parse_count_in("--vlan", "0", 1, 4094); }), "--vlan: 1..4094, got '0'");
  EXPECT_EQ(message_of([] { parse_count_in("--vlan", "4095", 1, 4094); }), "--vlan: 1..4094, got '4095'");
  EXPECT_EQ(message_of([] { parse_count_in("--vlan", "x", 1, 4094); }), "--vlan: not a number: 'x'");
}

TEST(ParseNonNegative, DecimalsWithNothingAfter) {
  EXPECT_DOUBLE_EQ(parse_non_negative("--duration", "10"), 10.0);
  EXPECT_DOUBLE_EQ(parse_non_negative("--duration", "0.5"), 0.5);
  EXPECT_DOUBLE_EQ(parse_non_negative("--duration", "1e-3"), 0.001);
  EXPECT_DOUBLE_EQ(parse_non_negative("--duration", "0"), 0.0);
  EXPECT_EQ(message_of([] { parse_non_negative("--duration", "1s"); }), "--duration: bad value '1s'");
  EXPECT_EQ(message_of([] { parse_non_negative("--duration", "-1"); }), "--duration: bad value '-1'");
  EXPECT_EQ(message_of([] { parse_non_negative("--duration", "inf"); }), "--duration: bad value 'inf'");
  EXPECT_EQ(message_of([] { parse_non_negative("--duration", "soon"); }), "--duration: not a number: 'soon'");
}

}  // namespace
