FROM python:3.11-slim-bookworm
WORKDIR /app
COPY apt-packages.txt scripts/install-apt.sh ./
RUN bash install-apt.sh apt-packages.txt && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY dte_core ./dte_core
COPY ai_service ./ai_service
COPY alembic.ini ./
RUN pip install --no-cache-dir .
ENV DTE_AI_DATA_DIR=/data
VOLUME /data
EXPOSE 8000
CMD ["dte-ai", "serve", "--host", "0.0.0.0", "--port", "8000"]
