#!/usr/bin/env bash
# retain against Avalanche 0.6.0 and plain PyTorch, in the peers harness (never in retain's venv).
#   bash benchmarks/avalanche/run.sh /path/to/peers [REPEATS] [WORKLOADS]
# /path/to/peers: a writable copy of the harness, e.g. cp -r ../shared/peers "$(mktemp -d)".
# Sets up its venv (.venv-peers: torch 2.13 CPU + avalanche-lib 0.6.0) when missing, puts this
# repository's src/ on PYTHONPATH (nothing is installed), copies the adapter in, runs.
# BENCH_ARGS passes options to clbench.bench (on a busy machine: "--quiet-wait 0 --retries 0").
set -euo pipefail
PEERS="$(cd "$1" && pwd)"; REPEATS="${2:-5}"; WORKLOADS="${3:-w2 w1}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="$PEERS/.venv-peers/bin/python"
[[ -x "$PY" ]] || bash "$PEERS/setup_venv.sh"
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "from retain import Learner" || { echo "retain does not import in $PY"; exit 2; }
cp "$REPO/benchmarks/avalanche/retain_adapter.py" "$PEERS/clbench/adapters/retain_adapter.py"
cd "$PEERS"
for w in $WORKLOADS; do
  "$PY" -m clbench.bench --python "$PY" --workloads "$w" --repeats "$REPEATS" \
    --libs plain,avalanche,clbench.adapters.retain_adapter:RetainAdapter \
    --strategies "${STRATEGIES:-naive,ewc,replay,lwf}" --out "$PEERS/results/retain-$w" \
    ${BENCH_ARGS:-}
  cat "$PEERS/results/retain-$w.summary.md"
done
