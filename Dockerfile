FROM python:3.11-slim-bookworm
WORKDIR /app
COPY apt-packages.txt scripts/install-apt.sh ./
RUN bash install-apt.sh apt-packages.txt && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY dte_core ./dte_core
COPY ai_service ./ai_service
COPY embeddings ./embeddings
COPY evals ./evals
COPY prompts ./prompts
COPY alembic.ini ./
# torch from PyTorch's CPU index: the default wheel carries several GB of CUDA
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu .
ENV DTE_AI_DATA_DIR=/data \
    DTE_AI_PROMPTS_DIR=/app/prompts \
    HF_HUB_OFFLINE=1 \
    OMP_THREAD_LIMIT=1 \
    MALLOC_ARENA_MAX=2
VOLUME /data
EXPOSE 8000
CMD ["dte-ai", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
