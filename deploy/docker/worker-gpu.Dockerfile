# syntax=docker/dockerfile:1.7
# polyvision-worker-gpu: `polyvision worker --queues gpu` (stitch, detect, vcam render) on the
# CUDA runtime, with TensorRT from the `gpu` extra's wheels (tensorrt pulls its CUDA 12 libraries
# from PyPI) and the native module's CUDA kernels compiled by nvcc in the build stage.
# Installs only the `gpu` extra. Build from the repository root:
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t "$REGISTRY/polyvision-worker-gpu:$TAG" .
# Ubuntu 24.04's Python is 3.12 (the project needs >= 3.11); build and runtime share it, so the
# venv moves between the stages unchanged. Pin both bases by digest where you build.
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.8.1-devel-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
# SM 7.5 T4, 8.0 A100, 8.6 A10/A10G, 8.9 L4/L40/L40S, 9.0 H100/H200 (+PTX for newer GPUs).
ARG CUDA_ARCHITECTURES="75-real;80-real;86-real;89-real;90"

FROM ${CUDA_DEVEL_IMAGE} AS build
ARG CUDA_ARCHITECTURES
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       python3 python3-venv python3-dev g++ cmake ninja-build \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY . .
# The project's own wheel, built one line before; its dependencies follow pyproject's ranges.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir pip==26.3 \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels \
       -C "cmake.define.CMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHITECTURES}" . \
    && wheel="$(find /wheels -name 'polyvision-*.whl')" \
    && pip install --no-cache-dir "${wheel}[gpu]" \
    && pip install --no-cache-dir --no-deps trackeval==1.3.0
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && install -D -m 0644 temporal/namespace.yaml "${site}/temporal/namespace.yaml" \
    && python -c 'import native._native_cuda, tensorrt' \
    && polyvision --help >/dev/null

FROM ${CUDA_RUNTIME_IMAGE} AS runtime
LABEL org.opencontainers.image.title="polyvision-worker-gpu" \
      org.opencontainers.image.description="Polyvision worker: gpu task queue (CUDA, TensorRT)" \
      org.opencontainers.image.source="deploy/docker/worker-gpu.Dockerfile"
# The interpreter the venv was built with; nothing else from apt.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 polyvision \
    && useradd --system --uid 10001 --gid polyvision --no-create-home \
       --home-dir /var/lib/polyvision --shell /usr/sbin/nologin polyvision \
    && install -d -o polyvision -g polyvision /var/lib/polyvision /opt/polyvision/models
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PV_DATA_DIR=/var/lib/polyvision \
    PV_MODELS_DIR=/opt/polyvision/models \
    PV_WORKER_METRICS_PORT=9464 \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /var/lib/polyvision
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["polyvision"]
CMD ["worker", "--queues", "gpu"]
