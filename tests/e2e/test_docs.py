#!/usr/bin/env python3
"""e2e: the documentation keeps up with the programs (issue 14).

For every program and tool (l4lbd, l4lbctl, l4lb-maglev, l4lb-pktgen,
tools/bench, tools/test, tools/demo, tools/fuzz):
  - `--help` exits 0 and names every option the program accepts, and an
    unknown option exits non-zero with the usage text;
  - where it has a man page (docs/man/), its OPTIONS section names every
    option too, and l4lbctl's COMMANDS section and help name every command
    (a usage line or SYNOPSIS alone does not count).
What a program accepts is taken from the program, not from its docs:
  - C++ programs: every "--name" string literal in the binary is tried
    (`PROG [--] OPTION X --no-such-option`, which can never run anything:
    the parse fails on X or on the last word), and so is every "-x" letter;
    an option is accepted unless the error calls it unknown;
  - Python tools: the real argparse parser, caught when the tool calls
    parse_args() (ArgumentParser.parse_args patched to hand it over); each
    option also needs a help sentence, with its default if it takes a value
    (argparse would otherwise list it by name alone);
  - shell tools: the patterns of their `case $1 in` option loop.
Every config key l4lbd accepts must appear in l4lb.yaml.5, in its section:
the keys come from l4lbd itself, from its "unknown key (expected one of:
...)" error when `l4lbd --check` reads a valid file with one unknown key
added to that section. A section the test does not know how to probe fails
the test, so a new section cannot go unchecked.
The man pages must format without a groff warning (`man --warnings -l`) and
have a NAME line lexgrog can read.
No topology, no hugepages, no root needed (only the build)."""
import json
import os
import re
import string
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

BUILD = e2e.REPO / "build"
MAN = e2e.REPO / "docs" / "man"
UNKNOWN = "--l4lb-no-such-option"
PROBE_KEY = "l4lb_undocumented_probe"


# ---------------------------------------------------------------- options

def cxx_options(binary, app_prefix):
    """Options the binary's own parser accepts (see the module text)."""
    data = binary.read_bytes()
    longs = {m.decode().rstrip("=") for m in re.findall(rb"(?<![\x20-\x7e])(--[a-z][a-z0-9-]+=?)\x00", data)}
    shorts = {f"-{c}" for c in string.ascii_letters}
    accepted = set()
    for option in sorted(longs | shorts):
        p = e2e.run([binary, *app_prefix, option, "x", UNKNOWN], check=False, timeout=10)
        if p.returncode == 0 and option not in ("--help", "-h"):
            raise e2e.TestFailure(f"{binary.name} {option} x {UNKNOWN}: exit 0, the probe must never run anything")
        if not re.search(rf"unknown (argument|option) '{re.escape(option)}'", p.stdout + p.stderr):
            accepted.add(option)
    return accepted


# Run a Python tool until it asks argparse to parse, then print its parser's
# options and positional choices as JSON instead.
ARGPARSE_PROBE = r"""
import argparse, json, runpy, sys
class Caught(BaseException):
    pass
def caught(parser, *args, **kwargs):
    options, choices, undocumented = [], [], []
    for action in parser._actions:
        options += action.option_strings
        # argparse lists an option without help= by name alone: each needs a
        # sentence, and one that takes a value needs its default too.
        text = action.help or ""
        if action.option_strings and not isinstance(action, argparse._HelpAction):
            if not text.strip() or (action.nargs != 0 and "default" not in text):
                undocumented.append(action.option_strings[-1])
        if not action.option_strings and action.choices:
            choices += list(action.choices)
    print(json.dumps({"options": options, "choices": choices, "undocumented": undocumented}))
    raise Caught()
argparse.ArgumentParser.parse_args = caught
sys.argv = [sys.argv[1]]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except Caught:
    sys.exit(0)
sys.exit("the tool never called parse_args")
"""


def argparse_options(script):
    p = e2e.run([e2e.PY, "-c", ARGPARSE_PROBE, script], check=False, timeout=30)
    if p.returncode != 0:
        raise e2e.TestFailure(f"cannot read {script.name}'s parser: {(p.stdout + p.stderr).strip()[-400:]}")
    found = json.loads(p.stdout.strip().splitlines()[-1])
    if found["undocumented"]:
        raise e2e.TestFailure(f"{script.name}: options without a help sentence (and, taking a value, its "
                              f"default): {', '.join(found['undocumented'])}")
    return set(found["options"]), set(found["choices"])


