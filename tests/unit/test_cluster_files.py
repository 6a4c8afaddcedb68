"""The cluster and deploy files parse and keep their structure, so they cannot silently rot.

cluster/: `ray up` YAMLs (local, AWS, GCP) and a KubeRay RayCluster; deploy/: the project's
Dockerfile, KubeRay RayJobs, MLflow as compose and Kubernetes manifests. Nothing here contacts a
cloud, a Kubernetes API or a Docker daemon: the files are parsed, the launcher YAMLs go through
the same preparation and schema validation `ray up` runs before it starts anything, and the
RayJob's train entrypoint through the real `rlfrontier` argument parser.
"""

from __future__ import annotations

import copy
import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
DEPLOY = ROOT / "deploy"

NAMESPACE = "rlfrontier"
RAY_VERSION = "2.60.0"
RAY_BASE_CPU = "rayproject/ray:2.60.0-py311"
RAY_BASE_GPU = RAY_BASE_CPU + "-gpu"
# The project's image, named once: every Ray container in every manifest runs it. Its tag is the
# package version; "-gpu" marks the CUDA build (deploy/Dockerfile with the -gpu base).
PROJECT_IMAGE = "registry.example.com/rlfrontier"
MLFLOW_IMAGE = "registry.example.com/rlfrontier-mlflow"
POSTGRES_IMAGE = "postgres:16"
MLFLOW_TRACKING_URI = f"http://mlflow.{NAMESPACE}.svc:5000"
WORKING_DIR = "/home/ray/rllib-frontier"
PLACEHOLDER = "CHANGE_ME"


def _package_version() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return re.search(r'^version\s*=\s*"([^"]+)"', text, re.M).group(1)
    return tomllib.loads(text)["project"]["version"]


VERSION = _package_version()
CPU_IMAGE = f"{PROJECT_IMAGE}:{VERSION}"
GPU_IMAGE = f"{CPU_IMAGE}-gpu"

LAUNCHERS = {"local.yaml": "local", "aws.yaml": "aws", "gcp.yaml": "gcp"}
RAYCLUSTER = CLUSTER / "kuberay-raycluster.yaml"
RAYJOBS = {"train": DEPLOY / "kuberay" / "rayjob-train.yaml", "tune": DEPLOY / "kuberay" / "rayjob-tune.yaml"}
COMPOSE = DEPLOY / "mlflow" / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "mlflow" / ".env.example"
K8S_MLFLOW = DEPLOY / "mlflow" / "k8s"
SECRET_EXAMPLE = K8S_MLFLOW / "secret.example.yaml"

EXPECTED_FILES = [
    CLUSTER / "local.yaml",
    CLUSTER / "aws.yaml",
    CLUSTER / "gcp.yaml",
    RAYCLUSTER,
    CLUSTER / "README.md",
    DEPLOY / "Dockerfile",
    DEPLOY / "README.md",
    RAYJOBS["train"],
    RAYJOBS["tune"],
    COMPOSE,
    ENV_EXAMPLE,
    DEPLOY / "mlflow" / "Dockerfile",
    K8S_MLFLOW / "namespace.yaml",
    SECRET_EXAMPLE,
    K8S_MLFLOW / "postgres.yaml",
    K8S_MLFLOW / "mlflow.yaml",
    ROOT / ".dockerignore",
]

YAML_FILES = sorted(
    p for base in (CLUSTER, DEPLOY) for p in base.rglob("*") if p.is_file() and p.suffix in {".yaml", ".yml"}
)
ALL_FILES = sorted(p for base in (CLUSTER, DEPLOY) for p in base.rglob("*") if p.is_file())
# Kubernetes manifests: every YAML file but the `ray up` launchers and the compose file.
K8S_FILES = [p for p in YAML_FILES if p != COMPOSE and (p.parent != CLUSTER or p == RAYCLUSTER)]


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def load_one(path: Path) -> dict:
    docs = load_all(path)
    assert len(docs) == 1, f"{rel(path)}: expected one YAML document, found {len(docs)}"
    return docs[0]


