#!/usr/bin/env bash
# Build the container image, stamped with the commit `lookout version` shows.
#
#   scripts/docker-build.sh [TAG]                                # lookout:local by default
#   PLATFORMS=linux/amd64,linux/arm64 scripts/docker-build.sh lookout:1.2.0
#                                                                # both, with buildx (arm64 under QEMU
#                                                                # emulation: slow; pushes need --push)
#   DOCKER=podman scripts/docker-build.sh lookout:local --format docker
#                                                                # with Podman (--format docker keeps the
#                                                                # HEALTHCHECK, which OCI images cannot hold)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/buildinfo.sh
tag=${1:-lookout:local}
args=(--build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION"
      --build-arg "COMMIT_TIME=$COMMIT_TIME" --build-arg "MODIFIED=$MODIFIED"
      -f deploy/Dockerfile -t "$tag")
if [ -n "${PLATFORMS:-}" ]; then
  "${DOCKER:-docker}" buildx build --platform "$PLATFORMS" "${args[@]}" "${@:2}" .
else
  "${DOCKER:-docker}" build "${args[@]}" "${@:2}" .
fi
