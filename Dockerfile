# The spancost collector: `spancost serve` receiving OTLP on 4317 (gRPC) and 4318 (HTTP).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/spancost
COPY pyproject.toml README.md ./
COPY spancost ./spancost
COPY instrumentation ./instrumentation
COPY collector ./collector
COPY dashboards ./dashboards
# `embedded` brings chdb too, so the same image can also serve an embedded store on a volume.
RUN pip install ".[embedded]" && useradd --system --uid 10001 --home-dir /var/lib/spancost spancost \
    && mkdir -p /var/lib/spancost/spool && chown -R spancost /var/lib/spancost

USER spancost
WORKDIR /var/lib/spancost
EXPOSE 4317 4318
HEALTHCHECK --interval=10s --timeout=3s --retries=6 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:4318/health').status != 200)"
ENTRYPOINT ["spancost"]
CMD ["serve", "--host", "0.0.0.0"]
