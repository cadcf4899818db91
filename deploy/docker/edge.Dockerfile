# syntax=docker/dockerfile:1.7
# polyvision-edge: the edge agent (`polyvision-edge`: provision, upload, watch) for boxes that
# run containers; multi-arch (linux/arm64 for Jetson, linux/amd64). Installs only the `edge`
# extra, without the native module (the agent does not use it). The DeepStream capture
# pipeline (edge/README) runs on the box itself, not in this image. Build from the repo root:
#   docker buildx build --platform linux/arm64,linux/amd64 -f deploy/docker/edge.Dockerfile \
#     -t "$REGISTRY/polyvision-edge:$TAG" .
# Run with the state directory (key, device.json, spool) and the recordings as volumes:
#   docker run -v /var/lib/polyvision-edge:/state -v /recordings:/recordings:ro IMAGE \
#     watch /recordings
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY . .
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# The project's own wheel, built one line before; its dependencies follow pyproject's ranges.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir pip==26.3 \
    && pip wheel --no-cache-dir --no-deps --wheel-dir /wheels -C wheel.cmake=false . \
    && wheel="$(find /wheels -name 'polyvision-*.whl')" \
    && pip install --no-cache-dir "${wheel}[edge]" \
    && polyvision-edge --help >/dev/null

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="polyvision-edge" \
      org.opencontainers.image.description="Polyvision edge agent: signed, resumable uploads" \
      org.opencontainers.image.source="deploy/docker/edge.Dockerfile"
RUN groupadd --system --gid 10001 polyvision \
    && useradd --system --uid 10001 --gid polyvision --no-create-home \
       --home-dir /state --shell /usr/sbin/nologin polyvision \
    && install -d -o polyvision -g polyvision -m 0700 /state
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PV_EDGE_STATE_DIR=/state
VOLUME ["/state"]
USER 10001:10001
ENTRYPOINT ["polyvision-edge"]
CMD ["status"]
