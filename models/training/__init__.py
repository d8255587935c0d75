"""What makes and measures the weights, kept apart from what the gateway runs.

Nothing under `models.training` is imported by the runtime (`models.inference` and the modules it
uses): the gateway never needs the synthetic data generator, the trainers or the evaluation, and
they may import anything the runtime offers.

    python -m models.training.train_detector     # and train_recognizer, train_verifier
    python -m models.training.export_onnx        # after every change to the .pt weights
    python -m models.training.evaluate --samples ../shared/samples
    python -m models.training.offline_kit --out .kit; bash models/training/train_on_gpu.sh .kit OUT 6

`synth` draws the synthetic images, `loop` is the optimisation loop the trainers share, and
`widen` grows a trained network into a wider one.
"""
