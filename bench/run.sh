#!/usr/bin/env bash
# Runs every hot-path benchmark that BENCHMARKS.md reports, in one go, and
# prints the machine and load alongside. Usage (from the repo root):
#   bash bench/run.sh | tee bench.out
# LOOKOUT_DATA names the data folder the benchmarks read (as in .ci/run, a
# folder named shared/data beside the repository when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
export LOOKOUT_DATA="${LOOKOUT_DATA:-$(cd .. && pwd)/shared/data}"

echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(go version)"
echo "# cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
echo "# load: $(cut -d' ' -f1-3 /proc/loadavg)"

run() { echo; echo "\$ go test $*"; go test "$@"; }

run -run '^$' -bench 'BilibiliDecode|BilibiliParse|DouyinDecode|TwitchParse|BlueskyDecode|MastodonDecode|FeedParse|JSONMap|HTMLExtract' -benchtime 2s ./collectors/
run -run '^$' -bench 'ScoreChat|ScoreReview150' -cpu 1 -benchtime 3s ./sentiment/
run -run '^$' -bench 'ExtractTerms|LoadTermsDict' -cpu 1 -benchtime 2s ./sentiment/
run -run '^$' -bench 'WriteItems|Writer' -benchtime 100000x ./store/
run -run '^$' -bench 'EngineObserve' -cpu 1 -benchtime 300000x ./alerts/
run -run '^$' -bench 'EngineEvaluate' -cpu 1 -benchtime 20x ./alerts/
run -run '^$' -bench 'DeliveryPublish|NotifyBuild|DeliveryLatency' -benchtime 2s ./alerts/
run -run '^$' -bench 'Pipeline200Rooms|AlertLatency' -benchtime 1x -count 2 ./daemon/
run -run 'TestNABScore' -v ./alerts/
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
