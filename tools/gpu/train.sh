#!/usr/bin/env bash
# GPU training runs for issues 3, 5 and 7, for ONE call of the device tool right after check.sh:
#
#   here, once:   tools/gpu/prepare.sh
#   the call:     run(command="bash tools/gpu/train.sh", carry=[".whl/py", ".gpudata/train"], timeout_s=330)
#
# The GTV recipe (training/configs/gtv.yaml) with 3x the patches per epoch (120 instead of 40), 60 epochs, three
# runs sharing the GPU (H200: 165-181 s; log in docs/gpu/train_h200.log):
#   finetune  8 filters from the hippocampus-pretrained checkpoint   } the experiment's two arms
#   scratch   8 filters from random weights                          }
#   scratch16 16 filters (4.7 M parameters) from random weights        the width effect (WIDE=0 skips it)
# then, with PAIR2=1, clinical: finetune with thick slices and bias fields in 60 % of patches (not yet run).
# Back: last.pt and best.pt of the two arms (the experiment resumes from them here and only evaluates; see README),
# the history of scratch16 and clinical, clinical's best.pt, and one log. SAMPLES / EPOCHS / T1 / T2 change it.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/py/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
# the cases are read from the prepared cache; the BraTS folder (not carried) is stood in for by empty files
stub=/tmp/brats_stub
python3 -c "
import json, pathlib
s = json.load(open('training/splits/brats2018.json'))
for c in s['train'] + s['validation']:
    d = pathlib.Path('$stub') / c; d.mkdir(parents=True, exist_ok=True)
    for x in ('t1ce', 'flair', 'seg'): (d / f'{c}_{x}.nii.gz').touch()"
S=${SAMPLES:-120} E=${EPOCHS:-60} T1=${T1:-290} T2=${T2:-220}
common=(--config training/configs/gtv.yaml --set data.cache_dir=.gpudata/train/cache --set data.root=$stub --set optim.num_workers=3
        --set "optim.epochs=$E" --set "data.samples_per_epoch=$S")
runs=/tmp/runs
mkdir -p $runs
run() {  # name, timeout, args...
  local name=$1 limit=$2; shift 2
  timeout "$limit" python3 -m training "$@" "${common[@]}" --out "$runs/$name" > "$runs/$name.log" 2>&1
  echo "$name exit $? after $SECONDS s"
}
run finetune "$T1" finetune --init .gpudata/train/pretrain_best.pt &
run scratch "$T1" scratch &
[ "${WIDE:-1}" = 1 ] && run scratch16 "$T1" scratch --set model.init_filters=16 &
wait
if [ "${PAIR2:-0}" = 1 ]; then
  run clinical "$T2" finetune --init .gpudata/train/pretrain_best.pt --set augment.thick_slice_prob=0.6 \
    --set augment.bias_field_prob=0.6
fi
for n in finetune scratch scratch16 clinical; do
  mkdir -p "$OUT/$n"
  test -f "$runs/$n.log" && { echo "=== $n"; grep -v "Warning\|warn(" "$runs/$n.log"; } >> "$OUT/train.log"
done
cp $runs/finetune/{last.pt,best.pt} "$OUT/finetune/" 2>/dev/null
cp $runs/scratch/{last.pt,best.pt} "$OUT/scratch/" 2>/dev/null
cp $runs/clinical/best.pt $runs/clinical/history.json "$OUT/clinical/" 2>/dev/null
cp $runs/scratch16/history.json "$OUT/scratch16/" 2>/dev/null
tail -n 3 $runs/*.log
echo "done in $SECONDS s"
