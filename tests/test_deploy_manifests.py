"""Consistency checks of the deployment descriptions in deploy/ (no cluster, no helm binary).

Plain YAML (chart values, Temporal values, APISIX routes) is parsed with yaml.safe_load and the
Grafana dashboard with json. Helm templates are rendered by `render_template`, a deliberately
small subset of Go templates that is enough for this chart and documented here:

* a line holding only a control action is evaluated and removed: `if`/`with` test the truth of a
  `.Values` path (`not` negates it; anything else counts as true), `with` also binds `.`, `range`
  renders its body once, `else` flips the branch, `end` closes;
* a line holding only `toYaml <path> | nindent N` (or `indent N`) becomes that value dumped as
  YAML and indented by N spaces; any other action alone on a line (an `include` of a helper) is
  dropped;
* an action inside a line is replaced by its value when it is a `.Values`, `.Chart`, `.Release`
  path, a naming helper (`include "polyvision.fullname"`) or `include "polyvision.secretName"`
  (`<release>-secrets` with `secret.create`, else `secret.existingSecret`), with `quote` and
  `default` applied; anything else becomes the string `TEMPLATED`.

The rendered text must then be valid YAML with the expected `kind`, so a broken template (bad
indentation, a stray brace, a missing key) fails here rather than in `helm install`.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "polyvision"
TEMPLATES = CHART / "templates"

RELEASE = "polyvision"
PLACEHOLDER = "TEMPLATED"
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
EXPECTED_KINDS = {
    "api-deployment.yaml": "Deployment",
    "api-service.yaml": "Service",
    "worker-cpu-deployment.yaml": "Deployment",
    "worker-gpu-deployment.yaml": "Deployment",
    "worker-nvenc-deployment.yaml": "Deployment",
    "temporal-apply-job.yaml": "Job",
    "db-migrate-job.yaml": "Job",
    "secret.yaml": "Secret",
    "configmap.yaml": "ConfigMap",
    "serviceaccount.yaml": "ServiceAccount",
    "keys-rotate-cronjob.yaml": "CronJob",
}

# ---------------------------------------------------------------------------------------------
# The minimal template renderer described in the module docstring.

_INNER = r"((?:(?!\}\}).)*?)"  # an action's text: anything up to the first closing braces
_ACTION = re.compile(r"\{\{-?\s*" + _INNER + r"\s*-?\}\}", re.DOTALL)
_COMMENT = re.compile(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}", re.DOTALL)
_ONLY_ACTION = re.compile(r"^\s*\{\{-?\s*" + _INNER + r"\s*-?\}\}\s*$")
_NAMING_HELPERS = {"polyvision.fullname", "polyvision.name"}
_MISSING = object()


def _lookup(path: str, values: dict[str, Any], chart: dict[str, Any], dot: Any) -> Any:
    """Value of `.Values.a.b`, `.Chart.X`, `.Release.X` or `.` (the current `with` value)."""
    path = path.lstrip("$")
    if path == ".":
        return dot
    parts = path.strip(".").split(".")
    root: Any
    if parts[0] == "Values":
        root = values
    elif parts[0] == "Chart":
        root = {
            "Name": chart["name"],
            "Version": chart["version"],
            "AppVersion": chart["appVersion"],
        }
    elif parts[0] == "Release":
        root = {"Name": RELEASE, "Namespace": RELEASE, "Service": "Helm"}
    else:
        return _MISSING
    for part in parts[1:]:
        if not isinstance(root, dict) or part not in root:
            return _MISSING
        root = root[part]
    return root


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _evaluate(expr: str, values: dict[str, Any], chart: dict[str, Any], dot: Any) -> Any:
    """Evaluate a pipeline; _MISSING when it uses anything outside the subset."""
    stages = [stage.strip() for stage in expr.split("|")]
    head = stages[0].split()
    if len(head) == 1:
        value = _lookup(head[0], values, chart, dot)
    elif head[0] == "include" and len(head) == 3 and head[1].strip('"') in _NAMING_HELPERS:
        value = RELEASE
    elif head[0] == "include" and len(head) == 3 and head[1].strip('"') == "polyvision.secretName":
        # Mirrors the helper, so templates can be checked to share one Secret.
        secret = values.get("secret", {})
        value = f"{RELEASE}-secrets" if secret.get("create") else secret.get("existingSecret")
    else:
        return _MISSING
    for stage in stages[1:]:
        name, *args = stage.split()
        if name == "quote" and value is not _MISSING:
            value = json.dumps(_scalar(value))
        elif name == "default" and len(args) == 1:
            if value is _MISSING or value in ("", None):
                fallback = _lookup(args[0], values, chart, dot)
                value = args[0].strip('"') if fallback is _MISSING else fallback
        else:
            return _MISSING
    return value


def _inline(match: re.Match[str], values: dict[str, Any], chart: dict[str, Any], dot: Any) -> str:
    value = _evaluate(match.group(1), values, chart, dot)
    return PLACEHOLDER if value is _MISSING else _scalar(value)


def _truthy(
    condition: str, values: dict[str, Any], chart: dict[str, Any], dot: Any
) -> tuple[bool, Any]:
    words = condition.split()
    negate = len(words) == 2 and words[0] == "not"
    path = words[-1] if negate or len(words) == 1 else ""
    value = _lookup(path, values, chart, dot) if path else _MISSING
    if value is _MISSING:
        return True, dot
    return (not value) if negate else bool(value), value


def render_template(text: str, values: dict[str, Any], chart: dict[str, Any]) -> str:
    """Render a chart template with the subset of Go templates documented above."""
    text = _COMMENT.sub("", text)
    out: list[str] = []
    # Each frame: (parent active, this branch active, dot inside the block).
    stack: list[tuple[bool, bool, Any]] = []
    active, dot = True, None
    for line in text.splitlines():
        only = _ONLY_ACTION.match(line)
        if only:
            expr = only.group(1)
            keyword = expr.split(" ", 1)[0]
            rest = expr[len(keyword) :].strip()
            if keyword in ("if", "with", "range"):
                truth, new_dot = (
                    (True, dot) if keyword == "range" else _truthy(rest, values, chart, dot)
                )
                stack.append((active, truth, dot))
                active = active and truth
                if keyword == "with":
                    dot = new_dot
                continue
            if keyword == "else":
                parent, truth, outer_dot = stack[-1]
                stack[-1] = (parent, not truth, outer_dot)
                active = parent and not truth
                continue
            if keyword == "end":
                parent, _truth, outer_dot = stack.pop()
                active, dot = parent, outer_dot
                continue
            if not active:
                continue
            block = re.fullmatch(r"toYaml\s+(\S+)\s*\|\s*n?indent\s+(\d+)", expr)
            if block:
                value = _lookup(block.group(1), values, chart, dot)
                assert value is not _MISSING, f"toYaml of an unknown value: {expr}"
                dumped = yaml.safe_dump(value, default_flow_style=False, sort_keys=False)
                pad = " " * int(block.group(2))
                out.extend(pad + dumped_line for dumped_line in dumped.splitlines())
            continue  # an include of a helper, or another action alone on its line
        if not active:
            continue
        out.append(
            _ACTION.sub(functools.partial(_inline, values=values, chart=chart, dot=dot), line)
        )
    assert not stack, "unbalanced if/with/range ... end"
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Fixtures


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def chart() -> dict[str, Any]:
    return _load_yaml(CHART / "Chart.yaml")


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    return _load_yaml(CHART / "values.yaml")


@pytest.fixture(scope="module")
def rendered(values: dict[str, Any], chart: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every template rendered to one document (secret.yaml with secret.create on)."""
    result: dict[str, dict[str, Any]] = {}
    for name in EXPECTED_KINDS:
        these = copy.deepcopy(values)
        if name == "secret.yaml":
            these["secret"]["create"] = True
            these["secret"]["values"] = {key: f"value-of-{key}" for key in these["secret"]["keys"]}
        text = render_template((TEMPLATES / name).read_text(encoding="utf-8"), these, chart)
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
        assert len(docs) == 1, f"{name}: expected one document, got {len(docs)}"
        result[name] = docs[0]
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
# The renderer itself (so a renderer bug cannot hide a template bug)


