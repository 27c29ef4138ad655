# syntax=docker/dockerfile:1
# NextStep: the API, provider webhooks and scheduler in one process (`nextstep serve`).
#   docker build -t nextstep .
#   docker run -p 8000:8000 -v nextstep-data:/data -e NEXTSTEP_API_KEYS=... nextstep
#
# Three stages. `deps` turns the locked dependency set (requirements.lock: pinned, hashed;
# regenerate with `bash scripts/lock`) into wheels, and is rebuilt only when the lock
# changes; `build` makes the NextStep wheel from the sources; the final stage installs
# wheels only, mounted from those stages for the one RUN that needs them, so no source
# file, wheel or pip cache is left in any layer of the image. Dependencies are installed
# in their own layer before the code: a code change reinstalls NextStep, nothing else.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY requirements.lock /tmp/requirements.lock
RUN pip wheel --require-hashes --no-deps --only-binary=:all: \
        --wheel-dir /wheels -r /tmp/requirements.lock

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
COPY requirements-build.lock /tmp/requirements-build.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements-build.lock
WORKDIR /src
COPY pyproject.toml LICENSE ./
COPY app ./app
COPY connectors ./connectors
COPY policies ./policies
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system nextstep \
    && useradd --system --gid nextstep --home-dir /app --shell /usr/sbin/nologin nextstep \
    && mkdir -p /app /data \
    && chown nextstep:nextstep /app /data

# Dependencies: the locked set, hash-checked, from the deps stage's wheels only.
RUN --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    --mount=type=bind,from=deps,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --require-hashes --no-deps \
        -r /tmp/requirements.lock

# The code: NextStep's own wheel (its dependencies are all installed above).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --no-deps /wheels/nextstep-*.whl

WORKDIR /app
# The embedded SQLite database (and its secret key file, nextstep.db.key) live on the
# volume; set a postgresql+psycopg:// URL and NEXTSTEP_SECRET_KEY to run several replicas
# against PostgreSQL instead.
# Shutdown: `docker stop` sends STOPSIGNAL, waits 10 s, then kills. A grace of 8 s lets a
# replica finish and hand back its work inside that; raise both together (README).
ENV NEXTSTEP_DATABASE_URL=sqlite:////data/nextstep.db \
    NEXTSTEP_SHUTDOWN_GRACE_SECONDS=8
VOLUME ["/data"]

USER nextstep
EXPOSE 8000
STOPSIGNAL SIGTERM

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["nextstep", "serve", "--host", "0.0.0.0", "--port", "8000"]
