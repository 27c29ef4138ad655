# NextStep: the API, provider webhooks and scheduler in one process (`nextstep serve`).
#   docker build -t nextstep .
#   docker run -p 8000:8000 -v nextstep-data:/data -e NEXTSTEP_API_KEYS=... nextstep
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The same install as the README's: `pip install .` from the project root. The sources
# are only needed to build, so they do not stay in the image.
COPY . /src
RUN cd /src && pip install . && rm -rf /src

RUN groupadd --system nextstep \
    && useradd --system --gid nextstep --home-dir /app --shell /usr/sbin/nologin nextstep \
    && mkdir -p /app /data \
    && chown nextstep:nextstep /app /data

WORKDIR /app
# The embedded SQLite database lives on the volume; set a postgresql+psycopg:// URL to
# run several replicas against PostgreSQL instead.
ENV NEXTSTEP_DATABASE_URL=sqlite:////data/nextstep.db
VOLUME ["/data"]

USER nextstep
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

CMD ["nextstep", "serve", "--host", "0.0.0.0", "--port", "8000"]
