#!/usr/bin/env bash
# Build deploy/Dockerfile into an image with Podman and run it, on a Debian
# machine that has no Docker engine and may reach no container registry:
#
#   1. installs podman, buildah, debootstrap and runc with apt-get
#   2. makes the Dockerfile's two base images from Debian packages when they
#      are not in Podman's store yet (podman pull them first where a registry
#      is reachable, and they are used instead):
#        docker.io/library/debian:bookworm-slim   debootstrap --variant=minbase,
#                                                 thinned as the official slim image is
#        docker.io/library/golang:<ver>-bookworm  that plus gcc, libc6-dev, git and this
#                                                 machine's Go toolchain (go.mod's version)
#   3. builds the image with scripts/docker-build.sh (DOCKER=podman)
#   4. runs it with a volume for the database and the port published on
#      127.0.0.1, and checks: the image's HEALTHCHECK reports healthy and
#      /healthz and /readyz answer through the published port; `lookout
#      version` names this commit; the daemon runs as uid 10001, not root; the
#      database is in the volume, owned by that user; SIGTERM (podman stop)
#      logs "shutting down" and exits 0; a new container reads the database
#   5. with Docker Compose (built from the Go module proxy where there is none)
#      against Podman's Docker API: compose.yaml is valid, and its lookout
#      service builds, becomes healthy, names this commit and stops with exit 0
#
# Run as root from anywhere:  scripts/container-test.sh
# A first run takes over 20 minutes on a busy 2-core VM (base images 4, the
# image's first build 13, building Docker Compose 5); later runs reuse the base
# images, the build's caches and Compose (73 s after a small change). Not part
# of .ci/run, for that reason.
#
#   LOOKOUT_CT_WORK=DIR   the base image's root file system and Podman's
#                         settings for this script (/var/tmp/lookout-container-test)
#   LOOKOUT_CT_PORT=N     the host port the test publishes (19464)
#   LOOKOUT_CT_KEEP=1     keep the container and its volume afterwards
#   DEBIAN_MIRROR=URL     for debootstrap (http://deb.debian.org/debian)
#   COMPOSE_VERSION=vX    Docker Compose to build where there is no docker-compose (v5.6.0)
set -euo pipefail
cd "$(dirname "$0")/.."

work=${LOOKOUT_CT_WORK:-/var/tmp/lookout-container-test}
port=${LOOKOUT_CT_PORT:-19464}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
tag=localhost/lookout:container-test
name=lookout-container-test
volume=lookout-container-test-data
uid=10001
compose_version=${COMPOSE_VERSION:-v5.6.0} # built from source where there is no docker-compose

step() { printf '== %s  [%ds]\n' "$*" "$SECONDS"; }
fail() { echo "container-test: $*" >&2; exit 1; }
# health CONTAINER: run its HEALTHCHECK once a second for up to 30 s until it
# reports healthy, and leave the last status in $state. Podman runs
# HEALTHCHECK from a systemd timer; where there is no systemd, `podman
# healthcheck run` runs the same command in the container, once.
health() {
  state=
  for _ in $(seq 30); do
    podman healthcheck run "$1" >/dev/null 2>>"$log" || true
    state=$(podman inspect -f '{{.State.Health.Status}}' "$1")
    [ "$state" = healthy ] && break
    sleep 1
  done
  echo "HEALTHCHECK: $state"
}

[ "$(id -u)" = 0 ] || fail "run as root: debootstrap and Podman's root store need it"
mkdir -p "$work"
log=$work/podman.log # Podman's own warnings, out of the way of the checks
: >"$log"

step "packages"
missing=()
for p in podman buildah debootstrap runc; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
podman --version

# Podman's settings for every podman and buildah call below, in a file of
# their own (the machine's /etc/containers is left alone):
# - runc, not crun: crun 1.8 refuses to start anything on a host whose cgroups
#   are mixed v1 and v2 ("cgroups in hybrid mode not supported").
# - limits no higher than this shell's: Podman asks for 1048576 open files,
#   which a root without CAP_SYS_RESOURCE (as in many sandboxes and CI
#   runners) cannot grant ("setrlimit RLIMIT_NOFILE: Operation not permitted").
lim() { # lim KIND MAX: this shell's hard limit of KIND, at most MAX
  local v; v=$(ulimit -H "$1")
  if [ "$v" = unlimited ] || [ "$v" -gt "$2" ]; then v=$2; fi
  echo "$v"
}
nofile=$(lim -n 1048576)
nproc=$(lim -u 32768)
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf

go_version=$(sed -n 's/^ARG GO_VERSION=//p' deploy/Dockerfile)
slim=docker.io/library/debian:bookworm-slim
golang=docker.io/library/golang:$go_version-bookworm

