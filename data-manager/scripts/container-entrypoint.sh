#!/bin/sh
# The platform image's entrypoint. Secrets reach the containers as files (compose `secrets:`,
# Kubernetes secret volumes), never as container environment, which `docker inspect` shows to
# anyone with the socket. For each NAME_FILE that names a file under /run/secrets, this exports
# NAME with the file's content to the command it starts, so Dagster's dagster.yaml (`env:
# POSTGRES_PASSWORD`) and the settings layer read it as usual.
set -eu
for pair in $(env | grep -E '^[A-Z][A-Z0-9_]*_FILE=/run/secrets/' || true); do
    name="${pair%%_FILE=*}"
    file="${pair#*=}"
    if [ -r "$file" ]; then
        export "$name=$(cat "$file")"
    fi
done
exec "$@"
