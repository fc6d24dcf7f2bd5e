#!/usr/bin/env bash
# The quickstart: install (idempotent), make the synthetic shapes dataset if
# it is missing, train RetinaNet with EfficientViT-M0 on it, evaluate it
# (COCO bbox mAP) and draw its predictions on a few validation images.
#
# Usage: bash tools/quickstart.sh
# Environment (all optional):
#   WORK_DIR   checkpoints, logs, drawings     (work_dirs/quickstart)
#   DATA_DIR   dataset root                    (data/synthetic)
#   EPOCHS     training epochs                 (the config's)
#   NUM_TRAIN, NUM_VAL  dataset size           (1000, 100)
#   SKIP_INSTALL=1      do not run tools/install.sh
#   PYTHON     interpreter                     (python3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Idle OpenMP threads sleep instead of spinning: on a busy machine spinning
# threads otherwise burn most of the CPU time.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
PYTHON=${PYTHON:-python3}
CONFIG=configs/quickstart/retinanet_efficientvit-m0_synthetic.py
WORK_DIR=${WORK_DIR:-work_dirs/quickstart}
DATA_DIR=${DATA_DIR:-data/synthetic}
NUM_TRAIN=${NUM_TRAIN:-1000}
NUM_VAL=${NUM_VAL:-100}
start=$(date +%s)

echo "[quickstart] installs what is missing (first run: 5-60 min, see" \
  "bash tools/install.sh --help), makes the synthetic dataset, trains" \
  "RetinaNet-M0 on it (about 8 min on 2 idle cores) and draws predictions"
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  bash tools/install.sh
fi

echo "[quickstart] dataset: $DATA_DIR/coco ($NUM_TRAIN train, $NUM_VAL val)"
"$PYTHON" tools/dataset_converters/make_synthetic_data.py "$DATA_DIR" \
  --formats coco --num-train "$NUM_TRAIN" --num-val "$NUM_VAL" \
  --img-size 192 --seed 0 --skip-existing

coco="$DATA_DIR/coco"
options=(
  "train_dataloader.dataset.data_root=$coco/"
  "val_dataloader.dataset.data_root=$coco/"
  "test_dataloader.dataset.data_root=$coco/"
  "val_evaluator.ann_file=$coco/annotations/instances_val.json"
  "test_evaluator.ann_file=$coco/annotations/instances_val.json"
)
if [ -n "${EPOCHS:-}" ]; then
  options+=("train_cfg.max_epochs=$EPOCHS" "train_cfg.val_interval=$EPOCHS"
            "param_scheduler.1.end=$EPOCHS"
            "default_hooks.checkpoint.interval=$EPOCHS")
fi

echo "[quickstart] training (the last epoch ends with the COCO evaluation)"
"$PYTHON" tools/train.py "$CONFIG" --work-dir "$WORK_DIR" \
  --cfg-options "${options[@]}"

checkpoint=$(cat "$WORK_DIR/last_checkpoint")
echo "[quickstart] drawing predictions of $checkpoint"
"$PYTHON" demo/image_demo.py "$coco"/val/00000{0,1,2,3}.jpg "$CONFIG" \
  --weights "$checkpoint" --out-dir "$WORK_DIR/predictions" --pred-score-thr 0.5

"$PYTHON" - "$WORK_DIR" "$(( $(date +%s) - start ))" <<'PY'
import glob, json, os, sys
work_dir, seconds = sys.argv[1], int(sys.argv[2])
logs = sorted(glob.glob(os.path.join(work_dir, '*', 'vis_data', 'scalars.json')),
              key=os.path.getmtime)
metrics = {}
with open(logs[-1]) as f:
    for line in f:
        record = json.loads(line)
        if 'coco/bbox_mAP' in record:
            metrics = record
if metrics:
    print(f"[quickstart] val bbox mAP {metrics['coco/bbox_mAP']:.3f} "
          f"(AP50 {metrics['coco/bbox_mAP_50']:.3f}, "
          f"AP75 {metrics['coco/bbox_mAP_75']:.3f}) in {seconds} s")
else:  # mmdet logs no COCO metrics when the model detects nothing
    print(f'[quickstart] val bbox mAP 0.000: the model detected nothing in '
          f'the val images after {seconds} s; train longer (EPOCHS).')
print(f'[quickstart] checkpoint: {open(os.path.join(work_dir, "last_checkpoint")).read().strip()}')
print(f'[quickstart] drawings:   {os.path.join(work_dir, "predictions", "vis")}')
PY
