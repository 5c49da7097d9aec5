# syntax=docker/dockerfile:1
# One image recipe for every service; SERVICE picks which. Build from the repository root:
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=writer -t pressroom/writer .
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=gateway --build-arg PORT=8000 \
#     -t pressroom/gateway .
#
# SERVICE is a directory under services/ (its package is pressroom_<SERVICE>); it has no default, so a
# build without it fails instead of producing an image of some other service. PORT is only documented
# through EXPOSE: 8080 is PRESSROOM_HEALTH_PORT, the gateway serves on PRESSROOM_GATEWAY_PORT (8000).
# docker-compose.yml passes both; tests/test_compose.py resolves this file for every service.
# BASE_IMAGE is any image with Python 3.11 on PATH as `python` (tests/compose_stack.py uses one built
# from a debootstrap root filesystem where no registry can be reached).
# Every tool and package is pinned with hashes: pip installs the build backend (hatchling) from
# requirements/build.lock and builds our packages without build isolation, so nothing unpinned is fetched.

ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Where the build's own TLS must trust an extra authority: a CA bundle mounted into the build and named
# here (never copied into a layer). Empty means pip's own bundle.
ARG PIP_CERT

# The build backend, hash-checked; shared by every service's build.
COPY requirements/build.lock requirements/build.lock
RUN pip install --no-cache-dir --require-hashes -r requirements/build.lock

# Declared after the venv layer, which therefore stays shared between the services' builds.
ARG SERVICE
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=<a directory under services/>" >&2; exit 1; }

# Third-party dependencies, pinned and hash-checked; this layer is rebuilt only when the lock changes.
COPY services/${SERVICE}/requirements.lock services/${SERVICE}/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r services/${SERVICE}/requirements.lock

# The workspace's own packages, without dependencies: the lock above already holds all of them.
COPY libs/contracts libs/contracts
COPY libs/runtime libs/runtime
COPY services/${SERVICE} services/${SERVICE}
RUN pip install --no-cache-dir --no-deps --no-build-isolation libs/contracts libs/runtime services/${SERVICE}


FROM ${BASE_IMAGE}
# Build args end at each FROM: both are declared again to be visible in this stage.
ARG SERVICE
ARG PORT=8080
# Build args do not exist at run time, so the service name is kept in the image's environment
# (also visible to `docker inspect`) and the CMD below reads it through a shell.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    PRESSROOM_LOG_FORMAT=json \
    PRESSROOM_SERVICE=${SERVICE}
RUN groupadd --system --gid 10001 pressroom \
 && useradd --system --uid 10001 --gid pressroom --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin pressroom
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
# The HTTP port with GET /healthz: PRESSROOM_HEALTH_PORT (8080), or PRESSROOM_GATEWAY_PORT (8000).
EXPOSE ${PORT}
# An exec-form CMD cannot expand variables, hence `sh -c`; `exec` replaces the shell with Python, so
# Python is PID 1 and receives SIGTERM itself (stop_grace_period relies on it to drain in-flight work).
CMD ["sh", "-c", "exec python -m \"pressroom_${PRESSROOM_SERVICE}\""]
