# syntax=docker/dockerfile:1
# reportjobs: one image for the gateway, the operator and the worker.
# Works with `docker build` and `buildah bud`. BASE_IMAGE must provide `python3` with the venv
# module (python:3.11-slim-bookworm, or a Debian bookworm with python3-venv); both stages use it so
# the venv's interpreter symlink resolves in the final image.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Third-party dependencies first (cached layer), pinned and hash-checked.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
# Then our distribution, without touching the pinned dependencies.
COPY pyproject.toml ./
COPY model ./model
COPY kube ./kube
COPY gateway ./gateway
COPY operator ./operator
COPY worker ./worker
RUN pip install --no-cache-dir --no-deps . \
 && for script in reportjobs-gateway reportjobs-operator reportjobs-worker; do \
      test -x "/opt/venv/bin/$script" || { echo "missing console script $script" >&2; exit 1; }; \
    done

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="reportjobs" \
      org.opencontainers.image.description="Deduplicated report jobs on Kubernetes: gateway, operator and worker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.vendor="reportjobs"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    USER=reportjobs \
    LOGNAME=reportjobs
# USER/LOGNAME: uid 10001 has no passwd entry, and getpass.getuser() needs a name.
WORKDIR /tmp
# Numeric, so no passwd entry is needed and Kubernetes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 8080
CMD ["reportjobs-gateway"]
