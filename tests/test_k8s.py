"""The kustomize base in deploy/k8s, checked offline: one Deployment per service with probes on
/healthz, the gateway's Service, the provisioning Job, shared settings in a ConfigMap, and secrets
only by reference. When kubectl is installed, the base is also rendered with `kubectl kustomize`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "deploy" / "k8s" / "base"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
SECRET_NAME = "pressroom-secrets"
CONFIG_NAME = "pressroom-config"
SECRET_ENV = {
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "DATABASE_URL",
    "TAVILY_API_KEY",
}


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


def load_objects() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for resource in kustomization()["resources"]:
        objects += [doc for doc in yaml.safe_load_all((BASE / resource).read_text()) if doc]
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return load_objects()


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def test_every_yaml_file_is_a_listed_resource() -> None:
    files = {p.name for p in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    resources = kustomization()["resources"]
    assert len(resources) == len(set(resources))
    assert set(resources) == files
    for path in BASE.rglob("*.y*ml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc is None or isinstance(doc, dict), f"{path.name} does not parse to objects"


def test_namespace(objects: list[dict[str, Any]]) -> None:
    namespace = kustomization()["namespace"]
    assert find(objects, "Namespace", namespace) is not None
    for obj in objects:
        assert "namespace" not in obj["metadata"], "the kustomization sets the namespace"


def test_services_are_discovered() -> None:
    assert {"gateway", "research", "writer", "social", "illustrator", "persistence"} <= set(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_deployment_with_probes_on_healthz(
    name: str, objects: list[dict[str, Any]]
) -> None:
    deployment = find(objects, "Deployment", name)
    assert deployment is not None, f"services/{name} has no Deployment"
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), "the selector must match the pod template"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"].split(":")[0] == f"pressroom/{name}"
    expected_port = 8000 if name == "gateway" else 8080
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    for probe_name in ("readinessProbe", "livenessProbe"):
        probe = container.get(probe_name)
        assert probe, f"{name} has no {probe_name}"
        get = probe["httpGet"]
        assert get["path"] == "/healthz"
        port = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        assert port == expected_port, f"{name}'s {probe_name} probes port {port}, not {expected_port}"


@pytest.mark.parametrize("name", SERVICES)
def test_each_deployment_reads_shared_config_and_runs_unprivileged(
    name: str, objects: list[dict[str, Any]]
) -> None:
    deployment = find(objects, "Deployment", name)
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 1) != 0
    for container in containers(deployment):
        refs = [e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e]
        assert CONFIG_NAME in refs
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert "memory" in container["resources"]["limits"]


def test_config_map_holds_the_shared_settings(objects: list[dict[str, Any]]) -> None:
    config = find(objects, "ConfigMap", CONFIG_NAME)
    assert config is not None
    data = config["data"]
    assert data["NATS_URL"].startswith("nats://")
    assert data["PRESSROOM_LOG_FORMAT"] == "json"
    assert data["PRESSROOM_HEALTH_HOST"] == "0.0.0.0"
    assert data["PRESSROOM_HEALTH_PORT"] == "8080"
    assert data["PRESSROOM_GATEWAY_PORT"] == "8000"
    assert all(isinstance(v, str) for v in data.values()), "ConfigMap values must be strings"
    assert not SECRET_ENV & data.keys(), "secrets belong in the Secret, not the ConfigMap"


def test_secrets_are_referenced_never_defined(objects: list[dict[str, Any]]) -> None:
    assert not [o for o in objects if o["kind"] == "Secret"], "the base must not carry Secret values"
    assert "secretGenerator" not in kustomization()
    for obj in objects:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        for container in containers(obj):
            for env in container.get("env", []):
                if env["name"] in SECRET_ENV:
                    assert "value" not in env, f"{obj['metadata']['name']}: {env['name']} is a literal"
                    assert env["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("writer", {"OPENAI_API_KEY"}),
        ("social", {"OPENAI_API_KEY"}),
        ("illustrator", {"OPENAI_API_KEY", "S3_ACCESS_KEY", "S3_SECRET_KEY"}),
        ("gateway", {"S3_ACCESS_KEY", "S3_SECRET_KEY"}),
        ("persistence", {"DATABASE_URL"}),
    ],
)
def test_services_get_their_secrets(name: str, keys: set[str], objects: list[dict[str, Any]]) -> None:
    deployment = find(objects, "Deployment", name)
    assert deployment is not None
    required = {
        e["name"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {}) and not e["valueFrom"]["secretKeyRef"].get("optional")
    }
    assert keys <= required


def test_gateway_service_targets_the_gateway_pods(objects: list[dict[str, Any]]) -> None:
    service = find(objects, "Service", "gateway")
    deployment = find(objects, "Deployment", "gateway")
    assert service is not None and deployment is not None
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port_names = {p.get("name"): p["containerPort"] for p in container["ports"]}
    for port in service["spec"]["ports"]:
        target = port["targetPort"]
        assert (port_names.get(target) if isinstance(target, str) else target) == 8000


def test_only_the_gateway_is_exposed(objects: list[dict[str, Any]]) -> None:
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Service"] == ["gateway"]


def test_provisioning_job(objects: list[dict[str, Any]]) -> None:
    jobs = [o for o in objects if o["kind"] == "Job"]
    assert len(jobs) == 1
    pod = jobs[0]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "pressroom_runtime.provisioning"]
    assert container["image"].split(":")[0] in {f"pressroom/{s}" for s in SERVICES}
    assert any(e.get("configMapRef", {}).get("name") == CONFIG_NAME for e in container["envFrom"])


def test_images_are_managed_by_the_kustomization() -> None:
    names = {image["name"] for image in kustomization().get("images", [])}
    assert names == {f"pressroom/{s}" for s in SERVICES}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_the_base(objects: list[dict[str, Any]]) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(BASE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    rendered = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    assert sorted((o["kind"], o["metadata"]["name"]) for o in rendered) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in objects
    )
    namespace = kustomization()["namespace"]
    for obj in rendered:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace
        if obj["kind"] in ("Deployment", "Job"):
            for container in containers(obj):
                assert ":" in container["image"], "the kustomization pins every image's tag"
