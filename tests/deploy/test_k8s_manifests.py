"""The Kubernetes manifests: every referenced file exists, workloads are hardened and probed
over gRPC, no secret values are committed, and every variable used is documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


ALL = [(p, d) for p in sorted(K8S.rglob("*.yaml")) for d in documents(p)]
WORKLOADS = [d for _, d in ALL if d.get("kind") in ("Deployment", "StatefulSet")]


def test_every_kustomization_reference_exists() -> None:
    kustomizations = sorted(K8S.rglob("kustomization.yaml"))
    assert len(kustomizations) >= 5
    for path in kustomizations:
        spec = documents(path)[0]
        for reference in spec.get("resources", []) + spec.get("components", []):
            assert (path.parent / reference).exists(), f"{path}: {reference} is missing"


def test_there_are_workloads_and_each_is_hardened() -> None:
    assert WORKLOADS
    for workload in WORKLOADS:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        assert pod["terminationGracePeriodSeconds"] > 10
        for container in pod["containers"] + pod.get("initContainers", []):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_services_are_probed_with_grpc_health_on_their_port() -> None:
    for workload in WORKLOADS:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            port = container["ports"][0]["containerPort"]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe]["grpc"]["port"] == port


def test_each_workload_has_its_own_service_account_without_token() -> None:
    accounts = {d["metadata"]["name"]: d for _, d in ALL if d.get("kind") == "ServiceAccount"}
    for workload in WORKLOADS:
        name = workload["spec"]["template"]["spec"]["serviceAccountName"]
        assert accounts[name]["automountServiceAccountToken"] is False


def test_no_secret_values_are_committed() -> None:
    secrets = [d for _, d in ALL if d.get("kind") == "Secret"]
    assert all("data" not in s and "stringData" not in s for s in secrets)


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w["metadata"]["name"])
def test_every_variable_is_documented(workload: dict[str, Any]) -> None:
    readme = (K8S / "README.md").read_text()
    configmaps = {d["metadata"]["name"]: d for _, d in ALL if d.get("kind") == "ConfigMap"}
    names: set[str] = set()
    for container in workload["spec"]["template"]["spec"]["containers"]:
        names |= {e["name"] for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            names |= set(configmaps[source["configMapRef"]["name"]]["data"])
    assert names
    undocumented = sorted(n for n in names if f"`{n}`" not in readme)
    assert not undocumented


# Per service ------------------------------------------------------------------------------------

ROOT = K8S.parents[1]
SERVICES = sorted(p.name for p in (K8S / "base").iterdir() if p.is_dir())
# The base's objects by kind and name (overlays and components only patch them).
BY_KIND: dict[str, dict[str, dict[str, Any]]] = {}
for _path, _document in ALL:
    if "metadata" in _document and (K8S / "base") in _path.parents:
        BY_KIND.setdefault(_document["kind"], {})[_document["metadata"]["name"]] = _document


def test_every_service_of_the_suite_is_deployed() -> None:
    assert {"metering", "subscriptions"} <= set(SERVICES)
    base = documents(K8S / "base" / "kustomization.yaml")[0]
    assert set(SERVICES) <= set(base["resources"])
    for overlay in ("local", "production"):
        spec = documents(K8S / "overlays" / overlay / "kustomization.yaml")[0]
        images = {image["name"] for image in spec["images"]}
        assert {f"taskforge/{service}" for service in SERVICES} <= images, overlay


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_has_its_account_policy_budget_and_one_port(service: str) -> None:
    deployment = BY_KIND["Deployment"][service]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    port = container["ports"][0]["containerPort"]
    assert pod["serviceAccountName"] == service
    assert BY_KIND["ServiceAccount"][service]["automountServiceAccountToken"] is False
    config = BY_KIND["ConfigMap"][f"{service}-config"]["data"]
    assert config[f"TASKFORGE_{service.upper()}_PORT"] == str(port)
    assert config[f"TASKFORGE_{service.upper()}_HOST"] == "0.0.0.0"
    (service_port,) = BY_KIND["Service"][service]["spec"]["ports"]
    assert (service_port["port"], service_port["targetPort"]) == (port, "grpc")
    policy = BY_KIND["NetworkPolicy"][service]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": service}
    assert [rule["ports"][0]["port"] for rule in policy["ingress"]] == [port]
    assert BY_KIND["PodDisruptionBudget"][service]["spec"]["minAvailable"] >= 1
    migrate = pod["initContainers"][0]["command"]
    assert migrate == ["python", "-m", "taskforge_common.db.migrate", service]


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_set_is_one_the_service_reads(service: str) -> None:
    """A misspelt name would be silently ignored and its default used."""
    sources = "".join(
        path.read_text()
        for path in [
            ROOT / "services" / service / "src" / f"taskforge_{service}" / "config.py",
            ROOT / "libs" / "common" / "src" / "taskforge_common" / "config.py",
        ]
    )
    container = BY_KIND["Deployment"][service]["spec"]["template"]["spec"]["containers"][0]
    names = set(BY_KIND["ConfigMap"][f"{service}-config"]["data"])
    names |= {variable["name"] for variable in container["env"]}
    names.discard(f"TASKFORGE_{service.upper()}_DATABASE_URL")  # taskforge_common.db.migrate
    assert sorted(name for name in names if f'"{name}"' not in sources) == []


def test_subscriptions_reaches_metering_and_only_what_it_needs() -> None:
    (metering_port,) = BY_KIND["Service"]["metering"]["spec"]["ports"]
    address = BY_KIND["ConfigMap"]["subscriptions-config"]["data"]["TASKFORGE_METERING_ADDRESS"]
    assert address == f"metering:{metering_port['port']}"
    policy = BY_KIND["NetworkPolicy"]["subscriptions"]["spec"]
    assert "Egress" in policy["policyTypes"]
    to_metering = [
        rule
        for rule in policy["egress"]
        if {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "metering"}}}
        in rule.get("to", [])
    ]
    assert [[port["port"] for port in rule["ports"]] for rule in to_metering] == [[50051]]
    egress_ports = {port["port"] for rule in policy["egress"] for port in rule["ports"]}
    assert egress_ports == {50051, 53, 5432}  # metering, DNS, PostgreSQL


def test_the_otel_component_reaches_every_service() -> None:
    component = documents(K8S / "components" / "otel" / "kustomization.yaml")[0]
    patched = {(p["target"]["kind"], p["target"]["name"]) for p in component["patches"]}
    assert {("ConfigMap", f"{service}-config") for service in SERVICES} <= patched
    # A service whose egress is closed gets the collector opened.
    for service in SERVICES:
        if "Egress" in BY_KIND["NetworkPolicy"][service]["spec"]["policyTypes"]:
            assert ("NetworkPolicy", service) in patched
