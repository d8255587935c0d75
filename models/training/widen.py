"""Grow a trained network into a wider one that computes exactly what it did.

Continuing the recogniser or the detector on the same kind of data stopped teaching them (the
model card's "Tried" sections): at their size they have plateaued. A wider network trained from
scratch would need the hours its predecessor had. Embedding the trained weights in the wider
network, with every weight that would carry a new unit's output set to zero, starts training where
the narrow network stopped: the new units see the old ones and learn, and the output moves only as
they earn a say.
"""

from __future__ import annotations

import torch
from torch import nn

from models.detector import TextDetector
from models.recognizer import CRNN


def _gate_rows(small: int, big: int) -> torch.Tensor:
    """Where an LSTM's four stacked gates (i, f, g, o) of ``small`` units go among ``big``."""
    return torch.cat([gate * big + torch.arange(small) for gate in range(4)])


def _directions(small: int, big: int) -> torch.Tensor:
    """Where a bidirectional output's forward and reverse halves of ``small`` go among ``big``."""
    return torch.cat([torch.arange(small), big + torch.arange(small)])


def _embed(small: nn.Module, big: nn.Module, rows_of, cols_of) -> None:
    """Copy ``small``'s weights into ``big`` at the rows and columns given per parameter name, and
    zero every column ``small`` did not have, so that no old unit reads a new one."""
    state = big.state_dict()
    for name, value in small.state_dict().items():
        target = state[name]
        if value.ndim == 0:  # BatchNorm's step count
            target.copy_(value)
            continue
        rows = rows_of(name, value)
        if value.ndim == 1:
            target[rows] = value
            continue
        cols = cols_of(name, value)
        new = torch.ones(target.shape[1], dtype=torch.bool)
        new[cols] = False
        target[:, new] = 0  # nothing reads a new unit yet
        target[rows[:, None], cols[None, :]] = value
    big.load_state_dict(state)


def _in_place(value: torch.Tensor, dim: int) -> torch.Tensor:
    """Old units that keep their places: the first ones of the layer."""
    return torch.arange(value.shape[dim])


def widened(small: CRNN, hidden: int, width: int) -> CRNN:
    """A CRNN of ``hidden`` LSTM units and conv ``width`` that computes what ``small`` computes."""
    big = CRNN(hidden, n_classes=small.classifier.out_features, width=width)
    h_small = small.rnn.hidden_size

    def rows(name, value):
        return _gate_rows(h_small, hidden) if name.startswith("rnn.") else _in_place(value, 0)

    def cols(name, value):
        if name in ("rnn.weight_ih_l1", "rnn.weight_ih_l1_reverse") or name.startswith("classifier."):
            return _directions(h_small, hidden)
        return _in_place(value, 1)

    _embed(small, big, rows, cols)
    return big


def widened_detector(small: TextDetector, width: int) -> TextDetector:
    """A TextDetector of conv ``width`` that predicts what ``small`` predicts.  Its skips add
    layers of the same width, so each layer's old channels stay first and meet only old ones."""
    big = TextDetector(width)
    _embed(small, big, lambda name, value: _in_place(value, 0), lambda name, value: _in_place(value, 1))
    return big
