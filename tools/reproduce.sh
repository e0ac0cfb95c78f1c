#!/usr/bin/env bash
# Reproduces the paper's experiments: the ENN against the RNN, GRU and LSTM baselines,
# each trained with the paper's protocol (Adam 1e-3, clipnorm 1.0, batch 128, early
# stopping with patience 3 and restore-best, reduce-on-plateau, 10% validation split;
# `enn train --paper`, which also takes the reference package's last-state pooling), and
# writes a table like the paper's (Table 2 for MNIST rows, Table 4 for WikiText).
#
#   tools/reproduce.sh mnist [fashion-mnist | DIR | mnist.npz]  [enn train flags...]
#       any MNIST-format directory (train-images-idx3-ubyte[.gz], ...), default
#       Debian's Fashion-MNIST; baselines of two layers, 128 then 64 units
#   tools/reproduce.sh wikitext DIR [enn train flags...]
#       a WikiText-format directory (wiki.train.tokens and wiki.test.tokens, or .raw;
#       validation: the last 10% of the training spans); a quarter of the lines, 32-token spans,
#       baselines of two layers of 128
#
# Extra flags go to every `enn train` run (e.g. --train-samples 10000 --epochs 3 for a
# subset, --device NVIDIA). The table lands in runs/reproduce-<task>/table.md.
set -euo pipefail
cd "$(dirname "$0")/.."
task=${1:-}
case "$task" in
  mnist) data=${2:-fashion-mnist}; shift $(( $# >= 2 ? 2 : 1 ));
         case "$data" in
           fashion-mnist) data_args=(--data fashion-mnist) ;;
           *.npz) data_args=(--data mnist-npz "$data") ;;   # Keras's mnist.npz
           *) data_args=(--data mnist-idx "$data") ;;
         esac
         units=(--units 128,64) ;;
  wikitext) [ $# -ge 2 ] || { echo "usage: tools/reproduce.sh wikitext DIR [flags]" >&2; exit 2; }
         data_args=(--data wikitext "$2"); shift 2; units=(--units 128,128) ;;
  *) sed -n '2,18p' "$0" >&2; exit 2 ;;
esac

# ENN_NO_BUILD=1 uses an existing build/tools/enn (a machine without the build tools).
[ -n "${ENN_NO_BUILD:-}" ] || ENN_BUILD_TARGET=enn bash tools/setup.sh build >/dev/null
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
out=runs/reproduce-$task
mkdir -p "$out"
commit=${ENN_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
rows=()
device=""
for model in enn rnn gru lstm; do
  log=$out/$model.log
  model_args=(--model "$model")
  [ "$model" = enn ] || model_args+=("${units[@]}")
  echo "== $model" >&2
  ./build/tools/enn train "${data_args[@]}" "${model_args[@]}" --paper --plain --no-plots --overwrite \
      --out "$out/$model" "$@" > "$log" 2>&1 || { echo "enn train ($model) failed; see $log" >&2; tail -5 "$log" >&2; exit 1; }
  device=$(sed -n 's/^device: //p' "$log" | head -1)
  params=$(sed -n 's/^model: .*: \([0-9]*\) parameters.*/\1/p' "$log" | head -1)
  acc=$(sed -n 's/^test accuracy //p' "$log" | tail -1)
  loss=$(sed -n 's/^test: .*loss \([0-9.]*\).*/\1/p' "$log" | tail -1)
  ppl=$(sed -n 's/^test: .*perplexity \([0-9.]*\).*/\1/p' "$log" | tail -1)
  secs=$(sed -n 's/^total time \([0-9.]*\) s.*/\1/p' "$log" | tail -1)
  epochs=$(grep -c '^epoch [0-9]*/[0-9]*:' "$log" || true)
  rows+=("| ${model^^} | ${acc:-?} | ${loss:-?} |${ppl:+ $ppl |} ${secs:-?} | ${epochs} | ${params:-?} |")
  echo "   test accuracy ${acc:-?}, loss ${loss:-?}, ${secs:-?} s" >&2
done

{
  echo "Task: $task (${data_args[*]}), flags: --paper $*"
  echo "Device: $device; commit $commit; $(date -u +%Y-%m-%d)"
  echo
  if [ "$task" = wikitext ]; then
    echo "| model | test accuracy | test loss | perplexity | training time (s) | epochs | parameters |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
  else
    echo "| model | test accuracy | test loss | training time (s) | epochs | parameters |"
    echo "| --- | --- | --- | --- | --- | --- |"
  fi
  printf '%s\n' "${rows[@]}"
  echo
  echo "Parameters are the trainable ones; the paper's table also counts the reference"
  echo "package's unused N x h initial-trace weight for the ENN (8,192 at h = 128, N = 64)."
} > "$out/table.md"
cat "$out/table.md"
