"""The Kubernetes manifests under k8s/ agree with the service they deploy.

Every YAML document is a Kubernetes object (or a kustomization, or Helm values)
that validates offline against the Kubernetes schema (Prometheus Operator objects,
which it has no schema for, against their structure); every metric the alerts and
the dashboard query is one the service exports; each partition's allocators are
started with flags `invsync serve` accepts, on the ports, paths and volumes the pod
actually has.
"""

from __future__ import annotations

import argparse
import json
import pkgutil
import re
import shutil
import subprocess
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from invsync.commands import connect, serve
from invsync.gateway import platforms
from invsync.gateway.config import load_channels
from invsync.gateway.listings import read_listing_csv
from invsync.gateway.metrics import GatewayMetrics
from invsync.gateway.platforms import profile_factory
from invsync.gateway.secrets import Secret
from invsync.security.natsconf import User, accounts
from invsync.security.roles import ROLE_NAMES
from invsync.service.metrics import Metrics

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: k8s manifests not checked")
kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is not installed: k8s schemas not checked"
)

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
HELM_VALUES = K8S / "nats" / "values.yaml"
HELM_TLS_VALUES = K8S / "nats" / "values-tls.yaml"
DASHBOARD = K8S / "base" / "dashboards" / "invsync.json"
PARTITIONS = K8S / "base" / "partitions"
METRIC = re.compile(r"\binvsync_[a-z0-9_]+\b")
# The oldest Kubernetes the manifests are written for (PodDisruptionBudget's
# unhealthyPodEvictionPolicy is GA from 1.31).
KUBERNETES_VERSION = "1.31.0"
PARTITION_LABEL = "invsync.io/partition"


def yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in {".yaml", ".yml"})


@cache
def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def base_objects() -> list[dict[str, Any]]:
    """Every document in the base, the allocator template included (overlays hold
    partial patches)."""
    return [d for path in sorted((K8S / "base").rglob("*.yaml")) for d in documents(path)]


def objects(kind: str) -> list[dict[str, Any]]:
    return [d for d in base_objects() if d.get("kind") == kind]


def the(kind: str) -> dict[str, Any]:
    (found,) = objects(kind)
    return found


@cache
def exported_metrics() -> frozenset[str]:
    """The series names a scrape of the service or the gateway can contain, from their
    metrics modules themselves."""
    registry = CollectorRegistry()
    Metrics(registry)
    GatewayMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        elif family.type == "info":
            names.add(family.name + "_info")
        else:
            names.add(family.name)
    return frozenset(names)