def walk(node: Any) -> Iterator[Any]:
    """Every dict, list and scalar inside a parsed YAML document."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def containers(doc: Any) -> list[dict]:
    found = []
    for node in walk(doc):
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                if isinstance(node.get(key), list):
                    found += [c for c in node[key] if isinstance(c, dict)]
    return found


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_expected_files_exist():
    missing = [rel(p) for p in EXPECTED_FILES if not p.is_file()]
    assert not missing, f"missing: {missing}"


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_yaml_parses(path):
    docs = load_all(path)
    assert docs, f"{rel(path)} is empty"
    assert all(isinstance(d, dict) for d in docs), f"{rel(path)}: every document must be a mapping"


# ---------------------------------------------------------------- ray up (cluster launcher)


def _setup_for(config: dict, node_type: str | None) -> list[str]:
    """The setup commands a node of this type runs (Ray's own merge and per-type override)."""
    if node_type is None or node_type == config.get("head_node_type"):
        return config.get("setup_commands", []) + config.get("head_setup_commands", [])
    node = config["available_node_types"][node_type]
    if "worker_setup_commands" in node:
        return node["worker_setup_commands"]
    return config.get("setup_commands", []) + config.get("worker_setup_commands", [])


INSTALL_PROJECT = re.compile(
    r"pip install\b.*(?:-c|--constraint)[ =]~/rllib-frontier/constraints\.txt\b.*-e ~/rllib-frontier/?(\s|$)"
)
TORCH_INSTALL = re.compile(r"pip install\b.*\btorch(\s|$)")
CONSTRAINED = re.compile(r"(?:-c|--constraint)[ =]~/rllib-frontier/constraints\.txt\b")


def _assert_installs_project(commands: list[str], where: str) -> None:
    assert any(INSTALL_PROJECT.search(c) for c in commands), (
        f"{where}: no `pip install -c ~/rllib-frontier/constraints.txt -e ~/rllib-frontier` in {commands}"
    )
    for c in commands:
        if TORCH_INSTALL.search(c):
            assert CONSTRAINED.search(c), f"{where}: torch installed without constraints.txt: {c}"


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_passes_rays_own_validation(name):
    # What `ray up` does to the file before it contacts any machine: provider defaults merged,
    # local-provider rules applied, ray-schema.json validated (Ray is pinned to 2.60.0).
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = load_one(CLUSTER / name)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)  # raises on a schema violation
    assert prepared["cluster_name"] == config["cluster_name"]
    assert prepared["provider"]["type"] == config["provider"]["type"]


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_structure(name):
    c = load_one(CLUSTER / name)
    provider = LAUNCHERS[name]
    assert isinstance(c.get("cluster_name"), str) and c["cluster_name"]
    assert c["provider"]["type"] == provider
    assert c["provider"]["type"] in {"local", "aws", "gcp"}

    # The working tree is copied to every node, then installed there.
    assert c["file_mounts"].get("~/rllib-frontier") == ".", "file_mounts must copy the working tree to ~/rllib-frontier"

    if provider == "local":
        # Ray's local provider aborts on available_node_types: one worker type, GPUs detected.
        assert "available_node_types" not in c
        assert c["provider"]["head_ip"] and c["provider"]["worker_ips"]
        assert c["docker"]["head_image"] == RAY_BASE_CPU
        assert c["docker"]["worker_image"] == RAY_BASE_GPU
        _assert_installs_project(_setup_for(c, None), f"{name} head")
        _assert_installs_project(c["setup_commands"] + c.get("worker_setup_commands", []), f"{name} workers")
        return

    assert isinstance(c["max_workers"], int) and c["max_workers"] >= 1
    assert c["docker"]["image"] == RAY_BASE_CPU
    types = c["available_node_types"]
    head = c["head_node_type"]
    assert head in types
    assert types[head].get("max_workers", 0) == 0

    def gpus(t):
        return types[t]["resources"].get("GPU", 0)

    cpu_types = [t for t in types if t != head and gpus(t) == 0 and types[t]["resources"].get("CPU", 0) > 0]
    gpu_types = [t for t in types if t != head and gpus(t) >= 1]
    assert cpu_types, f"{name}: no CPU node type for EnvRunners"
    assert gpu_types, f"{name}: no GPU node type for Learners"
    for t in cpu_types + gpu_types:
        node = types[t]
        assert 0 <= node["min_workers"] <= node["max_workers"], f"{name}: {t} min/max workers"
    for t in gpu_types:
        node = types[t]
        assert node["docker"]["worker_image"] == RAY_BASE_GPU, f"{name}: {t} must run the -gpu image"
        if provider == "gcp":
            accelerators = node["node_config"]["guestAccelerators"]
            assert sum(a["acceleratorCount"] for a in accelerators) == gpus(t)
            assert all("nvidia" in a["acceleratorType"] for a in accelerators)
            assert node["node_config"]["scheduling"][0]["onHostMaintenance"] == "TERMINATE"
        if provider == "aws":
            assert node["node_config"]["InstanceType"].startswith(("g", "p")), "a GPU instance family"

    # Every node type installs the project with the constraints file; torch's build follows the
    # hardware (CPU wheel on CPU nodes, PyPI's CUDA wheel on GPU nodes).
    for t in types:
        commands = _setup_for(c, t)
        _assert_installs_project(commands, f"{name} {t}")
        torch_commands = [x for x in commands if TORCH_INSTALL.search(x)]
        assert torch_commands, f"{name} {t}: torch is installed on its own first"
        on_cpu_index = any("download.pytorch.org/whl/cpu" in x for x in torch_commands)
        assert on_cpu_index == (t not in gpu_types), f"{name} {t}: wrong torch build"


