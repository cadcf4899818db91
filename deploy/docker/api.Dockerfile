# syntax=docker/dockerfile:1.7
# polyvision-api: the FastAPI facade (`polyvision api`) and the chart's hook Jobs and CronJob
# (`polyvision db upgrade`, `temporal apply`, `keys rotate`, the S3 lifecycle script).
# Installs only the `api` extra. Build from the repository root:
#   docker build -f deploy/docker/api.Dockerfile -t "$REGISTRY/polyvision-api:$TAG" .
# Pin the base by digest where you build (python:3.11.13-slim-bookworm@sha256:...).
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# --- build: compile the native module into a wheel, install it with its extra into a venv ---
FROM ${PYTHON_IMAGE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian packages follow the pinned base image's snapshot; the base tag is the pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ cmake ninja-build \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY . .
# The project's own wheel, built one line before; its dependencies follow pyproject's ranges.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir pip==26.3 \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && wheel="$(find /wheels -name 'polyvision-*.whl')" \
    && pip install --no-cache-dir "${wheel}[api]"
# `polyvision temporal apply` reads temporal/namespace.yaml beside the installed packages.
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    && install -D -m 0644 temporal/namespace.yaml "${site}/temporal/namespace.yaml" \
    && polyvision --help >/dev/null

# --- runtime: the venv only, no compiler, non-root ---
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="polyvision-api" \
      org.opencontainers.image.description="Polyvision API and its migration/setup jobs" \
      org.opencontainers.image.source="deploy/docker/api.Dockerfile"
RUN groupadd --system --gid 10001 polyvision \
    && useradd --system --uid 10001 --gid polyvision --no-create-home \
       --home-dir /var/lib/polyvision --shell /usr/sbin/nologin polyvision \
    && install -d -o polyvision -g polyvision /var/lib/polyvision
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PV_DATA_DIR=/var/lib/polyvision \
    PV_API_HOST=0.0.0.0 \
    PV_API_PORT=8000
WORKDIR /var/lib/polyvision
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["polyvision"]
CMD ["api"]
