# The image for Ray cluster nodes (head and workers) and Prefect workers.
FROM rayproject/ray:2.60.0-py311
WORKDIR /opt/lipdub
COPY pyproject.toml README.md ./
COPY lipdub ./lipdub
RUN pip install --no-cache-dir .
