"""The Dockerfile, docker-compose.yml and .env.example agree with the settings and stay safe.

Nothing here needs Docker: the files are parsed and checked, never built or run.
"""

from __future__ import annotations

import io
import json
import re
import shlex
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values

from config.settings import ENV_PREFIX, NESTED, SettingsError, known_variables, load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
CONSTRAINTS = ROOT / "constraints.txt"
PYPROJECT = ROOT / "pyproject.toml"

APP_SERVICES = ("migrate", "receiver", "consumer")
VARIABLE = re.compile(r"\bTGBRIDGE_[A-Z0-9_]*[A-Z0-9]")
ASSIGNMENT = re.compile(r"^(#\s*)?(TGBRIDGE_[A-Z0-9_]+)=(.*)$", re.MULTILINE)


def _defaults() -> dict[str, Any]:
    return load_settings(env_file=None).model_dump(mode="json")


def _field(name: str) -> tuple[str, str]:
    group, field = name.removeprefix(ENV_PREFIX).lower().split(NESTED)
    return group, field


def _load_with(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> dict[str, Any]:
    """The settings a process gets from exactly these variables and no .env."""
    with monkeypatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        return load_settings(env_file=None).model_dump(mode="json")


# --- .env.example --------------------------------------------------------------------------


def _example_assignments() -> list[tuple[bool, str, str]]:
    """(commented out, name, value) for each assignment line, read as python-dotenv reads it."""
    out = []
    for m in ASSIGNMENT.finditer(ENV_EXAMPLE.read_text(encoding="utf-8")):
        line = f"{m.group(2)}={m.group(3)}"
        value = dotenv_values(stream=io.StringIO(line))[m.group(2)]
        out.append((m.group(1) is not None, m.group(2), value or ""))
    return out


@pytest.mark.parametrize("path", [DOCKERFILE, COMPOSE, ENV_EXAMPLE], ids=lambda p: p.name)
def test_every_variable_the_deploy_files_name_is_a_setting(path: Path) -> None:
    named = set(VARIABLE.findall(path.read_text(encoding="utf-8")))
    assert named, f"{path.name} names no TGBRIDGE_ variable at all"
    unknown = sorted(named - set(known_variables()))
    assert not unknown, f"{path.name} names variables tgbridge does not know: {unknown}"


def test_env_example_lists_every_setting_once() -> None:
    names = [name for _, name, _ in _example_assignments()]
    missing = sorted(set(known_variables()) - set(names))
    assert not missing, f".env.example leaves out {missing}"
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f".env.example assigns these more than once: {twice}"


def test_env_example_as_a_dotenv_file_loads() -> None:
    settings = load_settings(env_file=ENV_EXAMPLE)
    assert settings.telegram.bots, "the example should show a (placeholder) bot"


def test_env_example_shows_the_real_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = _defaults()
    wrong = []
    for commented, name, value in _example_assignments():
        if not commented:
            continue
        group, field = _field(name)
        try:
            loaded = _load_with(monkeypatch, {name: value})[group][field]
        except SettingsError as exc:
            wrong.append(f"{name}={value} is rejected: {exc}")
            continue
        # A setting that is unset by default shows an example value instead.
        if defaults[group][field] is not None and loaded != defaults[group][field]:
            wrong.append(f"{name}={value} but the default is {defaults[group][field]!r}")
    assert not wrong, "\n".join(wrong)


# --- docker-compose.yml --------------------------------------------------------------------


@cache
def _compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _service(name: str) -> dict[str, Any]:
    service = _compose()["services"][name]
    assert isinstance(service, dict)
    return service


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _fixed_host_ports(service: dict[str, Any]) -> list[str]:
    """Port entries that bind a fixed host port: two replicas of the service would collide."""
    fixed = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if str(entry.get("published") or ""):
                fixed.append(str(entry))
            continue
        mapping = str(entry).split("/", 1)[0]
        if ":" in mapping:
            host = mapping.rsplit(":", 1)[0]  # [IP:]HOST_PORT, or IP: for a random port
            if host.rsplit(":", 1)[-1].strip("[]"):
                fixed.append(str(entry))
    return fixed


def _container_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/", 1)[0].rsplit(":", 1)[-1]))
    return ports


def test_compose_has_every_service_and_no_version_key() -> None:
    assert {"scylla", "kafka", *APP_SERVICES} <= set(_compose()["services"])
    assert "version" not in _compose(), "the Compose spec has no version key; it only warns"


@pytest.mark.parametrize("name", ["receiver", "consumer"])
def test_workers_start_after_migrate_succeeded_and_kafka_is_healthy(name: str) -> None:
    depends = _service(name).get("depends_on")
    assert isinstance(depends, dict), f"{name}: depends_on needs the long form to carry conditions"
    assert depends.get("migrate", {}).get("condition") == "service_completed_successfully"
    assert depends.get("kafka", {}).get("condition") == "service_healthy"


def test_migrate_runs_once_after_scylla_is_healthy() -> None:
    migrate = _service("migrate")
    assert migrate.get("depends_on", {}).get("scylla", {}).get("condition") == "service_healthy"
    # Unquoted, YAML reads `no` as false, which Compose rejects.
    assert migrate.get("restart") == "no"


def test_consumer_can_be_scaled() -> None:
    consumer = _service("consumer")
    assert not _fixed_host_ports(consumer), (
        f"consumer binds fixed host ports {_fixed_host_ports(consumer)}: "
        "`docker compose up --scale consumer=N` would fail"
    )
    assert "container_name" not in consumer, "a fixed container name allows only one replica"
    assert consumer.get("deploy", {}).get("replicas", 1) > 1


def test_receiver_publishes_the_webhook_and_metrics_ports() -> None:
    defaults = _defaults()
    expected = {defaults["telegram"]["webhook_port"], defaults["worker"]["metrics_port"]}
    assert expected <= _container_ports(_service("receiver"))


def test_app_services_run_real_subcommands_of_the_image() -> None:
    from worker.cli import main

    for name in APP_SERVICES:
        service = _service(name)
        command = service["command"]
        word = command.split()[0] if isinstance(command, str) else command[0]
        assert word == name, f"{name} runs `tgbridge {command}`"
        assert word in main.commands, f"`tgbridge {word}` is not a command of the CLI"
        assert service.get("build"), f"{name} must run the image built from this repository"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_settings_load(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = _service(name)
    env_files = service.get("env_file")
    assert {"path": ".env", "required": False} in (env_files or []), (
        f"{name}: .env should be read when present and optional when not"
    )
    try:
        _load_with(monkeypatch, _environment(service))
    except SettingsError as exc:
        pytest.fail(f"{name}: tgbridge rejects its compose environment: {exc}")


def test_compose_addresses_are_compose_services() -> None:
    services = set(_compose()["services"])
    for name in APP_SERVICES:
        env = _environment(_service(name))
        kafka = env.get("TGBRIDGE_KAFKA__BOOTSTRAP_SERVERS", "")
        hosts = {hp.rsplit(":", 1)[0] for hp in kafka.split(",") if hp}
        hosts |= {h.strip() for h in env.get("TGBRIDGE_STORE__CONTACT_POINTS", "").split(",")}
        assert hosts and hosts <= services, f"{name} points at {hosts}, not at compose services"
        advertised = _environment(_service("kafka")).get("KAFKA_ADVERTISED_LISTENERS", "")
        for server in kafka.split(","):
            assert f"//{server}" in advertised, f"kafka does not advertise {server}"


def test_third_party_images_are_pinned() -> None:
    for name, majors in (("scylla", re.compile(r"^(6|20\d\d)\.")), ("kafka", re.compile(r"^4\."))):
        image = _service(name)["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image else "latest"
        assert majors.match(tag), f"{name} image {image!r} is not pinned to a supported version"


def test_compose_holds_no_schema() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"(?i)\b(create|alter|drop)\s+(keyspace|table)\b", text), (
        "the migrations are the only schema source; run `tgbridge migrate`"
    )


# --- Dockerfile ----------------------------------------------------------------------------


@cache
def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, args = line.partition(" ")
        out.append((word.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _final(instruction: str) -> list[str]:
    return [args for word, args in _stages()[-1] if word == instruction]


def _env(args: str) -> dict[str, str]:
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(w.split("=", 1) for w in words)


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    global_args = {}
    for word, args in _instructions():
        if word == "FROM":
            break
        if word == "ARG" and "=" in args:
            key, value = args.split("=", 1)
            global_args[key.strip()] = value.strip()
    stages = _stages()
    assert len(stages) >= 2, "build in one stage, run in another without the build tools"
    names: set[str] = set()
    for stage in stages:
        base, *rest = shlex.split(stage[0][1])
        base = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), base)
        assert base in names or base.startswith("python:3.11-slim"), f"stage FROM {base}"
        if len(rest) == 2 and rest[0].upper() == "AS":
            names.add(rest[1])


def test_final_stage_runs_as_a_non_root_user() -> None:
    users = _final("USER")
    assert users, "the final stage sets no USER, so the processes run as root"
    user = users[-1].split(":", 1)[0].strip()
    assert user and user not in {"root", "0"}, f"the final stage runs as {users[-1]!r}"


def test_final_stage_has_a_healthcheck_on_healthz() -> None:
    checks = _final("HEALTHCHECK")
    assert checks, "the final stage has no HEALTHCHECK"
    check = checks[-1]
    assert check.upper() != "NONE"
    port = str(_defaults()["worker"]["metrics_port"])
    assert "/healthz" in check and "TGBRIDGE_WORKER__METRICS_PORT" in check and port in check


def test_final_stage_has_no_build_tools() -> None:
    for args in _final("RUN"):
        assert not re.search(r"\b(build-essential|gcc|g\+\+|clang|apt-get install)\b", args), (
            f"the final stage installs build tools: {args}"
        )


def test_image_runs_tgbridge_with_json_logs_and_exposes_its_ports() -> None:
    entrypoints = _final("ENTRYPOINT")
    assert entrypoints and json.loads(entrypoints[-1]) == ["tgbridge"]
    env: dict[str, str] = {}
    for args in _final("ENV"):
        env.update(_env(args))
    assert env.get("TGBRIDGE_WORKER__LOG_FORMAT") == "json"
    exposed = {int(p.split("/")[0]) for args in _final("EXPOSE") for p in args.split()}
    defaults = _defaults()
    assert {defaults["telegram"]["webhook_port"], defaults["worker"]["metrics_port"]} <= exposed


def test_image_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {}
    for args in _final("ENV"):
        env.update({k: v for k, v in _env(args).items() if k.startswith(ENV_PREFIX)})
    try:
        _load_with(monkeypatch, env)
    except SettingsError as exc:
        pytest.fail(f"tgbridge rejects the image's own environment: {exc}")


def test_image_installs_pinned_dependencies() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"(--constraint|-c)\s+constraints\.txt", text)
    pins = {}
    for line in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not pinned with =="
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    assert "tgbridge" not in pins
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    for requirement in project["dependencies"]:
        name = re.sub(r"[-_.]+", "-", re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]).lower()
        assert name in pins, f"constraints.txt does not pin {name}, a dependency in pyproject.toml"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    lines = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".local", ".env", "bench/results"} <= lines
    assert not lines & {"constraints.txt", "pyproject.toml", "*", "."}
