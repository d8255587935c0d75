#!/usr/bin/env bash
# Train the detector and the recogniser side by side on a lent GPU machine that cannot fetch anything.
#
#   here:  python -m models.training.offline_kit --out .kit          (fonts, real backgrounds, pydicom's wheel)
#   there: bash models/training/train_on_gpu.sh .kit "$OUT" 6        (minutes of training for each network)
#
# The examples are drawn on the CPU, so the machine's cores are split between the two trainers'
# data workers; on this project's 2-core machine one worker draws about 60 detector crops or 6.2
# recogniser batches of 32 a second, on the lent H200 machine's 16 cores each of 14 workers drew 27
# crops or 2.5 batches (stop 26), and that, not the GPU, set the pace. "--crops-per-sample 4" and
# "--views-per-line 2" cut about twice the examples from each drawn sample.
# Each network's arguments, e.g. a warm start, a larger batch or a wider network, come from
# DETECTOR_ARGS and RECOGNIZER_ARGS; DEVICE (cuda) and PYTHON (python3) can be changed, so that the
# script is tried on a CPU first. Weights and logs land in OUT/detector and OUT/recognizer.
set -euo pipefail

kit=$(realpath "${1:?the kit folder from models.training.offline_kit}")
out=$(realpath -m "${2:?a folder for the weights}")
minutes=${3:-6}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}
workers=$(( ($(nproc) - 2) / 2 ))
(( workers >= 1 )) || workers=1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/fonts" "$out/detector" "$out/recognizer"
tar -xJf "$kit/fonts.tar.xz" -C "$work/fonts"
if compgen -G "$kit/wheels/*.whl" >/dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$work/site" "$kit"/wheels/*.whl
    export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export SYNTH_FONT_DIRS="$work/fonts" SYNTH_REAL_FRAMES="$kit/real_frames.npz" PYTHONUNBUFFERED=1

# shellcheck disable=SC2086  # the arguments are meant to split
"$python" -m models.training.train_detector --device "$device" --workers "$workers" --minutes "$minutes" \
    --out "$out/detector" ${DETECTOR_ARGS:-} >"$out/detector/train.log" 2>&1 &
detector=$!
# shellcheck disable=SC2086
"$python" -m models.training.train_recognizer --device "$device" --workers "$workers" --minutes "$minutes" \
    --out "$out/recognizer" ${RECOGNIZER_ARGS:-} >"$out/recognizer/train.log" 2>&1 &
recognizer=$!
status=0
wait "$detector" || status=$?
wait "$recognizer" || status=$?
tail -n 2 "$out/detector/train.log" "$out/recognizer/train.log"
exit "$status"
