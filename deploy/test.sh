#!/usr/bin/env bash
# Sets up the gateway with its test dependencies (and, as root, the Debian packages of the
# real DICOM peers the tests start: dcmtk, Orthanc, dicom3tools, stunnel), then runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/setup.sh --test
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
