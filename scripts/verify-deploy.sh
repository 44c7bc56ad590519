#!/usr/bin/env bash
# The packaging checks too slow, or needing too much installed, for CI's
# `go test` (which checks deploy/ with deploy_test.go):
#
#   1. systemd-analyze verify on deploy/lookout.service, and its exposure score
#   2. promtool: deploy/prometheus.yml, and every dashboard query parses as PromQL
#   3. shellcheck on the scripts
#   4. scripts/release.sh: both architectures build; each binary runs
#      `lookout version` (arm64 under qemu-user); SHA256SUMS checks
#   5. where a Docker engine runs: build the image, run `version` and
#      `--help`, start it and wait for its HEALTHCHECK to report healthy
#
# As root on Debian/Ubuntu it installs what it needs with apt-get (systemd,
# prometheus for promtool, shellcheck, qemu-user-static, the arm64 cross
# compiler). Run from anywhere:  scripts/verify-deploy.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "-- installing $2"
    apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }
  fi
  command -v "$1" >/dev/null || { echo "verify-deploy: $1 not found (package $2)" >&2; return 1; }
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== release build (scripts/release.sh)"
need qemu-aarch64-static qemu-user-static
DIST="$tmp/dist" scripts/release.sh
(cd "$tmp/dist" && sha256sum -c --quiet SHA256SUMS && echo "SHA256SUMS: OK")
for arch in amd64 arm64; do
  bin="$tmp/dist/lookout-linux-$arch"
  echo "-- $arch: $(file -b "$bin" | cut -d, -f1-2,4-5)"
  if [ "$arch" = "$(go env GOHOSTARCH)" ]; then "$bin" version; else qemu-"${arch/arm64/aarch64}"-static "$bin" version; fi
done

echo "== systemd-analyze verify deploy/lookout.service"
need systemd-analyze systemd
# verify insists that ExecStart's binary exists: point a copy at the one just built.
sed "s#^ExecStart=/usr/local/bin/lookout#ExecStart=$tmp/dist/lookout-linux-$(go env GOHOSTARCH)#" \
  deploy/lookout.service > "$tmp/lookout.service"
systemd-analyze verify "$tmp/lookout.service"
echo "verify: OK"
# The exposure score: 0 is locked down, 10 unprotected (systemd 250 or newer).
systemd-analyze security --offline=true "$tmp/lookout.service" | tail -1 ||
  echo "(this systemd cannot score a unit offline)"

echo "== promtool"
need promtool prometheus
promtool check config deploy/prometheus.yml
# Each dashboard query as a recording rule, Grafana's variables replaced.
python3 - deploy/grafana/dashboards/lookout.json > "$tmp/dashboard-rules.yml" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("groups:\n- name: dashboard\n  rules:")
n = 0
for p in d["panels"]:
    for t in p.get("targets", []):
        e = t["expr"].replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$source", ".*")
        n += 1
        print(f"  - record: dashboard_query_{n}\n    expr: {json.dumps(e)}")
PY
promtool check rules "$tmp/dashboard-rules.yml"

echo "== shellcheck"
need shellcheck shellcheck
shellcheck -x scripts/*.sh deploy/healthcheck.sh
echo "shellcheck: OK"

echo "== docker"
if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  echo "no Docker engine here (docker info fails): image not built; deploy_test.go checks the"
  echo "Dockerfile, the image's config and its health check without one"
  echo "(scripts/container-test.sh builds and runs the image with Podman instead)"
  exit 0
fi
scripts/docker-build.sh lookout:verify
docker run --rm lookout:verify version
docker run --rm lookout:verify --help >/dev/null
cid=$(docker run -d lookout:verify)
trap 'docker rm -f "$cid" >/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 60); do
  state=$(docker inspect -f '{{.State.Health.Status}}' "$cid")
  [ "$state" = healthy ] && break
  sleep 2
done
echo "container health: $state"
[ "$state" = healthy ]