def shell_options(script):
    """The option patterns of the script's `case $1 in ... esac` argument loop."""
    text = script.read_text()
    loop = re.search(r"case \$\{?1(:-)?\}? in\n(.*?)\n\s*esac", text, re.S)
    if not loop:
        raise e2e.TestFailure(f"{script.name}: no `case $1 in` argument loop found")
    options = set()
    for pattern in re.findall(r"^\s*([^\s()#][^()\n]*)\)", loop.group(2), re.M):
        for alternative in pattern.split("|"):
            alternative = alternative.strip()
            if alternative == "-*":  # the catch-all that reports an unknown option
                continue
            alternative = alternative.removesuffix("?*")  # "-kPATTERN", the same option as "-k"
            if alternative.startswith("-"):
                options.add(alternative)
    return options


def names(text, word):
    """Does the text name `word` as a whole option or key (not inside a longer one)?"""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def man_text(page):
    """The page's source with roff escapes undone, so '\\-\\-json' reads '--json'."""
    text = page.read_text()
    text = re.sub(r"\\f[BIRP]|\\f\(..|\\&|\\e", "", text)
    return text.replace("\\-", "-").replace("\\(dq", '"')


def check_man_page(page, problems):
    p = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                       env={**os.environ, "MANWIDTH": "80"}, timeout=60)
    if p.returncode != 0 or p.stderr.strip():
        problems.append(f"man --warnings -l {page.name}: exit {p.returncode}: {p.stderr.strip()[:300]}")
    p = subprocess.run(["lexgrog", str(page)], capture_output=True, text=True, timeout=60)
    e2e.log(f"lexgrog {page.name}: {p.stdout.strip()}")
    if p.returncode != 0 or " - " not in p.stdout:
        problems.append(f"lexgrog {page.name}: exit {p.returncode}: {(p.stdout + p.stderr).strip()}")


def check_program(name, argv, options, problems, man=None, choices=()):
    p = e2e.run([*argv, "--help"], check=False, timeout=30)
    help_text = p.stdout + p.stderr
    if p.returncode != 0:
        problems.append(f"{name} --help: exit {p.returncode}")
    # The usage is either a "usage:" line or, for the shell tools, the help
    # text itself, whose first line then shows.
    q = e2e.run([*argv, UNKNOWN], check=False, timeout=30)
    first_help_line = next((line for line in help_text.splitlines() if line.strip()), "")
    usage_shown = "usage" in (q.stdout + q.stderr).lower() or (first_help_line and first_help_line in q.stderr)
    if q.returncode == 0 or not usage_shown:
        problems.append(f"{name} {UNKNOWN}: exit {q.returncode}, usage printed: {usage_shown}")
    if man is not None and not man.exists():
        problems.append(f"{name} has no man page {man.relative_to(e2e.REPO)}")
        man = None
    # Named where options are described, not only in a usage line or synopsis.
    described = re.sub(r"\A\s*usage:.*?(\n\s*\n|\Z)", "", help_text, flags=re.S | re.I)
    sections = man_sections(man) if man else {}
    man_options = sections.get("OPTIONS", "")
    man_commands = sections.get("COMMANDS", "")
    words = sorted(options) + sorted(choices)
    missing_help = [w for w in words if not names(described, w)]
    missing_man = [w for w in sorted(options) if man and not names(man_options, w)]
    missing_man += [w for w in sorted(choices) if man and not names(man_commands, w)]
    e2e.log(f"{name}: {len(options)} options{f', {len(choices)} commands' if choices else ''} "
            f"({' '.join(words)}); --help lacks {missing_help or 'none'}"
            + (f"; {man.name} lacks {missing_man or 'none'}" if man else ""))
    if missing_help:
        problems.append(f"{name} --help does not name {', '.join(missing_help)}")
    if missing_man:
        problems.append(f"{man.name} does not name {', '.join(missing_man)}")


# ---------------------------------------------------------------- config keys

def base_config():
    """A valid config with every section, written as JSON (which YAML reads)."""
    return {
        "dataplane": {"workers": 1},
        "ports": [{"name": "net_tap0", "address": "10.99.0.1/24"}],
        "vips": [{"name": "web", "address": "10.99.0.100", "port": 8080, "snat": ["10.99.0.1"],
                  "health": {"type": "tcp"},
                  "backends": [{"address": "10.99.0.21", "port": 8080}]}],
        "neighbors": [{"address": "10.99.0.21", "mac": "02:00:00:00:00:21"}],
        "timeouts": {"tcp_syn_s": 3},
        "logging": {"level": "info"},
        "metrics": {"listen": "127.0.0.1:9100"},
        "bgp": {"enabled": "false"},
    }


