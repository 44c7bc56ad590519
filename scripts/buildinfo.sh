# shellcheck shell=bash
# Sourced by release.sh and docker-build.sh: what `lookout version` will
# print, read from git. Sets VERSION (unless already set), REVISION,
# COMMIT_TIME and MODIFIED, and LDFLAGS_X (the matching -X flags).
#
# VERSION is the tag on HEAD (v1.2.3) or, without one, a Go-style
# pseudo-version v0.0.0-<commit time>-<commit>; "+dirty" when tracked files
# have uncommitted changes. The toolchain would stamp the same from .git on
# its own, but not in a git worktree nor in a container build without .git,
# so it is passed explicitly.
REVISION=$(git rev-parse HEAD)
COMMIT_TIME=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ)
MODIFIED=false
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  MODIFIED=true
fi
if [ -z "${VERSION:-}" ]; then
  if ! VERSION=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
    VERSION="v0.0.0-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)-${REVISION:0:12}"
  fi
  if [ "$MODIFIED" = true ]; then
    VERSION+="+dirty"
  fi
fi
LDFLAGS_X="-X main.version=$VERSION -X main.revision=$REVISION -X main.commitTime=$COMMIT_TIME -X main.modified=$MODIFIED"
export VERSION REVISION COMMIT_TIME MODIFIED LDFLAGS_X
