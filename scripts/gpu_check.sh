#!/usr/bin/env bash
# The detector's GPU path on a lent GPU machine, in one run of under 5 minutes.
#
# Prints the GPU (nvidia-smi), the Python packages the detector needs and ONNX Runtime's
# execution providers, then runs bench/gpu_pipeline.py: the CPU layout as baseline, then the
# CUDA provider and the TensorRT provider in FP16 (engine cache folder per GPU and TensorRT
# version), each with the tiles of a frame as one batch and one by one. What is missing is
# reported as a line starting with MISSING, not as a traceback. Results: $OUT/gpu_check.json
# and $OUT/gpu_check.log when OUT is set.
#
# The lent machine is a fresh copy of the repository without ../shared and without internet:
#   - the model: copy it into a git-excluded folder carried with the run, e.g.
#       echo /.gpucheck/ >> .git/info/exclude; mkdir -p .gpucheck
#       cp ../shared/data/models/yolox_nano.onnx .gpucheck/
#       .venv/bin/python -m bench.gpu_pipeline --save-tiles .gpucheck/tiles.npz   # real tiles
#     (the script looks in $PV_MODELS_DIR, ../shared/data/models, then .gpucheck/);
#   - onnxruntime-gpu (and TensorRT for its provider): only from wheels carried in a folder
#     named by PV_WHEELHOUSE, installed with pip --no-index into /tmp/pv-site.
#
# Environment: PV_GPU_CHECK_BACKENDS (default cuda,tensorrt; "cpu" runs the whole path on CPU),
# PV_GPU_CHECK_FRAMES (timed frames per mode, default 20), PV_GPU_CHECK_MAX_TILES (default 32),
# PV_GPU_CHECK_BUDGET_S (no new backend after this many seconds, default 150).
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
BACKENDS="${PV_GPU_CHECK_BACKENDS:-cuda,tensorrt}"
FRAMES="${PV_GPU_CHECK_FRAMES:-20}"
MAX_TILES="${PV_GPU_CHECK_MAX_TILES:-32}"
BUDGET_S="${PV_GPU_CHECK_BUDGET_S:-150}"
if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT"
    exec > >(tee "$OUT/gpu_check.log") 2>&1
fi
missing=()
note_missing() {
    echo "MISSING: $*"
    missing+=("$*")
}
section() { printf '\n== %s ==\n' "$*"; }

section "GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
    timeout 20 nvidia-smi || note_missing "nvidia-smi failed (driver not loaded?)"
    timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
else
    note_missing "nvidia-smi: no NVIDIA driver on this machine"
fi

section "Python"
PY=""
for candidate in "$REPO/.venv/bin/python" python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys' 2>/dev/null; then
        PY="$(command -v "$candidate")"
        break
    fi
done
if [[ -z "$PY" ]]; then
    note_missing "python3"
    exit 2
fi
echo "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"

if [[ -n "${PV_WHEELHOUSE:-}" ]]; then
    section "Installing carried wheels from $PV_WHEELHOUSE"
    if timeout 90 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/pv-site "$PV_WHEELHOUSE"/*.whl; then
        export PYTHONPATH="/tmp/pv-site:$PYTHONPATH"
    else
        note_missing "wheels in $PV_WHEELHOUSE did not install (see pip's message above)"
    fi
fi

section "Packages"
# name: module, what it is for
for entry in "numpy:numpy:required" "cv2:opencv-python-headless:required" \
    "onnxruntime:onnxruntime (-gpu for CUDA/TensorRT):required" \
    "onnx:onnx:batching (dynamic batch copy of the model)" \
    "tensorrt:tensorrt:the TensorRT provider" "av:av:real tiles from the recording"; do
    IFS=: read -r module dist purpose <<<"$entry"
    if version="$(timeout 60 "$PY" -c "import $module as m; print(getattr(m, '__version__', '?'))" 2>/dev/null)"; then
        echo "$dist: $version"
    else
        note_missing "$dist (python module $module), needed for: $purpose"
    fi
done

section "ONNX Runtime"
if ort_report="$(timeout 60 "$PY" - 2>&1 <<'EOF'
import importlib.metadata as md
import onnxruntime as ort
for name in ("onnxruntime", "onnxruntime-gpu"):
    try:
        print(f"{name} distribution: {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} distribution: not installed")
providers = ort.get_available_providers()
print("device:", ort.get_device())
print("providers:", ", ".join(providers))
for ep, why in (
    ("CUDAExecutionProvider", "onnxruntime-gpu (CUDA 12 builds on PyPI) with CUDA and cuDNN"),
    ("TensorrtExecutionProvider", "onnxruntime-gpu and the TensorRT libraries (tensorrt-cu12)"),
):
    if ep not in providers:
        print(f"MISSING: {ep}: needs {why}")
EOF
)"; then
    echo "$ort_report" | grep -v '^MISSING: '
    while IFS= read -r line; do
        note_missing "${line#MISSING: }"
    done < <(echo "$ort_report" | grep '^MISSING: ')
else
    echo "$ort_report" | tail -5
    note_missing "onnxruntime does not import"
fi

section "Model"
MODEL_DIR=""
for dir in "${PV_MODELS_DIR:-}" "$REPO/../shared/data/models" "$REPO/.gpucheck"; do
    if [[ -n "$dir" && -f "$dir/yolox_nano.onnx" ]]; then
        MODEL_DIR="$(cd "$dir" && pwd)"
        break
    fi
done
if [[ -z "$MODEL_DIR" ]]; then
    note_missing "yolox_nano.onnx (set PV_MODELS_DIR or carry .gpucheck/, see this script's header)"
else
    echo "model: $MODEL_DIR/yolox_nano.onnx"
fi
TILES_ARGS=()
if [[ -f "$REPO/.gpucheck/tiles.npz" ]]; then
    TILES_ARGS=(--tiles "$REPO/.gpucheck/tiles.npz")
    echo "tiles: .gpucheck/tiles.npz"
fi

if [[ -n "$MODEL_DIR" ]]; then
    section "Detector: CPU baseline, then $BACKENDS"
    OUT_ARGS=()
    [[ -n "${OUT:-}" ]] && OUT_ARGS=(--out "$OUT")
    PV_MODELS_DIR="$MODEL_DIR" timeout 240 "$PY" -m bench.gpu_pipeline \
        --backends "$BACKENDS" --frames "$FRAMES" --max-tiles "$MAX_TILES" \
        --budget-s "$BUDGET_S" "${TILES_ARGS[@]}" "${OUT_ARGS[@]}"
    status=$?
    if [[ $status -eq 124 ]]; then
        note_missing "time: bench.gpu_pipeline ran past 240 s (the JSON holds what finished)"
    elif [[ $status -ne 0 ]]; then
        note_missing "bench.gpu_pipeline exited with $status"
    fi
fi

section "Summary"
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "nothing missing"
else
    printf 'MISSING: %s\n' "${missing[@]}"
fi
[[ -n "$MODEL_DIR" ]]
