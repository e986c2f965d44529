# Sourced by the scripts that unpack another MTA from its Debian package into a private prefix
# (build-postfix.sh, build-opensmtpd.sh): installing those packages would remove Exim.
#   need_libraries PKG...          install the plain library packages that are missing
#   unpack_package NAME VERSION DIR
#                                  download NAME=VERSION (apt-get download) and `dpkg -x` it into
#                                  DIR (made anew); the caller checks the result and moves it

need_libraries() {
  local missing=() pkg
  for pkg in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" = installed ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing libraries: ${missing[*]}"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

unpack_package() {
  local name=$1 version=$2 dest=$3 work
  work=$(mktemp -d "/tmp/mtaconform-$name.XXXXXX")
  chmod 755 "$work"
  say "fetching $name $version"
  if ! (cd "$work" && apt-get download -q "$name=$version" >download.log 2>&1); then
    cat "$work/download.log" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$dest"
  mkdir -p "$dest"
  dpkg -x "$work"/"${name}"_*.deb "$dest"
  rm -rf "$work"
}
