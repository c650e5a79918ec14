# Test stand-in for python:3.11-slim-bookworm, built from Debian's own packages because no
# container registry is reachable here (docs/platform.md lists what differs). Same Debian
# release, same Python minor version (Debian's 3.11), python/pip on PATH and pip allowed to
# install outside a venv, as in the official image.
ARG BASE=dataplatform-test/debian:bookworm
FROM ${BASE}
ENV LANG=C.UTF-8
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/* \
    && rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python
CMD ["python3"]
