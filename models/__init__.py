"""Burned-in text models: synthetic data, detector, recogniser, PHI classification.

Entry points: `models.inference.TextFinder` (detect / read), `models.phi.classify`,
`models.render.display_image`; training with `python -m models.train_detector` and
`python -m models.train_recognizer`; ONNX exports for CPU workers with
`python -m models.export_onnx`; evaluation with `python -m models.evaluate`.

Importing `models.inference`, `models.checkpoints`, `models.regions`, `models.postprocess`,
`models.reading` and `models.runtime` does not import PyTorch; `models.detector`, `models.recognizer`
and the trainers do.
"""
