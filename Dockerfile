FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN useradd --create-home --uid 10001 mjbot
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY bot ./bot
COPY adapters ./adapters
# The exact versions CI tested (constraints.txt), not whatever is newest on the day of the build.
RUN pip install -c constraints.txt . && mkdir -p /data /config && chown mjbot /data

USER mjbot
VOLUME ["/data"]
ENV MJBOT_STORAGE__PATH=/data/mjbot.db
# Mount your config at /config/config.toml (secrets may come from MJBOT_* variables instead).
CMD ["mjbot", "run", "--config", "/config/config.toml"]