def test_renderer_subset(chart: dict[str, Any]) -> None:
    values = {
        "a": {"list": ["x", "y"], "off": False, "n": 3, "empty": ""},
        "secret": {"create": False, "existingSecret": "external"},
    }
    text = (
        "k: {{ .Values.a.n }}\n"
        'secret: {{ include "polyvision.secretName" . }}\n'
        'q: {{ .Values.a.empty | default "d" | quote }}\n'
        'name: {{ include "polyvision.fullname" . }}-api\n'
        'other: {{ include "polyvision.labels" . }}\n'
        "l:\n"
        "  {{- toYaml .Values.a.list | nindent 2 }}\n"
        "{{- if .Values.a.off }}\n"
        "hidden: 1\n"
        "{{- else }}\n"
        "shown: 1\n"
        "{{- end }}\n"
        "{{- with .Values.a.list }}\n"
        "w:\n"
        "  {{- toYaml . | nindent 2 }}\n"
        "{{- end }}\n"
    )
    doc = yaml.safe_load(render_template(text, values, chart))
    assert doc == {
        "k": 3,
        "secret": "external",
        "q": "d",
        "name": "polyvision-api",
        "other": PLACEHOLDER,
        "l": ["x", "y"],
        "shown": 1,
        "w": ["x", "y"],
    }
    values["secret"]["create"] = True
    assert yaml.safe_load(render_template(text, values, chart))["secret"] == "polyvision-secrets"
    # A disabled `if` around the whole file (and nested blocks inside it) renders nothing.
    nested = (
        "{{- if .Values.a.off }}\n"
        "kind: X\n"
        "{{- with .Values.a.list }}\n"
        "w: 1\n"
        "{{- end }}\n"
        "{{- end }}\n"
    )
    assert list(yaml.safe_load_all(render_template(nested, values, chart))) == []


