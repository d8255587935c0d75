#!/usr/bin/env bash
# Sets up the gateway and runs it on its embedded defaults (config.yaml: SQLite under ./var,
# CPU, shipped model weights), listening for DICOM on port 11112 as DEID_GATEWAY.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh
umask 077  # the gateway narrows it itself too: nothing it writes is readable by others
exec .venv/bin/deid-gateway serve --config "${DEID_GATEWAY_CONFIG:-config.yaml}" "$@"
