# edge-agent container image.
#
#   docker build -t edge-agent .
#   docker run -d --name edge-agent --network host --gpus all \
#     -v /etc/edge-agent:/etc/edge-agent:ro -v edge-agent-state:/var/lib/edge-agent edge-agent
#
# --gpus all (or --runtime nvidia) makes the NVIDIA container runtime mount NVML and the
# /dev/nvidia* nodes; NVIDIA_DRIVER_CAPABILITIES=utility asks for NVML only, not CUDA.
# --network host lets the host collector see the host's interfaces and the ASIC collector
# reach miners without NAT; add --pid host for GPU process names (NVML reports host PIDs).
# The image runs as UID 10001; the state volume must be writable by it.

FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Everything the agent needs lives in one virtual environment, copied whole into the final
# stage; the same base image in both stages keeps its interpreter path valid.
RUN python -m venv /opt/edge-agent/venv

WORKDIR /src
COPY pyproject.toml README.md ./
COPY edge_agent ./edge_agent
# Every runtime dependency ships manylinux wheels for amd64 and arm64: no compiler needed.
RUN /opt/edge-agent/venv/bin/pip install --no-cache-dir --only-binary=:all: --no-binary=edge-agent . \
 && /opt/edge-agent/venv/bin/edge-agent --version


FROM python:3.11-slim-bookworm

ARG UID=10001
ARG GID=10001

RUN groupadd --system --gid "${GID}" edge-agent \
 && useradd --system --uid "${UID}" --gid "${GID}" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin edge-agent \
 && install -d -m 0755 /etc/edge-agent \
 && install -d -m 0700 -o "${UID}" -g "${GID}" /var/lib/edge-agent

COPY --from=builder /opt/edge-agent/venv /opt/edge-agent/venv

# STATE_DIRECTORY is what systemd sets for the unit; config.py puts the MQTT outbox there.
ENV PATH=/opt/edge-agent/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STATE_DIRECTORY=/var/lib/edge-agent \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=utility

VOLUME ["/var/lib/edge-agent"]
EXPOSE 9105
USER ${UID}:${GID}

# Healthy when the metrics endpoint answers: any HTTP response counts, 401 from basic auth
# included, except a server error. The slim image has no curl, hence stdlib urllib. Point
# EDGE_AGENT_HEALTHCHECK_URL elsewhere when prometheus.listen is not :9105 or uses TLS.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, ssl, sys, urllib.error, urllib.request\nurl = os.environ.get('EDGE_AGENT_HEALTHCHECK_URL', 'http://127.0.0.1:9105/metrics')\ntry:\n    urllib.request.urlopen(url, timeout=8, context=ssl._create_unverified_context()).read(1)\nexcept urllib.error.HTTPError as exc:\n    sys.exit(exc.code >= 500)\nexcept Exception as exc:\n    sys.exit(f'unhealthy: {url}: {exc}')\n"]

ENTRYPOINT ["edge-agent"]
CMD ["run", "--config", "/etc/edge-agent/config.toml"]
