# Test stand-in for postgres:15, built from Debian's postgresql-15 because no container registry
# is reachable here (docs/platform.md lists what differs). It honours the official image's
# interface that docker-compose.yaml uses: POSTGRES_USER, POSTGRES_PASSWORD(_FILE), POSTGRES_DB,
# PGDATA at /var/lib/postgresql/data, pg_isready on PATH, port 5432.
ARG BASE=dataplatform-test/debian:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
    && chmod 700 /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# Unlike the official image, which starts as root and drops to postgres, this one never runs as
# root: the data volume gets its owner from the directory above.
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
