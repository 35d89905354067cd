#!/usr/bin/env bash
# Creates one virtual environment per peer library under $PEERS_DIR (default ../.peers beside
# the checkout). Peers pin conflicting numpy/pandas versions, so they never share Watchkeeper's
# environment; benchmarks call them as subprocesses. Versions as in shared/PEERS.md.
set -euo pipefail
PY=${PYTHON:-python3}
PEERS_DIR=${PEERS_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/.peers}
mkdir -p "$PEERS_DIR"
make_env() {
  local name=$1; shift
  if [ -x "$PEERS_DIR/$name/bin/python" ] && [ -f "$PEERS_DIR/$name/.ok" ]; then return; fi
  "$PY" -m venv "$PEERS_DIR/$name"
  "$PEERS_DIR/$name/bin/pip" install -q --upgrade pip
  "$PEERS_DIR/$name/bin/pip" install -q "$@"
  touch "$PEERS_DIR/$name/.ok"
  echo "peer $name ready in $PEERS_DIR/$name"
}
only=${1:-all}
[ "$only" = all ] || [ "$only" = river ] && make_env river "river==0.26.1" pandas pyarrow
[ "$only" = all ] || [ "$only" = frouros ] && make_env frouros "frouros==0.9.0" pandas pyarrow
[ "$only" = all ] || [ "$only" = nannyml ] && make_env nannyml "nannyml==0.13.1" statsmodels pyarrow
[ "$only" = all ] || [ "$only" = evidently ] && make_env evidently "evidently==0.7.23" "pandas<3" pyarrow
[ "$only" = all ] || [ "$only" = alibi ] && make_env alibi "alibi-detect==0.13.0" "pyarrow<21" "torch==2.13.0"
[ "$only" = all ] || [ "$only" = whylogs ] && make_env whylogs "whylogs==1.6.4" "numpy<2" "pandas<3" "pyarrow<21" "pyspark==3.5.*"
exit 0
