# A small image that runs sessionhub as a non-root user: on the embedded SQLite store by
# default, or on MongoDB when SESSIONHUB_DATABASE_URL is a mongodb:// URL (docker-compose.yml).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md __init__.py ./
COPY adapters adapters
COPY auth auth
COPY domain domain
COPY realtime realtime
COPY resolvers resolvers
COPY schema schema
COPY server server
COPY storage storage
# Every part a deployment may use: the MongoDB store (docker-compose.yml runs on it),
# PDF/DOCX exports and offline titles.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[mongo,export,titles]'

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/sessionhub --create-home sessionhub
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'sessionhub[mongo,export,titles]' \
    && rm -rf /wheels
USER sessionhub
WORKDIR /var/lib/sessionhub
ENV SESSIONHUB_HOST=0.0.0.0 \
    SESSIONHUB_PORT=8000 \
    SESSIONHUB_DATABASE_URL=sqlite:////var/lib/sessionhub/sessionhub.db \
    SESSIONHUB_ENVIRONMENT=production \
    SESSIONHUB_LOG_JSON=true
EXPOSE 8000
VOLUME ["/var/lib/sessionhub"]
# Liveness, not readiness: Swarm (and other supervisors) replace a container whose health
# check fails, and a replacement does not cure a full or failing disk, it only loops.
# Readiness (/readyz) is for what routes traffic: docker-compose.yml overrides this check
# with it, where an unhealthy container is shown, not replaced. urlopen raises on a
# non-2xx answer, which exits non-zero.
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["sessionhub", "serve"]
