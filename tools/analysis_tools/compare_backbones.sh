#!/usr/bin/env bash
# Accuracy per cost on the same training: the quickstart RetinaNet (synthetic
# shapes, COCO format, 192x192) and the quickstart Semantic FPN (ADE20K
# format, 256x256) trained from scratch with EfficientViT-M0, ResNet-18 and
# MobileNetV2, and the quickstart SegFormer with EfficientViT-M0 and MiT-B0,
# under one recipe, data, budget and seed per task
# (configs/quickstart/{retinanet,fpn,segformer}_*_synthetic.py), each
# evaluated with tools/test.py, then timed (eager, batch 1) and counted;
# writes WORK_DIR/compare_backbones.md (table) and WORK_DIR/compare_backbones.png
# (accuracy vs latency).
#
# Usage: bash tools/analysis_tools/compare_backbones.sh
# Environment (all optional):
#   WORK_DIR    one folder per model, the table and the plot
#                                             (work_dirs/compare_backbones)
#   DATA_DIR    dataset root                  (data/synthetic)
#   EPOCHS      detector epochs               (the config's, 12)
#   ITERS       segmentor iterations          (the config's, 1000)
#   NUM_TRAIN, NUM_VAL  dataset size          (1000, 100)
#   TASKS       which comparisons             ("detection segmentation")
#   MODELS      only these of the TASKS' models, e.g.
#               "fpn_efficientvit-m0 segformer_efficientvit-m0"  (all)
#   SKIP_DATA=1   use the datasets already in DATA_DIR as they are
#   SKIP_TRAIN=1  evaluate and time the checkpoints already in WORK_DIR
#   TIMING_RUNS   timed calls per model       (50)
#   DET_TEST_OPTIONS  extra --cfg-options for testing the detectors, e.g.
#                 "model.test_cfg.score_thr=0 model.test_cfg.min_bbox_size=-1"
#                 for barely trained ones (whose scores all stay under 0.05
#                 or whose boxes are empty: COCO evaluation then gives no mAP)
#   PYTHON        interpreter                 (python3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
PYTHON=${PYTHON:-python3}
WORK_DIR=${WORK_DIR:-work_dirs/compare_backbones}
DATA_DIR=${DATA_DIR:-data/synthetic}
NUM_TRAIN=${NUM_TRAIN:-1000}
NUM_VAL=${NUM_VAL:-100}
DET_MODELS=()
SEG_MODELS=()
for task in ${TASKS:-detection segmentation}; do
  case $task in
    detection)
      DET_MODELS=(retinanet_efficientvit-m0 retinanet_r18
                  retinanet_mobilenetv2 rtmdet_efficientvit-m0 rtmdet_tiny);;
    segmentation)
      SEG_MODELS=(fpn_efficientvit-m0 fpn_r18 fpn_mobilenetv2
                  segformer_efficientvit-m0 segformer_mit-b0);;
    *)
      echo "TASKS: unknown task '$task' (allowed: detection segmentation)" >&2
      exit 2;;
  esac
done
if [ -n "${MODELS:-}" ]; then
  keep() {
    local -n models=$1
    local kept=() name
    for name in "${models[@]}"; do
      [[ " $MODELS " == *" $name "* ]] && kept+=("$name")
    done
    models=("${kept[@]}")
  }
  for name in $MODELS; do
    if [[ " ${DET_MODELS[*]} ${SEG_MODELS[*]} " != *" $name "* ]]; then
      echo "MODELS: unknown model '$name' (allowed: ${DET_MODELS[*]}" \
           "${SEG_MODELS[*]})" >&2
      exit 2
    fi
  done
  keep DET_MODELS
  keep SEG_MODELS
fi
coco="$DATA_DIR/coco"
ade="$DATA_DIR/ade"

# The quickstarts' datasets: COCO at 192x192 (tools/quickstart.sh) and
# ADE20K-style at 256x256.
if [ "${SKIP_DATA:-0}" != 1 ] && [ ${#DET_MODELS[@]} -gt 0 ]; then
  "$PYTHON" tools/dataset_converters/make_synthetic_data.py "$DATA_DIR" \
    --formats coco --num-train "$NUM_TRAIN" --num-val "$NUM_VAL" \
    --img-size 192 --seed 0 --skip-existing
fi
if [ "${SKIP_DATA:-0}" != 1 ] && [ ${#SEG_MODELS[@]} -gt 0 ]; then
  "$PYTHON" tools/dataset_converters/make_synthetic_data.py "$DATA_DIR" \
    --formats ade --num-train "$NUM_TRAIN" --num-val "$NUM_VAL" \
    --img-size 256 --seed 0 --skip-existing
fi

det_options=(
  "train_dataloader.dataset.data_root=$coco/"
  "val_dataloader.dataset.data_root=$coco/"
  "test_dataloader.dataset.data_root=$coco/"
  "val_evaluator.ann_file=$coco/annotations/instances_val.json"
  "test_evaluator.ann_file=$coco/annotations/instances_val.json"
)
seg_options=(
  "train_dataloader.dataset.data_root=$ade/"
  "val_dataloader.dataset.data_root=$ade/"
  "test_dataloader.dataset.data_root=$ade/"
)
det_train=("randomness.seed=0")
seg_train=("randomness.seed=0")
read -r -a det_test <<< "${DET_TEST_OPTIONS:-}"
seg_test=()
if [ -n "${EPOCHS:-}" ]; then
  det_train+=("train_cfg.max_epochs=$EPOCHS" "train_cfg.val_interval=$EPOCHS"
              "param_scheduler.1.end=$EPOCHS"
              "default_hooks.checkpoint.interval=$EPOCHS")
fi
if [ -n "${ITERS:-}" ]; then
  warmup=$(( ITERS < 100 ? ITERS / 2 : 50 ))
  seg_train+=("train_cfg.max_iters=$ITERS" "train_cfg.val_interval=$ITERS"
              "param_scheduler.0.end=$warmup"
              "param_scheduler.1.begin=$warmup"
              "param_scheduler.1.end=$ITERS"
              "default_hooks.checkpoint.interval=$ITERS")
fi

# NAME, the names of the arrays of training-only and test-only options,
# then the --cfg-options shared by training and test.
run_model() {
  local name=$1 config="configs/quickstart/$1_synthetic.py" dir="$WORK_DIR/$1"
  local -n train_extra=$2 test_extra=$3
  shift 3
  if [ "${SKIP_TRAIN:-0}" != 1 ]; then
    echo "[compare] training $name"
    rm -rf "$dir"
    "$PYTHON" tools/train.py "$config" --work-dir "$dir" \
      --cfg-options "$@" "${train_extra[@]}"
  fi
  echo "[compare] testing $name"
  rm -rf "$dir/test"
  "$PYTHON" tools/test.py "$config" "$(cat "$dir/last_checkpoint")" \
    --work-dir "$dir/test" --cfg-options "$@" "${test_extra[@]}"
}

mkdir -p "$WORK_DIR"
for name in "${DET_MODELS[@]}"; do
  run_model "$name" det_train det_test "${det_options[@]}"
done
for name in "${SEG_MODELS[@]}"; do
  run_model "$name" seg_train seg_test "${seg_options[@]}"
done

echo "[compare] timing and table"
"$PYTHON" tools/analysis_tools/compare_backbones.py "$WORK_DIR" \
  --detectors "${DET_MODELS[@]}" --segmentors "${SEG_MODELS[@]}" \
  --runs "${TIMING_RUNS:-50}"
