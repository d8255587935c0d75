"""Grow a trained recogniser into a wider one that reads exactly as it did.

Continuing the recogniser on the same kind of lines stopped teaching it (the model card's "Tried"
sections): at its size it has plateaued. A wider network trained from scratch would need the
hours its predecessor had. Embedding the trained weights in the wider network, with every weight
that would carry a new unit's output set to zero, starts training where the narrow network stopped:
the new units see the old ones and learn, and the output moves only as they earn a say.
"""

from __future__ import annotations

import torch

from models.recognizer import CRNN


def _gate_rows(small: int, big: int) -> torch.Tensor:
    """Where an LSTM's four stacked gates (i, f, g, o) of ``small`` units go among ``big``."""
    return torch.cat([gate * big + torch.arange(small) for gate in range(4)])


def _directions(small: int, big: int) -> torch.Tensor:
    """Where a bidirectional output's forward and reverse halves of ``small`` go among ``big``."""
    return torch.cat([torch.arange(small), big + torch.arange(small)])


def widened(small: CRNN, hidden: int, width: int) -> CRNN:
    """A CRNN of ``hidden`` LSTM units and conv ``width`` that computes what ``small`` computes."""
    big = CRNN(hidden, n_classes=small.classifier.out_features, width=width)
    h_small = small.rnn.hidden_size
    state = big.state_dict()
    for name, value in small.state_dict().items():
        target = state[name]
        if value.ndim == 0:  # BatchNorm's step count
            target.copy_(value)
            continue
        rows = _gate_rows(h_small, hidden) if name.startswith("rnn.") else torch.arange(value.shape[0])
        if value.ndim == 1:
            target[rows] = value
            continue
        if name in ("rnn.weight_ih_l1", "rnn.weight_ih_l1_reverse") or name.startswith("classifier."):
            cols = _directions(h_small, hidden)
        else:
            cols = torch.arange(value.shape[1])
        new = torch.ones(target.shape[1], dtype=torch.bool)
        new[cols] = False
        target[:, new] = 0  # nothing reads a new unit yet
        target[rows[:, None], cols[None, :]] = value
    big.load_state_dict(state)
    return big
