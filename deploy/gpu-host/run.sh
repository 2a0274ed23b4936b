#!/usr/bin/env bash
# One command on a GPU host: install what is missing, calibrate the GPU (gpucolo calibrate --backend nvidia), run the
# two-tier control and the baselines on the real workloads (workloads/), write the tables. See README.md, "Calibrate".
#
#   deploy/gpu-host/run.sh pack                 on a machine with node_modules: carry node, nats-server and a
#                                               one-file gpucolo into .gpu/ (git ignores it; under 64 MiB)
#   deploy/gpu-host/run.sh [options]            on the GPU host
#     --quick                 calibrate --quick (under 5 min of GPU time) and 3 policies x 45 s
#     --out DIR               results folder (default bench/results/gpu-host/<gpu>-<date>)
#     --policies LIST         comma-separated policies (default gpucolo,gpucolo-paper,gslice,simple,conservative,no-colocation)
#     --policy-seconds N      seconds each policy runs (default 120; --quick 45)
#     --calibrate-workloads F workloads file calibrate measures (default deploy/gpu-host/calibrate.yaml)
#     --control-workloads F   workloads file the policies run (default workloads/nvidia-example.yaml)
#     --plan F                calibrate --plan F (overrides of the measurement plan)
#     --skip-capture, --skip-control, --skip-calibrate, --skip-bench
#                             skip a step; they run in this order: capture the NVIDIA tools' real output
#                             (capture.sh), the policies, calibrate, the simulated bench on the measured profile
# It never changes GPU settings (no compute mode, clocks, MIG, persistence, reset): it starts its own MPS control
# daemons in its own state folder and quits them before it leaves. Every step's outcome goes to STATUS.md.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
CARRY="$ROOT/.gpu"

if [[ "${1:-}" == "pack" ]]; then
  set -e
  mkdir -p "$CARRY"
  node_bin=$(readlink -f "$(command -v node)")
  echo "pack: node $(node --version) from $node_bin"
  xz -T2 -c "$node_bin" > "$CARRY/node.xz"
  nats=$(command -v nats-server || true); [[ -z "$nats" && -x /usr/sbin/nats-server ]] && nats=/usr/sbin/nats-server
  if [[ -n "$nats" ]]; then echo "pack: nats-server from $nats"; xz -T2 -c "$(readlink -f "$nats")" > "$CARRY/nats-server.xz"; else echo "pack: no nats-server here (apt-get install nats-server): the control runs will need one on the GPU host"; fi
  npx esbuild deploy/gpu-host/entry.ts --bundle --platform=node --format=esm --target=node20 --external:msgpackr-extract \
    --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" \
    --outfile="$CARRY/gpucolo.mjs" --log-level=warning
  total=$(du -cb "$CARRY"/node.xz "$CARRY"/gpucolo.mjs "$CARRY"/nats-server.xz 2>/dev/null | tail -1 | cut -f1)
  echo "pack: $CARRY holds $((total / 1048576)) MiB (limit 64)"
  (( total < 64 * 1048576 )) || { echo "pack: over 64 MiB" >&2; exit 1; }
  exit 0
fi

ARGS="$*"
QUICK=0; OUT=""; POLICIES=""; POLICY_S=""; CAL_W="deploy/gpu-host/calibrate.yaml"; CTL_W="workloads/nvidia-example.yaml"; PLAN=""
SKIP_CAL=0; SKIP_CTL=0; SKIP_CAP=0; SKIP_BENCH=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --out) OUT="$2"; shift ;;
    --policies) POLICIES="$2"; shift ;;
    --policy-seconds) POLICY_S="$2"; shift ;;
    --calibrate-workloads) CAL_W="$2"; shift ;;
    --control-workloads) CTL_W="$2"; shift ;;
    --plan) PLAN="$2"; shift ;;
    --skip-calibrate) SKIP_CAL=1 ;;
    --skip-control) SKIP_CTL=1 ;;
    --skip-capture) SKIP_CAP=1 ;;
    --skip-bench) SKIP_BENCH=1 ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if (( QUICK )); then POLICIES=${POLICIES:-gpucolo,gpucolo-paper,no-colocation}; POLICY_S=${POLICY_S:-45}; fi
