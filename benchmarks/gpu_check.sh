#!/usr/bin/env bash
# One prepared run of every GPU check of issue #15, at most 8 minutes on one GPU:
#   1. tests      tests/test_cuda.py: parity with the CPU, fp16/bf16 autocast, channels_last, inductor
#                 fullgraph for every public module; MirrorUNet/MirrorAutoencoder on timm and torchvision
#   2. bench      benchmarks/run.py --device cuda --short: DCGAN training throughput against the
#                 reference loop, overhead against hand-written twins, exact vs pad-to-32, stride-1 mirrors
#   3. ex-*       each example for a fixed number of steps with --amp --channels-last --compile (in parallel)
#   4. dcgan-full full-length dcgan.py --conditional, fp32 eager and with --amp --channels-last --compile
#                 (in parallel): the label accuracy of each, so the speed options are judged on samples too
# Each stage runs under `timeout` with its own cap, inside one overall budget; a stage that fails
# or runs out of time is recorded and the next one starts. The summary is printed last.
#
#   bash benchmarks/gpu_check.sh             # on the GPU machine (torch preinstalled; nothing is installed)
#   bash benchmarks/gpu_check.sh --dry-run   # every stage on the CPU with tiny steps (the suite runs this)
#
# Environment: OUT, the folder for what comes back (default runs/gpu_check); PYTHON (default python3).
# $OUT gets at most 8 files: summary.txt, RESULTS-<device>.md, logs.tar.gz (every log, metrics.json
# and test report) and the sample grids as PNGs.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
DRY=0
case "${1:-}" in
  "") ;;
  --dry-run) DRY=1 ;;
  -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
  *) echo "gpu_check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

PY=${PYTHON:-python3}
OUT=${OUT:-$ROOT/runs/gpu_check}
mkdir -p "$OUT" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 2
export PYTHONPATH="$ROOT/src:$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1

if ((DRY)); then
  DEVICE=cpu BUDGET=240 CAP_ENV=30 CAP_TESTS=60 CAP_BENCH=60 CAP_EXAMPLES=60 CAP_FULL=60
  EXAMPLE_STEPS=(--max-steps 2) FULL_STEPS=(--max-steps 3) BENCH_MODE=(--short --quick) PYTEST_WORKERS=()
  # inductor takes a minute a model on a small CPU: dynamo alone traces what the GPU run compiles
  export AUTOSHAPE_EXAMPLES_COMPILE_BACKEND=${AUTOSHAPE_EXAMPLES_COMPILE_BACKEND:-eager}
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # the parallel stages share a few cores
  declare -A TINY=(
    [mirror_autoencoder]="--image-size 15 --width 4 --latent 4 --batch-size 16"
    [dcgan]="--image-size 28 --features 4 --batch-size 16"
    [unet_segmentation]="--image-size 13x11 --width 4 --batch-size 16"
  )
else
  DEVICE=cuda BUDGET=455 CAP_ENV=30 CAP_TESTS=120 CAP_BENCH=170 CAP_EXAMPLES=100 CAP_FULL=100
  EXAMPLE_STEPS=(--max-steps 50) FULL_STEPS=() BENCH_MODE=(--short) PYTEST_WORKERS=()
  "$PY" -c "import xdist" 2>/dev/null && PYTEST_WORKERS=(-n 4)  # inductor compiles in parallel workers
  declare -A TINY=([mirror_autoencoder]="" [dcgan]="" [unet_segmentation]="")
fi
FAST=(--amp --channels-last --compile)
START=$SECONDS

log() { printf '[%4ds] %s\n' "$((SECONDS - START))" "$*"; }

# run_stage NAME CAP COMMAND...: runs COMMAND under timeout with its output in WORK/NAME.log and
# appends "name, status, exit code, seconds, cap" to WORK/stages.tsv (status ok, failed, timeout
# or skipped when the budget has no time left for it).
run_stage() {
  local name=$1 cap=$2 left=$((BUDGET - (SECONDS - START)))
  shift 2
  if ((left < 10)); then
    printf '%s\tskipped\t-\t0\t%s\n' "$name" "$cap" >>"$WORK/stages.tsv"
    log "$name: skipped, the ${BUDGET} s budget is spent"
    return 0
  fi
  ((cap > left)) && cap=$left
  log "$name: starting (cap ${cap} s): $*"
  local began=$SECONDS rc status
  timeout -k 10 "$cap" "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  case $rc in
    0) status=ok ;;
    124|137) status=timeout ;;
    *) status=failed ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$((SECONDS - began))" "$cap" >>"$WORK/stages.tsv"
  log "$name: $status in $((SECONDS - began)) s; last lines:"
  tail -n 3 "$WORK/$name.log" | sed 's/^/    /'
}

