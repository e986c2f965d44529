#!/usr/bin/env bash
# Build the exim-dsninfo target: the Exim of Debian's exim4-daemon-heavy, rebuilt from Debian's
# own exim4 source package (same version, same patches, the heavy flavour's EDITME) with
# EXPERIMENTAL_DSN_INFO=yes, installed into a private prefix. Idempotent: does nothing when the
# binary there is already built from the installed version. Run as root, on Debian 12.
#
#   scripts/build-exim-dsninfo.sh            build if needed (about a minute on 2 cores)
#   scripts/build-exim-dsninfo.sh --force    rebuild
#
# What it changes on the machine: a deb-src entry for the configured Debian mirrors (when there
# is none), the build dependencies of the heavy flavour (-dev packages; Exim itself stays), and
# /opt/mtaconform/exim-dsninfo. The prefix is fixed: fixtures/targets/exim-dsninfo/*.yaml names it,
# and the binary's compiled-in BIN_DIRECTORY (Exim re-executes itself for deliveries and bounces)
# must point at it. The common steps live in scripts/exim-source.sh.
set -euo pipefail
EXIM_BUILD_NAME=build-exim-dsninfo
# shellcheck source=exim-source.sh
. "$(dirname "$0")/exim-source.sh"

PREFIX=/opt/mtaconform/exim-dsninfo
BIN="$PREFIX/bin/exim4"
STAMP="$PREFIX/built-from"
FORCE=${1:-}

exim_require_root
want=$(exim_installed_version)
if [ "$FORCE" != "--force" ] && [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "exim4 $want" ] \
   && "$BIN" -bV 2>/dev/null | grep 'Experimental_DSN_info' >/dev/null; then
  exit 0  # already built from this version
fi
start=$(date +%s)

exim_prepare_sources
work=$(mktemp -d /tmp/mtaconform-exim-dsninfo.XXXXXX)
trap 'rm -rf "$work"' EXIT
exim_fetch_source "$work" "$want"

# Debian's heavy configuration, installed under $PREFIX, plus DSN_INFO.
exim_configure_heavy "$PREFIX"
printf '\n# mtaconform: DSN extra information (doc/experimental-spec.txt)\nEXPERIMENTAL_DSN_INFO=yes\n' \
  >> "$EXIM_SRC/Local/Makefile"
exim_export_build_flags
exim_make "$work/build.log"

# Install, and check the capability is there.
exim_install "$PREFIX"
if ! "$BIN" -bV | grep 'Experimental_DSN_info' >/dev/null; then
  exim_say "the built binary does not report Experimental_DSN_info" >&2
  exit 1
fi
echo "exim4 $want" > "$STAMP"
exim_say "built $("$BIN" -bV | head -n1) with DSN_INFO into $PREFIX in $(( $(date +%s) - start )) s"
