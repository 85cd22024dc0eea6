#!/usr/bin/env bash
# The long runs behind the README's measured results (issue: reproduce the
# paper's experiment). Hours on 2 CPU cores; run from the repository root
# with ../shared beside it, in the venv of the README:
#   bash benchmarks/reproduce.sh [mnist] [vgg7] [vgg7_eta] [vgg7_bf16] [vgg19]
# Each part writes docs/results/<part>/ (summary.md, summary.csv, plots, and
# every setting's runs/<setting>/results.json) and prints its wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
parts=${*:-mnist vgg7 vgg7_eta vgg7_bf16 vgg19}

data() {  # prepare an SNN-TB data folder once
  [ -f "$1/x_test.npz" ] || $PY -m snntb_adaptive prepare-data npz --out "$1" "${@:2}"
}
timed() {
  local start=$(date +%s)
  "$@"
  echo "wall time: $(( $(date +%s) - start )) s for: $*"
}

for part in $parts; do
  case $part in
    mnist)
      data runs/mnist/data --file ../shared/data/mnist.npz --x-key x_test \
        --y-key y_test --norm-key x_train --norm-every 60
      timed $PY -m snntb_adaptive compare configs/mnist.ini \
        --settings stock,authors_executed,paper,authors_code,paper_window \
        --steps 25,50,100,200 --out docs/results/mnist ;;
    vgg7|vgg7_eta|vgg7_bf16|vgg19)
      data runs/cifar10/data --file ../shared/data/cifar10_test.npz \
        --x-key x_test --y-key y_test --norm-file ../shared/data/cifar10_norm.npz \
        --norm-key x_norm --num-norm 1000 ;;&
    vgg7)
      timed $PY -m snntb_adaptive compare configs/cifar10_vgg7.ini \
        --settings stock,authors_executed,paper,authors_code,paper_window \
        --steps 25,50,100,200,400 --out docs/results/cifar10_vgg7 \
        --reference ../shared/reference/authors_log_accuracy_cifar10.csv \
        --reference-label "authors' VGG-19 (published log)" ;;
    vgg7_eta)
      timed $PY -m snntb_adaptive compare configs/cifar10_vgg7.ini \
        --settings paper,authors_executed --eta 0.6,0.7,0.8,0.9 \
        --set simulation.duration=200 --set simulation.num_to_test=500 \
        --set paths.runlabel=vgg7_eta --steps 25,50,100,200 \
        --out docs/results/cifar10_vgg7_eta --raster-layer none ;;
    vgg7_bf16)
      timed $PY -m snntb_adaptive compare configs/cifar10_vgg7.ini \
        --settings authors_executed,authors_executed:precision=bfloat16,paper,paper:precision=bfloat16 \
        --set simulation.duration=200 --set simulation.num_to_test=500 \
        --set paths.runlabel=vgg7_bf16 --steps 25,50,100,200 \
        --out docs/results/cifar10_vgg7_bf16 --raster-layer none ;;
    vgg19)
      timed $PY -m snntb_adaptive compare configs/cifar10_vgg19.ini \
        --settings stock,paper,authors_executed --steps 25,50,100,122,200,400 \
        --out docs/results/cifar10_vgg19 \
        --reference ../shared/reference/authors_log_accuracy_cifar10.csv \
        --reference-label "authors' VGG-19 (published log)" ;;
    *) echo "unknown part $part (mnist, vgg7, vgg7_eta, vgg7_bf16, vgg19)"; exit 2 ;;
  esac
done
