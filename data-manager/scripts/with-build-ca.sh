#!/bin/sh
# Build time only: when the build passes a CA bundle as the `ca_bundle` secret (a network whose
# HTTPS goes through a local CA, as on the test machines), pip and uv trust it for this one
# command. The bundle is a secret mount, so no layer and no `docker history` line keeps it;
# a build without it uses the tools' own roots.
if [ -s /run/secrets/ca_bundle ]; then
    export SSL_CERT_FILE=/run/secrets/ca_bundle PIP_CERT=/run/secrets/ca_bundle
fi
exec "$@"
