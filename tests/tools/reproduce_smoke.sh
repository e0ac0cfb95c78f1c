#!/usr/bin/env bash
# tools/reproduce.sh on a tiny corpus in WikiText's layout: every model trains one epoch
# and the table has a row with a perplexity for each. No timing or accuracy assertions.
#   reproduce_smoke.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
words=(the a cat dog sat on mat ran to house big small red blue and @-@ of in)
for split in train:300 valid:30 test:30; do
  name=${split%%:*} lines=${split##*:}
  {
    printf ' \n = Title = \n \n'
    for ((i = 0; i < lines; i++)); do
      line=""
      for ((k = 0; k < 5 + (i * 7) % 20; k++)); do line+=" ${words[(i * 31 + k * 17) % ${#words[@]}]}"; done
      printf '%s . \n' "$line"
    done
  } > "$work/wiki.$name.tokens"
done
# The script runs from its repository and writes runs/ there: give it a copy whose
# build/ is the build under test.
mkdir -p "$work/repo/tools" "$work/repo/build/tools"
cp "$src/tools/reproduce.sh" "$work/repo/tools/"
ln -s "$build/tools/enn" "$work/repo/build/tools/enn"
cd "$work/repo"
ENN_NO_BUILD=1 ENN_COMMIT=test bash tools/reproduce.sh wikitext "$work" --epochs 1 --batch 16 \
    --device "${ENN_TEST_DEVICE:-llvmpipe}" > "$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
cat "$work/out.txt"
for model in ENN RNN GRU LSTM; do
  grep -Eq "^\| $model \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|" "$work/out.txt" || { echo "no row for $model"; exit 1; }
done
