# The images of compose.yaml, built with no image registry: every stage starts from
# labyard/base:bookworm, which runner/build-base.sh makes with debootstrap + docker import.
# scripts/build-images builds the base and both targets (and puts local wheels in the
# context); by hand:
#
#   runner/build-base.sh
#   docker build --target postgres -t labyard/postgres:15 .
#   docker build --target server -t labyard/server:latest .
#
# Python packages come from PyPI (PIP_INDEX_URL: a mirror); wheels/ in the context, if any,
# is looked at first (scripts/build-images puts LABYARD_WHEELS there, e.g. a CPU torch).
ARG BASE=labyard/base:bookworm

# PostgreSQL from Debian, initialised on first start from POSTGRES_USER/_PASSWORD/_DB.
FROM ${BASE} AS postgres
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data \
 && install -d -o postgres -g postgres /var/run/postgresql
COPY scripts/compose-postgres.sh /usr/local/bin/compose-postgres.sh
ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/15/bin:$PATH
USER postgres
EXPOSE 5432
CMD ["/usr/local/bin/compose-postgres.sh"]

# The platform's virtual environment: dependencies first (a layer kept while pyproject.toml
# is unchanged), then Labyard itself.
FROM ${BASE} AS build
ARG PIP_INDEX_URL=https://pypi.org/simple
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/labyard
# wheel[s]: the context's wheels/ folder when there is one (its files land in /src). The
# README is a stub here, so editing it does not reinstall the dependencies.
COPY pyproject.toml setup.py wheel[s] /src/
RUN touch /src/README.md \
 && /opt/labyard/bin/pip install --index-url "$PIP_INDEX_URL" --find-links /src /src \
 && rm -f /src/*.whl
COPY . /src
RUN /opt/labyard/bin/pip install --no-deps --force-reinstall /src \
 && /opt/labyard/bin/labyard --help >/dev/null

FROM ${BASE} AS server
COPY --from=build /opt/labyard /opt/labyard
RUN useradd --system --uid 64001 --user-group --home-dir /data --create-home labyard
ENV PATH=/opt/labyard/bin:$PATH PYTHONDONTWRITEBYTECODE=1 \
    LABYARD_DATA_DIR=/data LABYARD_HOST=0.0.0.0
USER labyard
EXPOSE 8000
CMD ["labyard", "serve"]