if ! podman image exists "$slim"; then
  step "base image $slim from debootstrap"
  root=$work/rootfs
  if [ ! -e "$root/.complete" ]; then
    rm -rf "$root"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
      fail "debootstrap failed; see $work/debootstrap.log"
    # Thinned as the official image is: no documentation, manuals or
    # translations (now or from packages installed later), no apt caches.
    mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
    find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/* "$root"/var/cache/apt/archives/*.deb \
      "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* "$root"/var/log/*.log
    # The official image's sources: the release, its updates and security.
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    touch "$root/.complete"
  fi
  tar --numeric-owner -C "$root" --exclude=./.complete --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' -c . | podman import --change 'CMD ["bash"]' - "$slim" >/dev/null 2>>"$log"
fi

if ! podman image exists "$golang"; then
  step "base image $golang: $slim, gcc and this machine's Go"
  gover=$(go env GOVERSION 2>/dev/null) || fail "no go command: the image's Go comes from this machine's"
  case $gover in
    "go$go_version" | "go$go_version".*) ;;
    *) fail "this machine has $gover; the Dockerfile builds with Go $go_version" ;;
  esac
  c=$(buildah from --pull-never "$slim")
  buildah run --network host "$c" -- sh -c 'apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      ca-certificates git gcc libc6-dev make pkg-config >/dev/null &&
    rm -rf /var/lib/apt/lists/*' 2>>"$log"
  buildah copy "$c" "$(go env GOROOT)" /usr/local/go >/dev/null
  # The certificate authorities this machine added to its own (a TLS-inspecting
  # proxy's, say): `go mod download` in the build goes out the same way.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    buildah copy "$c" /usr/local/share/ca-certificates/ /usr/local/share/ca-certificates/ >/dev/null
    buildah run "$c" -- update-ca-certificates >/dev/null 2>>"$log"
  fi
  buildah run "$c" -- sh -c 'mkdir -p /go/src /go/bin && chmod -R 1777 /go'
  buildah config --env "GOLANG_VERSION=${gover#go}" --env GOTOOLCHAIN=local --env GOPATH=/go \
    --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --workingdir /go --cmd bash "$c"
  buildah commit --rm "$c" "$golang" >/dev/null 2>>"$log"
fi
podman image inspect -f '{{index .RepoTags 0}}  {{.Size}} bytes' "$slim" "$golang"

step "build $tag"
build_start=$SECONDS
# --format docker: an OCI image has no place for HEALTHCHECK, and Podman
# would drop it. --pull=never: the base images are the local ones.
DOCKER=podman scripts/docker-build.sh "$tag" --format docker --pull=never --network host \
  >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "build failed; see $work/build.log"; }
echo "built in $((SECONDS - build_start)) s; $(podman image inspect -f '{{.Size}}' "$tag" |
  awk '{printf "%.0f MB", $1/1e6}') uncompressed"
[ "$(podman image inspect -f '{{.User}}' "$tag")" = "$uid:$uid" ] || fail "the image's USER is not $uid:$uid"
podman image inspect -f '{{json .HealthCheck}}' "$tag" | grep -q lookout-healthcheck ||
  fail "the image has no HEALTHCHECK"

step "lookout version names this commit"
revision=$(git rev-parse HEAD)
out=$(podman run --rm "$tag" version 2>>"$log")
echo "$out"
grep -q "commit  $revision" <<<"$out" || fail "lookout version does not name commit $revision"
podman run --rm "$tag" check-config -c /etc/lookout/config.yaml 2>>"$log"

step "run with volume $volume, port 127.0.0.1:$port"
cleanup() {
  if [ "${LOOKOUT_CT_KEEP:-}" != 1 ]; then
    podman rm -f "$name" >/dev/null 2>>"$log" || true
    podman volume rm -f "$volume" >/dev/null 2>>"$log" || true
  fi
}
podman rm -f "$name" >/dev/null 2>>"$log" || true
podman volume rm -f "$volume" >/dev/null 2>>"$log" || true
trap cleanup EXIT
podman volume create "$volume" >/dev/null
podman run -d --name "$name" -p "127.0.0.1:$port:9464" -v "$volume:/var/lib/lookout" "$tag" >/dev/null 2>>"$log"

health "$name"
[ "$state" = healthy ] || { podman logs "$name" 2>&1 | tail -20; fail "the container did not become healthy"; }
for path in /healthz /readyz; do
  LOOKOUT_HEALTH_ADDR=127.0.0.1:$port bash deploy/healthcheck.sh "$path" ||
    fail "$path through the published port 127.0.0.1:$port failed"
  echo "$path through 127.0.0.1:$port: 200"
done

step "runs as uid $uid"
uids=$(podman exec "$name" sed -n 's/^Uid:\s*//p' /proc/1/status)
echo "pid 1 uids (real, effective, saved, fs): $uids"
[ "$(tr -s '[:space:]' ' ' <<<"$uids" | sed 's/ $//')" = "$uid $uid $uid $uid" ] || fail "the daemon does not run as $uid"

