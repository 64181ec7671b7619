# MONAI Application Package (MAP) of the glioblastoma GTV contouring app, laid out as the MONAI Deploy / Holoscan
# application package specification and holoscan-cli's packager lay it out:
#   /opt/holoscan/app      the application (python3 /opt/holoscan/app)     /etc/holoscan/app.json, pkg.json  manifests
#   /opt/holoscan/models   one folder per model bundle                      /var/holoscan/app.yaml            app.yaml
#   /var/holoscan/input, output, logs   working folders (HOLOSCAN_WORKDIR)   /var/holoscan/tools               entrypoint
#
# Production (GPU host, TensorRT in the base; the registries reachable):
#   docker build -t gbm-gtv-map:0.1.0 .
# Offline / air-gapped, as CI builds it (see docs/deployment.md; `make map` does this):
#   docker build --build-arg BASE_IMAGE=gbm-gtv-map-base:bookworm --build-arg WHEELHOUSE=build/wheelhouse \
#       -t gbm-gtv-map:0.1.0 .
# The base must provide python3 (3.10-3.12) with the venv module; Debian 12 and Ubuntu 24.04 based images do.

# NGC TensorRT 25.11: Ubuntu 24.04, Python 3.12, CUDA 13.0, TensorRT 10.13 (CUDA 13 matches holoscan-cu13).
# The TensorRT back end supports TensorRT 10.x and 11.x (strongly typed network from models/model_fp16.onnx).
ARG BASE_IMAGE=nvcr.io/nvidia/tensorrt:25.11-py3

# ---- build: the Python environment, from the wheelhouse when one is given (the wheels stay out of the image) ----
FROM ${BASE_IMAGE} AS build
ARG WHEELHOUSE=deploy/map/no-wheelhouse
COPY pyproject.toml tools/map/requirements.py /tmp/build/
COPY ${WHEELHOUSE} /tmp/wheelhouse/
RUN set -eu; \
    python3 /tmp/build/requirements.py /tmp/build/pyproject.toml > /tmp/build/requirements.txt; \
    python3 -m venv --system-site-packages /opt/holoscan/venv; \
    if ls /tmp/wheelhouse/*.whl >/dev/null 2>&1; then \
        pipsrc="--no-index --find-links /tmp/wheelhouse"; \
        [ -f /tmp/wheelhouse/constraints.txt ] && pipsrc="$pipsrc -c /tmp/wheelhouse/constraints.txt"; \
    else pipsrc=""; fi; \
    /opt/holoscan/venv/bin/pip install --no-cache-dir --disable-pip-version-check $pipsrc \
        -r /tmp/build/requirements.txt; \
    find /opt/holoscan/venv -path '*/nvidia/cu13/lib' -type d > /tmp/build/cudart.conf

# ---- release: the MAP ----
FROM ${BASE_IMAGE} AS release
ARG UID=1000
ARG GID=1000

# The one place the MAP's paths are set; tools/map/manifests.py copies them into app.json and pkg.json.
# Caches go to /tmp, so that the container runs with a read-only root file system (Kubernetes, docs/deployment.md).
ENV HOLOSCAN_WORKDIR=/var/holoscan \
    HOLOSCAN_INPUT_PATH=/var/holoscan/input/ \
    HOLOSCAN_OUTPUT_PATH=/var/holoscan/output/ \
    HOLOSCAN_APPLICATION=/opt/holoscan/app \
    HOLOSCAN_MODEL_PATH=/opt/holoscan/models \
    HOLOSCAN_DOCS_PATH=/opt/holoscan/docs \
    HOLOSCAN_CONFIG_PATH=/var/holoscan/app.yaml \
    HOLOSCAN_APP_MANIFEST_PATH=/etc/holoscan/app.json \
    HOLOSCAN_PKG_MANIFEST_PATH=/etc/holoscan/pkg.json \
    HOLOSCAN_LOGS_PATH=/var/holoscan/logs \
    HOLOSCAN_TIMEOUT=0 \
    HOLOSCAN_LOG_LEVEL=WARN \
    PATH=/opt/holoscan/venv/bin:$PATH \
    PYTHONPATH=/opt/holoscan/app \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    CUPY_CACHE_DIR=/tmp/cupy

# A non-root user owns only the working folders; the application, models and manifests stay read-only to it.
RUN set -eu; \
    if id -u ubuntu >/dev/null 2>&1; then userdel ubuntu; fi; \
    groupadd -f -g "$GID" holoscan; \
    useradd -m -u "$UID" -g "$GID" -s /bin/bash holoscan; \
    mkdir -p /etc/holoscan /opt/holoscan/docs "$HOLOSCAN_INPUT_PATH" "$HOLOSCAN_OUTPUT_PATH" "$HOLOSCAN_LOGS_PATH"; \
    chown -R holoscan:holoscan "$HOLOSCAN_WORKDIR"

COPY --from=build /opt/holoscan/venv /opt/holoscan/venv
# libcudart.so.13 (Holoscan loads it even on a CPU): the wheel's copy, after any the base image has.
COPY --from=build /tmp/build/cudart.conf /etc/ld.so.conf.d/zz-holoscan-cudart.conf
RUN ldconfig

COPY app.yaml /var/holoscan/app.yaml
COPY models/ /opt/holoscan/models/
COPY tools/map/manifests.py /tmp/manifests.py
RUN python3 /tmp/manifests.py --config /var/holoscan/app.yaml --out /etc/holoscan && rm /tmp/manifests.py

COPY deploy/map/tools /var/holoscan/tools
COPY deploy/map/__main__.py /opt/holoscan/app/__main__.py
COPY app/ /opt/holoscan/app/app/
COPY operators/ /opt/holoscan/app/operators/
RUN python3 -m compileall -q /opt/holoscan/app

# Labels last: their values change with every build and must not invalidate the cached layers above.
ARG BASE_IMAGE
ARG APP_VERSION=unknown
ARG MONAI_DEPLOY_APP_SDK_VERSION=unknown
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
LABEL org.opencontainers.image.title="gbm-gtv-map" \
      org.opencontainers.image.description="Glioblastoma GTV auto-contouring on brain MR: DICOM-SEG, RTSTRUCT and a review report (MONAI Application Package)" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.monai.deploy.app-sdk="${MONAI_DEPLOY_APP_SDK_VERSION}"

WORKDIR /var/holoscan
USER holoscan
ENTRYPOINT ["/var/holoscan/tools"]
