# The safeguarding service as a container image (README.md, "In containers").
#
# Three stages: the web interface's NHS.UK assets (Node.js), the Python environment (wheels only: nothing is
# compiled, so no stage needs a compiler), and the final image: a slim Python with that environment, run as
# an unprivileged user. tests/deploy/test_container.py runs this file's build-stage RUN commands in a
# temporary directory and starts the service from the result, and lints this file with hadolint.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM node:22-bookworm-slim AS assets
WORKDIR /src/web
COPY web/package.json web/package-lock.json web/build.mjs ./
RUN npm ci --no-audit --no-fund --loglevel=error && node build.mjs

FROM ${PYTHON_IMAGE} AS build
ENV VENV=/opt/safeguarding \
    WHEELS=/tmp/wheels \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY src/ src/
COPY --from=assets /src/src/safeguarding/web/static/ src/safeguarding/web/static/
# The project as a wheel, then it and its pinned dependencies from wheels only (--only-binary: a package
# without a wheel for this platform fails the build instead of needing a compiler); the installers are
# removed from the environment afterwards (the venv seeds an old setuptools the service does not use).
RUN python -m venv "$VENV" \
 && "$VENV/bin/pip" wheel --no-deps --wheel-dir "$WHEELS" . \
 && "$VENV/bin/pip" install --only-binary=:all: --constraint constraints.txt "$WHEELS"/safeguarding-*.whl \
 && "$VENV/bin/pip" uninstall --yes setuptools pip \
 && rm -rf "$WHEELS"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="safeguarding" \
      org.opencontainers.image.description="NHS England safeguarding information-sharing services (FGM-IS, CP-IS)" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 safeguarding \
 && useradd --system --uid 10001 --gid safeguarding --home-dir /data --shell /usr/sbin/nologin safeguarding \
 && mkdir -p /data \
 && chown safeguarding:safeguarding /data \
 && chmod 0700 /data
COPY --from=build /opt/safeguarding /opt/safeguarding
ENV PATH=/opt/safeguarding/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SAFEGUARDING_DATA_DIR=/data \
    SAFEGUARDING_HOST=0.0.0.0 \
    SAFEGUARDING_PORT=8443
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8443
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-m", "safeguarding.healthcheck"]
ENTRYPOINT ["safeguarding"]
CMD ["serve", "--sandbox"]
