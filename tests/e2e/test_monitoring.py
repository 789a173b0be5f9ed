#!/usr/bin/env python3
"""e2e: the Grafana dashboard and Prometheus alert rules in docs/monitoring
hold for the l4lbd we build (configs/health.yaml, metrics at 127.0.0.1:9100).

  - `promtool check rules` accepts l4lb-alerts.yml, and `promtool test rules`
    passes its unit tests (l4lb-alerts.test.yml: the alerts fire, and stay
    quiet, when they should);
  - grafana-l4lb.json is a dashboard Grafana can import: unique panel ids,
    every panel on the 24-column grid with a Prometheus query through the
    $datasource variable; every query, with the dashboard's variables
    filled in, is PromQL that promtool accepts (each becomes a recording
    rule in a scratch file);
  - every metric named in the rules and the dashboard is one this l4lbd
    exports (its # TYPE lines, scraped after traffic), except Prometheus's
    own `up`; and every label a query matches on, with each literal value
    it asks for (drop reasons, packet kinds, ...), exists in the scrape, so
    a renamed drop reason cannot leave an alert silently empty.
promtool comes from tools/lib/setup.sh (l4lb_ensure_promtool)."""
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import l4lb_e2e as e2e  # noqa: E402

CONFIG = e2e.CONFIG_DIR / "health.yaml"
LISTEN = "127.0.0.1:9100"
MONITORING = e2e.REPO / "docs" / "monitoring"
RULES = MONITORING / "l4lb-alerts.yml"
RULE_TESTS = MONITORING / "l4lb-alerts.test.yml"
DASHBOARD = MONITORING / "grafana-l4lb.json"
# Labels Prometheus adds at scrape time, not l4lbd.
TARGET_LABELS = {"job", "instance"}
# Grafana's variables, as a query sees them once filled in.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$job": ".*", "$instance": ".*",
             "$vip": ".*", "${datasource}": "prometheus"}
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
SELECTOR = re.compile(r'\b(l4lb_[a-z0-9_]+)\s*\{([^}]*)\}')
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def promtool(*args, cwd=None):
    tool = shutil.which("promtool")
    if tool is None:
        raise e2e.TestFailure("promtool not found (tools/lib/setup.sh installs it: l4lb_ensure_promtool)")
    # Rule tests name their rule files relative to the test file's directory.
    return subprocess.run([tool, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def fill(expr):
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def dashboard_queries(dash, problems):
    """-> [(where, PromQL)] after checking the dashboard's structure."""
    queries = []
    ids = [p.get("id") for p in dash.get("panels", [])]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"dashboard panel ids not unique: {ids}")
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["query"]["query"])
            if not m:
                problems.append(f"variable {v['name']}: not label_values(SELECTOR, LABEL): {v['query']}")
            else:
                queries.append((f"variable {v['name']}", m.group(1)))
    used = set()
    for p in dash.get("panels", []):
        g = p.get("gridPos", {})
        if not (0 <= g.get("x", -1) and g.get("x", 0) + g.get("w", 0) <= 24 and g.get("h", 0) > 0):
            problems.append(f"panel {p.get('title')}: gridPos {g} off the 24-column grid")
        if p.get("type") == "row":
            continue
        targets = p.get("targets", [])
        if not targets:
            problems.append(f"panel {p.get('title')}: no query")
        for t in targets:
            if (t.get("datasource") or p.get("datasource") or {}).get("uid") != "${datasource}":
                problems.append(f"panel {p.get('title')}: not on the $datasource variable")
            used |= set(re.findall(r"\$(\w+)", t.get("expr", "")))
            queries.append((f"panel '{p.get('title')}' {t.get('refId')}", t.get("expr", "")))
    unknown = used - variables - {"__rate_interval", "__interval", "__range"}
    if unknown:
        problems.append(f"dashboard queries use undefined variables {sorted(unknown)}")
    return queries


def rule_queries(rules):
    """The alert expressions of a rules file, without a YAML parser: promtool
    has already parsed it; here only `expr:` lines and block scalars matter."""
    queries, lines = [], rules.read_text().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not m:
            continue
        if m.group(2).strip() == "|":
            block = []
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= len(m.group(1)):
                    break
                block.append(nxt.strip())
            queries.append((f"{rules.name}:{i + 1}", " ".join(block)))
        else:
            queries.append((f"{rules.name}:{i + 1}", m.group(2)))
    return queries


def check_promql(queries, tmp, problems):
    """promtool parses each query as the expression of a recording rule."""
    path = Path(tmp) / "dashboard-queries.yml"
    body = "\n".join(f"      - record: l4lb_dashboard:q{i}\n        expr: {json.dumps(fill(q))}"
                     for i, (_, q) in enumerate(queries))
    path.write_text("groups:\n  - name: dashboard\n    rules:\n" + body + "\n")
    p = promtool("check", "rules", path)
    e2e.log(f"promtool check rules on the dashboard's {len(queries)} queries: exit {p.returncode}: "
            f"{(p.stdout + p.stderr).strip().splitlines()[-1:]}")
    if p.returncode != 0:
        problems.append(f"dashboard queries that are not PromQL: {(p.stdout + p.stderr).strip()[:600]}")


