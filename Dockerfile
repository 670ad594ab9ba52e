# The operator image: slim, non-root, read-only-root-filesystem friendly (writes only to /tmp).
# Not built on the development machines (no container engine there); CI with Docker builds it:
#   docker build -t ghcr.io/llmops-dev/llmops-operator:0.1.0 .
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11.11-slim-bookworm
COPY --from=build /install /usr/local
RUN groupadd --system --gid 65532 llmops && useradd --system --uid 65532 --gid 65532 --home-dir /tmp llmops
USER 65532:65532
ENV HOME=/tmp MPLCONFIGDIR=/tmp/matplotlib PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
EXPOSE 8080 8081
ENTRYPOINT ["llmops-operator"]
