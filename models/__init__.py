"""Burned-in text models: synthetic data, detector, recogniser, PHI classification.

Entry points: `models.inference.TextFinder` (detect / read), `models.phi.classify`,
`models.render.display_image`; training with `python -m models.train_detector` and
`python -m models.train_recognizer`; evaluation with `python -m models.evaluate`.
"""
