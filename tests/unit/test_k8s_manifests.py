"""The Kubernetes manifests under k8s/ agree with the service they deploy.

Every YAML document is a Kubernetes object (or a kustomization, or Helm values);
every metric the alerts and the dashboard query is one the service exports; the
allocator is started with flags `invsync serve` accepts, on the ports, paths
and volumes the pod actually has.
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

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
HELM_VALUES = K8S / "nats" / "values.yaml"
HELM_TLS_VALUES = K8S / "nats" / "values-tls.yaml"
DASHBOARD = K8S / "base" / "dashboards" / "invsync.json"
METRIC = re.compile(r"\binvsync_[a-z0-9_]+\b")


def yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in {".yaml", ".yml"})


@cache
def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def objects(kind: str) -> list[dict[str, Any]]:
    """Every document of `kind` in the base (overlays hold partial patches)."""
    found = []
    for path in sorted((K8S / "base").glob("*.yaml")):
        found += [d for d in documents(path) if d.get("kind") == kind]
    return found


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
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    parsed = serve_parser().parse_args([expand(a, env) for a in container["args"]])
    assert parsed.metrics_addr == "0.0.0.0"  # the probes and Prometheus come from outside
    volumes = {v["name"]: v for v in pod["volumes"]}
    (ensure,) = pod["initContainers"]
    ensure_env = {e["name"]: e["value"] for e in ensure["env"] if "value" in e}
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
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    parsed = parser.parse_args([expand(a, env) for a in args])
    assert parsed.policy and parsed.state and parsed.nats.startswith("nats://")


def test_metrics_port_probes_and_services_line_up() -> None:
    container = allocator()
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    parsed = serve_parser().parse_args([expand(a, env) for a in container["args"]])
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
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    parsed = serve_parser().parse_args([expand(a, env) for a in container["args"]])
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


def test_one_partition_means_one_replica() -> None:
    assert the("StatefulSet")["spec"]["replicas"] == 1
    for overlay in ("dev", "prod"):
        (kustomization,) = documents(K8S / "overlays" / overlay / "kustomization.yaml")
        assert all(r["count"] == 1 for r in kustomization.get("replicas", []))


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
def test_kustomize_builds(target: str) -> None:
    kinds = [d["kind"] for d in kustomize(target)]
    assert "StatefulSet" in kinds and "Deployment" in kinds and kinds.count("ConfigMap") == 4


def test_prod_connects_to_nats_over_tls_checking_the_ca_from_a_secret() -> None:
    (statefulset,) = [d for d in kustomize("overlays/prod") if d["kind"] == "StatefulSet"]
    pod = statefulset["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = [c for c in pod["containers"] if c["name"] == "invsync"]
    (ensure,) = pod["initContainers"]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    parsed = serve_parser().parse_args([expand(a, env) for a in container["args"]])
    ensure_env = {e["name"]: e["value"] for e in ensure["env"] if "value" in e}
    assert parsed.nats.startswith("tls://") and ensure_env["INVSYNC_NATS_URL"].startswith("tls://")
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
