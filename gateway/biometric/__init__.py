"""Biometric anonymization of chest radiographs (PriCheXy-Net, DP-Pix) as a profile stage."""
