"""Oracles for :mod:`kernels.performance`: scikit-learn and fairlearn on the raw joined rows.

``PERFORMANCE_ORACLES`` maps each figure of ``PerformanceSketch.result`` / ``label_fairness``
to the library call it must equal (``tests/test_performance.py`` walks it); a new figure is
one new row. ``rows_of`` keeps the rows a figure is defined on, as the sketch documents:
labels 0 / 1 for everything, predictions 0 / 1 for the confusion figures, scores in [0, 1]
for the score figures.
"""

from __future__ import annotations

import warnings

import numpy as np
from fairlearn import metrics as fm
from sklearn import metrics as sm
from sklearn.calibration import calibration_curve


def rows_of(kind: str, label, pred, score):
    label, pred, score = (np.asarray(a) for a in (label, pred, score))
    ok = (label == 0) | (label == 1)
    if kind == "class":
        ok &= (pred == 0) | (pred == 1)
    elif kind == "score":
        with np.errstate(invalid="ignore"):
            ok &= (score >= 0) & (score <= 1)
    return label[ok].astype(int), pred[ok].astype(int), score[ok].astype(float)


def ece_numpy(y, s, n_bins):
    """Σ_b n_b / N |mean score_b - positive rate_b| on sklearn's uniform calibration bins;
    also checks the non-empty bins against ``calibration_curve``."""
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.searchsorted(edges[1:-1], s)  # side "left", as calibration_curve
    n = np.bincount(b, minlength=n_bins)
    ssum = np.bincount(b, weights=s, minlength=n_bins)
    pos = np.bincount(b, weights=y, minlength=n_bins)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=n_bins, strategy="uniform")
    nz = n > 0
    np.testing.assert_allclose(prob_true, pos[nz] / n[nz], rtol=1e-12)
    np.testing.assert_allclose(prob_pred, ssum[nz] / n[nz], rtol=1e-12)
    return float(np.abs(ssum - pos).sum() / len(s)), n, prob_pred, prob_true


def _nan(f):
    def g(y, p, s):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return f(y, p, s)
    return g


#: figure -> (rows it is defined on, the oracle on those rows)
PERFORMANCE_ORACLES = {
    "accuracy": ("class", _nan(lambda y, p, s: sm.accuracy_score(y, p))),
    "precision": ("class", _nan(lambda y, p, s: sm.precision_score(y, p, zero_division=np.nan))),
    "recall": ("class", _nan(lambda y, p, s: sm.recall_score(y, p, zero_division=np.nan))),
    "f1": ("class", _nan(lambda y, p, s: sm.f1_score(y, p, zero_division=np.nan))),
    "log_loss": ("score", _nan(lambda y, p, s: sm.log_loss(y, s, labels=[0, 1]))),
    "brier": ("score", _nan(lambda y, p, s: sm.brier_score_loss(y, s, labels=[0, 1]))),
    "auc": ("score", _nan(lambda y, p, s: sm.roc_auc_score(y, s))),  # within auc_error_bound
    "positive_rate": ("label", lambda y, p, s: float(np.mean(y))),
}

#: label_fairness figure -> fairlearn on the labelled, predicted rows
FAIRNESS_ORACLES = {
    "equal_opportunity_difference": fm.equal_opportunity_difference,
    "equal_opportunity_ratio": fm.equal_opportunity_ratio,
    "equalized_odds_difference": fm.equalized_odds_difference,
    "equalized_odds_ratio": fm.equalized_odds_ratio,
}
