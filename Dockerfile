FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 mjbot
WORKDIR /app
# Exactly what `pip install .` needs: every package pyproject's packages.find includes.
# tests/test_dockerfile.py installs these paths alone in a clean venv and runs the result.
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY adapters ./adapters
COPY mjsim ./mjsim
# The exact versions CI tested (constraints.txt), not whatever is newest on the day of the build.
RUN pip install -c constraints.txt . && mkdir -p /data /config && chown mjbot /data

USER mjbot
VOLUME ["/data"]
# Inside the container the receivers listen on every interface (the container's network is the
# boundary; publish or balance only what should be reachable): the notifyHook receiver and
# /status, the Mini App, Telegram's webhook. The environment overrides the config file.
ENV MJBOT_STORAGE__PATH=/data/mjbot.db \
    MJBOT_TRACKING__LISTEN=0.0.0.0:8090 \
    MJBOT_TELEGRAM__WEBAPP_LISTEN=0.0.0.0:8091 \
    MJBOT_TELEGRAM__WEBHOOK_LISTEN=0.0.0.0:8092
EXPOSE 8090 8091 8092
# /status answers loopback only, and the check runs inside the container: it asks 127.0.0.1
# on the port the receiver listens on. A refusal (403), no answer or a dead process fail it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ['MJBOT_TRACKING__LISTEN'].rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/status', timeout=4)"]
# Mount your config at /config/config.toml (secrets may come from MJBOT_* variables instead).
CMD ["mjbot", "run", "--config", "/config/config.toml"]
