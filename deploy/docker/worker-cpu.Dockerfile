# syntax=docker/dockerfile:1.7
# polyvision-worker: `polyvision worker` for the polyvision-cpu queue, and for polyvision-nvenc
# on GPUs with a hardware encoder (PyAV's FFmpeg carries NVENC; the NVIDIA container runtime
# mounts the driver's libnvidia-encode when NVIDIA_DRIVER_CAPABILITIES includes `video`).
# Installs only the `worker` extra. Build from the repository root:
#   docker build -f deploy/docker/worker-cpu.Dockerfile -t "$REGISTRY/polyvision-worker:$TAG" .
# Pin the base by digest where you build (python:3.11.13-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ cmake ninja-build \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY . .
# trackeval goes in without its dependencies, exactly as the Makefile installs it (its metadata
# pulls opencv-python, a second cv2 that clobbers the headless one).
# The project's own wheel, built one line before; its dependencies follow pyproject's ranges.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir pip==26.3 \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && wheel="$(find /wheels -name 'polyvision-*.whl')" \
    && pip install --no-cache-dir "${wheel}[worker]" \
    && pip install --no-cache-dir --no-deps trackeval==1.3.0
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && install -D -m 0644 temporal/namespace.yaml "${site}/temporal/namespace.yaml" \
    && python -c 'import native, av, cv2, onnxruntime' \
    && polyvision --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="polyvision-worker" \
      org.opencontainers.image.description="Polyvision worker: cpu and nvenc task queues" \
      org.opencontainers.image.source="deploy/docker/worker-cpu.Dockerfile"
RUN groupadd --system --gid 10001 polyvision \
    && useradd --system --uid 10001 --gid polyvision --no-create-home \
       --home-dir /var/lib/polyvision --shell /usr/sbin/nologin polyvision \
    && install -d -o polyvision -g polyvision /var/lib/polyvision /opt/polyvision/models
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PV_DATA_DIR=/var/lib/polyvision \
    PV_MODELS_DIR=/opt/polyvision/models \
    PV_WORKER_METRICS_PORT=9464
WORKDIR /var/lib/polyvision
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["polyvision"]
CMD ["worker", "--queues", "cpu"]
