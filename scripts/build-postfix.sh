#!/usr/bin/env bash
# Unpack the postfix target: Debian's own postfix package, unpacked (never installed: it conflicts
# with Exim) into a private prefix, with a mail owner and a setgid group of its own. Idempotent:
# does nothing when the prefix already holds the candidate version. Run as root, on Debian 12.
#
#   scripts/build-postfix.sh            unpack if needed (a few seconds)
#   scripts/build-postfix.sh --force    unpack again
#
# What it changes on the machine: the libraries postfix needs that are missing (plain library
# packages, which do not conflict with Exim), the system user mtaconform-postfix and the group
# mtaconform-postdrop, and /opt/mtaconform/postfix. The prefix is fixed:
# fixtures/targets/postfix/postfix.yaml names it. Nothing is setgid there: the harness runs every
# Postfix command as root (a setgid binary would ignore LD_LIBRARY_PATH, and these binaries find
# their libpostfix-*.so only through it; LAB-NOTES "Postfix from a private prefix").
set -euo pipefail

PREFIX=/opt/mtaconform/postfix
STAMP="$PREFIX/unpacked-from"
FORCE=${1:-}
MAIL_OWNER=mtaconform-postfix
SETGID_GROUP=mtaconform-postdrop

source "$(dirname "$0")/debian-package.sh"
say() { echo "build-postfix: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  say "run as root (apt-get, useradd, unpacking into $PREFIX)" >&2
  exit 2
fi

# 1. The mail owner and the setgid group (Postfix refuses to share either with another user).
getent group "$SETGID_GROUP" >/dev/null || groupadd --system "$SETGID_GROUP"
if ! getent passwd "$MAIL_OWNER" >/dev/null; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "mtaconform Postfix target" "$MAIL_OWNER"
fi

want=$(apt-cache policy postfix 2>/dev/null | sed -n 's/^ *Candidate: *//p')
if [ -z "$want" ] || [ "$want" = "(none)" ]; then
  say "apt knows no postfix package (apt-get update first?)" >&2
  exit 1
fi
if [ "$FORCE" != "--force" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "postfix $want" ] \
   && [ -x "$PREFIX/usr/lib/postfix/sbin/master" ]; then
  exit 0  # already unpacked from this version
fi
export DEBIAN_FRONTEND=noninteractive

# 2. Its shared libraries: installed with apt when missing (none of them is an MTA).
LIBS=(libc6 libdb5.3 libicu72 libnsl2 libsasl2-2 libssl3 netbase)
need_libraries "${LIBS[@]}"

# 3. The package itself: downloaded and unpacked, never installed.
unpack_package postfix "$want" "$PREFIX.new"
version=$(LD_LIBRARY_PATH="$PREFIX.new/usr/lib/postfix" "$PREFIX.new/usr/sbin/postconf" -d -h mail_version \
  2>/dev/null || true)
if [ -z "$version" ]; then
  say "the unpacked postconf does not run" >&2
  exit 1
fi
rm -rf "$PREFIX"
mv "$PREFIX.new" "$PREFIX"
echo "postfix $want" > "$STAMP"
say "unpacked Postfix $version into $PREFIX"
