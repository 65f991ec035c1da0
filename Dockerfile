# The streamdrift monitor image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY monitor ./monitor
COPY kernels ./kernels
COPY schemas ./schemas
COPY examples ./examples
RUN pip install --no-cache-dir -c constraints.txt .
ENV NUMBA_CACHE_DIR=/tmp/numba-cache
EXPOSE 9108
ENTRYPOINT ["streamdrift"]
CMD ["run", "-c", "/app/examples/monitor.yaml"]