@pytest.mark.parametrize("name", sorted(LAUNCHERS))
def test_launcher_token_auth(name):
    c = load_one(CLUSTER / name)
    mounted = [k.rstrip("/") for k in c["file_mounts"]]
    starts_with = {"head_start_ray_commands": "--head", "worker_start_ray_commands": "--address=$RAY_HEAD_IP:6379"}
    for key, flag in starts_with.items():
        starts = [cmd for cmd in c[key] if "ray start" in cmd]
        assert len(starts) == 1, f"{name}: {key} must run `ray start` once"
        cmd = starts[0]
        assert flag in cmd
        # Each command runs in its own shell: the variables go with `ray start` itself.
        assert "RAY_AUTH_MODE=token" in cmd.split("ray start")[0], f"{name}: {key} without RAY_AUTH_MODE=token"
        path = re.search(r'RAY_AUTH_TOKEN_PATH="?\$HOME/([^"\s;]+)', cmd)
        assert path, f"{name}: {key} must read the token from a file (RAY_AUTH_TOKEN_PATH)"
        token_file = "~/" + path.group(1)
        assert any(token_file.startswith(m + "/") for m in mounted), (
            f"{name}: the token file {token_file} is not under a file_mounts folder {mounted}"
        )
        assert "RAY_AUTH_TOKEN=" not in cmd


# ---------------------------------------------------------------- KubeRay


def _ray_cluster_specs() -> dict[str, dict]:
    specs = {"raycluster": load_one(RAYCLUSTER)["spec"]}
    for name, path in RAYJOBS.items():
        specs[f"rayjob-{name}"] = load_one(path)["spec"]["rayClusterSpec"]
    return specs


def _assert_token_env(env: dict[str, dict], where: str) -> None:
    assert env.get("RAY_AUTH_MODE", {}).get("value") == "token", f"{where}: RAY_AUTH_MODE=token missing"
    token = env.get("RAY_AUTH_TOKEN")
    assert token, f"{where}: RAY_AUTH_TOKEN missing"
    assert "value" not in token, f"{where}: literal RAY_AUTH_TOKEN"
    assert token["valueFrom"]["secretKeyRef"]["name"], f"{where}: RAY_AUTH_TOKEN not from a Secret"


def test_raycluster_kind():
    doc = load_one(RAYCLUSTER)
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == "RayCluster"
    assert doc["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize("source", ["raycluster", "rayjob-train", "rayjob-tune"])
def test_ray_cluster_spec(source):
    spec = _ray_cluster_specs()[source]
    assert spec["rayVersion"] == RAY_VERSION
    head = spec["headGroupSpec"]
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"rollout", "learner"}

    [head_container] = head["template"]["spec"]["containers"]
    assert head_container["image"] == CPU_IMAGE
    assert head_container["workingDir"] == WORKING_DIR

    for group in groups.values():
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]

    [rollout] = groups["rollout"]["template"]["spec"]["containers"]
    assert rollout["image"] == CPU_IMAGE
    for part in ("requests", "limits"):
        assert "nvidia.com/gpu" not in rollout["resources"].get(part, {}), "rollout is CPU only"
    assert rollout["resources"]["limits"]["cpu"]

    [learner] = groups["learner"]["template"]["spec"]["containers"]
    assert learner["image"] == GPU_IMAGE
    gpus = int(learner["resources"]["limits"]["nvidia.com/gpu"])
    assert gpus >= 1
    assert groups["learner"]["rayStartParams"]["num-gpus"] == str(gpus)

    for container in (head_container, rollout, learner):
        env = env_of(container)
        _assert_token_env(env, f"{source} {container['name']}")
        assert env["MLFLOW_TRACKING_URI"]["value"] == MLFLOW_TRACKING_URI
        assert container["workingDir"] == WORKING_DIR
    if spec.get("enableInTreeAutoscaling"):
        _assert_token_env(env_of(spec["autoscalerOptions"]), f"{source} autoscaler")


