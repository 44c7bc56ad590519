#!/usr/bin/env bash
# Release build: Linux binaries for amd64 and arm64, tarballs, SHA256SUMS.
#
#   scripts/release.sh                 # both architectures, into dist/
#   ARCHES=amd64 scripts/release.sh    # one
#   VERSION=v1.2.0 scripts/release.sh  # name the release (default: the tag on HEAD, or a pseudo-version)
#
# SQLite is C, so every build uses cgo and a C compiler for its target:
# gcc for the machine's own architecture, gcc-aarch64-linux-gnu (or
# gcc-x86-64-linux-gnu) for the other. On Debian/Ubuntu as root the script
# installs a missing cross compiler with apt-get; elsewhere it says which
# package to install.
#
# The binaries are linked statically (Go's own DNS resolver and user lookup,
# SQLite without loadable extensions), so one binary runs on any Linux of
# its architecture, whatever its C library. -trimpath keeps build paths out,
# -s -w strip symbols and DWARF; `lookout version` shows the commit.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCHES=${ARCHES:-"amd64 arm64"}
DIST=${DIST:-dist}
. scripts/buildinfo.sh

host=$(go env GOHOSTARCH)
cc_for() { # cc_for ARCH -> compiler command and Debian package
  if [ "$1" = "$host" ]; then echo "gcc gcc"; return; fi
  case $1 in
    arm64) echo "aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu" ;;
    amd64) echo "x86_64-linux-gnu-gcc gcc-x86-64-linux-gnu" ;;
    *) echo "release: no C cross compiler known for $1" >&2; return 1 ;;
  esac
}

ensure_cc() { # ensure_cc CC PACKAGE
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing $2 (C compiler for cgo)"
    apt-get install -y -qq "$2" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
  fi
  command -v "$1" >/dev/null || {
    echo "release: $1 not found: install $2 (Debian/Ubuntu), or build this architecture with docker buildx (README, Deploying)" >&2
    return 1
  }
}

rm -rf "$DIST"
mkdir -p "$DIST"
echo '*' > "$DIST/.gitignore"   # build output: never committed
echo "== lookout $VERSION (commit $REVISION, $COMMIT_TIME, modified=$MODIFIED)"
for arch in $ARCHES; do
  read -r cc pkg < <(cc_for "$arch")
  ensure_cc "$cc" "$pkg"
  name=lookout-$VERSION-linux-$arch
  echo "== $name (CC=$cc)"
  CGO_ENABLED=1 GOOS=linux GOARCH=$arch CC=$cc \
    go build -trimpath -buildvcs=false \
      -tags 'netgo osusergo sqlite_omit_load_extension' \
      -ldflags "-s -w -linkmode external -extldflags -static $LDFLAGS_X" \
      -o "$DIST/$name/lookout" .
  cp README.md config.yaml deploy/lookout.service deploy/lookout.env.example "$DIST/$name/"
  # Reproducible tarballs: fixed order, owner and times (the commit's).
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$COMMIT_TIME" \
    -C "$DIST" -cf - "$name" | gzip -n > "$DIST/$name.tar.gz"
  cp "$DIST/$name/lookout" "$DIST/lookout-linux-$arch"
  rm -rf "${DIST:?}/$name"
done

# A binary this machine can run says which build it is.
if [ -x "$DIST/lookout-linux-$host" ]; then
  "$DIST/lookout-linux-$host" version
fi

(cd "$DIST" && sha256sum -- *.tar.gz lookout-linux-* > SHA256SUMS)
echo "== $DIST/SHA256SUMS"
cat "$DIST/SHA256SUMS"