# ---------------------------------------------------------------------------------------------
# Files parse


def test_plain_yaml_files_parse() -> None:
    plain = [
        CHART / "Chart.yaml",
        CHART / "values.yaml",
        DEPLOY / "temporal" / "values.yaml",
        DEPLOY / "apisix" / "routes.yaml",
    ]
    for path in plain:
        text = path.read_text(encoding="utf-8")
        assert "{{" not in text, f"{path} must be plain YAML, not a template"
        assert isinstance(yaml.safe_load(text), dict), path


def test_every_template_is_known_and_renders_its_kind(rendered: dict[str, dict[str, Any]]) -> None:
    on_disk = {path.name for path in TEMPLATES.glob("*.yaml")}
    assert on_disk == set(EXPECTED_KINDS), "a template was added or removed: update EXPECTED_KINDS"
    assert (TEMPLATES / "_helpers.tpl").is_file()
    for name, kind in EXPECTED_KINDS.items():
        doc = rendered[name]
        assert doc["kind"] == kind, name
        assert doc["apiVersion"], name
        assert doc["metadata"]["name"], name


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


@pytest.mark.parametrize(
    "name",
    [name for name, kind in EXPECTED_KINDS.items() if kind in ("Deployment", "Job", "CronJob")],
)
def test_pods_are_locked_down(name: str, rendered: dict[str, dict[str, Any]]) -> None:
    doc = rendered[name]
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
    rendered: dict[str, dict[str, Any]], values: dict[str, Any], chart: dict[str, Any]
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
    disabled = copy.deepcopy(values)
    disabled["keyRotation"]["enabled"] = False
    template = (TEMPLATES / "keys-rotate-cronjob.yaml").read_text(encoding="utf-8")
    text = render_template(template, disabled, chart)
    assert [doc for doc in yaml.safe_load_all(text) if doc is not None] == []


def test_required_settings_are_provided(
    rendered: dict[str, dict[str, Any]], values: dict[str, Any]
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
    # The Secret is a hook that exists before the pre-install migration Job.
    hook_weights = {
        name: int(rendered[name]["metadata"]["annotations"]["helm.sh/hook-weight"])
        for name in ("secret.yaml", "db-migrate-job.yaml")
    }
    assert hook_weights["secret.yaml"] < hook_weights["db-migrate-job.yaml"]


def test_readme_documents_the_settings() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name in REQUIRED_ENV:
        assert name in readme, name
    assert "postgresql+asyncpg://" in readme
    assert "clickhouse://" in readme
    assert "helm upgrade --install" in readme


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