# collect: copy what comes back into OUT (the results file, the grids, every log packed in one archive)
collect() {
  cp -f "$WORK"/RESULTS-*.md "$OUT/" 2>/dev/null
  local from to
  for pair in ex-mirror_autoencoder/reconstructions.png:autoencoder_reconstructions.png \
              ex-unet_segmentation/segmentation.png:unet_segmentation.png \
              dcgan-full-fp32/samples.png:dcgan_conditional_fp32.png \
              dcgan-full-fast/samples.png:dcgan_conditional_amp_channels_last_compile.png; do
    from=${pair%%:*} to=${pair##*:}
    [[ -f $WORK/$from ]] && cp -f "$WORK/$from" "$OUT/$to"
  done
  tar -czf "$OUT/logs.tar.gz" --exclude='*.pt' -C "$WORK" . 2>/dev/null
}

finish() {
  printf '%s\t%s\n' "$((SECONDS - START))" "$BUDGET" >"$WORK/clock.tsv"
  collect
  "$PY" benchmarks/gpu_check.py summary "$WORK" $( ((DRY)) && echo --dry-run) >"$OUT/summary.txt" 2>&1
  local status=0
  if [[ ! -s $WORK/stages.tsv ]] || grep -qv $'\tok\t' "$WORK/stages.tsv"; then
    status=1
  fi
  rm -rf "$WORK"  # everything it held is in logs.tar.gz
  echo
  cat "$OUT/summary.txt"
  echo "(in $OUT: summary.txt, RESULTS-$DEVICE.md, logs.tar.gz with every log, the sample grids)"
  exit "$status"
}

# run_example STAGE CAP NAME FLAGS...: one example as a stage, writing into WORK/STAGE
run_example() {
  local stage=$1 cap=$2 name=$3 tiny
  shift 3
  read -r -a tiny <<<"${TINY[$name]}"
  run_stage "$stage" "$cap" "$PY" "examples/$name.py" --device "$DEVICE" "${tiny[@]}" --out "$WORK/$stage" "$@"
}

log "autoshape GPU check ($( ((DRY)) && echo "DRY RUN on the CPU" || echo "on CUDA")), budget ${BUDGET} s, work folder $WORK"

# 0. the environment: versions and the GPU (a run without CUDA stops here)
run_stage env "$CAP_ENV" "$PY" benchmarks/gpu_check.py env --device "$DEVICE" --json "$WORK/env.json"
if ! grep -q $'^env\tok\t' "$WORK/stages.tsv"; then
  finish
fi

# 1. the cuda-marked tests (on the CPU they are all skipped: the suite runs their checks on the CPU)
run_stage tests "$CAP_TESTS" "$PY" -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider \
  --junitxml="$WORK/tests.xml" "${PYTEST_WORKERS[@]}"
collect

# 2. benchmarks in the short mode; training first, so its figures are in even if a later section runs out of time
run_stage bench "$CAP_BENCH" "$PY" benchmarks/run.py --device "$DEVICE" "${BENCH_MODE[@]}" \
  --sections training,overhead,padding,stride1 --out "$WORK/RESULTS-$DEVICE.md"
collect

# 3. each example for a fixed number of steps with every speed option, in parallel; dcgan conditional,
#    as in stage 4, whose fast run then finds its compiled graphs in inductor's cache
run_example ex-mirror_autoencoder "$CAP_EXAMPLES" mirror_autoencoder "${EXAMPLE_STEPS[@]}" "${FAST[@]}" &
run_example ex-dcgan "$CAP_EXAMPLES" dcgan --conditional "${EXAMPLE_STEPS[@]}" "${FAST[@]}" &
run_example ex-unet_segmentation "$CAP_EXAMPLES" unet_segmentation "${EXAMPLE_STEPS[@]}" "${FAST[@]}" &
wait
collect

# 4. full-length conditional DCGAN, fp32 eager and with every speed option, in parallel (their label
#    accuracies are the point; their images/s share the GPU, so the throughput figures are stage 2's)
run_example dcgan-full-fp32 "$CAP_FULL" dcgan --conditional "${FULL_STEPS[@]}" &
run_example dcgan-full-fast "$CAP_FULL" dcgan --conditional "${FULL_STEPS[@]}" "${FAST[@]}" &
wait

finish