step "the database is in the volume"
mp=$(podman volume inspect -f '{{.Mountpoint}}' "$volume")
ls -ln "$mp"
[ -s "$mp/lookout.db" ] || fail "no lookout.db in the volume"
[ "$(stat -c %u "$mp/lookout.db")" = "$uid" ] || fail "lookout.db in the volume is not owned by $uid"

step "SIGTERM: podman stop"
podman stop -t 30 "$name" >/dev/null 2>>"$log"
logs=$(podman logs "$name" 2>&1)
grep 'shutting down' <<<"$logs" || fail "no \"shutting down\" in the container's log"
grep 'msg=stopped' <<<"$logs" || fail "the daemon did not log that it stopped"
code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
echo "exit code $code"
[ "$code" = 0 ] || fail "lookout exited $code after SIGTERM"
grep -q 'level=ERROR' <<<"$logs" && { grep 'level=ERROR' <<<"$logs"; fail "errors in the container's log"; }

step "a new container reads the database"
podman run --rm -v "$volume:/var/lib/lookout" "$tag" status --db /var/lib/lookout/lookout.db 2>>"$log"

# Docker Compose, against Podman's Docker-compatible API: the compose file is
# valid, and its lookout service builds (with the commit as build arguments),
# starts, passes its health check and stops on SIGTERM with exit code 0.
# Prometheus and Grafana are left out: their images come from a registry.
step "docker compose: deploy/compose.yaml's lookout service"
compose=$(command -v docker-compose || true)
if [ -z "$compose" ]; then
  compose=$work/bin/docker-compose
  if [ ! -x "$compose" ]; then
    # Compose's module cannot be `go install`ed (its go.mod has exclude
    # directives): build it in a copy of the module.
    echo "building Docker Compose $compose_version from the Go module proxy (about 5 minutes)"
    src=$(go mod download -json "github.com/docker/compose/v5@$compose_version" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$work/compose-src"
    cp -r "$src" "$work/compose-src"
    chmod -R u+w "$work/compose-src"
    (cd "$work/compose-src" && go build -o "$compose" ./cmd)
  fi
fi
"$compose" version
sock=$work/podman.sock
rm -f "$sock"
podman system service --time=0 "unix://$sock" 2>>"$log" &
service=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
project=lookout-container-test
# The test's own host port in place of compose.yaml's 9464, which another
# lookout on this machine may hold.
printf 'services:\n  lookout:\n    ports: !override\n      - "127.0.0.1:%s:9464"\n' "$port" \
  >"$work/compose.override.yaml"
# What scripts/docker-build.sh passes, as compose.yaml's variables.
# shellcheck source=scripts/buildinfo.sh
. scripts/buildinfo.sh
dc() {
  DOCKER_HOST=unix://$sock DOCKER_BUILDKIT=0 COMPOSE_BAKE=false \
    LOOKOUT_VERSION=$VERSION LOOKOUT_REVISION=$REVISION LOOKOUT_COMMIT_TIME=$COMMIT_TIME \
    LOOKOUT_MODIFIED=$MODIFIED "$compose" -p "$project" -f deploy/compose.yaml -f "$work/compose.override.yaml" "$@"
}
cleanup_compose() {
  dc down -v >/dev/null 2>>"$log" || true
  kill "$service" 2>/dev/null || true
  cleanup
}
trap cleanup_compose EXIT
dc config --quiet
echo "compose.yaml: valid"
dc up -d --build lookout >"$work/compose.log" 2>&1 ||
  { tail -20 "$work/compose.log"; fail "compose up failed; see $work/compose.log"; }
cname=$(dc ps -q lookout)
[ -n "$cname" ] || fail "compose started no lookout container"
health "$cname"
[ "$state" = healthy ] || fail "the compose service did not become healthy"
podman exec "$cname" lookout version | grep "commit  $revision" ||
  fail "the compose build does not name commit $revision"
dc stop lookout >/dev/null 2>>"$log"
podman logs "$cname" 2>&1 | grep 'shutting down' || fail "no \"shutting down\" in the compose service's log"
code=$(podman inspect -f '{{.State.ExitCode}}' "$cname")
echo "exit code $code"
[ "$code" = 0 ] || fail "the compose service exited $code after SIGTERM"

step "OK in $SECONDS s"
