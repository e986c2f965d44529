#!/usr/bin/env bash
# Install what is missing, then run the full conformance suite against the default target
# (a sandboxed Exim). Reports: reports/latest/{index.html,results.json,junit.xml}.
# Extra arguments go to `mtaconform run` (see .venv/bin/mtaconform run --help).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/mtaconform run "$@"
