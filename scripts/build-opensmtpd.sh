#!/usr/bin/env bash
# Unpack the opensmtpd target: Debian's own opensmtpd package, unpacked (never installed: it
# conflicts with Exim, apt would remove it) into a private prefix, with the two users its
# privilege separation needs. Idempotent: does nothing once the prefix holds an unpacked
# version (recorded in $PREFIX/unpacked-from). Run as root, on Debian 12.
#
#   scripts/build-opensmtpd.sh            unpack if needed (a few seconds)
#   scripts/build-opensmtpd.sh --force    unpack apt's candidate version again
#
# What it changes on the machine: the libraries smtpd needs that are missing (plain library
# packages, which do not conflict with Exim), the system users and groups opensmtpd and
# opensmtpq (the names are compiled into Debian's binary), and /opt/mtaconform/opensmtpd. The
# prefix is fixed: fixtures/targets/opensmtpd/opensmtpd.yaml names it. smtpd's own paths
# (/var/spool/smtpd, /var/run/smtpd.sock, /usr/libexec/opensmtpd, …) are never created on the
# host: fixtures/targets/opensmtpd/opensmtpd-ns.sh maps them into each run's folder.
set -euo pipefail

PREFIX=/opt/mtaconform/opensmtpd
STAMP="$PREFIX/unpacked-from"
FORCE=${1:-}

source "$(dirname "$0")/debian-package.sh"
say() { echo "build-opensmtpd: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  say "run as root (apt-get, useradd, unpacking into $PREFIX)" >&2
  exit 2
fi

# 1. The users of its privilege separation (Debian's names, compiled in: "unknown user opensmtpd").
for name in opensmtpd opensmtpq; do
  getent group "$name" >/dev/null || groupadd --system "$name"
  if ! getent passwd "$name" >/dev/null; then
    useradd --system --gid "$name" --no-create-home --home-dir /var/lib/opensmtpd/empty \
      --shell /usr/sbin/nologin --comment "mtaconform OpenSMTPD target" "$name"
  fi
done

# Unpacked already: keep that version (apt-cache takes seconds; --force fetches the candidate).
if [ "$FORCE" != "--force" ] && [ -s "$STAMP" ] && [ -x "$PREFIX/usr/sbin/smtpd" ] \
   && [ -g "$PREFIX/usr/sbin/smtpctl" ]; then
  exit 0
fi
candidate() { apt-cache policy opensmtpd 2>/dev/null | sed -n 's/^ *Candidate: *//p'; }
want=$(candidate)
if [ -z "$want" ] || [ "$want" = "(none)" ]; then
  say "apt knows no opensmtpd package: apt-get update"
  apt-get update -q >/dev/null
  want=$(candidate)
fi
if [ -z "$want" ] || [ "$want" = "(none)" ]; then
  say "no opensmtpd package in the configured apt sources" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# 2. Its shared libraries: installed with apt when missing (none of them is an MTA).
LIBS=(libc6 libcrypt1 libdb5.3 libevent-2.1-7 libpam0g libssl3 zlib1g)
need_libraries "${LIBS[@]}"

# 3. The package itself: downloaded and unpacked, never installed.
unpack_package opensmtpd "$want" "$PREFIX.new"
# smtpctl (and sendmail, a link to it) must be setgid opensmtpq, as Debian's postinst makes it.
chgrp opensmtpq "$PREFIX.new/usr/sbin/smtpctl"
chmod 2755 "$PREFIX.new/usr/sbin/smtpctl"
# `smtpd -h` prints the version and the usage, and exits 1.
version=$("$PREFIX.new/usr/sbin/smtpd" -h 2>&1 || true)
case $version in
  "version: OpenSMTPD "*) ;;
  *) say "the unpacked smtpd does not run: $version" >&2; exit 1 ;;
esac
rm -rf "$PREFIX"
mv "$PREFIX.new" "$PREFIX"
echo "opensmtpd $want" > "$STAMP"
say "unpacked ${version%%$'\n'*} into $PREFIX"
