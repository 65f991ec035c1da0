# The streamdrift monitor image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY monitor ./monitor
COPY kernels ./kernels
COPY schemas ./schemas
COPY examples ./examples
RUN pip install --no-cache-dir -c constraints.txt .
# The wheel holds monitor/ and kernels/ but not schemas/, which monitor/config/build.py reads
# beside the package: run the code from /app, where schemas/ sits next to monitor/.
ENV PYTHONPATH=/app
ENV NUMBA_CACHE_DIR=/tmp/numba-cache
# examples/monitor.yaml names reference.profile: ref.profile (next to it). Build it from the
# same synthetic training data as `streamdrift demo` (100k rows, seed 11), so that
# `streamdrift run -c /app/examples/monitor.yaml` starts without a profile mounted in.
RUN python -c "import pyarrow as pa, pyarrow.parquet as pq; \
from monitor.dev.synthetic import Scenario, generate; \
t = generate(Scenario(n_events=100_000, seed=11)); \
pq.write_table(pa.table({k: v for k, v in t.items() if not k.startswith('_')}), '/tmp/train.parquet')" \
 && streamdrift profile build -c /app/examples/monitor.yaml --input /tmp/train.parquet \
    -o /app/examples/ref.profile \
 && rm /tmp/train.parquet
EXPOSE 9108
ENTRYPOINT ["streamdrift"]
CMD ["run", "-c", "/app/examples/monitor.yaml"]
