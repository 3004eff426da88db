"""deploy/k8s/: the Kubernetes manifests, built as kustomize builds them and checked offline.

``kubectl kustomize`` may not be installed where the tests run, so ``build`` below does what
kustomize does with the fields these kustomizations use (and refuses any other field, so a new
one cannot be silently ignored); where kubectl is installed, ``test_the_build_here_is_kubectls``
checks that both builds agree. Every object is validated against the Kubernetes OpenAPI schemas
that kubernetes-validate bundles (strict: an unknown field fails), with no network, for the
oldest Kubernetes version the manifests support and the newest the locked kubernetes-validate
knows. The rest checks what makes them Baton's production deployment: the compose file's
commands and settings, the probes, the shutdown timing, the security context of every pod, the
one beat, the ingress and the network policies; and Baton itself refuses the Secret example's
placeholders at start.
"""

from __future__ import annotations

import copy
import inspect
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import psycopg
import pytest
import yaml

from tests.ops.production import DEPLOY, ROOT, container_env, fresh_secrets, production_env
from tests.ops.test_deploy import compose, settings_names
from tests.ops.test_production_settings import loaded, refusal

K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
SECRET_EXAMPLE = K8S / "secret.example.yaml"

# The oldest Kubernetes release the manifests are written for (PodDisruptionBudget's
# unhealthyPodEvictionPolicy is GA from 1.31) and the newest the locked kubernetes-validate
# bundles schemas for.
KUBERNETES_VERSIONS = ("1.31.0", "1.37.0")

# The Dockerfile's `useradd --system baton`: the first system account of the Debian base image.
BATON_UID = 999

WORKLOADS = ("baton-web", "baton-worker", "baton-beat", "baton-usage-consumer")
Resource = dict[str, Any]


# --- kustomize, as much of it as deploy/k8s uses ------------------------------------------------

KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "configMapGenerator",
    "patches",
    "images",
    "replicas",
}
CLUSTER_SCOPED = {"Namespace"}
POD_OWNERS = {"Deployment", "Job"}


def documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def env_file(path: Path) -> dict[str, str]:
    """A kustomize env file: NAME=value lines, taken literally; # comments and blank lines."""
    values = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        # Without "=", kustomize would take the value from the environment of whoever builds.
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path.name}: {line!r}"
        values[name] = value
    return values


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    found = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def merge_patch(target: dict[str, Any], patch: dict[str, Any], where: str) -> None:
    """A strategic merge patch where it equals a JSON merge patch (RFC 7386): maps merge, lists
    are replaced whole. That holds for lists without a merge key (an Ingress's rules and tls);
    a patch to a list keyed by name (containers, env, volumes) would be merged item by item by
    kustomize, so it is refused here rather than built differently."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_patch(target[key], value, f"{where}.{key}")
        else:
            if isinstance(value, list):
                keyed = [item for item in value if isinstance(item, dict) and "name" in item]
                assert not keyed, f"{where}.{key}: a list merged by name; not built here"
            target[key] = copy.deepcopy(value)


def pod_specs(resources: list[Resource]) -> Iterator[tuple[str, Resource]]:
    for resource in resources:
        if resource["kind"] in POD_OWNERS:
            yield resource["metadata"]["name"], resource["spec"]["template"]["spec"]


def containers(pod: Resource) -> list[Resource]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def set_image(image: str, rule: dict[str, str]) -> str | None:
    name = image.split("@")[0]
    head, _, tag = name.rpartition(":")
    if head and "/" not in tag:
        name = head
    if name != rule["name"]:
        return None
    new = rule.get("newName", name)
    if "digest" in rule:
        return f"{new}@{rule['digest']}"
    return f"{new}:{rule['newTag']}" if "newTag" in rule else new


def build(directory: Path) -> list[Resource]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - KUSTOMIZATION_FIELDS
    assert not unknown, f"{directory}: this test does not build {sorted(unknown)}"
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        resources += build(path) if path.is_dir() else documents(path)
    for generator in kustomization.get("configMapGenerator", []):
        assert set(generator) <= {"name", "envs", "literals", "behavior"}, generator
        data: dict[str, str] = {}
        for env in generator.get("envs", []):
            data.update(env_file(directory / env))
        for literal in generator.get("literals", []):
            name, _, value = literal.partition("=")
            data[name] = value
        behavior = generator.get("behavior", "create")
        if behavior == "create":
            metadata = {"name": generator["name"]}
            resources.append(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
            )
        else:
            assert behavior == "merge", generator
            find(resources, "ConfigMap", generator["name"])["data"].update(data)
    for entry in kustomization.get("patches", []):
        assert set(entry) == {"path"}, f"only patch files are built here: {entry}"
        for patch in documents(directory / entry["path"]):
            target = find(resources, patch["kind"], patch["metadata"]["name"])
            assert target["apiVersion"] == patch["apiVersion"], patch["metadata"]
            merge_patch(target, patch, f"{patch['kind']}/{patch['metadata']['name']}")
    if "namespace" in kustomization:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = kustomization["namespace"]
    for rule in kustomization.get("images", []):
        matched = 0
        for _, pod in pod_specs(resources):
            for container in containers(pod):
                image = set_image(container["image"], rule)
                if image is not None:
                    container["image"] = image
                    matched += 1
        assert matched, f"no container runs image {rule['name']}"
    for rule in kustomization.get("replicas", []):
        find(resources, "Deployment", rule["name"])["spec"]["replicas"] = rule["count"]
    return resources


@pytest.fixture(scope="module", params=["base", "overlay"])
def built(request: pytest.FixtureRequest) -> list[Resource]:
    return build(BASE if request.param == "base" else OVERLAY)


@pytest.fixture(scope="module")
def base() -> list[Resource]:
    return build(BASE)


@pytest.fixture(scope="module")
def overlay() -> list[Resource]:
    return build(OVERLAY)


def config(resources: list[Resource]) -> dict[str, str]:
    data: dict[str, str] = find(resources, "ConfigMap", "baton-config")["data"]
    return data


def secret_example() -> dict[str, str]:
    (secret,) = documents(SECRET_EXAMPLE)
    values: dict[str, str] = secret["stringData"]
    return values


def deployment(resources: list[Resource], name: str) -> Resource:
    return find(resources, "Deployment", name)


def container(resources: list[Resource], kind: str, name: str, container_name: str) -> Resource:
    pod = find(resources, kind, name)["spec"]["template"]["spec"]
    (found,) = [c for c in pod["containers"] if c["name"] == container_name]
    return found


# --- the build -----------------------------------------------------------------------------


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay"])
def test_the_build_here_is_kubectls(directory: Path) -> None:
    """The same objects as `kubectl kustomize`, but for the hash kustomize appends to a
    generated ConfigMap's name (and writes into every reference to it)."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: only the build in this module checks deploy/k8s")
    result = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = re.sub(r"\bbaton-config-[a-z0-9]{10}\b", "baton-config", result.stdout)
    theirs = {(r["kind"], r["metadata"]["name"]): r for r in yaml.safe_load_all(text) if r}
    ours = {(r["kind"], r["metadata"]["name"]): r for r in build(directory)}
    assert sorted(ours) == sorted(theirs)
    for key, resource in ours.items():
        assert resource == theirs[key], key


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(
    built: list[Resource], version: str
) -> None:
    assert len(built) >= 15
    for resource in [*built, *documents(SECRET_EXAMPLE)]:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{resource['kind']}/{resource['metadata']['name']}"
            pytest.fail(f"{name} is not valid Kubernetes {version}: {exc.message} at {exc.path}")