# Where each mapping lives in base_config(), and the man page section that
# documents its keys.
MAPPINGS = {
    "": ((), "NAME"),  # the top level: its keys are the sections
    "dataplane": (("dataplane",), "DATAPLANE"),
    "ports[]": (("ports", 0), "PORTS"),
    "vips[]": (("vips", 0), "VIPS"),
    "vips[].health": (("vips", 0, "health"), "VIPS"),
    "vips[].backends[]": (("vips", 0, "backends", 0), "VIPS"),
    "neighbors[]": (("neighbors", 0), "NEIGHBORS"),
    "timeouts": (("timeouts",), "TIMEOUTS"),
    "logging": (("logging",), "LOGGING"),
    "metrics": (("metrics",), "METRICS"),
    "bgp": (("bgp",), "BGP"),
}


def accepted_keys(tmp, where):
    cfg = base_config()
    node = cfg
    for step in where:
        node = node[step]
    node[PROBE_KEY] = 1
    path = Path(tmp) / "probe.yaml"
    path.write_text(json.dumps(cfg, indent=1) + "\n")
    p = e2e.run([e2e.L4LBD, "--config", path, "--check"], check=False, timeout=30)
    m = re.search(rf"{PROBE_KEY}: unknown key \(expected one of: ([^)]*)\)", p.stderr)
    if p.returncode != 1 or not m:
        raise e2e.TestFailure(f"l4lbd --check with an unknown key in {where or 'the top level'}: exit "
                              f"{p.returncode}, no 'unknown key (expected one of: ...)': {p.stderr.strip()[:300]}")
    return [k.strip() for k in m.group(1).split(",")]


def man_sections(page):
    sections, current = {}, None
    for line in man_text(page).splitlines():
        if line.startswith(".SH "):
            current = line[4:].strip().strip('"')
            sections[current] = ""
        elif current:
            sections[current] += line + "\n"
    return sections


def check_config_keys(problems):
    page = MAN / "l4lb.yaml.5"
    sections = man_sections(page)
    with tempfile.TemporaryDirectory(prefix="l4lb-docs-") as tmp:
        for mapping, (where, section) in MAPPINGS.items():
            keys = accepted_keys(tmp, where)
            if mapping == "":
                unknown = [k for k in keys if k not in MAPPINGS and f"{k}[]" not in MAPPINGS]
                if unknown:
                    problems.append(f"l4lbd accepts top-level {unknown}, which this test cannot probe: "
                                    f"add it to MAPPINGS and document it in {page.name}")
                missing = [k for k in keys if k.upper() not in sections]
                e2e.log(f"config sections: {', '.join(keys)}; {page.name} has no .SH for {missing or 'none'}")
                problems += [f"{page.name} has no section .SH {k.upper()}" for k in missing]
                continue
            text = sections.get(section, "")
            missing = [k for k in keys if not names(text, k)]
            e2e.log(f"config {mapping}: {', '.join(keys)}; missing in {page.name} {section}: {missing or 'none'}")
            problems += [f"{page.name} section {section} does not document {mapping}.{k}" for k in missing]


# ---------------------------------------------------------------- the test

def body(_lab):
    problems = []
    for page in sorted(MAN.glob("*.[1-8]")):
        check_man_page(page, problems)

    binaries = {"l4lbd": (BUILD / "src" / "daemon" / "l4lbd", ["--"]),
                "l4lb-maglev": (BUILD / "src" / "tools" / "l4lb-maglev", []),
                "l4lb-pktgen": (BUILD / "pktgen" / "l4lb-pktgen", ["--"])}
    for name, (binary, prefix) in binaries.items():
        if not binary.exists():
            raise e2e.TestFailure(f"{binary} not built")
        page = MAN / ("l4lbd.8" if name == "l4lbd" else f"{name}.1")
        check_program(name, [binary], cxx_options(binary, prefix), problems, man=page)

    tools = e2e.REPO / "tools"
    options, commands = argparse_options(tools / "l4lbctl")
    check_program("l4lbctl", [tools / "l4lbctl"], options, problems, man=MAN / "l4lbctl.8", choices=commands)
    options, _ = argparse_options(tools / "bench")
    check_program("tools/bench", [tools / "bench"], options, problems)
    for tool in ("test", "demo", "fuzz"):
        check_program(f"tools/{tool}", [tools / tool], shell_options(tools / tool), problems)

    check_config_keys(problems)
    if problems:
        raise e2e.TestFailure("; ".join(problems))


if __name__ == "__main__":
    e2e.run_test("docs", body, topology=False, timeout=300)
