#!/usr/bin/env bash
# Install everything mtaconform needs on Debian 12, idempotently. Run as root.
#   - system packages (apt-get): Exim, iproute2, openssl, Python's venv
#   - the Python package and its dependencies into .venv/ at the repository root
# Quiet when there is nothing to do; every step says what it does otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: run as root (apt-get, network namespaces)" >&2
  exit 2
fi

APT_PACKAGES=(exim4-daemon-heavy iproute2 dnsutils openssl ca-certificates python3 python3-venv python3-pip procps)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  # The lab runs its own Exim in a namespace: don't let the package start a system daemon.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  trap '[ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# Reinstall only when the dependencies changed.
stamp=".venv/.mtaconform-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -e "$stamp" ] || [ ! -x .venv/bin/mtaconform ]; then
  echo "setup: installing Python dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
  rm -f .venv/.mtaconform-*
  touch "$stamp"
fi

# The exim-dsninfo target (issue #7): Debian's Exim rebuilt from its own source package with
# EXPERIMENTAL_DSN_INFO, into /opt/mtaconform/exim-dsninfo. About a minute on two idle cores the
# first time, nothing afterwards. MTACONFORM_BUILD_DSNINFO=0 skips it; a failed build does not stop
# the setup. Either way the target is then unavailable and its scenarios and tests skip, saying so.
if [ "${MTACONFORM_BUILD_DSNINFO:-1}" != 0 ]; then
  scripts/build-exim-dsninfo.sh \
    || echo "setup: exim-dsninfo was not built (see above); its scenarios will be skipped" >&2
fi

# The opensmtpd target (issue #9): Debian's opensmtpd package unpacked, never installed (apt would
# remove Exim), into /opt/mtaconform/opensmtpd, with its users opensmtpd and opensmtpq. A few
# seconds the first time, nothing afterwards. MTACONFORM_OPENSMTPD=0 skips it; a failure does not
# stop the setup. Either way the target is then unavailable and its scenarios and tests skip.
if [ "${MTACONFORM_OPENSMTPD:-1}" != 0 ]; then
  scripts/build-opensmtpd.sh \
    || echo "setup: opensmtpd was not unpacked (see above); its scenarios will be skipped" >&2
fi

# The postfix target (issue #9): Debian's postfix package unpacked, never installed (apt would
# remove Exim), into /opt/mtaconform/postfix, with its mail owner mtaconform-postfix and setgid
# group mtaconform-postdrop. A few seconds the first time, nothing afterwards. MTACONFORM_POSTFIX=0
# skips it; a failure does not stop the setup. Either way the target is then unavailable and its
# scenarios and tests skip, saying so.
if [ "${MTACONFORM_POSTFIX:-1}" != 0 ]; then
  scripts/build-postfix.sh \
    || echo "setup: postfix was not unpacked (see above); its scenarios will be skipped" >&2
fi

# The exim-coverage target (issue #8), optional: Exim rebuilt from the same Debian source with gcc
# --coverage into /opt/mtaconform/exim-coverage, for `mtaconform coverage`. Built only when
# MTACONFORM_BUILD_COVERAGE=1 (about 35 s on two idle cores); a failure does not stop the setup.
if [ "${MTACONFORM_BUILD_COVERAGE:-0}" = 1 ]; then
  scripts/build-exim-coverage.sh \
    || echo "setup: exim-coverage was not built (see above); mtaconform coverage will say so" >&2
fi
