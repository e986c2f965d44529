# Sourced by scripts/build-exim-*.sh: build a variant of Debian's exim4-daemon-heavy from Debian's
# own exim4 source package (same version, same patches, the heavy flavour's EDITME) into a private
# prefix. The caller sets EXIM_BUILD_NAME (for messages), then calls, in order:
#
#   exim_require_root; want=$(exim_installed_version)   the version to rebuild
#   exim_prepare_sources                                 deb-src entry and build dependencies
#   exim_fetch_source DIR VERSION                        unpacked, patched tree: $EXIM_SRC
#   exim_configure_heavy PREFIX                          Local/Makefile (BIN_DIRECTORY=PREFIX/bin)
#   exim_export_build_flags                              CFLAGS/LFLAGS as debian/rules sets them
#   (append to Local/Makefile, adjust CFLAGS/LFLAGS), then exim_make LOG and exim_install PREFIX
#
# What it changes on the machine: a deb-src entry for the configured Debian mirrors (when there is
# none) and the build dependencies of the heavy flavour (-dev packages; Exim itself stays).

exim_say() { echo "${EXIM_BUILD_NAME:-build-exim}: $*"; }

exim_require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    exim_say "run as root (apt-get, installing into /opt/mtaconform)" >&2
    exit 2
  fi
}

# The installed exim4-daemon-heavy version (the source to rebuild), or exit 2.
exim_installed_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' exim4-daemon-heavy 2>/dev/null || true)
  if [ -z "$v" ]; then
    exim_say "exim4-daemon-heavy is not installed (scripts/setup.sh installs it first)" >&2
    exit 2
  fi
  echo "$v"
}

exim_prepare_sources() {
  export DEBIAN_FRONTEND=noninteractive
  # Source packages: add deb-src lines for the mirrors already configured, if there are none.
  # (grep without -q: with pipefail, grep -q quitting early would fail the pipeline via SIGPIPE)
  if ! apt-cache showsrc exim4 2>/dev/null | grep '^Package: exim4$' >/dev/null; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      exim_say "adding deb-src entries (/etc/apt/sources.list.d/mtaconform-deb-src.sources)"
      { echo "# Added by mtaconform scripts/exim-source.sh: Debian source packages."
        sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources
      } > /etc/apt/sources.list.d/mtaconform-deb-src.sources
    elif grep -qE '^deb ' /etc/apt/sources.list 2>/dev/null; then
      exim_say "adding deb-src lines (/etc/apt/sources.list.d/mtaconform-deb-src.list)"
      { echo "# Added by mtaconform scripts/exim-source.sh: Debian source packages."
        sed -n -e 's/^deb /deb-src /p' /etc/apt/sources.list
      } > /etc/apt/sources.list.d/mtaconform-deb-src.list
    else
      exim_say "no Debian apt sources found to derive deb-src entries from" >&2
      exit 1
    fi
    apt-get update -q
  fi

  # Build dependencies of the heavy flavour (debian/control Build-Depends, without the
  # documentation and eximon's X11 libraries, which these builds do not make).
  local deps=(build-essential dpkg-dev patch default-libmysqlclient-dev libdb5.3-dev libgnutls28-dev
              libident-dev libidn-dev libidn2-dev libldap2-dev libpam0g-dev libpcre2-dev libperl-dev
              libpq-dev libsasl2-dev libspf2-dev libsqlite3-dev)
  local missing=() pkg
  for pkg in "${deps[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    exim_say "installing build dependencies: ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# exim_fetch_source DIR VERSION: the source of VERSION (else the newest exim4 source) unpacked
# with Debian's patches in DIR, and the flavours' EDITME files made. Sets EXIM_SRC.
exim_fetch_source() {
  local dir=$1 version=$2
  mkdir -p "$dir"
  chmod 755 "$dir"
  exim_say "fetching the exim4 $version source package"
  if ! (cd "$dir" && apt-get source -q "exim4=$version" >source.log 2>&1); then
    exim_say "exim4=$version is not in the source index; using the newest exim4 source instead"
    (cd "$dir" && apt-get source -q exim4 >source.log 2>&1) || { cat "$dir/source.log" >&2; exit 1; }
  fi
  EXIM_SRC=$(find "$dir" -maxdepth 1 -type d -name 'exim4-*' | head -n1)
  # EDITME.exim4-heavy = src/EDITME + Debian's diffs
  (cd "$EXIM_SRC" && make -s -f debian/rules unpack-configs >/dev/null)
}

# exim_configure_heavy PREFIX: Debian's heavy configuration, its binary in PREFIX/bin.
exim_configure_heavy() {
  local prefix=$1
  mkdir -p "$EXIM_SRC/Local"
  sed -e "s|^BIN_DIRECTORY=.*|BIN_DIRECTORY=$prefix/bin|" "$EXIM_SRC/EDITME.exim4-heavy" \
    > "$EXIM_SRC/Local/Makefile"
  cp "$EXIM_SRC/EDITME.eximon" "$EXIM_SRC/Local/eximon.conf"
}

# The compiler flags debian/rules uses (hardening, large files); callers may adjust them after.
exim_export_build_flags() {
  eval "$(cd "$EXIM_SRC" && DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
  export CFLAGS="$CFLAGS $(getconf LFS_CFLAGS) -D_LARGEFILE_SOURCE -fno-strict-aliasing -Wall $CPPFLAGS"
  export LFLAGS="$LDFLAGS" EXIM_ARCHTYPE="$(dpkg-architecture -qDEB_TARGET_GNU_CPU)" LC_ALL=C
}

# exim_make LOG: compile; on failure show the end of LOG and exit 1.
exim_make() {
  local log=$1
  exim_say "compiling (make -j$(nproc))"
  if ! (cd "$EXIM_SRC" && make -j"$(nproc)" FULLECHO='' >"$log" 2>&1); then
    tail -n 40 "$log" >&2
    exit 1
  fi
}

# exim_install PREFIX: the binary as PREFIX/bin/exim4 (Debian's name: exim_path is
# BIN_DIRECTORY/exim4, globals.c), setuid root like Debian's /usr/sbin/exim4.
exim_install() {
  local prefix=$1
  install -d -m 755 "$prefix/bin"
  install -m 4755 -o root -g root "$EXIM_SRC"/build-*/exim "$prefix/bin/exim4"
}
