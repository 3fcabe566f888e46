import numpy as np
import pytest

from train_host.metrics import binary_metrics, choose_threshold, from_confusion, resampled_aucs


def _scores(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.25, n), 0, 1)
    return y, p


def test_threshold_reaches_target_sensitivity():
    y, p = _scores()
    t = choose_threshold(y, p, 0.95)
    assert t.rule == "sensitivity>=0.95"
    assert ((p >= t.value) & (y == 1)).sum() / y.sum() >= 0.95
    assert t.val_specificity > 0.5
    # the highest such threshold: one step up would miss the target
    higher = np.unique(p[p > t.value])
    if len(higher):
        assert ((p >= higher[0]) & (y == 1)).sum() / y.sum() < 0.95


def test_threshold_falls_back_to_youden_when_target_costs_all_specificity():
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(100), np.zeros(100)].astype(int)
    p = np.r_[rng.uniform(0, 1, 100), rng.uniform(0, 0.6, 100)]  # weak model
    t = choose_threshold(y, p, 0.95, min_specificity=0.5)
    assert t.rule == "youden"


def test_binary_metrics_numbers():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.1, 0.05])
    m = binary_metrics(y, p, 0.5)
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(4 / 5)
    assert m["confusion"] == [[4, 1], [1, 2]]
    assert m["auc"] == pytest.approx(14 / 15)
    lo, hi = m["auc_ci95"]
    assert lo <= m["auc"] <= hi
    assert 0 <= m["ece"] <= 1


def test_from_confusion_sums_like_pooling():
    a = from_confusion(np.array([[40, 10], [5, 45]]))
    assert a["sensitivity"] == 0.9 and a["specificity"] == 0.8 and a["accuracy"] == 0.85


def test_resampled_aucs_are_scikit_learns_aucs_of_the_resampled_photos():
    """Ties (scores rounded to 0.05) count half; a photo drawn k times counts k times; a resample
    with one class has no AUC."""
    from sklearn.metrics import roc_auc_score

    y, p = _scores(seed=3, n=120)
    p = np.round(p * 20) / 20
    rng = np.random.default_rng(0)
    draws = [rng.choice(len(y), len(y)) for _ in range(50)]
    draws.append(np.flatnonzero(y == 1))  # mpox photos only
    counts = np.stack([np.bincount(d, minlength=len(y)) for d in draws])
    aucs = resampled_aucs(y, p, counts)
    expected = [roc_auc_score(y[d], p[d]) for d in draws[:-1]]
    assert aucs[:-1] == pytest.approx(expected, abs=1e-12)
    assert len(set(np.round(expected, 6))) > 10 and np.isnan(aucs[-1])