@pytest.mark.parametrize("name", sorted(RAYJOBS))
def test_rayjob_cluster_is_the_raycluster(name):
    # "The same groups as the RayCluster": the whole cluster spec, so that one cannot drift.
    assert load_one(RAYJOBS[name])["spec"]["rayClusterSpec"] == load_one(RAYCLUSTER)["spec"]


@pytest.mark.parametrize("name", sorted(RAYJOBS))
def test_rayjob(name):
    doc = load_one(RAYJOBS[name])
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == "RayJob"
    assert doc["metadata"]["namespace"] == NAMESPACE
    spec = doc["spec"]
    assert spec["shutdownAfterJobFinishes"] is True
    assert isinstance(spec["ttlSecondsAfterFinished"], int) and spec["ttlSecondsAfterFinished"] >= 0
    assert spec["entrypoint"].startswith("rlfrontier ")
    # Checkpoints on storage every pod reaches.
    argv = shlex.split(spec["entrypoint"])
    assert argv[argv.index("--storage-path") + 1].startswith("s3://")
    # The submitter pod calls the head's Jobs API, which asks for the token.
    [submitter] = spec["submitterPodTemplate"]["spec"]["containers"]
    assert submitter["image"] == CPU_IMAGE
    _assert_token_env(env_of(submitter), f"{name} submitter")


def test_train_rayjob_entrypoint_parses_with_the_real_cli():
    from rlfrontier.cli import build_parser

    argv = shlex.split(load_one(RAYJOBS["train"])["spec"]["entrypoint"])
    assert argv[0] == "rlfrontier"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "train"
    assert (args.algo, args.env, args.stop_timesteps, args.json) == ("soft_q", "CartPole-v1", 60000, True)
    assert args.storage_path.startswith("s3://")


def test_tune_rayjob_entrypoint():
    entrypoint = load_one(RAYJOBS["tune"])["spec"]["entrypoint"]
    assert entrypoint.startswith("rlfrontier tune tune_configs/")
    config = shlex.split(entrypoint)[2]
    assert config.endswith(".yaml")
    # Once tune_configs/ holds searches, the one named here must be among them.
    if list((ROOT / "tune_configs").glob("*.yaml")):
        assert (ROOT / config).is_file(), f"{config} is not in tune_configs/"


# ---------------------------------------------------------------- images, Secrets, namespaces


def _mlflow_version() -> str:
    args = dict(re.findall(r"^ARG (\w+)=(\S+)", (DEPLOY / "mlflow" / "Dockerfile").read_text(), re.M))
    return args["MLFLOW_VERSION"]


@pytest.mark.parametrize("path", K8S_FILES, ids=rel)
def test_container_images(path):
    for doc in load_all(path):
        for c in containers(doc):
            if doc["kind"] in ("RayCluster", "RayJob"):
                assert c["image"] in (CPU_IMAGE, GPU_IMAGE), f"{rel(path)}: {c['name']} runs {c['image']}"
            else:
                assert c["image"] in (POSTGRES_IMAGE, f"{MLFLOW_IMAGE}:{_mlflow_version()}"), (
                    f"{rel(path)}: {c['name']} runs {c['image']}"
                )


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_images_are_pinned(path):
    for doc in load_all(path):
        for node in walk(doc):
            if isinstance(node, dict) and isinstance(node.get("image"), str):
                image = node["image"]
                assert ":" in image.rsplit("/", 1)[-1], f"{rel(path)}: {image} has no tag"
                assert not image.endswith(":latest"), f"{rel(path)}: {image}"


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_ray_token_only_from_secrets(path):
    for doc in load_all(path):
        for node in walk(doc):
            is_env = isinstance(node, dict) and ("value" in node or "valueFrom" in node)
            if is_env and node.get("name") == "RAY_AUTH_TOKEN":
                assert "value" not in node, f"{rel(path)}: literal RAY_AUTH_TOKEN"
                assert node["valueFrom"]["secretKeyRef"]["name"], f"{rel(path)}: RAY_AUTH_TOKEN not from a Secret"


