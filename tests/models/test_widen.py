"""A network widened for more training computes exactly what it did, and its new units can learn."""

import pytest
import torch

from models.detector import TextDetector
from models.recognizer import CRNN
from models.training.widen import widened, widened_detector


def as_trained(model: torch.nn.Module, *input_shape: int) -> torch.nn.Module:
    """``model`` with batch-norm statistics of its own, as a trained network has, ready to run."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(*input_shape))
    return model.eval()


@pytest.fixture()
def narrow() -> CRNN:
    torch.manual_seed(0)
    return as_trained(CRNN(16, width=8), 4, 1, 32, 64)


def lines() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(3, 1, 32, 96)


def test_a_widened_recogniser_gives_the_same_log_probabilities(narrow):
    wide = widened(narrow, hidden=24, width=12).eval()
    assert wide.rnn.hidden_size == 24 and wide.features[0][0].out_channels == 12
    with torch.no_grad():
        torch.testing.assert_close(wide(lines()), narrow(lines()), atol=1e-5, rtol=0)


def test_widening_to_the_same_size_copies_the_network(narrow):
    same = widened(narrow, hidden=16, width=8)
    for name, value in narrow.state_dict().items():
        assert torch.equal(same.state_dict()[name], value), name


def test_the_new_units_get_gradients_and_change_the_output(narrow):
    wide = widened(narrow, hidden=24, width=12).train()
    wide(lines()).mean().backward()
    new_columns = torch.ones(48, dtype=torch.bool)
    new_columns[list(range(16)) + list(range(24, 40))] = False
    assert wide.classifier.weight.grad[:, new_columns].abs().sum() > 0, "the classifier learns to read the new units"
    assert wide.features[2][0].weight.grad[:, 8:].abs().sum() > 0, "the next layer learns to read new channels"
    torch.optim.SGD(wide.parameters(), lr=0.1).step()
    wide.eval()
    with torch.no_grad():
        assert not torch.allclose(wide(lines()), narrow(lines()), atol=1e-4)


def test_a_network_is_never_narrowed(narrow):
    with pytest.raises((RuntimeError, IndexError)):
        widened(narrow, hidden=8, width=8)


@pytest.fixture()
def narrow_detector() -> TextDetector:
    torch.manual_seed(0)
    return as_trained(TextDetector(width=8), 2, 1, 64, 64)


def images() -> torch.Tensor:
    torch.manual_seed(2)
    return torch.rand(2, 1, 96, 128)


def test_a_widened_detector_gives_the_same_probability_map(narrow_detector):
    wide = widened_detector(narrow_detector, width=12).eval()
    assert wide.stem[0][0].out_channels == 12 and wide.enc16[0][3].out_channels == 72
    with torch.no_grad():
        torch.testing.assert_close(wide(images()), narrow_detector(images()), atol=1e-5, rtol=0)


def test_the_widened_detector_learns_through_its_new_channels(narrow_detector):
    wide = widened_detector(narrow_detector, width=12).train()
    wide(images()).mean().backward()
    assert wide.head.weight.grad[:, 8:].abs().sum() > 0, "the head learns to read the new channels"
    assert wide.lat8.weight.grad[:, 48:].abs().sum() > 0, "the top-down path learns to read them too"
    torch.optim.SGD(wide.parameters(), lr=0.1).step()
    wide.eval()
    with torch.no_grad():
        assert not torch.allclose(wide(images()), narrow_detector(images()), atol=1e-4)