def rule_exprs() -> list[str]:
    rule = the("PrometheusRule")
    return [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = []
    for panel in dashboard["panels"]:
        exprs += [t["expr"] for t in panel.get("targets", [])]
    return exprs


def allocator() -> dict[str, Any]:
    spec = the("StatefulSet")["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "invsync"]
    return container


def serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="invsync serve", exit_on_error=False)
    serve.add_arguments(parser)
    return parser


def expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of container args from the container's env."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env[m.group(1)], arg)


def partition_count() -> int:
    """N, from the ConfigMap every allocator reads it from."""
    (kustomization,) = documents(K8S / "base" / "kustomization.yaml")
    (generator,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == "invsync-partitions"
    ]
    (literal,) = generator["literals"]
    key, value = literal.split("=")
    assert key == "partitions"
    return int(value)


def container_env(container: dict[str, Any], partition: int = 0) -> dict[str, str]:
    """The container's environment as the pod of `partition` gets it: plain values, N
    from the invsync-partitions ConfigMap, k from the pod's partition label."""
    env = {}
    for entry in container["env"]:
        source = entry.get("valueFrom", {})
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif source.get("configMapKeyRef", {}).get("name") == "invsync-partitions":
            env[entry["name"]] = str(partition_count())
        elif source.get("fieldRef", {}).get("fieldPath") == f"metadata.labels['{PARTITION_LABEL}']":
            env[entry["name"]] = str(partition)
    return env


def allocator_args(partition: int = 0) -> argparse.Namespace:
    container = allocator()
    env = container_env(container, partition)
    return serve_parser().parse_args([expand(a, env) for a in container["args"]])


def test_there_are_manifests_to_check() -> None:
    assert len(yaml_files()) >= 10
    assert HELM_VALUES.is_file() and DASHBOARD.is_file()


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_yaml_document_is_a_kubernetes_object(path: Path) -> None:
    docs = documents(path)
    assert docs, f"{path} holds no YAML document"
    if path.parent == K8S / "nats":
        return  # chart values, not an object; checked below
    for doc in docs:
        for key in ("apiVersion", "kind", "metadata"):
            assert key in doc, f"{path}: a document has no {key}"
        assert doc["metadata"].get("name"), f"{path}: {doc['kind']} without metadata.name"


def test_nats_values_ask_for_a_three_node_jetstream_cluster_on_pvcs() -> None:
    (values,) = documents(HELM_VALUES)
    config = values["config"]
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    store = config["jetstream"]["fileStore"]
    assert config["jetstream"]["enabled"] and store["enabled"] and store["pvc"]["enabled"]
    assert values["container"]["merge"]["resources"]["requests"]


def test_nats_values_hold_the_accounts_and_permissions_of_the_role_table() -> None:
    (values,) = documents(HELM_VALUES)
    variables = {role: f"INVSYNC_NKEY_{role.upper()}" for role in ROLE_NAMES}
    # One user per role, its public key filled in by the chart from the env.
    users = [User(role, (role,), f"<< ${variables[role]} >>") for role in ROLE_NAMES]
    assert values["config"]["merge"]["accounts"] == accounts(users)["accounts"]
    env = values["container"]["env"]
    for variable in variables.values():
        # The key comes from a Secret, never written into the values.
        assert env[variable]["valueFrom"]["secretKeyRef"]["name"] == "invsync-nats-users"


def test_prod_nats_values_turn_on_client_tls_from_a_secret() -> None:
    (values,) = documents(HELM_TLS_VALUES)
    tls = values["config"]["nats"]["tls"]
    assert tls["enabled"] is True and tls["secretName"]


def test_allocator_connects_as_the_service_user_from_a_secret() -> None:
    pod = the("StatefulSet")["spec"]["template"]["spec"]
    container = allocator()
    parsed = allocator_args()
    assert parsed.metrics_addr == "0.0.0.0"  # the probes and Prometheus come from outside
    volumes = {v["name"]: v for v in pod["volumes"]}
    (ensure,) = pod["initContainers"]
    ensure_env = container_env(ensure)
    for seed, mounts in (
        (parsed.nkey, container["volumeMounts"]),
        (Path(ensure_env["INVSYNC_NATS_NKEY"]), ensure["volumeMounts"]),
    ):
        (mount,) = [m for m in mounts if seed.is_relative_to(m["mountPath"])]
        assert volumes[mount["name"]]["secret"]["secretName"] == "invsync-nats-service"


def test_alerts_and_dashboard_query_only_metrics_the_service_exports() -> None:
    exprs = rule_exprs() + dashboard_exprs()
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used, "no invsync metric queried at all"
    assert used <= exported_metrics(), f"not exported: {sorted(used - exported_metrics())}"


def test_the_alerts_the_runbook_promises_exist() -> None:
    exprs = " ".join(rule_exprs())
    for metric in (
        "invsync_oversold_units_total",
        "invsync_dead_letters_total",
        "invsync_sync_latency_seconds_bucket",
        "invsync_channel_feed_age_seconds",
        "invsync_reserve_depletion_ratio",
    ):
        assert metric in exprs
    assert "> 0.020" in exprs  # sync latency p99 budget: 20 ms


def test_no_query_groups_or_filters_by_sku() -> None:
    for expr in rule_exprs() + dashboard_exprs():
        assert not re.search(r"\bsku\b", expr), expr


def test_allocator_runs_invsync_serve_with_flags_it_accepts() -> None:
    container = allocator()
    assert container["command"] == ["invsync", "serve"]
    parser = serve_parser()
    known = set(parser._option_string_actions)  # every --flag serve defines
    args = container["args"]
    flags = [a.split("=", 1)[0] for a in args if a.startswith("-")]
    assert set(flags) <= known, f"unknown flags: {sorted(set(flags) - known)}"
    parsed = allocator_args()
    assert parsed.policy and parsed.state and parsed.nats.startswith("nats://")


def test_metrics_port_probes_and_services_line_up() -> None:
    container = allocator()
    parsed = allocator_args()
    (port,) = [p for p in container["ports"] if p["name"] == "metrics"]
    assert port["containerPort"] == parsed.metrics_port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    for service in objects("Service"):
        assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = the("ServiceMonitor")
    (metrics_service,) = [
        s for s in objects("Service") if s["metadata"]["name"] == "invsync-metrics"
    ]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= (
        metrics_service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def test_policy_and_state_live_on_the_mounted_volumes() -> None:
    statefulset = the("StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    container = allocator()
    parsed = allocator_args()
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}

    policy_mount = mounts["policy"]
    assert parsed.policy == Path(policy_mount["mountPath"]) / "policy.toml"
    assert "subPath" not in policy_mount  # so an edited ConfigMap reaches the file
    assert volumes["policy"]["configMap"]["name"] == "invsync-policy"

    claims = {t["metadata"]["name"] for t in statefulset["spec"]["volumeClaimTemplates"]}
    state_mount = mounts["state"]
    assert "state" in claims and "state" not in volumes
    assert parsed.state.is_relative_to(state_mount["mountPath"])


def test_allocator_is_hardened_and_has_time_to_snapshot() -> None:
    pod = the("StatefulSet")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] >= 60
    for container in pod["containers"] + pod["initContainers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"] and container["resources"]["limits"]


def partition_kustomizations() -> dict[int, dict[str, Any]]:
    """base/partitions/p<k>/kustomization.yaml by k."""
    found = {}
    for path in sorted(PARTITIONS.glob("p*/kustomization.yaml")):
        (kustomization,) = documents(path)
        found[int(path.parent.name.removeprefix("p"))] = kustomization
    return found


def test_each_partition_k_of_n_has_its_own_statefulset_of_a_leader_and_a_standby() -> None:
    """k8s/base lists p0..p(N-1), N is what the allocators are told, and each
    partition's kustomization names and labels its StatefulSet with its own k."""
    n = partition_count()
    assert n >= 2
    found = partition_kustomizations()
    assert sorted(found) == list(range(n))
    (base,) = documents(K8S / "base" / "kustomization.yaml")
    assert [r for r in base["resources"] if r.startswith("partitions/")] == [
        f"partitions/p{k}" for k in range(n)
    ]
    for k, kustomization in found.items():
        assert kustomization["nameSuffix"] == f"-p{k}"
        (labels,) = kustomization["labels"]
        assert labels == {"pairs": {PARTITION_LABEL: str(k)}, "includeSelectors": True}
        parsed = allocator_args(k)
        assert (parsed.partitions, parsed.partition) == (n, str(k))
    statefulset = the("StatefulSet")
    assert statefulset["spec"]["replicas"] == 2
    # Both pods are candidates for the lease; neither writes before holding it.
    assert allocator_args().standby is True


def test_a_partitions_leader_and_standby_never_share_a_node() -> None:
    pod = the("StatefulSet")["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    selector = the("StatefulSet")["spec"]["selector"]["matchLabels"]
    assert term["labelSelector"]["matchLabels"] == selector


def test_a_drain_takes_at_most_one_allocator_of_a_partition() -> None:
    budget = the("PodDisruptionBudget")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"] == the("StatefulSet")["spec"]["selector"]


def test_alerts_cover_a_leaderless_partition_and_a_lagging_standby() -> None:
    rules = {
        r["alert"]: r["expr"]
        for g in the("PrometheusRule")["spec"]["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    leaderless = rules["InvsyncPartitionLeaderless"]
    assert "invsync_partition_leader" in leaderless and "partition" in leaderless
    assert "invsync_standby_lag_events" in rules["InvsyncStandbyLagging"]


def test_the_dashboard_repeats_a_row_per_partition() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "invsync_partition_leader" in variables["partition"]["definition"]
    (row,) = [p for p in dashboard["panels"] if p.get("repeat") == "partition"]
    start = dashboard["panels"].index(row)
    inside = dashboard["panels"][start + 1 :]
    exprs = " ".join(t["expr"] for p in inside for t in p.get("targets", []))
    for metric in ("invsync_partition_leader", "invsync_partition_epoch"):
        assert metric in exprs
    assert "invsync_standby_lag_events" in exprs
    assert all("$partition" in t["expr"] for p in inside for t in p.get("targets", []))


def test_nats_values_keep_the_stream_replicated_on_three_servers() -> None:
    """The shared log and the leader lease bucket live on three servers: one lost
    server loses neither."""
    (values,) = documents(HELM_VALUES)
    assert values["config"]["cluster"]["replicas"] == 3
    ensure = the("StatefulSet")["spec"]["template"]["spec"]["initContainers"][0]
    env = container_env(ensure)
    assert env["INVSYNC_STREAM_REPLICAS"] == "3"


def test_policy_in_the_configmap_is_the_example_policy() -> None:
    shipped = (K8S / "base" / "policy.toml").read_text(encoding="utf-8")
    assert shipped == (ROOT / "examples" / "policy.toml").read_text(encoding="utf-8")


def kustomize(target: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: kustomize build not checked")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/prod"])
def test_kustomize_builds_one_statefulset_and_budget_per_partition(target: str) -> None:
    built = kustomize(target)
    kinds = [d["kind"] for d in built]
    assert "Deployment" in kinds and kinds.count("ConfigMap") == 5
    n = partition_count()
    for kind in ("StatefulSet", "PodDisruptionBudget"):
        named = sorted(d["metadata"]["name"] for d in built if d["kind"] == kind)
        assert named == [f"invsync-p{k}" for k in range(n)]
    for statefulset in (d for d in built if d["kind"] == "StatefulSet"):
        k = statefulset["metadata"]["name"].removeprefix("invsync-p")
        template = statefulset["spec"]["template"]
        assert statefulset["spec"]["selector"]["matchLabels"][PARTITION_LABEL] == k
        assert template["metadata"]["labels"][PARTITION_LABEL] == k


# --- offline schema validation -------------------------------------------------------------


# Prometheus Operator kinds kubernetes-validate has no schema for: the fields the
# operator needs, checked by hand (name: required keys, and the keys of each list item).
def check_prometheus_rule(rule: dict[str, Any]) -> None:
    groups = rule["spec"]["groups"]
    assert groups and len({g["name"] for g in groups}) == len(groups)
    for group in groups:
        assert set(group) <= {"name", "interval", "rules"}, group["name"]
        for entry in group["rules"]:
            assert ("alert" in entry) != ("record" in entry), entry
            assert set(entry) <= {"alert", "record", "expr", "for", "labels", "annotations"}
            assert isinstance(entry["expr"], str) and entry["expr"].strip()
            if "alert" in entry:
                assert entry["labels"]["severity"] in {"critical", "warning", "info"}
                assert entry["annotations"]["summary"]
            if "for" in entry:
                assert re.fullmatch(r"\d+[smh]", entry["for"]), entry["for"]


def check_service_monitor(monitor: dict[str, Any]) -> None:
    assert monitor["spec"]["selector"]["matchLabels"]
    for endpoint in monitor["spec"]["endpoints"]:
        assert isinstance(endpoint["port"], str) and endpoint["path"].startswith("/")
        assert re.fullmatch(r"\d+s", endpoint["interval"])


STRUCTURAL_CHECKS = {
    "PrometheusRule": check_prometheus_rule,
    "ServiceMonitor": check_service_monitor,
}


def validate(document: dict[str, Any]) -> None:
    """kubernetes-validate's strict schema check, or ours for a Prometheus Operator kind."""
    if document["kind"] in STRUCTURAL_CHECKS:
        assert document["apiVersion"] == "monitoring.coreos.com/v1"
        STRUCTURAL_CHECKS[document["kind"]](document)
        return
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def full_objects() -> list[dict[str, Any]]:
    """The base's complete objects: everything but kustomizations (overlays hold patches)."""
    return [d for d in base_objects() if d["kind"] != "Kustomization"]


@pytest.mark.parametrize(
    "document", full_objects(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_every_base_object_validates_against_its_schema(document: dict[str, Any]) -> None:
    validate(document)


@pytest.mark.parametrize("target", ["base", "overlays/dev", "overlays/prod"])
def test_every_built_object_validates_against_its_schema(target: str) -> None:
    for document in kustomize(target):
        validate(document)


def test_the_schema_check_refuses_a_broken_object() -> None:
    """The validation above can fail: a misspelt field and a rule without expr are caught."""
    statefulset = json.loads(json.dumps(the("StatefulSet")))
    statefulset["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(statefulset)
    rule = json.loads(json.dumps(the("PrometheusRule")))
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    with pytest.raises(KeyError):
        validate(rule)


def test_prod_connects_to_nats_over_tls_checking_the_ca_from_a_secret() -> None:
    statefulsets = [d for d in kustomize("overlays/prod") if d["kind"] == "StatefulSet"]
    assert len(statefulsets) == partition_count()
    for statefulset in statefulsets:
        pod = statefulset["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (container,) = [c for c in pod["containers"] if c["name"] == "invsync"]
        (ensure,) = pod["initContainers"]
        env = container_env(container)
        parsed = serve_parser().parse_args([expand(a, env) for a in container["args"]])
        ensure_env = container_env(ensure)
        assert parsed.nats.startswith("tls://")
        assert ensure_env["INVSYNC_NATS_URL"].startswith("tls://")
        for ca, mounts in (
            (parsed.tls_ca, container["volumeMounts"]),
            (Path(ensure_env["INVSYNC_NATS_TLS_CA"]), ensure["volumeMounts"]),
        ):
            (mount,) = [m for m in mounts if ca.is_relative_to(m["mountPath"])]
            assert "secret" in volumes[mount["name"]]


# --- the channel gateway -----------------------------------------------------------------


def gateway() -> dict[str, Any]:
    (deployment,) = [d for d in objects("Deployment") if d["metadata"]["name"] == "invsync-gateway"]
    return deployment


def gateway_container() -> dict[str, Any]:
    (container,) = gateway()["spec"]["template"]["spec"]["containers"]
    return container


def connect_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="invsync connect", exit_on_error=False)
    connect.add_arguments(parser)
    container = gateway_container()
    known = set(parser._option_string_actions)
    flags = {a.split("=", 1)[0] for a in container["args"] if a.startswith("-")}
    assert flags <= known, f"unknown flags: {sorted(flags - known)}"
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return parser.parse_args([expand(a, env) for a in container["args"]])


def test_gateway_runs_invsync_connect_on_its_metrics_port() -> None:
    container = gateway_container()
    assert container["command"] == ["invsync", "connect"]
    parsed = connect_args()
    (port,) = container["ports"]
    assert port["containerPort"] == parsed.metrics_port and port["name"] == "metrics"
    (service,) = [
        s for s in objects("Service") if s["metadata"]["name"] == "invsync-gateway-metrics"
    ]
    assert service["spec"]["selector"] == gateway()["spec"]["selector"]["matchLabels"]
    monitor = the("ServiceMonitor")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_gateway_channels_file_and_every_credential_it_names_are_in_the_pod() -> None:
    """The shipped channels file loads; each credential it names is an env variable
    from a Secret or a file under a mounted Secret, and its listing CSVs ship beside it."""
    parsed = connect_args()
    container = gateway_container()
    pod = gateway()["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    channels_dir = parsed.channels.parent
    assert volumes[mounts[str(channels_dir)]]["configMap"]["name"] == "invsync-gateway-channels"
    shipped = K8S / "base" / "gateway"
    loaded = load_channels(shipped / parsed.channels.name)
    secret_env = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    (kustomization,) = documents(K8S / "base" / "kustomization.yaml")
    (generator,) = [
        g for g in kustomization["configMapGenerator"] if g["name"] == "invsync-gateway-channels"
    ]
    for channel in loaded.channels:
        for key, source in channel.credentials.items():
            if key.endswith("_env"):
                assert source in secret_env, f"{channel.id}: {source} not set from a Secret"
            else:
                (mount,) = [m for m in mounts if Path(source).is_relative_to(m)]
                assert "secret" in volumes[mounts[mount]], f"{channel.id}: {source}"
        if channel.listings_bucket is None:
            assert f"gateway/{channel.listings}" in generator["files"]


def test_gateway_is_hardened() -> None:
    pod = gateway()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    context = gateway_container()["securityContext"]
    assert (
        context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    )
    assert (
        gateway_container()["resources"]["requests"] and gateway_container()["resources"]["limits"]
    )


def test_the_gateway_alerts_cover_errors_backlog_throttling_and_budget() -> None:
    exprs = " ".join(rule_exprs())
    for metric in (
        "invsync_channel_push_requests_total",
        "invsync_channel_backlog_items",
        "invsync_channel_budget_remaining",
        "invsync_channel_push_latency_seconds_bucket",
        "invsync_channel_push_floor_seconds",
    ):
        assert metric in exprs
    dashboard = " ".join(dashboard_exprs())
    for metric in (
        "invsync_channel_push_latency_seconds_bucket",
        "invsync_channel_backlog_items",
        'result="throttled"',
        "invsync_channel_budget_remaining",
    ):
        assert metric in dashboard


def test_push_latency_is_judged_against_each_channels_documented_floor() -> None:
    """A fixed threshold would fire for as long as Walmart's 30-minute feeds run."""
    rule = the("PrometheusRule")
    (expr,) = [
        r["expr"]
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if r.get("alert") == "InvsyncChannelPushSlow"
    ]
    latency, threshold = expr.split("> on (namespace, channel)")
    assert "invsync_channel_push_latency_seconds_bucket" in latency
    assert "invsync_channel_push_floor_seconds" in threshold


def test_the_shipped_channels_cover_every_platform_the_gateway_has_a_profile_for() -> None:
    shipped = K8S / "base" / "gateway"
    loaded = load_channels(shipped / connect_args().channels.name)
    modules = pkgutil.iter_modules(platforms.__path__, f"{platforms.__name__}.")
    with_profile = [
        m.name.rsplit(".", 1)[1] for m in modules if hasattr(import_module(m.name), "PROFILE")
    ]
    assert len(with_profile) >= 7
    assert sorted(c.platform for c in loaded.channels) == sorted(with_profile)


def test_the_shipped_channels_build_their_profiles_and_read_their_listing_csvs() -> None:
    shipped = K8S / "base" / "gateway"
    loaded = load_channels(shipped / connect_args().channels.name)
    for channel in loaded.channels:
        secrets = {name: Secret(name, "placeholder") for name in channel.credential_names}
        profile = profile_factory(channel.platform)(channel.settings(secrets))
        if channel.listings_bucket is None:
            assert read_listing_csv(channel.listings_path(shipped), profile.id_fields)
