"""Area-based redaction metrics: coverage decides recall, overlap with any text decides precision."""

from models.metrics import Counts, false_predictions, score


def test_line_prediction_covers_key_and_value_boxes():
    gt = [(10, 10, 50, 20), (55, 10, 120, 20)]
    counts = score(gt, [(8, 8, 122, 22)], (100, 200))
    assert counts.found == 2 and counts.correct == 1 and counts.pred == 1


def test_partial_cover_is_a_miss_and_stray_box_is_false():
    gt = [(10, 10, 110, 20)]
    counts = score(gt, [(10, 10, 40, 20), (150, 50, 170, 60)], (100, 200))
    assert counts.found == 0 and counts.correct == 1 and counts.pred == 2
    assert false_predictions([(10, 10, 40, 20), (150, 50, 170, 60)], gt, (100, 200)) == [(150, 50, 170, 60)]


def test_counts_accumulate():
    total = Counts()
    total.add(score([(0, 0, 10, 10)], [(0, 0, 10, 10)], (20, 20)))
    total.add(score([(0, 0, 10, 10)], [], (20, 20)))
    assert total.recall == 0.5 and total.precision == 1.0
