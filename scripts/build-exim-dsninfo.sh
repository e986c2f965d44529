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
# must point at it.
set -euo pipefail

PREFIX=/opt/mtaconform/exim-dsninfo
BIN="$PREFIX/bin/exim4"  # Debian's name: exim_path is BIN_DIRECTORY/exim4 (globals.c)
STAMP="$PREFIX/built-from"
FORCE=${1:-}

say() { echo "build-exim-dsninfo: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  say "run as root (apt-get, installing into $PREFIX)" >&2
  exit 2
fi

want=$(dpkg-query -W -f='${Version}' exim4-daemon-heavy 2>/dev/null || true)
if [ -z "$want" ]; then
  say "exim4-daemon-heavy is not installed (scripts/setup.sh installs it first)" >&2
  exit 2
fi
if [ "$FORCE" != "--force" ] && [ -x "$BIN" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "exim4 $want" ] \
   && "$BIN" -bV 2>/dev/null | grep 'Experimental_DSN_info' >/dev/null; then
  exit 0  # already built from this version
fi
start=$(date +%s)
export DEBIAN_FRONTEND=noninteractive

# 1. Source packages: add deb-src lines for the mirrors already configured, if there are none.
# (grep without -q: with pipefail, grep -q quitting early would fail the pipeline via SIGPIPE)
if ! apt-cache showsrc exim4 2>/dev/null | grep '^Package: exim4$' >/dev/null; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    say "adding deb-src entries (/etc/apt/sources.list.d/mtaconform-deb-src.sources)"
    { echo "# Added by mtaconform scripts/build-exim-dsninfo.sh: Debian source packages."
      sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources
    } > /etc/apt/sources.list.d/mtaconform-deb-src.sources
  elif grep -qE '^deb ' /etc/apt/sources.list 2>/dev/null; then
    say "adding deb-src lines (/etc/apt/sources.list.d/mtaconform-deb-src.list)"
    { echo "# Added by mtaconform scripts/build-exim-dsninfo.sh: Debian source packages."
      sed -n -e 's/^deb /deb-src /p' /etc/apt/sources.list
    } > /etc/apt/sources.list.d/mtaconform-deb-src.list
  else
    say "no Debian apt sources found to derive deb-src entries from" >&2
    exit 1
  fi
  apt-get update -q
fi

# 2. Build dependencies of the heavy flavour (debian/control Build-Depends, without the
#    documentation and eximon's X11 libraries, which this build does not make).
DEPS=(build-essential dpkg-dev patch default-libmysqlclient-dev libdb5.3-dev libgnutls28-dev
      libident-dev libidn-dev libidn2-dev libldap2-dev libpam0g-dev libpcre2-dev libperl-dev
      libpq-dev libsasl2-dev libspf2-dev libsqlite3-dev)
missing=()
for pkg in "${DEPS[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing build dependencies: ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# 3. The source of the installed version, with Debian's patches applied.
work=$(mktemp -d /tmp/mtaconform-exim-dsninfo.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"
say "fetching the exim4 $want source package"
if ! apt-get source -q "exim4=$want" >source.log 2>&1; then
  say "exim4=$want is not in the source index; using the newest exim4 source instead"
  apt-get source -q exim4 >source.log 2>&1 || { cat source.log >&2; exit 1; }
fi
src=$(find . -maxdepth 1 -type d -name 'exim4-*' | head -n1)
cd "$src"
make -s -f debian/rules unpack-configs >/dev/null  # EDITME.exim4-heavy = src/EDITME + Debian's diffs

# 4. Debian's heavy configuration, installed under $PREFIX, plus DSN_INFO.
mkdir -p Local
sed -e "s|^BIN_DIRECTORY=.*|BIN_DIRECTORY=$PREFIX/bin|" EDITME.exim4-heavy > Local/Makefile
printf '\n# mtaconform: DSN extra information (doc/experimental-spec.txt)\nEXPERIMENTAL_DSN_INFO=yes\n' \
  >> Local/Makefile
cp EDITME.eximon Local/eximon.conf
# The compiler flags debian/rules uses (hardening, large files).
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
export CFLAGS="$CFLAGS $(getconf LFS_CFLAGS) -D_LARGEFILE_SOURCE -fno-strict-aliasing -Wall $CPPFLAGS"
export LFLAGS="$LDFLAGS" EXIM_ARCHTYPE="$(dpkg-architecture -qDEB_TARGET_GNU_CPU)" LC_ALL=C
say "compiling (make -j$(nproc))"
if ! make -j"$(nproc)" FULLECHO='' >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  exit 1
fi

# 5. Install, setuid root like Debian's /usr/sbin/exim4, and check the capability is there.
install -d -m 755 "$PREFIX/bin"
install -m 4755 -o root -g root build-*/exim "$BIN"
if ! "$BIN" -bV | grep 'Experimental_DSN_info' >/dev/null; then
  say "the built binary does not report Experimental_DSN_info" >&2
  exit 1
fi
echo "exim4 $want" > "$STAMP"
say "built $("$BIN" -bV | head -n1) with DSN_INFO into $PREFIX in $(( $(date +%s) - start )) s"
