"""A few optimisation steps on generated data reduce the loss (catches broken targets/losses)."""

import numpy as np
import torch

from models.detector import TextDetector
from models.recognizer import CRNN
from models.training.synth import SynthConfig, generate
from models.training.train_detector import crops_from_sample, detector_loss
from models.training.train_recognizer import collate, ctc_loss, lines_from_sample

CONFIG = SynthConfig(real_backgrounds=False)


def _fixed_batch_detector():
    rng = np.random.default_rng(0)
    crops = []
    for i in range(4):
        crops += crops_from_sample(generate(3, i, CONFIG), rng, 128, 1)
    x = torch.stack([torch.from_numpy(c[0])[None] for c in crops])
    y = torch.stack([torch.from_numpy(c[1])[None] for c in crops])
    return x, y


def test_detector_loss_decreases():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x, y = _fixed_batch_detector()
    model = TextDetector(8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = detector_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < losses[0]


def test_recognizer_loss_decreases():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    items = []
    i = 0
    while len(items) < 8:
        items += lines_from_sample(generate(4, i, CONFIG), rng)
        i += 1
    batch = collate(items[:8])
    model = CRNN(32)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = ctc_loss(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < losses[0]


def test_the_equalised_view_option_changes_the_image_and_not_the_targets():
    """``--equalised-view``: crops of what inference shows the detector, over the same text."""
    sample = generate(3, 0, CONFIG)
    (plain, plain_target), = crops_from_sample(sample, np.random.default_rng(0), 128, 1)
    (seen, seen_target), = crops_from_sample(sample, np.random.default_rng(0), 128, 1, equalised_view=True)
    assert np.array_equal(plain_target, seen_target)
    assert not np.array_equal(plain, seen)



def test_the_recogniser_can_train_on_fewer_large_lines():
    """``--large-line-keep 0``: only the lines under LARGE_LINE px tall are trained on."""
    from models.recognizer import encode
    from models.training.train_recognizer import LARGE_LINE

    samples = [generate(4, i, CONFIG) for i in range(6)]
    height = {tuple(encode(line.text)): min(line.box[2] - line.box[0], line.box[3] - line.box[1])
              for sample in samples for line in sample.lines}
    every = [item for s in samples for item in lines_from_sample(s, np.random.default_rng(0))]
    small = [item for s in samples for item in lines_from_sample(s, np.random.default_rng(0), 0.0)]
    assert any(height[tuple(label)] >= LARGE_LINE for _, label in every), "no large line here: pick other samples"
    assert small and all(height[tuple(label)] < LARGE_LINE for _, label in small)


def test_restyled_lines_keep_their_height_and_change_their_proportions():
    """``--style-augment``: condensed, widened and slanted copies of a line, labels unchanged."""
    from models.recognizer import encode
    from models.training.train_recognizer import restyle

    crop = np.zeros((20, 100), np.uint8)
    crop[5:15, 10:90] = 255
    rng = np.random.default_rng(0)
    widths = []
    for _ in range(20):
        out = restyle(crop, rng)
        assert out.shape[0] == 20 and 0.7 * 100 - 1 <= out.shape[1] <= 1.3 * 100 + 0.25 * 20 + 1
        widths.append(out.shape[1])
    assert min(widths) < 90 < 110 < max(widths)
    sample = generate(4, 0, CONFIG)
    plain = lines_from_sample(sample, np.random.default_rng(0))
    styled = lines_from_sample(sample, np.random.default_rng(0), style_augment=1.0)
    labels = [encode(line.text) for line in sample.lines]
    assert all(label in labels for _, label in styled), "restyling keeps each line's label"
    assert len(styled) >= len(plain) - 1, "a condensed line may only now and then become too short for its label"


def test_each_line_can_be_cut_more_than_once_with_margins_of_its_own():
    """``--views-per-line 2``: twice the examples from a drawn sample, each line cut twice, differently."""
    sample = generate(4, 0, CONFIG)
    once = lines_from_sample(sample, np.random.default_rng(0))
    twice = lines_from_sample(sample, np.random.default_rng(0), views=2)
    assert len(twice) >= 2 * len(once) - 2, "a view may now and then be too short for its label"
    assert {tuple(label) for _, label in twice} == {tuple(label) for _, label in once}
    first, second = twice[0][0], twice[1][0]
    assert twice[0][1] == twice[1][1] and (first.shape != second.shape or not np.array_equal(first, second))


def test_the_invert_option_shows_crops_as_their_negative_over_the_same_text():
    """``--invert``: dark text on bright, from the same crop and target."""
    sample = generate(3, 0, CONFIG)
    (plain, plain_target), = crops_from_sample(sample, np.random.default_rng(0), 128, 1)
    (negative, negative_target), = crops_from_sample(sample, np.random.default_rng(0), 128, 1, invert=1.0)
    assert np.allclose(negative, 1.0 - plain) and np.array_equal(negative_target, plain_target)
