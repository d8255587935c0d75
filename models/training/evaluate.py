"""Evaluate the shipped text finder.

    python -m models.training.evaluate --samples ../shared/samples [--n-synth 200] [--json /tmp/eval.json]

(a) synthetic test set: another seed and only font families held out of training;
(b) JohnSnowLabs de-id files with ground-truth boxes (values are PHI, keys are other text);
(c) the other public samples: files with visible text (residual text after masking, read by an
    independent OCR when rapidocr is installed) and files without text (false regions).
Also the recogniser's CER on ground-truth lines of (a), and on (b)'s labelled keys and values (real
burned-in text).  The samples folder is only read.

(a) is measured in `models.training.eval_synthetic`, (b) and (c) in `models.training.eval_public`;
this module runs them and prints the tables.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from models.inference import TextFinder
from models.training.eval_public import JSL, ResidualReader, has_contrast, jsl, others, read_dicom, wrapped_value
from models.training.eval_synthetic import (
    CER_BANDS,
    LEGIBLE_PX,
    TEST_SEED,
    VALIDATION_SEED,
    speed,
    synthetic,
)

#: What the benches and tests take from the evaluation, wherever in it they are defined.
__all__ = ["CER_BANDS", "JSL", "LEGIBLE_PX", "TEST_SEED", "VALIDATION_SEED", "has_contrast", "jsl", "main",
           "others", "print_tables", "read_dicom", "speed", "synthetic", "wrapped_value"]


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else (f"{v:.3f}" if isinstance(v, float) else str(v))


def print_tables(result: dict) -> None:
    print(f"\nversion: {result['version']}")
    if result.get("speed"):
        print(f"speed ({result['threads']} thread): {json.dumps({k: round(v, 2) for k, v in result['speed'].items()})}")
    for name in ("validation", "synthetic", "jsl"):
        part = result.get(name)
        if not part:
            continue
        print(f"\n## {name} ({part['images']} images, detection median {_fmt(part['det_seconds_median'])} s/image)")
        print("| subset | GT boxes | pred | recall | precision | F1 | mean coverage |")
        print("|---|---|---|---|---|---|---|")
        for key in ("phi", "phi_visible", "all_text", "phi_keep_safe_policy"):
            row = part.get(key)
            if row:
                print(f"| {key} | {row['gt']} | {row['pred']} | {_fmt(row['recall'])} | {_fmt(row['precision'])} | {_fmt(row['f1'])} | {_fmt(row['coverage'])} |")
        if part.get("non_text_regions") is not None:
            print(f"regions touching no text: {part['non_text_regions']} "
                  f"({_fmt(part['non_text_regions_per_image_with_text'])} per image with text)")
        if name in ("validation", "synthetic"):
            print(f"recogniser CER: {_fmt(part['cer'])} (text >= {LEGIBLE_PX} px: {_fmt(part[f'cer_text_height_ge_{LEGIBLE_PX}px'])}); "
                  f"read {_fmt(part['read_seconds_per_line'])} s/line")
            if part.get("phi_recall_by_text_height"):
                print("PHI recall by text height: " + ", ".join(
                    f"{band} {_fmt(b['recall'])} ({b['boxes']} boxes)" for band, b in part["phi_recall_by_text_height"].items()))
            if part.get("cer_by_text_height"):
                print("CER by text height: " + ", ".join(
                    f"{band} {_fmt(b['cer'])} ({b['characters']} characters)" for band, b in part["cer_by_text_height"].items()))
            print(f"keep_safe policy: leaves {_fmt(part.get('keep_safe_other_text_kept'))} of the detected non-PHI lines "
                  f"in place; PHI recall under it is the phi_keep_safe_policy row")
        if name == "jsl" and part.get("cer") is not None:
            print(f"recogniser CER on the labelled keys and values: {_fmt(part['cer'])} ({part['cer_characters']} "
                  f"characters; {part['cer_boxes_left_out']} boxes with nothing visible or a wrapped value left out)")
        if name == "jsl" and part.get("unlabelled_text"):
            u = part["unlabelled_text"]
            print(f"false regions: {u['false_regions']}, of which rapidocr reads text in {u['read_as_text']} "
                  f"(unlabelled text); PHI precision counting those as text: {_fmt(u['phi_precision_counting_them'])}")
        if name == "jsl":
            print("| file | PHI GT | PHI found | pred | false | min coverage |\n|---|---|---|---|---|---|")
            for f in part["files"]:
                print(f"| {f['file']} | {f['phi_gt']} | {f['phi_found']} | {f['pred']} | {f['false']} | {_fmt(f['min_cov'])} |")
    part = result.get("others")
    if part:
        print("\n## other samples with visible text")
        print("| file | regions | categories | OCR lines before | residual after masking (PHI-like) |\n|---|---|---|---|---|")
        for f in part["text_files"]:
            print(f"| {f['file']} | {f.get('regions', f.get('error'))} | {f.get('categories', '')} | {f.get('ocr_before', '-')} | "
                  f"{len(f.get('residual', []))} ({'; '.join(f.get('residual_phi', [])) or 'none'}) |")
        print("\n## samples without text")
        print("| file | regions |\n|---|---|")
        for f in part["clean_files"]:
            print(f"| {f['file']} | {f.get('regions', f.get('error'))} |")
        print(f"zero-detection share on no-text images: {_fmt(part['clean_zero_detection_share'])}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=Path, default=None, help="folder of public samples (e.g. ../shared/samples)")
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--n-synth", type=int, default=200)
    parser.add_argument("--synth-seed", type=int, default=TEST_SEED)
    parser.add_argument("--n-validation", type=int, default=0,
                        help="also the validation set (seed %d, training fonts) the looks were chosen on" % VALIDATION_SEED)
    parser.add_argument("--synth-overflow", type=float, default=0.0,
                        help="share of the synthetic sets' greyscale images on backgrounds that overflowed 8 bits (SynthConfig.overflow)")
    parser.add_argument("--synth-graphics", type=float, default=0.0,
                        help="share of the synthetic sets' images with scanner graphics: rulers, calipers, traces, "
                             "bars, body markers, arrows, grids (SynthConfig.graphics)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rotated-look", action="store_true", help="also the rotated look (pixels.rotated_text)")
    parser.add_argument("--no-second-detector", action="store_true",
                        help="without the second detector (pixels.second_detector: false)")
    parser.add_argument("--no-verifier", action="store_true", help="without the region verifier (pixels.verifier: false)")
    parser.add_argument("--no-residual", action="store_true", help="skip the rapidocr check of masked images")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    finder = TextFinder.load(args.weights, threads=args.threads, second_detector=not args.no_second_detector,
                             verifier=not args.no_verifier)
    if args.rotated_look:
        finder = finder.with_rotated_look()
    result = {"version": finder.version, "threads": args.threads, "speed": speed(finder), "synthetic": synthetic(finder, args.n_synth, args.synth_seed, overflow=args.synth_overflow,
                                        graphics=args.synth_graphics) if args.n_synth else None}
    if args.n_validation:
        result["validation"] = synthetic(finder, args.n_validation, VALIDATION_SEED, fonts="train", overflow=args.synth_overflow,
                                         graphics=args.synth_graphics)
    if args.samples and (args.samples / JSL).is_dir():
        result["jsl"] = jsl(finder, args.samples, None if args.no_residual else ResidualReader())
    if args.samples and (args.samples / "INVENTORY.tsv").exists():
        result["others"] = others(finder, args.samples, not args.no_residual)
    print_tables(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