def test_the_validation_refuses_what_kubernetes_refuses(base: list[Resource]) -> None:
    """Strict validation is not a formality: a misspelt field or a wrong type fails."""
    web = copy.deepcopy(deployment(base, "baton-web"))
    web["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = (
        True
    )
    with pytest.raises(jsonschema.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[0], strict=True)
    web = copy.deepcopy(deployment(base, "baton-web"))
    web["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "60s"
    with pytest.raises(jsonschema.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSIONS[0], strict=True)


def test_the_base_is_the_whole_deployment_but_its_secrets_and_datastores(
    base: list[Resource],
) -> None:
    kinds = {(r["kind"], r["metadata"]["name"]) for r in base}
    expected = {
        ("Namespace", "baton"),
        ("ConfigMap", "baton-config"),
        ("Job", "baton-migrate"),
        ("Service", "baton-web"),
        ("Ingress", "baton"),
        ("HorizontalPodAutoscaler", "baton-web"),
        ("PodDisruptionBudget", "baton-web"),
        *(("Deployment", name) for name in WORKLOADS),
        *(("ServiceAccount", name) for name in ("baton-web", "baton-worker", "baton-migrate")),
    }
    assert expected <= kinds, sorted(expected - kinds)
    # PostgreSQL and Redis are managed services or operators; the Secret is the operator's.
    assert not {kind for kind, _ in kinds} & {"StatefulSet", "Secret", "PersistentVolumeClaim"}
    assert all(r["metadata"]["namespace"] == "baton" for r in base if r["kind"] != "Namespace")


# --- settings ------------------------------------------------------------------------------


def passed_variables(resources: list[Resource]) -> set[str]:
    """Every environment variable the manifests give Baton: the ConfigMap, the Secret, and each
    container's env, but for those Kubernetes itself expands into that container's command."""
    names = set(config(resources)) | set(secret_example())
    for _, pod in pod_specs(resources):
        for item in containers(pod):
            command = " ".join(item.get("command", []) + item.get("args", []))
            for variable in item.get("env", []):
                if f"$({variable['name']})" not in command:
                    names.add(variable["name"])
    return names


def test_every_variable_passed_to_baton_exists_in_settings(built: list[Resource]) -> None:
    passed = passed_variables(built)
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"} <= passed
    unknown = sorted(passed - settings_names())
    assert not unknown, f"deploy/k8s passes variables config/settings.py never reads: {unknown}"
    # Nor does Kubernetes add its own: service links would put BATON_WEB_SERVICE_HOST,
    # BATON_WEB_PORT and the like into every environment.
    for name, pod in pod_specs(built):
        assert pod["enableServiceLinks"] is False, name


def test_every_setting_the_compose_deployment_passes_is_passed_here(base: list[Resource]) -> None:
    """deploy/baton.env.example and the compose file's environment, all of it, so that a setting
    added there is not forgotten here; with the same values, but for the networks."""
    services = compose()["services"]
    compose_env: dict[str, str] = {}
    for name in ("migrate", "web", "worker", "beat", "usage-consumer"):
        compose_env.update(services[name].get("environment", {}))
    example = {}
    for line in (DEPLOY / "baton.env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            example[name.strip()] = value.strip()
    missing = sorted((set(example) | set(compose_env)) - passed_variables(base))
    assert not missing, f"deploy/k8s does not pass what deploy/compose.yaml passes: {missing}"
    # The compose file's edge subnet and Docker's private ranges mean nothing in a cluster.
    networks = {"BATON_METRICS_ALLOW", "BATON_TRUSTED_PROXIES"}
    settings = config(base)
    differ = {
        name: (value, settings[name])
        for name, value in example.items()
        if name in settings and name not in networks and settings[name] != value
    }
    assert not differ, f"(compose, k8s) values differ: {differ}"
    assert settings["LOG_FORMAT"] == compose_env["LOG_FORMAT"]


def test_the_overlay_names_its_own_host_everywhere(overlay: list[Resource]) -> None:
    settings = config(overlay)
    host = settings["ALLOWED_HOSTS"]
    assert host == "gateway.example.org"
    assert settings["SITE_URL"] == settings["CSRF_TRUSTED_ORIGINS"] == f"https://{host}"
    ingresses = [r for r in overlay if r["kind"] == "Ingress"]
    assert len(ingresses) == 2
    for ingress in ingresses:
        assert [rule["host"] for rule in ingress["spec"]["rules"]] == [host]
    assert find(overlay, "Ingress", "baton")["spec"]["tls"][0]["hosts"] == [host]
    assert "baton.example.com" not in yaml.safe_dump_all(overlay)


def test_the_overlay_sets_the_image_and_the_counts(overlay: list[Resource]) -> None:
    images = {c["image"] for _, pod in pod_specs(overlay) for c in containers(pod)}
    assert images == {"registry.example.org/baton:2026.11.1"}
    assert deployment(overlay, "baton-worker")["spec"]["replicas"] == 3
    assert deployment(overlay, "baton-usage-consumer")["spec"]["replicas"] == 2
    autoscaler = find(overlay, "HorizontalPodAutoscaler", "baton-web")["spec"]
    assert (autoscaler["minReplicas"], autoscaler["maxReplicas"]) == (3, 20)


# --- the processes: compose's commands ---------------------------------------------------------


def uvicorn_arguments(script: str) -> list[str]:
    """The uvicorn command line after `exec`, with host, port and worker count blanked."""
    before, _, exec_part = script.partition("exec ")
    assert before.strip() == "rm -rf /run/baton-metrics/* &&", before
    args = shlex.split(exec_part)
    for option in ("--host", "--port", "--workers"):
        args[args.index(option) + 1] = "..."
    return args


def test_the_web_command_is_composes_but_for_host_port_and_workers(
    built: list[Resource],
) -> None:
    web = container(built, "Deployment", "baton-web", "web")
    assert web["command"][:2] == ["sh", "-c"] and len(web["command"]) == 3
    ours = uvicorn_arguments(web["command"][2])
    theirs = uvicorn_arguments(compose()["services"]["web"]["command"][-1])
    assert ours == theirs
    for flag in ("--no-proxy-headers", "--no-access-log", "--timeout-graceful-shutdown"):
        assert flag in ours
    args = shlex.split(web["command"][2].partition("exec ")[2])
    assert args[args.index("--port") + 1] == str(web["ports"][0]["containerPort"])
    # The kubelet's probes and the ingress controller reach the pod's address, not loopback.
    assert args[args.index("--host") + 1] == "0.0.0.0"  # noqa: S104


def test_web_runs_one_worker_per_core_of_its_cpu_limit(built: list[Resource]) -> None:
    web = container(built, "Deployment", "baton-web", "web")
    args = shlex.split(web["command"][2].partition("exec ")[2])
    assert args[args.index("--workers") + 1] == "$(WEB_WORKERS)"
    (workers,) = [v for v in web["env"] if v["name"] == "WEB_WORKERS"]
    assert workers["valueFrom"]["resourceFieldRef"] == {
        "containerName": "web",
        "resource": "limits.cpu",
        "divisor": "1",
    }
    # Whole cores: the worker count is the limit itself, and the HPA's 100 % is the request.
    assert re.fullmatch(r"[1-9][0-9]*", str(web["resources"]["limits"]["cpu"]))
    assert web["resources"]["requests"]["cpu"] == web["resources"]["limits"]["cpu"]


def test_the_other_processes_run_composes_commands(built: list[Resource]) -> None:
    services = compose()["services"]
    for service, name in (
        ("worker", "baton-worker"),
        ("beat", "baton-beat"),
        ("usage-consumer", "baton-usage-consumer"),
    ):
        ours = container(built, "Deployment", name, service)["command"]
        assert ours == services[service]["command"], service
    migrate = container(built, "Job", "baton-migrate", "migrate")
    assert migrate["command"] == services["migrate"]["command"]


def test_metrics_of_all_workers_go_to_a_memory_emptydir(built: list[Resource]) -> None:
    pod = deployment(built, "baton-web")["spec"]["template"]["spec"]
    web = container(built, "Deployment", "baton-web", "web")
    (directory,) = [v["value"] for v in web["env"] if v["name"] == "PROMETHEUS_MULTIPROC_DIR"]
    (mount,) = [m for m in web["volumeMounts"] if m["mountPath"] == directory]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"
    assert "sizeLimit" in volume["emptyDir"]
    # Only the web pods aggregate worker metrics: elsewhere the variable must not be set.
    for name, other in pod_specs(built):
        if name != "baton-web":
            assert all("env" not in item for item in containers(other)), name


# --- health, shutdown, availability ------------------------------------------------------------


def test_probes_are_readyz_and_healthz(built: list[Resource]) -> None:
    web = container(built, "Deployment", "baton-web", "web")
    assert web["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert web["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert web["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    # Each readiness check is bounded by BATON_READY_TIMEOUT; the probe waits a little longer.
    ready_timeout = float(config(built)["BATON_READY_TIMEOUT"])
    assert web["readinessProbe"]["timeoutSeconds"] > ready_timeout


def test_termination_grace_outlasts_preStop_uvicorn_and_baton(built: list[Resource]) -> None:
    from gateway.observability import flush_remaining

    flush = inspect.signature(flush_remaining).parameters["deadline_seconds"].default
    grace = float(config(built)["BATON_SHUTDOWN_GRACE_SECONDS"])
    pod = deployment(built, "baton-web")["spec"]["template"]["spec"]
    web = container(built, "Deployment", "baton-web", "web")
    args = shlex.split(web["command"][2].partition("exec ")[2])
    uvicorn_timeout = float(args[args.index("--timeout-graceful-shutdown") + 1])
    pre_stop = web["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    pre_stop_seconds = float(pre_stop[1])
    # The ingress controller drops the endpoint while preStop runs: not instantly, not forever.
    assert 5 <= pre_stop_seconds <= 15
    assert uvicorn_timeout >= grace + flush
    assert pod["terminationGracePeriodSeconds"] > grace
    assert pod["terminationGracePeriodSeconds"] > pre_stop_seconds + uvicorn_timeout


def test_the_other_processes_get_composes_stop_grace(built: list[Resource]) -> None:
    services = compose()["services"]
    for service, name in (("worker", "baton-worker"), ("usage-consumer", "baton-usage-consumer")):
        pod = deployment(built, name)["spec"]["template"]["spec"]
        stop = int(services[service]["stop_grace_period"].rstrip("s"))
        assert pod["terminationGracePeriodSeconds"] >= stop, name


def test_exactly_one_beat(built: list[Resource]) -> None:
    beat = deployment(built, "baton-beat")["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"] == {"type": "Recreate"}
    for resource in built:
        if resource["kind"] == "HorizontalPodAutoscaler":
            assert resource["spec"]["scaleTargetRef"]["name"] != "baton-beat"


def test_web_spreads_over_nodes_scales_on_cpu_and_survives_drains(
    built: list[Resource],
) -> None:
    web = deployment(built, "baton-web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    # The autoscaler owns the count: a count here would reset it at every apply.
    assert "replicas" not in web["spec"]
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spread = web["spec"]["template"]["spec"]["topologySpreadConstraints"]
    by_node = [c for c in spread if c["topologyKey"] == "kubernetes.io/hostname"]
    assert by_node and by_node[0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert by_node[0]["labelSelector"]["matchLabels"] == labels
    autoscaler = find(built, "HorizontalPodAutoscaler", "baton-web")["spec"]
    assert autoscaler["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "baton-web",
    }
    assert autoscaler["minReplicas"] >= 2
    (metric,) = autoscaler["metrics"]
    assert metric["resource"]["name"] == "cpu"
    budget = find(built, "PodDisruptionBudget", "baton-web")["spec"]
    assert budget["selector"]["matchLabels"] == labels
    assert budget["maxUnavailable"] == 1
    service = find(built, "Service", "baton-web")["spec"]
    assert service["selector"] == labels


def test_every_selector_selects_its_own_pods(built: list[Resource]) -> None:
    for resource in built:
        if resource["kind"] == "Deployment":
            selector = resource["spec"]["selector"]["matchLabels"]
            labels = resource["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), resource["metadata"]["name"]
    components = [
        r["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for r in built
        if r["kind"] in POD_OWNERS
    ]
    assert len(components) == len(set(components)), "two workloads would share a selector"


# --- migrations first --------------------------------------------------------------------------


def gate_script(pod: Resource) -> str:
    (gate,) = [c for c in pod.get("initContainers", []) if c["name"] == "wait-for-schema"]
    assert gate["command"][:2] == ["sh", "-c"]
    script: str = gate["command"][2]
    return script


def test_every_process_waits_for_the_migration_job(built: list[Resource]) -> None:
    job = find(built, "Job", "baton-migrate")["spec"]
    assert job["template"]["spec"]["restartPolicy"] == "Never"
    assert "ttlSecondsAfterFinished" in job
    for name in WORKLOADS:
        pod = deployment(built, name)["spec"]["template"]["spec"]
        script = gate_script(pod)
        assert re.fullmatch(r"until (python manage\.py migrate --check[^;]*); do .*; done", script)


# --- security ------------------------------------------------------------------------------


def test_the_uid_is_the_dockerfiles_user() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "useradd --system --home /app baton" in dockerfile
    assert re.search(r"^USER baton$", dockerfile, re.M)
    # useradd --system takes the highest free id below 1000, and the base image has none.
    assert "FROM python:3.11-slim" in dockerfile


def test_every_pod_runs_restricted(built: list[Resource]) -> None:
    """The Pod Security "restricted" profile (the namespace enforces it), and what a
    read-only root needs: /tmp writable, limits on every container."""
    namespace = find(built, "Namespace", "baton")["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "restricted"
    accounts = {r["metadata"]["name"]: r for r in built if r["kind"] == "ServiceAccount"}
    assert accounts and all(a["automountServiceAccountToken"] is False for a in accounts.values())
    pods = list(pod_specs(built))
    assert len(pods) == 5
    for name, pod in pods:
        assert pod["serviceAccountName"] in accounts, name
        assert pod["automountServiceAccountToken"] is False, name
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == security["runAsGroup"] == BATON_UID, name
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not {"hostNetwork", "hostPID", "hostIPC"} & set(pod), name
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert all(set(v) == {"name", "emptyDir"} for v in volumes.values()), name
        for item in containers(pod):
            where = f"{name}/{item['name']}"
            assert item["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }, where
            mounts = {m["mountPath"]: m["name"] for m in item["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where
            for side in ("requests", "limits"):
                assert set(item["resources"][side]) == {"cpu", "memory"}, where
            assert item["imagePullPolicy"] == "IfNotPresent", where


def test_network_policies_admit_the_ingress_controller_and_prometheus_only(
    built: list[Resource],
) -> None:
    policies = {r["metadata"]["name"]: r["spec"] for r in built if r["kind"] == "NetworkPolicy"}
    deny = policies["baton-default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    # Only the web pods accept connections, and only on their port.
    admitting = [p for p in policies.values() if p.get("ingress")]
    assert len(admitting) == 1
    (web,) = admitting
    labels = deployment(built, "baton-web")["spec"]["template"]["metadata"]["labels"]
    assert web["podSelector"]["matchLabels"] == labels
    sources = []
    for rule in web["ingress"]:
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
        for peer in rule["from"]:
            assert "ipBlock" not in peer
            sources.append(peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
    assert sorted(sources) == ["ingress-nginx", "monitoring"]


def test_network_policies_let_baton_reach_dns_its_datastores_and_the_providers(
    built: list[Resource],
) -> None:
    policies = [r["spec"] for r in built if r["kind"] == "NetworkPolicy" and "egress" in r["spec"]]
    (egress,) = policies
    assert egress["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "baton"}
    allowed: dict[int, list[Any]] = {}
    for rule in egress["egress"]:
        assert rule.get("ports"), "an egress rule without ports allows every port"
        for port in rule["ports"]:
            allowed.setdefault(port["port"], []).extend(rule["to"])
    assert {53, 5432, 6379, 443} <= set(allowed)
    assert any("namespaceSelector" in peer for peer in allowed[53])
    (internet,) = [p["ipBlock"] for p in allowed[443] if p["ipBlock"]["cidr"] == "0.0.0.0/0"]
    # Not the cloud's metadata service, not the cluster's private networks.
    assert {"169.254.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} <= set(
        internet["except"]
    )
    # Every Baton pod carries the label the policy selects.
    for resource in built:
        if resource["kind"] in POD_OWNERS:
            labels = resource["spec"]["template"]["metadata"]["labels"]
            assert labels["app.kubernetes.io/name"] == "baton"


# --- the ingress -------------------------------------------------------------------------------


def nginx_size(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def test_the_ingress_streams_like_deploy_nginx(built: list[Resource]) -> None:
    ingress = find(built, "Ingress", "baton")
    annotations = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert annotations[prefix + "proxy-buffering"] == "off"
    assert annotations[prefix + "proxy-request-buffering"] == "off"
    assert annotations[prefix + "proxy-http-version"] == "1.1"
    assert annotations[prefix + "proxy-next-upstream"] == "error"
    settings = config(built)
    read_timeout = int(annotations[prefix + "proxy-read-timeout"])
    assert read_timeout == 600 and read_timeout >= float(settings["BATON_TOTAL_TIMEOUT"])
    body = nginx_size(annotations[prefix + "proxy-body-size"])
    assert body == int(settings["BATON_MAX_BODY_BYTES"])
    conf = (DEPLOY / "nginx.conf").read_text()
    assert f"client_max_body_size {annotations[prefix + 'proxy-body-size']};" in conf
    assert f"proxy_read_timeout {read_timeout}s;" in conf
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    backend = path["backend"]["service"]
    service = find(built, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
    assert settings["BEHIND_TLS_PROXY"] == "true"


def test_the_ingress_never_serves_metrics(built: list[Resource]) -> None:
    denied = find(built, "Ingress", "baton-metrics-denied")
    assert denied["spec"]["ingressClassName"] == "nginx"
    denylist = denied["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/denylist-source-range"
    ]
    assert set(denylist.split(",")) == {"0.0.0.0/0", "::/0"}
    (rule,) = denied["spec"]["rules"]
    assert rule["host"] == find(built, "Ingress", "baton")["spec"]["rules"][0]["host"]
    assert [(p["path"], p["pathType"]) for p in rule["http"]["paths"]] == [("/metrics", "Exact")]


# --- Baton's settings at start: the ConfigMap with real secrets, and the placeholders -----------

# The Secret example's placeholders Baton refuses at start, with what it says.
REFUSED = {
    "SECRET_KEY": "SECRET_KEY must be at least 50 characters",
    "BATON_MASTER_KEYS": "BATON_MASTER_KEYS is invalid",
    "BATON_API_KEY_PEPPER": "BATON_API_KEY_PEPPER must be at least 32 characters",
    "DATABASE_URL": "DATABASE_URL must start with postgres://",
    "REDIS_URL": "REDIS_URL must start with redis://",
    "BATON_METRICS_TOKEN": "BATON_METRICS_TOKEN must be at least 24 characters",
}
# Any string is a valid SMTP password to Baton: that placeholder is not refused (as in
# deploy/baton.env.example); the mail server refuses it.
NOT_JUDGED = {"EMAIL_HOST_PASSWORD"}


def pod_env(resources: list[Resource], tmp_path: Path, secrets: dict[str, str]) -> dict[str, str]:
    """A web pod's environment: the image's, the ConfigMap, the Secret, the container's own."""
    web = container(resources, "Deployment", "baton-web", "web")
    own = {v["name"]: v["value"] for v in web["env"] if "value" in v}
    return {
        **container_env(),
        "BATON_DATA_DIR": str(tmp_path),
        **config(resources),
        **secrets,
        **own,
    }


def real_secrets() -> dict[str, str]:
    return {
        **fresh_secrets(),
        "DATABASE_URL": "postgres://baton:a-password@postgres.internal:5432/baton",
        "REDIS_URL": "redis://:a-password@redis.internal:6379/0",
        "EMAIL_HOST_PASSWORD": "an-smtp-password",
    }


@pytest.mark.production
def test_the_settings_start_with_real_secrets(built: list[Resource], tmp_path: Path) -> None:
    assert set(real_secrets()) == set(secret_example())
    (tmp_path / "metrics").mkdir()
    env = pod_env(built, tmp_path, real_secrets())
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    values = loaded(env)
    assert values["DEBUG"] is False and values["TESTING"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


@pytest.mark.production
def test_the_secret_example_as_it_is_does_not_start(base: list[Resource], tmp_path: Path) -> None:
    assert set(secret_example()) == set(REFUSED) | NOT_JUDGED
    assert all("change-me" in value for value in secret_example().values())
    message = refusal(pod_env(base, tmp_path, secret_example()))
    assert "SECRET_KEY" in message


@pytest.mark.production
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_each_placeholder_is_refused_at_start(
    name: str, base: list[Resource], tmp_path: Path
) -> None:
    secrets = {**real_secrets(), name: secret_example()[name]}
    message = refusal(pod_env(base, tmp_path, secrets))
    assert REFUSED[name] in message, message


# --- the migration gate, on a real PostgreSQL ---------------------------------------------------


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A fresh PostgreSQL database on the test server, as a new deployment's is."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql", "run under scripts/services.py"
    name = f"baton_k8s_{uuid.uuid4().hex[:12]}"
    server = f"host={db['HOST']} port={db['PORT']} user={db['USER']} dbname=postgres"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.production
def test_the_gate_holds_until_the_migration_job_ran(
    base: list[Resource], empty_database: str, tmp_path: Path
) -> None:
    """The initContainer's own condition, the Job's own command, then the initContainer's
    whole script, against an empty database as a first deployment has."""
    env = production_env(tmp_path, DATABASE_URL=empty_database)
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    script = gate_script(deployment(base, "baton-web")["spec"]["template"]["spec"])
    condition = re.fullmatch(r"until (.*?); do .*", script)
    assert condition is not None
    before = run(["sh", "-c", condition.group(1)], env)
    assert before.returncode == 1, before.stderr[-3000:]
    job = run(container(base, "Job", "baton-migrate", "migrate")["command"], env)
    assert job.returncode == 0, job.stderr[-3000:]
    after = run(["sh", "-c", script], env)
    assert after.returncode == 0, after.stderr[-3000:]
    assert "waiting for the baton-migrate Job" not in after.stdout
