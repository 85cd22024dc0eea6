#!/usr/bin/env bash
# The table of Phase-1 methods on the same network (docs/results.md, "Methods
# on the same network"): held-out CIFAR-10 test images (5,000-9,999; nothing
# was tuned on them: the calibration was developed on x_norm and test images
# 0-999), T = 64. About 1.5 hours per network on 2 CPU cores; run from the
# repository root with ../shared beside it, in the venv of the README:
#   bash benchmarks/methods.sh [mnist] [vgg7] [vgg19]
# (MNIST: all 10,000 test images, T = 128; nothing was developed on MNIST.)
# Each part writes its comparisons (summary.md, summary.csv, plots,
# runs/<setting>/results.json, the calibration files) and the merged table
# docs/results/methods_<net>/ (methods_mnist/merged/), and prints wall times. "authors_executed:eta_scale=1" is stock SNN-TB's
# network run by the plugin (eta = 1, update = none: the same spikes as
# SNN-TB's own simulator, tested bit for bit), faster than SNN-TB's own loop.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
parts=${*:-mnist vgg7 vgg19}
DATA=runs/vgg_heldout/data
[ -f $DATA/x_test.npz ] || $PY -m snntb_adaptive prepare-data npz --out $DATA \
  --file ../shared/data/cifar10_test.npz --x-key x_test --y-key y_test \
  --norm-file ../shared/data/cifar10_norm.npz --norm-key x_norm \
  --num-norm 1000 --first-test 5000 --num-test 5000
timed() {
  local start=$(date +%s)
  "$@"
  echo "wall time: $(( $(date +%s) - start )) s for: $*"
}
common="--set paths.path_wd=runs/vgg_heldout --set paths.dataset_path=$DATA
  --set simulation.duration=64 --steps 8,16,32,64 --raster-layer none"
for part in $parts; do
  case $part in
    mnist)
      [ -f runs/mnist/data/x_test.npz ] || $PY -m snntb_adaptive prepare-data \
        npz --out runs/mnist/data --file ../shared/data/mnist.npz \
        --x-key x_test --y-key y_test --norm-key x_train --norm-every 60
      timed $PY -m snntb_adaptive compare configs/mnist.ini \
        --settings authors_executed:eta_scale=1,authors_executed,paper,spike_norm,calibrated:calibration_steps=16:readout=membrane,calibrated:calibration_steps=64:readout=membrane \
        --set simulation.duration=128 --set simulation.num_to_test=10000 \
        --set paths.runlabel=tm --steps 8,16,32,64,128 --raster-layer none \
        --title "mnist_cnn.h5, all 10,000 test images" \
        --out docs/results/methods_mnist
      $PY -m snntb_adaptive plot docs/results/methods_mnist \
        --title "mnist_cnn.h5, all 10,000 test images" \
        --into docs/results/methods_mnist/merged ;;
    vgg7)
      timed $PY -m snntb_adaptive compare configs/cifar10_vgg7.ini $common \
        --settings authors_executed:eta_scale=1,authors_executed,paper,spike_norm \
        --set simulation.num_to_test=5000 --set paths.runlabel=t7 \
        --title "cifar10_vgg7.h5, test images 5,000-9,999" \
        --out docs/results/methods_vgg7_other
      timed $PY -m snntb_adaptive compare configs/cifar10_vgg7.ini $common \
        --settings calibrated:calibration_steps=16:readout=membrane,calibrated:calibration_steps=64:readout=membrane \
        --set simulation.num_to_test=5000 --set paths.runlabel=t7c \
        --title "cifar10_vgg7.h5, test images 5,000-9,999" \
        --out docs/results/methods_vgg7_calibrated
      $PY -m snntb_adaptive plot docs/results/methods_vgg7_other \
        docs/results/methods_vgg7_calibrated \
        --title "cifar10_vgg7.h5, test images 5,000-9,999" \
        --into docs/results/methods_vgg7 ;;
    vgg19)
      timed $PY -m snntb_adaptive compare configs/cifar10_vgg19.ini $common \
        --settings authors_executed:eta_scale=1,authors_executed,spike_norm \
        --set simulation.num_to_test=2000 --set paths.runlabel=t19 \
        --title "cifar10_vgg19.h5, test images 5,000-6,999" \
        --out docs/results/methods_vgg19_other
      for tc in 16 64; do
        timed $PY -m snntb_adaptive compare configs/cifar10_vgg19.ini $common \
          --settings calibrated:calibration_steps=$tc:readout=membrane \
          --set simulation.num_to_test=2000 --set paths.runlabel=t19c$tc \
          --title "cifar10_vgg19.h5, test images 5,000-6,999" \
          --out docs/results/methods_vgg19_calibrated$tc
      done
      $PY -m snntb_adaptive plot docs/results/methods_vgg19_other \
        docs/results/methods_vgg19_calibrated16 \
        docs/results/methods_vgg19_calibrated64 \
        --title "cifar10_vgg19.h5, test images 5,000-6,999" \
        --into docs/results/methods_vgg19 ;;
    *) echo "unknown part $part (mnist, vgg7, vgg19)"; exit 2 ;;
  esac
done