def _example_secrets() -> dict[str, set[str]]:
    return {d["metadata"]["name"]: set(d["stringData"]) for d in load_all(SECRET_EXAMPLE) if d["kind"] == "Secret"}


@pytest.mark.parametrize("path", K8S_FILES, ids=rel)
def test_secret_references_are_documented(path):
    # Every secretKeyRef names a Secret and key that secret.example.yaml (and the README's
    # `kubectl create secret` commands) provide.
    secrets = _example_secrets()
    for doc in load_all(path):
        for node in walk(doc):
            if isinstance(node, dict) and isinstance(node.get("secretKeyRef"), dict):
                ref = node["secretKeyRef"]
                assert ref["name"] in secrets, f"{rel(path)}: unknown Secret {ref['name']}"
                assert ref["key"] in secrets[ref["name"]], f"{rel(path)}: Secret {ref['name']} has no key {ref['key']}"


@pytest.mark.parametrize("path", YAML_FILES, ids=rel)
def test_secrets_only_as_examples(path):
    for doc in load_all(path):
        if doc.get("kind") != "Secret":
            continue
        assert path.name.endswith(".example.yaml"), f"{rel(path)}: a Secret outside an *.example.yaml file"
        assert "data" not in doc, f"{rel(path)}: example Secrets use stringData placeholders"
        assert doc["stringData"] and all(v == PLACEHOLDER for v in doc["stringData"].values()), (
            f"{rel(path)}: {doc['metadata']['name']} has values other than {PLACEHOLDER}"
        )


@pytest.mark.parametrize("path", K8S_FILES, ids=rel)
def test_kubernetes_objects_in_the_namespace(path):
    for doc in load_all(path):
        if doc["kind"] == "Namespace":
            assert doc["metadata"]["name"] == NAMESPACE
        else:
            assert doc["metadata"]["namespace"] == NAMESPACE, f"{rel(path)}: {doc['kind']} {doc['metadata']['name']}"


# ---------------------------------------------------------------- no literal secrets anywhere

SECRET_NAME = re.compile(r"(?i)(pass(word|wd)?|secret|token|access_?key|api_?key|credential)")
NOT_A_VALUE = re.compile(r"(?i)(_path|_file|name|ref|_mode|_url|_uri)$")  # names of places, not secrets
ASSIGNMENT = re.compile(
    r"(?i)\b([a-z0-9_]*(?:password|passwd|secret|token|access_key|api_key)[a-z0-9_]*)\s*=\s*"
    r"(\"[^\"]*\"|'[^']*'|[^\s;&|,)]*)"
)
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@", re.I)
# `key: value` at the start of a line, commented out or not (YAML; a secret pasted into a comment).
MAPPING_LINE = re.compile(r"(?im)^[ \t]*(?:#[ \t]*)?(?:-[ \t]+)?([\w.-]+)[ \t]*:[ \t]+(\S.*?)[ \t]*(?:[ \t]#.*)?$")


