# packflow worker image: `docker build -t packflow-worker .` (see README, "Running with Docker").
# Configure it with PACKFLOW_* environment variables (see `packflow-worker --help`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY packflow ./packflow
COPY worker ./worker
RUN pip install ".[compression]"

COPY examples ./examples
RUN useradd --create-home --uid 10001 packflow
USER packflow

ENV PACKFLOW_HEALTH_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]

ENTRYPOINT ["packflow-worker"]
