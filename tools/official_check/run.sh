#!/usr/bin/env bash
# The released-weights importers against the authors' own code (issue #23, README "Released
# weights"): each official network is built at tiny widths with random weights, saved as its code
# saves a release, imported with --mode=import_weights, exported, and compared.
# Not run by CI; holds no official code. Run from the project root:
#   LADAGAN=.../LadaGAN TFGAN=.../gan YLG=.../ylg ATTNGAN=.../AttnGAN \
#   TORCH_PYTHON=/tmp/torchenv/bin/python tools/official_check/run.sh WORK_DIR [ladagan tfgan ylg attngan]
# (a source whose variable is unset is skipped). TORCH_PYTHON: a throwaway venv with torch and
# torchvision (`python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch torchvision`).
set -euo pipefail
WORK=$(realpath -m "$1"); shift
SOURCES=${*:-ladagan tfgan ylg attngan}
HERE=$(dirname "$0")
PY=${PY:-.venv/bin/python}
quiet() { grep -v "^I0000\|oneDNN\|cpu_feature\|rebuild TensorFlow\|^W1207\|^I1207\|graph_constructor\|WARNING" || true; }
import_export() {  # WORK_SUBDIR, import flags...
  local w=$1; shift
  rm -rf "$w/run"
  $PY run.py --mode=import_weights --model_dir="$w/run" "$@" 2>&1 | tail -1
  $PY run.py --mode=export --model_dir="$w/run" 2>&1 | tail -1
}
mkdir -p "$WORK/data"
for s in $SOURCES; do
  case $s in
    ladagan) [ -n "${LADAGAN:-}" ] || continue
      for v in 128 64 32; do
        echo "== LadaGAN, img_size $v"; w=$WORK/ladagan$v
        $PY "$HERE/ladagan_official.py" "$LADAGAN/tensorflow" "$w" $v 2>&1 | quiet | tail -1
        import_export "$w" --import_from="$w/release"
        $PY "$HERE/compare.py" ladagan "$w" 2>&1 | quiet
      done ;;
    tfgan|ylg) var=$( [ $s = tfgan ] && echo "${TFGAN:-}" || echo "${YLG:-}/ylg" )
      [ -n "$var" ] && [ "$var" != /ylg ] || continue
      for u in converged random; do
        echo "== $s, SN u $u"; w=$WORK/$s-$u
        base=$( [ $u = random ] && echo "$WORK/$s-converged/official" || echo "" )
        TRAINED_BASE=$base $PY "$HERE/sagan_official.py" "$var" "$w" $s $u 2>&1 | quiet | tail -1
        import_export "$w" --import_from="$w/official" --dataset=imagenet128 --data_dir="$WORK/data"
        $PY "$HERE/compare.py" sagan "$w" 2>&1 | quiet
      done ;;
    attngan) [ -n "${ATTNGAN:-}" ] || continue
      for f in zip legacy; do
        echo "== AttnGAN, $f serialization"; w=$WORK/attngan-$f
        "$TORCH_PYTHON" "$HERE/attngan_official.py" "$ATTNGAN/code" "$w" $f 2>&1 | tail -1
        import_export "$w" --model=attngan --dataset=cub --data_dir="$WORK/data" \
          --import_from="$w/bird_AttnGAN2.pth,$w/text_encoder200.pth,$w/image_encoder200.pth,$w/captions.pickle"
        $PY "$HERE/compare.py" attngan "$w" 2>&1 | quiet
      done ;;
  esac
done