def _secret_like(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not NOT_A_VALUE.search(name)


def _placeholder(value: str) -> bool:
    """Empty, CHANGE_ME, or a reference resolved elsewhere ($VAR, ${VAR}, ${VAR:?msg}, $(VAR),
    "$(command)"), but not ${VAR:-literal}, whose default would be a literal."""
    v = value.strip().strip("\"'")
    if v in ("", PLACEHOLDER):
        return True
    return v.startswith("$") and not re.match(r"\$\{\w+:?-", v)


def _literal_secrets_in_text(text: str) -> list[str]:
    found = []
    for m in ASSIGNMENT.finditer(text):
        name, value = m.groups()
        if _secret_like(name) and not _placeholder(value):
            found.append(m.group(0))
    for m in URL_PASSWORD.finditer(text):
        if not _placeholder(m.group(1)):
            found.append(m.group(0))
    for m in MAPPING_LINE.finditer(text):
        name, value = m.groups()
        if _secret_like(name) and not value.startswith(("{", "[")) and not _placeholder(value):
            found.append(m.group(0).strip())
    return found


def _literal_secrets_in_yaml(node: Any) -> list[str]:
    found = []
    for item in walk(node):
        if isinstance(item, dict):
            name = item.get("name")
            if isinstance(name, str) and _secret_like(name) and isinstance(item.get("value"), str):
                if not _placeholder(item["value"]):
                    found.append(f"{name}: {item['value']}")
            for key, value in item.items():
                if isinstance(key, str) and _secret_like(key) and isinstance(value, (str, int, float)):
                    if not isinstance(value, bool) and not _placeholder(str(value)):
                        found.append(f"{key}: {value}")
        elif isinstance(item, str):
            found += _literal_secrets_in_text(item)
    return found


def test_secret_scanner_catches_literals():
    # The scanner below is only worth something if it fires.
    assert _literal_secrets_in_yaml({"env": [{"name": "RAY_AUTH_TOKEN", "value": "abc123"}]})
    assert _literal_secrets_in_yaml({"POSTGRES_PASSWORD": "hunter2"})
    assert _literal_secrets_in_yaml({"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-hunter2}"})
    assert _literal_secrets_in_text("export RAY_AUTH_TOKEN=abc123; ray start --head")
    assert _literal_secrets_in_text("--backend-store-uri postgresql://mlflow:hunter2@postgres:5432/mlflow")
    assert _literal_secrets_in_text("spec:\n  # auth_token: 3f9a0c\n")
    assert not _literal_secrets_in_yaml({"POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set}", "auth_token": PLACEHOLDER})
    assert not _literal_secrets_in_text('RAY_AUTH_TOKEN_PATH="$HOME/t" x://$${U}:$${POSTGRES_PASSWORD}@h/db')


@pytest.mark.parametrize("path", ALL_FILES, ids=rel)
def test_no_literal_secrets(path):
    text = path.read_text()
    found = _literal_secrets_in_text(text)  # comments, READMEs, .env files, Dockerfiles included
    if path.suffix in {".yaml", ".yml"}:
        for doc in load_all(path):
            found += _literal_secrets_in_yaml(doc)
    assert not found, f"{rel(path)}: literal secrets {found}"


# ---------------------------------------------------------------- MLflow (Kubernetes, compose)


def _docs_by_kind(path: Path) -> dict[str, dict]:
    return {d["kind"]: d for d in load_all(path)}


def test_mlflow_on_kubernetes():
    docs = _docs_by_kind(K8S_MLFLOW / "mlflow.yaml")
    service, deployment = docs["Service"], docs["Deployment"]
    host = MLFLOW_TRACKING_URI.split("://")[1]
    meta, port = service["metadata"], service["spec"]["ports"][0]["port"]
    assert f"{meta['name']}.{meta['namespace']}.svc:{port}" == host

    [mlflow] = deployment["spec"]["template"]["spec"]["containers"]
    command = " ".join(mlflow.get("command", []) + mlflow.get("args", []))
    assert "mlflow server" in command
    assert re.search(r"--backend-store-uri[ =]postgresql://", command)
    assert re.search(r"--artifacts-destination[ =]s3://", command)
    assert mlflow["readinessProbe"]["httpGet"]["path"] == "/health"
    env = env_of(mlflow)
    for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"], f"{name} not from a Secret"
    # MLflow's host check must let the Ray pods' Host header through.
    allowed = re.search(r"--allowed-hosts[ =](\S+)", command)
    assert allowed and any(fnmatch.fnmatch(host, pattern) for pattern in allowed.group(1).split(","))

    postgres = _docs_by_kind(K8S_MLFLOW / "postgres.yaml")
    assert {"Service", "StatefulSet"} <= set(postgres)
    [db] = postgres["StatefulSet"]["spec"]["template"]["spec"]["containers"]
    assert db["image"] == POSTGRES_IMAGE
    assert env_of(db)["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert f"@{postgres['Service']['metadata']['name']}.{NAMESPACE}.svc:5432/" in command

    assert _docs_by_kind(K8S_MLFLOW / "namespace.yaml")["Namespace"]["metadata"]["name"] == NAMESPACE


def _compose_command(service: dict) -> str:
    parts = []
    for key in ("entrypoint", "command"):
        value = service.get(key, [])
        parts += [value] if isinstance(value, str) else value
    return " ".join(parts)


def test_mlflow_compose():
    compose = load_one(COMPOSE)
    services = compose["services"]
    assert {"postgres", "mlflow", "minio"} <= set(services)
    assert services["postgres"]["image"].startswith(POSTGRES_IMAGE)
    for name in ("postgres", "minio", "mlflow"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"

    mlflow = services["mlflow"]
    build = mlflow["build"]
    assert (COMPOSE.parent / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()
    assert build["args"]["MLFLOW_VERSION"] == _mlflow_version()
    command = _compose_command(mlflow)
    assert "mlflow server" in command
    assert re.search(r"--backend-store-uri[ =]\"?postgresql://", command)
    bucket = re.search(r"--artifacts-destination[ =]s3://([\w.-]+)", command)
    assert bucket, "artifacts must go to the S3 store"
    assert mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"
    # Someone creates the bucket before MLflow starts.
    make_bucket = f"mb --ignore-existing store/{bucket.group(1)}"
    creators = [n for n, s in services.items() if make_bucket in _compose_command(s)]
    assert creators and mlflow["depends_on"][creators[0]]["condition"] == "service_completed_successfully"


def test_env_example_covers_compose():
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line.strip() and not line.startswith("#")
    )
    strings = [s for s in walk(load_one(COMPOSE)) if isinstance(s, str)]  # not the comments
    used = {name for s in strings for name in re.findall(r"(?<!\$)\$\{(\w+)", s)}
    assert {"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"} <= used
    assert used <= set(example), f"compose.yaml uses {sorted(used - set(example))}, not in .env.example"
    for name, value in example.items():
        if _secret_like(name):
            assert value == PLACEHOLDER, f".env.example: {name} must be {PLACEHOLDER}"
    assert "deploy/mlflow/.env" in (ROOT / ".gitignore").read_text().splitlines()


# ---------------------------------------------------------------- Dockerfiles


def _instructions(path: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _from_image(path: Path, **overrides: str) -> str:
    """The first FROM with the ARGs declared before it (their defaults, or overrides)."""
    args: dict[str, str] = {}
    for word, rest in _instructions(path):
        if word == "ARG":
            name, _, default = rest.partition("=")
            args[name] = overrides.get(name, default)
        if word == "FROM":
            image = rest.split()[0]
            return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], image)
    raise AssertionError(f"{rel(path)}: no FROM")


def test_project_dockerfile():
    path = DEPLOY / "Dockerfile"
    instructions = _instructions(path)
    assert _from_image(path) == RAY_BASE_CPU
    # One build ARG before FROM switches to the CUDA base.
    first_from = [w for w, _ in instructions].index("FROM")
    pre_from = [rest.split("=")[0] for word, rest in instructions[:first_from] if word == "ARG"]
    assert any(_from_image(path, **{arg: RAY_BASE_GPU.split(":")[1]}) == RAY_BASE_GPU for arg in pre_from)

    runs = [rest for word, rest in instructions if word == "RUN"]
    assert any(re.search(r"pip install\b.*(?:-c|--constraint)[ =]constraints\.txt\b.*\s\.(\s|$)", r) for r in runs)
    assert all(re.search(r"(?:-c|--constraint)[ =]constraints\.txt\b", r) for r in runs if "pip install" in r)

    copied = " ".join(rest for word, rest in instructions if word in ("COPY", "ADD"))
    for source in ("pyproject.toml", "constraints.txt", "README.md", "rlfrontier/", "algorithms/", "tune_configs/"):
        assert re.search(rf"(^|\s){re.escape(source)}(\s|$)", copied), f"Dockerfile does not copy {source}"
    assert not [w for w, _ in instructions if w in ("ENTRYPOINT", "CMD")], "a RayJob sets the entrypoint"

    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for entry in (".venv", "ray_results", "mlflow.db", ".git", "**/__pycache__", "benchmarks/results"):
        assert entry in ignored, f".dockerignore lacks {entry}"


def test_mlflow_dockerfile():
    path = DEPLOY / "mlflow" / "Dockerfile"
    assert re.fullmatch(r"ghcr\.io/mlflow/mlflow:v3\.\d+\.\d+", _from_image(path))
    runs = " ".join(rest for word, rest in _instructions(path) if word == "RUN")
    assert "psycopg2" in runs and "boto3" in runs
