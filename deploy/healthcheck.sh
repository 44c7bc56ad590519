#!/bin/bash
# Health check for the container (and anyone without curl): GET a path on
# lookout's HTTP listener and succeed on 200. It uses bash alone, so the
# runtime image needs no HTTP client.
#
#   lookout-healthcheck [/healthz|/readyz]
#   LOOKOUT_HEALTH_ADDR=host:port   where lookout listens (default 127.0.0.1:9464)
#
# /healthz answers 200 while the process is alive; /readyz answers 200 only
# while the store takes writes (503 otherwise).
set -u
addr=${LOOKOUT_HEALTH_ADDR:-127.0.0.1:9464}
path=${1:-/healthz}
host=${addr%:*}
port=${addr##*:}
if ! exec 3<>"/dev/tcp/$host/$port"; then
  echo "lookout-healthcheck: cannot connect to $addr" >&2
  exit 1
fi
printf 'GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$addr" >&3
if ! IFS= read -r -t 5 status <&3; then
  echo "lookout-healthcheck: no answer from $addr$path" >&2
  exit 1
fi
status=${status%$'\r'}
case $status in
  "HTTP/1."?" 200 "*) exit 0 ;;
esac
echo "lookout-healthcheck: $addr$path answered: $status" >&2
exit 1
