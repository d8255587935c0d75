"""Burned-in text models: detector, recogniser, region verifier, PHI classification.

The runtime the gateway imports: `models.inference.TextFinder` (detect / read; its detection
passes are `models.looks`), `models.phi.classify`, `models.render.display_image`. Importing
`models.inference`, `models.looks`, `models.checkpoints`, `models.regions`, `models.postprocess`,
`models.reading` and `models.runtime` does not import PyTorch; `models.detector`,
`models.recognizer` and `models.verifier` (the networks) do.

What makes and measures the weights is `models.training`, which the runtime never imports: the
synthetic data (`models.training.synth`), the trainers (`python -m models.training.train_detector`,
`train_recognizer`, `train_verifier`), the ONNX exports for CPU workers
(`python -m models.training.export_onnx`) and the evaluation (`python -m models.training.evaluate`).
"""