def scrape(lab):
    """-> ({family}, {metric: {label: {values}}}) from one scrape of l4lbd."""
    families, labels = set(), {}
    for line in lab.metrics(LISTEN).splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
            continue
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            entry = labels.setdefault(m.group(1), {})
            for name, value in LABEL.findall(m.group(2) or ""):
                entry.setdefault(name, set()).add(value)
    return families, labels


def check_names(queries, families, labels, problems):
    for where, query in queries:
        for name in set(re.findall(r"\b(l4lb_[a-z0-9_]+)\b", query)):
            if name.startswith("l4lb_dashboard"):
                continue
            if name not in families:
                problems.append(f"{where}: l4lbd exports no metric {name}")
        bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)',
                      "", query)
        for word in set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", bare)):
            if word.startswith("l4lb_") or word in ("up", "and", "or", "unless", "by", "offset", "bool",
                                                      "ignoring", "on", "group_left", "group_right", "e"):
                continue
            problems.append(f"{where}: '{word}' is neither an l4lbd metric nor 'up'")
        for name, matchers in SELECTOR.findall(query):
            have = labels.get(name, {})
            for label, op, value in MATCHER.findall(matchers):
                if label in TARGET_LABELS or "$" in value:
                    continue
                if name in families and name not in labels:
                    continue  # declared with no samples (hand-offs with one worker): nothing to compare
                if label not in have:
                    problems.append(f"{where}: {name} has no label {label} (has {sorted(have)})")
                    continue
                if op in ("=", "=~") and re.fullmatch(r"[a-z0-9_]+(\|[a-z0-9_]+)*", value):
                    missing = [v for v in value.split("|") if v not in have[label]]
                    if missing:
                        problems.append(f"{where}: {name}{{{label}}} never takes {missing} "
                                        f"(l4lbd has {sorted(have[label])})")


def body(lab):
    problems = []
    p = promtool("check", "rules", RULES)
    e2e.log(f"promtool check rules {RULES.name}: exit {p.returncode}: {' | '.join((p.stdout + p.stderr).split(chr(10))[:3])}")
    if p.returncode != 0:
        problems.append(f"promtool check rules: {(p.stdout + p.stderr).strip()[:600]}")
    p = promtool("test", "rules", RULE_TESTS.name, cwd=MONITORING)
    e2e.log(f"promtool test rules {RULE_TESTS.name}: exit {p.returncode}: {' | '.join((p.stdout + p.stderr).split(chr(10))[:3])}")
    if p.returncode != 0:
        problems.append(f"promtool test rules: {(p.stdout + p.stderr).strip()[:1500]}")

    dash = json.loads(DASHBOARD.read_text())
    queries = dashboard_queries(dash, problems)
    with tempfile.TemporaryDirectory(prefix="l4lb-monitoring-") as tmp:
        check_promql(queries, tmp, problems)
    alerts = rule_queries(RULES)
    e2e.log(f"{DASHBOARD.name}: {len(dash['panels'])} panels, {len(queries)} queries; {RULES.name}: "
            f"{len(alerts)} alerts")

    # Traffic first, so every family has its samples (SNAT pools are made by flows).
    lab.wait_backends_up("web")
    counts, failures = lab.curl_many(20)
    e2e.log(f"load: 20 curls: {dict(sorted(counts.items()))}, {len(failures)} failed")
    families, labels = scrape(lab)
    e2e.log(f"scrape: {len(families)} families: {', '.join(sorted(families))}")
    used = sorted({n for _, q in queries + alerts for n in re.findall(r"\b(l4lb_[a-z0-9_]+)\b", q)})
    e2e.log(f"metrics the dashboard and rules use: {', '.join(used)}")
    check_names(queries + alerts, families, labels, problems)
    lab.finish(problems)


if __name__ == "__main__":
    # With bgp on (no BIRD: l4lbd retries), so the l4lb_bgp_* families exist.
    with tempfile.TemporaryDirectory(prefix="l4lb-monitoring-bgp-") as bgp_dir:
        config = Path(bgp_dir) / CONFIG.name
        config.write_text(CONFIG.read_text() + f"bgp:\n  enabled: true\n  bird_socket: {bgp_dir}/bird.ctl\n"
                                               f"  routes_file: {bgp_dir}/routes.conf\n")
        e2e.run_test("monitoring", body, config=config, servers=[("http_server", 8080)], probe=("http", 8080),
                     timeout=180)
