#!/usr/bin/env bash
# Checks nubo's observability configuration, from the repository root or anywhere else:
#   - deploy/prometheus/prometheus.yml        promtool check config
#   - deploy/prometheus/rules/*.yml           promtool check rules
#   - deploy/prometheus/tests/*.yml           promtool test rules, and every alert has a case
#                                             where it fires and one where it does not
#   - alerts vs deploy/RUNBOOK.md             severity, annotations, runbook anchors exist
#   - deploy/grafana/dashboards/*.json        valid JSON, unique uid and title, every panel has
#                                             a datasource, every query parses as PromQL and
#                                             every recording rule it reads exists
#   - deploy/grafana/provisioning/*.yml       valid YAML
#   - deploy/otel/collector.yaml              valid YAML, pipelines use defined components
# Installs what it needs from Debian's packages when missing (promtool from `prometheus`,
# python3 and PyYAML), so it needs root on a fresh machine. Called by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

apt_updated=false
apt_install() {
  if ! $apt_updated; then
    apt-get update -qq
    apt_updated=true
  fi
  # No recommends: they would bring prometheus-node-exporter, another server.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Whether a process named exactly `prometheus` (the server, not promtool) runs. Reads /proc so it
# works without procps, which a minimal Debian does not have.
prometheus_running() {
  local f name
  for f in /proc/[0-9]*/comm; do
    { read -r name <"$f"; } 2>/dev/null || continue
    if [[ $name == prometheus ]]; then return 0; fi
  done
  return 1
}

say "tools"
if ! command -v promtool >/dev/null 2>&1; then
  echo "   promtool missing: installing Debian's prometheus package"
  server_was_running=false
  if prometheus_running; then server_was_running=true; fi
  apt_install prometheus
  # The package enables and starts a Prometheus server; only promtool is wanted here.
  if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1; then
    if ! $server_was_running; then
      systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    fi
  elif ! $server_was_running && prometheus_running && [[ -x /etc/init.d/prometheus ]]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
  if ! $server_was_running; then
    for _ in $(seq 1 20); do prometheus_running || break; sleep 0.5; done
    if prometheus_running; then
      echo "the prometheus package started a Prometheus server that could not be stopped" >&2
      exit 1
    fi
  fi
fi
ok "$(promtool --version 2>&1 | head -n 1)"

# A python3 that can import yaml: the one on PATH, else Debian's, else install Debian's.
PY=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import yaml' 2>/dev/null; then
    PY=$(command -v "$candidate")
    break
  fi
done
if [[ -z $PY ]]; then
  echo "   python3 with PyYAML missing: installing python3 and python3-yaml"
  apt_install python3 python3-yaml
  if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
    PY=/usr/bin/python3
  else
    python3 -m pip install --quiet pyyaml
    PY=$(command -v python3)
  fi
fi
ok "$("$PY" --version 2>&1) with PyYAML $("$PY" -c 'import yaml; print(yaml.__version__)')"

# The checks promtool cannot do, one mode per argument; see each function's docstring.
read -r -d '' CHECKS <<'PYTHON' || true
import glob, json, os, re, sys
import yaml

ROLE_META = {
    # The __meta_kubernetes_* labels each role of kubernetes_sd_configs provides.
    "node": [r"node_name", r"node_provider_id", r"node_(label|labelpresent|annotation|annotationpresent)_\w+", r"node_address_\w+"],
    "service": [r"namespace", r"service_name", r"service_(label|labelpresent|annotation|annotationpresent)_\w+",
                r"service_(cluster_ip|loadbalancer_ip|external_name|port_name|port_number|port_protocol|type)"],
    "pod": [r"namespace", r"pod_(name|ip|ready|phase|node_name|host_ip|uid|controller_kind|controller_name)",
            r"pod_(label|labelpresent|annotation|annotationpresent)_\w+",
            r"pod_container_(init|name|id|image|port_name|port_number|port_protocol)"],
    "ingress": [r"namespace", r"ingress_(name|class_name|scheme|path|host)", r"ingress_(label|labelpresent|annotation|annotationpresent)_\w+"],
}
ROLE_META["endpoints"] = ROLE_META["service"] + ROLE_META["pod"] + [
    r"endpoints_name", r"endpoints_(label|labelpresent|annotation|annotationpresent)_\w+",
    r"endpoint_(hostname|node_name|ready|port_name|port_protocol|address_target_kind|address_target_name)"]
ROLE_META["endpointslice"] = ROLE_META["service"] + ROLE_META["pod"] + [
    r"endpointslice_name", r"endpointslice_(label|labelpresent|annotation|annotationpresent)_\w+",
    r"endpointslice_(address_target_kind|address_target_name|address_type|endpoint_hostname|endpoint_node_name|endpoint_zone)",
    r"endpointslice_endpoint_conditions_(ready|serving|terminating)",
    r"endpointslice_endpoint_topology_(present_)?\w+", r"endpointslice_port(_name|_protocol|_app_protocol)?"]
K8S_SD_KEYS = {"api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
               "basic_auth", "authorization", "oauth2", "proxy_url", "no_proxy", "proxy_from_environment",
               "proxy_connect_header", "follow_redirects", "enable_http2", "tls_config", "bearer_token",
               "bearer_token_file"}

failures = []


def fail(msg):
    failures.append(msg)


def ok(msg, failures_before):
    """Prints msg unless a failure was recorded since failures_before."""
    if len(failures) == failures_before:
        print(f"   ok: {msg}")


def sd_sections(config):
    """Every scrape config or alertmanager config, with its name."""
    for sc in config.get("scrape_configs") or []:
        yield f"scrape job {sc.get('job_name')!r}", sc
    for i, am in enumerate(((config.get("alerting") or {}).get("alertmanagers")) or []):
        yield f"alertmanagers[{i}]", am


def prometheus_config(path, out):
    """Checks the kubernetes_sd_configs sections (roles, keys, the __meta_kubernetes_* labels the
    relabelling reads), then writes a copy where each is a static_configs, with rule_files made
    absolute: Debian's promtool is built without Kubernetes discovery and rejects the original."""
    before = len(failures)
    config = yaml.safe_load(open(path))
    base = os.path.dirname(os.path.abspath(path))
    for name, section in sd_sections(config):
        sds = section.get("kubernetes_sd_configs")
        if sds is None:
            continue
        roles = set()
        for sd in sds:
            role = sd.get("role")
            if role not in ROLE_META:
                fail(f"{path}: {name}: unknown kubernetes_sd_configs role {role!r}")
                continue
            roles.add(role)
            for key in set(sd) - K8S_SD_KEYS:
                fail(f"{path}: {name}: unknown kubernetes_sd_configs field {key!r}")
        patterns = [re.compile(r"__meta_kubernetes_(?:%s)$" % p) for r in roles for p in ROLE_META[r]]
        for rc in section.get("relabel_configs") or []:
            for label in rc.get("source_labels") or []:
                if label.startswith("__meta_kubernetes_") and not any(p.match(label) for p in patterns):
                    fail(f"{path}: {name}: role {'/'.join(sorted(roles))} provides no label {label}")
        del section["kubernetes_sd_configs"]
        section.setdefault("static_configs", []).append({"targets": []})
    config["rule_files"] = [os.path.join(base, f) for f in config.get("rule_files") or []]
    with open(out, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    ok(f"{path}: kubernetes_sd_configs roles, fields and __meta_kubernetes_* labels", before)


def github_anchor(heading):
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def alerts(rules_glob, tests_glob, runbook):
    """Every alert has a severity, the three annotations and a runbook_url whose anchor is a
    heading of the runbook; every alert has a test where it fires and one where it does not."""
    before = len(failures)
    text = open(runbook).read()
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        if link not in anchors:
            fail(f"{runbook}: link to #{link}, which is no heading")
    names = set()
    for path in sorted(glob.glob(rules_glob)):
        for group in yaml.safe_load(open(path))["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                name = rule["alert"]
                names.add(name)
                where = f"{path}: alert {name}"
                if (rule.get("labels") or {}).get("severity") not in ("page", "ticket", "warning"):
                    fail(f"{where}: severity label must be page, ticket or warning")
                annotations = rule.get("annotations") or {}
                for key in ("summary", "description", "runbook_url"):
                    if not annotations.get(key):
                        fail(f"{where}: no {key} annotation")
                url = annotations.get("runbook_url", "")
                if not url.split("#")[0].endswith("deploy/RUNBOOK.md") or "#" not in url:
                    fail(f"{where}: runbook_url {url!r} is not deploy/RUNBOOK.md#<anchor>")
                elif url.split("#", 1)[1] not in anchors:
                    fail(f"{where}: {runbook} has no heading for #{url.split('#', 1)[1]}")
    fires, silent = set(), set()
    for path in sorted(glob.glob(tests_glob)):
        for test in yaml.safe_load(open(path)).get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                (fires if case.get("exp_alerts") else silent).add(case["alertname"])
    ok(f"{len(names)} alerts: severity, summary, description, runbook_url -> {runbook} headings", before)
    before = len(failures)
    for name in sorted(names):
        if name not in fires:
            fail(f"{tests_glob}: no test where {name} fires")
        if name not in silent:
            fail(f"{tests_glob}: no test where {name} stays silent")
    for name in sorted((fires | silent) - names):
        fail(f"{tests_glob}: tests an alert no rule defines: {name}")
    ok(f"{len(names)} alerts each have a test case where they fire and one where they stay silent", before)


def panels_of(dashboard):
    for panel in dashboard.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


GRAFANA_DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}


def as_promql(expr):
    """A dashboard query with Grafana's variables replaced by plausible values."""
    expr = re.sub(r"\$\{?(__rate_interval|__interval|__range)\}?", lambda m: GRAFANA_DURATIONS[m.group(1)], expr)
    return re.sub(r"\$\{(\w+)(:\w+)?\}|\$(\w+)", "x", expr)


def dashboards(dash_glob, rules_glob, out):
    """Unique uid and title; every panel (rows included) has a datasource; a `${datasource}`
    reference has its variable; every non-row panel has a query. Writes every query as a
    recording rule to `out` for promtool to parse, and checks each recording rule a query reads."""
    recorded = set()
    for path in sorted(glob.glob(rules_glob)):
        for group in yaml.safe_load(open(path))["groups"]:
            recorded.update(r["record"] for r in group["rules"] if "record" in r)
    uids, titles, rules = {}, {}, []
    paths = sorted(glob.glob(dash_glob))
    if not paths:
        fail(f"no dashboards match {dash_glob}")
    for path in paths:
        before = len(failures)
        d = json.load(open(path))
        uid, title = d.get("uid"), d.get("title")
        if not uid or not title:
            fail(f"{path}: uid and title are required")
        if uid in uids:
            fail(f"{path}: uid {uid!r} already used by {uids[uid]}")
        if title in titles:
            fail(f"{path}: title {title!r} already used by {titles[title]}")
        uids[uid], titles[title] = path, path
        variables = {v.get("name"): v for v in (d.get("templating") or {}).get("list") or []}
        ids, count = set(), 0
        for panel in panels_of(d):
            count += 1
            where = f"{path}: panel {panel.get('id')} {panel.get('title')!r}"
            if panel.get("id") in ids:
                fail(f"{where}: duplicate panel id")
            ids.add(panel.get("id"))
            ds = panel.get("datasource")
            uid_ref = ds.get("uid") if isinstance(ds, dict) else ds
            if not uid_ref:
                fail(f"{where}: no datasource")
            else:
                m = re.fullmatch(r"\$\{?(\w+)\}?", uid_ref)
                if m and (variables.get(m.group(1)) or {}).get("type") != "datasource":
                    fail(f"{where}: datasource {uid_ref} is no datasource variable of the dashboard")
            if panel.get("type") == "row":
                continue
            targets = panel.get("targets") or []
            if not targets:
                fail(f"{where}: no query")
            for t in targets:
                expr = t.get("expr", "")
                if not expr.strip():
                    fail(f"{where}: query {t.get('refId')} is empty")
                    continue
                for name in re.findall(r"(?<![\w:])([a-zA-Z_]\w*:[\w:]+)", expr):
                    if name not in recorded:
                        fail(f"{where}: reads {name}, which no recording rule records")
                rule_name = re.sub(r"\W", "_", f"dashboard_{uid}_{panel.get('id')}_{t.get('refId')}")
                rules.append({"record": rule_name, "expr": as_promql(expr)})
        for name, v in variables.items():
            if v.get("type") == "query":
                query = v.get("query")
                query = query.get("query") if isinstance(query, dict) else query
                m = re.fullmatch(r"label_values\((.*),\s*\w+\)", query or "")
                if m:
                    rule_name = re.sub(r"\W", "_", f"dashboard_{uid}_var_{name}")
                    rules.append({"record": rule_name, "expr": m.group(1)})
        ok(f"{path}: uid {uid!r}, title {title!r}, {count} panels with a datasource", before)
    with open(out, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f, sort_keys=False)


def yaml_files(*paths):
    """Each file parses as YAML."""
    for path in paths:
        try:
            yaml.safe_load(open(path))
            ok(f"{path}: valid YAML", len(failures))
        except yaml.YAMLError as e:
            fail(f"{path}: {e}")


def collector(path):
    """Valid YAML; every component a pipeline or the service names is defined."""
    try:
        c = yaml.safe_load(open(path))
    except yaml.YAMLError as e:
        fail(f"{path}: {e}")
        return
    before = len(failures)
    service = c.get("service") or {}
    for ext in service.get("extensions") or []:
        if ext not in (c.get("extensions") or {}):
            fail(f"{path}: service uses extension {ext!r}, which is not defined")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        fail(f"{path}: no pipeline")
    for name, p in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            for component in p.get(kind) or []:
                if component not in (c.get(kind) or {}):
                    fail(f"{path}: pipeline {name} uses {kind[:-1]} {component!r}, which is not defined")
        if not p.get("receivers") or not p.get("exporters"):
            fail(f"{path}: pipeline {name} needs receivers and exporters")
    ok(f"{path}: valid YAML, pipelines {', '.join(pipelines)} use defined components", before)


mode, args = sys.argv[1], sys.argv[2:]
{"prometheus-config": prometheus_config, "alerts": alerts, "dashboards": dashboards,
 "yaml": yaml_files, "collector": collector}[mode](*args)
if failures:
    for f in failures:
        print(f"   FAILED: {f}", file=sys.stderr)
    sys.exit(1)
PYTHON
check() { "$PY" -c "$CHECKS" "$@"; }

say "Prometheus configuration"
if out=$(promtool check config deploy/prometheus/prometheus.yml 2>&1); then
  printf '%s\n' "$out"
elif grep -q 'field kubernetes_sd_configs not found' <<<"$out"; then
  # Debian builds Prometheus without Kubernetes discovery. Check those sections here and the
  # rest of the file with promtool.
  echo "   this promtool has no Kubernetes discovery (Debian's build): checking those sections apart"
  check prometheus-config deploy/prometheus/prometheus.yml "$tmp/prometheus.yml"
  promtool check config "$tmp/prometheus.yml"
else
  printf '%s\n' "$out" >&2
  exit 1
fi

say "Prometheus rules"
promtool check rules deploy/prometheus/rules/*.yml

say "Prometheus rule unit tests"
promtool test rules deploy/prometheus/tests/*.yml
check alerts 'deploy/prometheus/rules/*.yml' 'deploy/prometheus/tests/*.yml' deploy/RUNBOOK.md

say "Grafana dashboards"
for f in deploy/grafana/dashboards/*.json; do
  "$PY" -m json.tool "$f" >/dev/null
  ok "$f: valid JSON"
done
check dashboards 'deploy/grafana/dashboards/*.json' 'deploy/prometheus/rules/*.yml' "$tmp/dashboard-queries.yml"
echo "   every dashboard query, parsed by promtool:"
promtool check rules "$tmp/dashboard-queries.yml" | sed 's/^/   /'
check yaml deploy/grafana/provisioning/*.yml

say "OpenTelemetry Collector"
check collector deploy/otel/collector.yaml

say "observability configuration: all checks passed"
