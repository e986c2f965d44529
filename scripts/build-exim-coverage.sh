#!/usr/bin/env bash
# Build the exim-coverage target: the Exim of Debian's exim4-daemon-heavy, rebuilt from Debian's
# own exim4 source package (same version, patches and heavy-flavour EDITME as exim-dsninfo, see
# scripts/exim-source.sh) with gcc --coverage at -O0, into a private prefix. `mtaconform coverage`
# runs scenarios or a fuzz campaign against it and reports Exim's line and branch coverage.
# Optional: scripts/setup.sh builds it only with MTACONFORM_BUILD_COVERAGE=1. Idempotent (a stamp
# names the version it was built from). Run as root, on Debian 12.
#
#   scripts/build-exim-coverage.sh            build if needed (32-35 s on 2 idle cores, download included)
#   scripts/build-exim-coverage.sh --force    rebuild
#
# /opt/mtaconform/exim-coverage (about 80 MB) holds:
#   bin/exim4            the binary; its compiled-in BIN_DIRECTORY is bin/ (Exim re-executes itself)
#   src/                 the patched source tree and its build folder src/build-*/, kept: gcov needs
#                        the sources and the .gcno notes files next to the objects
#   coverage-build.json  where the notes are, which objects make up the exim binary, and how many
#                        leading components of a .gcda path GCOV_PREFIX_STRIP removes
#                        (fixtures/targets/exim-coverage/exim-coverage.yaml says the same)
#   counters/            where plain runs of the target write their counters
#   built-from           the stamp
# The target's spec sets GCOV_PREFIX, so every Exim process writes its counters (.gcda) under
# counters/, or under the per-run folder that `mtaconform coverage` prepares (harness/coverage.py).
#
# Exim ends its forked children with _exit(), which skips gcov's exit handler: the build links
# scripts/gcov-flush-on-exit.c with -Wl,--wrap=_exit so those counters are written too.
set -euo pipefail
EXIM_BUILD_NAME=build-exim-coverage
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=exim-source.sh
. "$HERE/exim-source.sh"

PREFIX=/opt/mtaconform/exim-coverage
BIN="$PREFIX/bin/exim4"
STAMP="$PREFIX/built-from"
INFO="$PREFIX/coverage-build.json"
FORCE=${1:-}

exim_require_root
want=$(exim_installed_version)
if [ "$FORCE" != "--force" ] && [ -x "$BIN" ] && [ -f "$INFO" ] \
   && [ "$(cat "$STAMP" 2>/dev/null)" = "exim4 $want coverage" ]; then
  exit 0  # already built from this version
fi
command -v gcov >/dev/null || { exim_say "gcov (package gcc) is missing" >&2; exit 1; }
start=$(date +%s)

exim_prepare_sources
rm -rf "$PREFIX/src" "$PREFIX/fetch" "$STAMP" "$INFO"
mkdir -p "$PREFIX"
chmod 755 "$PREFIX"
exim_fetch_source "$PREFIX/fetch" "$want"
# A fixed path for the tree, so GCOV_PREFIX_STRIP does not depend on the version's folder name.
mv "$EXIM_SRC" "$PREFIX/src"
rm -rf "$PREFIX/fetch"
EXIM_SRC="$PREFIX/src"

exim_configure_heavy "$PREFIX"
exim_export_build_flags
# Coverage: -O0 keeps one source line to one block; _FORTIFY_SOURCE needs optimisation, and
# -ffile-prefix-map (reproducible builds) would hide the absolute source paths gcov resolves.
CFLAGS=$(echo "$CFLAGS" | sed -e 's/-O[0-9s]\b//g' -e 's/-D_FORTIFY_SOURCE=[0-9]//g' \
                              -e 's/-ffile-prefix-map=[^ ]*//g' -e 's/-fdebug-prefix-map=[^ ]*//g')
export CFLAGS="$CFLAGS -O0 --coverage"
gcc -O0 -c "$HERE/gcov-flush-on-exit.c" -o "$EXIM_SRC/gcov-flush-on-exit.o"
export LFLAGS="$LFLAGS --coverage -Wl,--wrap=_exit $EXIM_SRC/gcov-flush-on-exit.o"
exim_make "$EXIM_SRC/build.log"
objdir=$(find "$EXIM_SRC" -maxdepth 1 -type d -name 'build-*' | head -n1)
# Counters the build itself wrote (it runs macro_predef) are not the target's.
find "$objdir" -name '*.gcda' -delete

exim_install "$PREFIX"
# Which objects are Exim's (the build also makes exim_dumpdb, macro_predef, ...): those whose
# counters a run of the binary writes. A configuration that keeps GCOV_PREFIX (Exim clears its
# environment otherwise) sends them to a scratch folder; Exim runs with umask 0 and -bV as
# Debian-exim, so the folder is world-writable while it lives.
scratch=$(mktemp -d /tmp/mtaconform-exim-coverage.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
chmod 777 "$scratch"
echo 'keep_environment = GCOV_PREFIX : GCOV_PREFIX_STRIP' > "$scratch/probe.conf"
strip=$(( $(echo "$objdir" | tr -cd / | wc -c) ))
if ! version=$(GCOV_PREFIX="$scratch/gcda" GCOV_PREFIX_STRIP=$strip \
               "$BIN" -C "$scratch/probe.conf" -bV 2>/dev/null | sed -n 1p) || [ -z "$version" ]; then
  exim_say "the built binary does not run ($BIN -bV)" >&2
  exit 1
fi
objects=$(cd "$scratch/gcda" 2>/dev/null && find . -name '*.gcda' | sed -e 's|^\./||' -e 's|\.gcda$||' | sort)
if ! echo "$objects" | grep -x smtp_in >/dev/null; then
  exim_say "the built binary writes no gcov counters (no smtp_in.gcda under GCOV_PREFIX)" >&2
  exit 1
fi
find "$objdir" -name '*.gcda' -delete

# Where plain runs (`mtaconform run --target exim-coverage`, not `mtaconform coverage`) count:
# one empty .gcda per object, owned by Exim's user and writable by all, so root, Debian-exim and
# any other user a transport runs as add to the same files (harness/coverage/gcov.py does the same).
rm -rf "$PREFIX/counters"
for obj in $objects; do
  mkdir -p "$PREFIX/counters/$(dirname "$obj")"
  : > "$PREFIX/counters/$obj.gcda"
done
chown -R Debian-exim:Debian-exim "$PREFIX/counters"
find "$PREFIX/counters" -name '*.gcda' -exec chmod 666 {} +

OBJDIR=$objdir STRIP=$strip WANT=$want OBJECTS=$objects GCOV=$(gcov --version | sed -n 1p) python3 -c '
import json, os
print(json.dumps({"objdir": os.environ["OBJDIR"], "gcov_prefix_strip": int(os.environ["STRIP"]),
                  "version": os.environ["WANT"], "gcov": os.environ["GCOV"],
                  "objects": os.environ["OBJECTS"].split()}, indent=1))' > "$INFO"
echo "exim4 $want coverage" > "$STAMP"
exim_say "built $version with --coverage into $PREFIX in $(( $(date +%s) - start )) s"
