# Slim, non-root image of the gateway. Production sets DATABASE_URL (managed Postgres).
FROM python:3.11-slim AS build
WORKDIR /app
RUN pip install --no-cache-dir "uv==0.13.9"
COPY pyproject.toml requirements.lock ./
RUN uv venv /opt/venv && uv pip sync --python /opt/venv/bin/python requirements.lock
COPY app ./app
COPY migrations ./migrations
# Editable on purpose: the migrations folder sits beside the package at /app, in both stages.
RUN uv pip install --python /opt/venv/bin/python --no-deps -e .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 gateway \
 && mkdir -p /var/lib/motion-gateway && chown gateway:gateway /var/lib/motion-gateway
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 MGW_ENVIRONMENT=prod MGW_LOG_JSON=true \
    MGW_DATA_DIR=/var/lib/motion-gateway
# Uploads (and archives, unless object storage is configured) live here: mount a volume.
VOLUME /var/lib/motion-gateway
USER gateway
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
CMD ["motion-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