POLICIES=${POLICIES:-gpucolo,gpucolo-paper,gslice,simple,conservative,no-colocation}
POLICY_S=${POLICY_S:-120}
[[ "$POLICY_S" =~ ^[0-9]+$ ]] || { echo "run.sh: --policy-seconds must be a whole number, got $POLICY_S" >&2; exit 2; }

command -v nvidia-smi >/dev/null 2>&1 || { echo "run.sh: nvidia-smi not found: this is not a GPU host (or the driver is not installed)" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gpucolo-host.XXXXXX")
STATE="$TMP/state"
STATUS=()
note() { echo "run.sh: $*" >&2; STATUS+=("$*"); }

# What is missing, installed from .gpu/ (carried), else from the distribution when the host can reach it.
if command -v node >/dev/null 2>&1 && [[ $(node -p 'process.versions.node.split(".")[0]') -ge 20 ]]; then NODE=$(command -v node)
elif [[ -f "$CARRY/node.xz" ]]; then xz -dc "$CARRY/node.xz" > "$TMP/node" && chmod +x "$TMP/node"; NODE="$TMP/node"; note "node: unpacked from .gpu/node.xz ($("$NODE" --version))"
else echo "run.sh: no Node.js 20+ and no .gpu/node.xz: run 'deploy/gpu-host/run.sh pack' where node_modules is, and carry .gpu/" >&2; exit 1; fi
if [[ -f node_modules/tsx/package.json ]]; then GPUCOLO=("$NODE" "$ROOT/bin/gpucolo.mjs")
elif [[ -f "$CARRY/gpucolo.mjs" ]]; then GPUCOLO=("$NODE" "$CARRY/gpucolo.mjs"); note "gpucolo: the one-file bundle .gpu/gpucolo.mjs"
else echo "run.sh: no node_modules and no .gpu/gpucolo.mjs: run 'deploy/gpu-host/run.sh pack' first" >&2; exit 1; fi
if [[ -z "${NATS_SERVER_BIN:-}" ]] && ! command -v nats-server >/dev/null 2>&1 && [[ ! -x /usr/sbin/nats-server ]]; then
  if [[ -f "$CARRY/nats-server.xz" ]]; then xz -dc "$CARRY/nats-server.xz" > "$TMP/nats-server" && chmod +x "$TMP/nats-server"; export NATS_SERVER_BIN="$TMP/nats-server"; note "nats-server: unpacked from .gpu/nats-server.xz"
  elif command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && apt-get install -y -qq nats-server >/dev/null 2>&1; then note "nats-server: installed with apt-get"
  else note "nats-server: missing (no .gpu/nats-server.xz, apt-get failed): the control runs cannot start"; fi
fi
if ! python3 -c 'import torch' >/dev/null 2>&1; then
  note "python: no torch (a CUDA build must match the driver: install it yourself); the workloads will fail to start"
else
  # No pip here: GPU hosts are often offline, and pip must never replace the host's CUDA build of torch.
  note "python: torch $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null); ResNet-50 from $(cd workloads && python3 -c 'from resnet import resnet50; print(resnet50()[1])' 2>/dev/null || echo '(could not build it)')"
fi

GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
SLUG=$(echo "${GPU_NAME:-gpu}" | tr 'A-Z' 'a-z' | sed 's/[^a-z0-9]\{1,\}/-/g; s/^-//; s/-$//')
OUT=${OUT:-bench/results/gpu-host/${SLUG}-$(date -u +%Y%m%d-%H%M)}
mkdir -p "$OUT"
{
  echo "date: $(date -u +%FT%TZ)"; echo "host: $(uname -a)"
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_mode --format=csv 2>&1
  nvidia-smi -L 2>&1
  echo "python: $(python3 --version 2>&1); torch: $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "node: $("$NODE" --version); gpucolo: ${GPUCOLO[*]}"
} > "$OUT/env.txt"

# Our MPS daemons are quit by the commands themselves; this is the backstop for an interrupted run.
cleanup() {
  for pipe in "$STATE"/*/mps*/pipe; do
    [[ -S "$pipe/control" ]] && echo quit | CUDA_MPS_PIPE_DIRECTORY="$pipe" timeout 20 nvidia-cuda-mps-control >/dev/null 2>&1
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

if (( ! SKIP_CAP )); then
  start=$(date +%s)
  bash deploy/gpu-host/capture.sh "$OUT/capture" > "$OUT/capture.log" 2>&1
  note "capture: exit $? after $(( $(date +%s) - start )) s ($(tail -1 "$OUT/capture.log"))"
fi

if (( ! SKIP_CTL )); then
  pairs=()
  IFS=, read -ra list <<< "$POLICIES"
  for p in "${list[@]}"; do
    args=(host --host-id gpuhost --backend nvidia --workloads "$CTL_W" --policy "$p" --duration "$POLICY_S" --json --trace-file "$OUT/control-$p.trace.jsonl" --state-dir "$STATE/host")
    echo "run.sh: gpucolo ${args[*]}" >&2
    start=$(date +%s)
    timeout $((POLICY_S + 180)) "${GPUCOLO[@]}" "${args[@]}" > "$OUT/control-$p.json" 2> "$OUT/control-$p.log"
    rc=$?
    note "control $p: exit $rc after $(( $(date +%s) - start )) s$( ((rc == 0)) || echo ": $(tail -1 "$OUT/control-$p.log")")"
    pairs+=("$p=$OUT/control-$p.trace.jsonl")
  done
  "$NODE" deploy/gpu-host/summarize.mjs "${pairs[@]}" > "$OUT/control.md" 2>> "$OUT/control-summary.log" || note "control table: summarize failed (see control-summary.log)"
  gzip -f "$OUT"/control-*.trace.jsonl 2>/dev/null
fi

PROFILE="$OUT/profile.json"
if (( ! SKIP_CAL )); then
  args=(calibrate --backend nvidia --workloads "$CAL_W" --out "$PROFILE" --name "${SLUG}-calibrated" --state-dir "$STATE/cal" --json)
  (( QUICK )) && args+=(--quick)
  [[ -n "$PLAN" ]] && args+=(--plan "$PLAN")
  echo "run.sh: gpucolo ${args[*]}" >&2
  start=$(date +%s)
  "${GPUCOLO[@]}" "${args[@]}" > "$OUT/calibrate.json" 2> "$OUT/calibrate.txt"
  rc=$?
  note "calibrate: exit $rc after $(( $(date +%s) - start )) s ($( ((rc == 0)) && echo "profile $PROFILE" || tail -1 "$OUT/calibrate.txt"))"
fi

# The measured profile drives the simulated bench too (CPU only): the same policies on the plant just measured.
if (( ! SKIP_BENCH )) && [[ -s "$PROFILE" ]]; then
  "${GPUCOLO[@]}" bench control --scenario paper-burst --profile "$PROFILE" --out "$OUT" > "$OUT/bench-control-paper-burst.txt" 2>&1
  note "bench control on the measured profile: exit $?"
fi

{
  echo "# GPU host run, $(date -u +%FT%TZ)"; echo; echo "GPU: ${GPU_NAME:-unknown}. Command: deploy/gpu-host/run.sh $ARGS"; echo
  for s in "${STATUS[@]}"; do echo "- $s"; done
  if [[ -s "$OUT/calibrate.txt" ]]; then echo; echo '## Calibration (measured against fitted)'; echo; echo '```'; sed -n '/^Calibration of/,$p' "$OUT/calibrate.txt"; echo '```'; fi
  if [[ -s "$OUT/control.md" ]]; then echo; echo "## Control, ${POLICY_S} s per policy"; echo; cat "$OUT/control.md"; fi
} > "$OUT/STATUS.md"
echo "run.sh: results in $OUT (STATUS.md first)" >&2
