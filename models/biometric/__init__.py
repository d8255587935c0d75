"""Biometric anonymization of chest radiographs: PriCheXy-Net's deformation and DP-Pix.

- ``networks``: the PyTorch networks (generator U-Net, smoothing, Privacy-Net), for training and
  export only;
- ``deform``: the deformation at any resolution, NumPy and OpenCV;
- ``dppix``: differentially private pixelization;
- ``runtime``: the shipped generator under ONNX Runtime.

Nothing here imports the gateway or PyTorch at import time (``networks`` aside).
"""
