"""mAP arithmetic on hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from odshared.model.evaluation import ImageResult, average_precision, iou, mean_average_precision


def _image(gt, det):
    gt = np.array(gt, float).reshape(-1, 5)
    det = np.array(det, float).reshape(-1, 6)
    return ImageResult(gt[:, 1:], gt[:, 0].astype(int), det[:, 2:], det[:, 0].astype(int), det[:, 1])


def test_iou():
    assert iou(np.array([0, 0, 2, 2.0]), np.array([[1, 1, 3, 3.0], [0, 0, 2, 2], [5, 5, 6, 6]])).tolist() == [
        pytest.approx(1 / 7),
        1.0,
        0.0,
    ]


def test_perfect_detections_score_one():
    images = [_image([[0, 0, 0, 10, 10]], [[0, 0.9, 0, 0, 10, 10]]), _image([[1, 5, 5, 9, 9]], [[1, 0.8, 5, 5, 9, 9]])]
    report = mean_average_precision(images, ["a", "b"])
    assert report["mAP"] == 1.0 and report["per_class"]["a"]["ap"] == 1.0


def test_hand_checked_ap():
    # class a: 2 ground-truth boxes. Ranked detections: TP (0.9), FP (0.8), TP (0.7).
    # precision 1, 1/2, 2/3 at recall 0.5, 0.5, 1 -> monotone envelope: 1 up to r=0.5, 2/3 up to r=1
    # AP = 0.5 * 1 + 0.5 * 2/3 = 0.8333
    images = [
        _image(
            [[0, 0, 0, 10, 10], [0, 20, 20, 30, 30]],
            [[0, 0.9, 0, 0, 10, 10], [0, 0.8, 50, 50, 60, 60], [0, 0.7, 20, 20, 30, 30]],
        )
    ]
    assert mean_average_precision(images, ["a"])["per_class"]["a"]["ap"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_duplicates_are_false_positives_and_iou_threshold_applies():
    # two detections of the same box: the second is a false positive; AP stays 1 (it ranks below the TP)
    images = [_image([[0, 0, 0, 10, 10]], [[0, 0.9, 0, 0, 10, 10], [0, 0.8, 0, 0, 10, 10]])]
    assert mean_average_precision(images, ["a"])["per_class"]["a"]["ap"] == 1.0
    # a box overlapping by IoU 0.47 is a miss at 0.5 and a hit at 0.4
    shifted = [_image([[0, 0, 0, 10, 10]], [[0, 0.9, 0, 0, 10, 4.7]])]
    assert mean_average_precision(shifted, ["a"], 0.5)["mAP"] == 0.0
    assert mean_average_precision(shifted, ["a"], 0.6)["mAP"] == 0.0
    assert mean_average_precision(shifted, ["a"], 0.4)["mAP"] == 1.0


def test_wrong_class_and_classes_without_ground_truth():
    images = [_image([[0, 0, 0, 10, 10]], [[1, 0.9, 0, 0, 10, 10], [0, 0.5, 0, 0, 10, 10]])]
    report = mean_average_precision(images, ["a", "b"])
    assert report["per_class"]["b"]["ap"] is None  # no ground truth for b: left out of the mean
    assert report["mAP"] == report["per_class"]["a"]["ap"] == 1.0


def test_average_precision_envelope():
    assert average_precision(np.array([0.5, 1.0]), np.array([0.5, 1.0])) == pytest.approx(1.0)
    assert average_precision(np.array([]), np.array([])) == 0.0
