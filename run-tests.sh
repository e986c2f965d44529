#!/usr/bin/env bash
# Install what is missing, then run the project's own tests: unit, property, and integration
# tests against a real Exim in lab namespaces (two workers, each with its own lab).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
# The tests also cover the optional exim-coverage target (about 35 s to build, once).
MTACONFORM_BUILD_COVERAGE=${MTACONFORM_BUILD_COVERAGE:-1} scripts/setup.sh
exec .venv/bin/pytest -n 2 "$@"
