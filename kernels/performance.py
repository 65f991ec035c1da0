"""Model performance from joined (prediction, label) rows: confusion counts, score histograms
for ROC AUC, exact sums for log loss and Brier, calibration bins — per *cell*.

A cell is whatever the caller makes it (a slice, a sensitive group, a slice x group pair):
the sketch keeps C cells side by side and :meth:`PerformanceSketch.result` adds up the ones
asked for, so one sketch serves the whole window, every slice and every group. Binary models:
``label`` and ``pred`` are 0 / 1, ``score`` the probability of class 1.

State per cell (integers only, so the sketch is a function of the *multiset* of rows it
absorbed: the same bytes whatever the batches, the split, the merge order):

- ``conf`` int64 [C, 4]: TN, FP, FN, TP (rows with a 0/1 label and a 0/1 prediction);
- ``icnt`` int64 [C, 5]: labelled rows, positive labels (the class balance), bad labels
  (not 0/1: left out of everything), rows without a 0/1 prediction (left out of ``conf``),
  rows without a score in [0, 1] (NaN, ±inf, outside: left out of the score figures);
- ``hist`` int64 [C, 2, B]: scores per true class on B equal bins of [0, 1]
  (bin ``min(int(s·B), B-1)``, a monotone map) — ROC AUC and the class balance;
- ``ece`` int64 [C, E, 2]: rows and positives per calibration bin (E equal bins, bin =
  ``searchsorted(linspace(0, 1, E+1)[1:-1], s)``, as ``sklearn.calibration.calibration_curve``:
  a score on an inner edge belongs to the bin below);
- ``sums`` int64 [C, 2 + E, D]: Σ log loss, Σ Brier and Σ score per calibration bin,
  *exactly*, as fixed-point integers in units of 2**-1074 (32-bit digits, as
  :mod:`kernels.numeric` does): every term's bits go into the digits, nothing is rounded, so
  the sums are order-free and merging is integer addition. The log-loss term is
  ``-log(clip(p, eps, 1-eps))`` with ``p`` the probability given to the true class and
  ``eps`` = 2**-52 (``sklearn.metrics.log_loss``); the Brier term ``(s - y)**2``.

ROC AUC error bound. Scores in different bins keep their order (the bin map is monotone), so
only positive/negative pairs that share a bin can be misjudged; the histogram scores each such
pair as a tie (1/2) where the exact AUC scores 0, 1/2 or 1. Hence
``|AUC_hist - AUC_exact| <= 1/2 · Σ_b pos_b · neg_b / (P · N)``, computed from the sketch
itself and reported with every AUC as ``auc_error_bound`` (about 1/(2B) for spread-out
scores: 5e-4 with the default 1000 bins). A test holds it against ``roc_auc_score``.

>>> import numpy as np
>>> s = PerformanceSketch.empty(n_cells=1, n_bins=10, n_calibration_bins=2)
>>> s = s.update(np.zeros(4, np.int32), np.array([0, 1, 1, 0], np.int8),
...              np.array([0, 1, 0, 0], np.int8), np.array([0.1, 0.8, 0.4, np.nan]))
>>> r = s.result()
>>> r["tp"], r["fn"], r["tn"], r["accuracy"], r["auc"], r["invalid_score"]
(1, 1, 2, 0.75, 1.0, 1)
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from kernels.grid import float_bits
from kernels.exact_sum import _add_at, _carry_row
from kernels.jit import Scalar, inline, kernel
from kernels.numeric import _big
from kernels.serial import pack_arrays, unpack_arrays

D = 40  # digits of an exact sum (2**-1074 units): terms below 2**6, up to 2**62 rows
EPS = 2.0 ** -52  # log-loss clip, as sklearn (np.finfo(float64).eps)
FRAC = (1 << 52) - 1
MAX_CALL = 1 << 24  # rows per kernel call (bounds the digits between carries)
TN, FP, FN, TP = range(4)
LABELLED, POSITIVE, BAD_LABEL, NO_PREDICTION, BAD_SCORE = range(5)


@inline
def _add_exact(sums: np.ndarray, c: Scalar, j: Scalar, x: Scalar) -> None:
    """sums[c, j] += x exactly (x finite, >= 0)."""
    xb = float_bits(x)
    e = (xb >> 52) & 0x7FF
    m = xb & FRAC
    if m == 0 and e == 0:
        return
    if e == 0:
        e = 1
    else:
        m |= 1 << 52
    _add_at(sums[c], j, m, e - 1)


@kernel
def _update(cell: np.ndarray, label: np.ndarray, pred: np.ndarray, score: np.ndarray,
            inner: np.ndarray, conf: np.ndarray, icnt: np.ndarray, hist: np.ndarray,
            ece: np.ndarray, sums: np.ndarray) -> None:
    """Absorb the rows (see the module docstring); ``inner`` = the E-1 inner calibration
    edges."""
    n_fine = hist.shape[2]
    n_cal = ece.shape[1]
    for i in range(cell.shape[0]):
        c = cell[i]
        y = label[i]
        if y != 0 and y != 1:
            icnt[c, BAD_LABEL] += 1
            continue
        icnt[c, LABELLED] += 1
        icnt[c, POSITIVE] += y
        p = pred[i]
        if p == 0 or p == 1:
            conf[c, 2 * y + p] += 1
        else:
            icnt[c, NO_PREDICTION] += 1
        s = score[i]
        if not (s >= 0.0 and s <= 1.0):  # NaN fails too
            icnt[c, BAD_SCORE] += 1
            continue
        hist[c, y, min(int(s * n_fine), n_fine - 1)] += 1
        e = min(int(s * n_cal), n_cal - 1)  # then settle on the exact edges
        while e < n_cal - 1 and s > inner[e]:
            e += 1
        while e > 0 and s <= inner[e - 1]:
            e -= 1
        ece[c, e, 0] += 1
        ece[c, e, 1] += y
        q = s if y == 1 else 1.0 - s
        q = min(max(q, EPS), 1.0 - EPS)
        _add_exact(sums, c, 0, -math.log(q))
        _add_exact(sums, c, 1, (s - y) * (s - y))
        _add_exact(sums, c, 2 + e, s)
    for c in range(sums.shape[0]):
        for j in range(sums.shape[1]):
            _carry_row(sums[c], j)


def _ratio(a: int | Fraction, b: int) -> float:
    return float(Fraction(a) / b) if b else math.nan


class PerformanceSketch:
    """See the module docstring. Verbs: ``update``, ``merge``, ``to_bytes`` / ``from_bytes``,
    ``result(cells)``; ``fairness`` in :func:`kernels.performance_stats.label_fairness`."""

    def __init__(self, conf: np.ndarray, icnt: np.ndarray, hist: np.ndarray, ece: np.ndarray,
                  sums: np.ndarray) -> None:
        self.conf = conf
        self.icnt = icnt
        self.hist = hist
        self.ece = ece
        self.sums = sums

    @classmethod
    def empty(cls, n_cells: int = 1, n_bins: int = 1000,
              n_calibration_bins: int = 10) -> "PerformanceSketch":
        """A sketch that has seen nothing (the identity of :meth:`merge`)."""
        if n_cells < 1 or n_bins < 1 or n_calibration_bins < 1:
            raise ValueError("n_cells, n_bins and n_calibration_bins must be >= 1")
        c, e = n_cells, n_calibration_bins
        return cls(np.zeros((c, 4), np.int64), np.zeros((c, 5), np.int64),
                   np.zeros((c, 2, n_bins), np.int64), np.zeros((c, e, 2), np.int64),
                   np.zeros((c, 2 + e, D), np.int64))

    n_cells = property(lambda self: self.conf.shape[0])
    n_bins = property(lambda self: self.hist.shape[2])
    n_calibration_bins = property(lambda self: self.ece.shape[1])

    def calibration_edges(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, self.n_calibration_bins + 1)

    def update(self, cell: np.ndarray, label: np.ndarray, pred: np.ndarray,
               score: np.ndarray | None = None) -> "PerformanceSketch":
        """Absorb joined rows: ``cell`` int [N] in [0, C), ``label`` and ``pred`` int [N]
        (0 / 1; anything else is counted, see the module docstring), ``score`` float [N]
        (None: no scores). Returns self."""
        cell = np.ascontiguousarray(cell, np.int32)
        n = cell.shape[0]
        label = np.ascontiguousarray(label, np.int8)
        pred = np.ascontiguousarray(pred, np.int8)
        score = (np.full(n, np.nan) if score is None
                 else np.ascontiguousarray(score, np.float64))
        if not (label.shape == pred.shape == score.shape == (n,)):
            raise ValueError("cell, label, pred and score must be 1-d of one length")
        if n and (cell.min() < 0 or cell.max() >= self.n_cells):
            raise ValueError(f"cells must lie in [0, {self.n_cells})")
        inner = self.calibration_edges()[1:-1].copy()
        for lo in range(0, n, MAX_CALL):
            hi = lo + MAX_CALL
            _update(cell[lo:hi], label[lo:hi], pred[lo:hi], score[lo:hi], inner, self.conf,
                    self.icnt, self.hist, self.ece, self.sums)
        return self

    def merge(self, other: "PerformanceSketch") -> "PerformanceSketch":
        """A new sketch holding both (integer sums: any order gives the same bytes).

        >>> a = PerformanceSketch.empty(2, 8, 2).update([1], [1], [1], [0.7])
        >>> a.merge(PerformanceSketch.empty(2, 8, 2)).to_bytes() == a.to_bytes()
        True
        """
        if self.sums.shape != other.sums.shape or self.hist.shape != other.hist.shape:
            raise ValueError("sketches of different shapes do not merge")
        sums = self.sums + other.sums
        for c in range(sums.shape[0]):
            for j in range(sums.shape[1]):
                _carry_row(sums[c], j)
        return PerformanceSketch(self.conf + other.conf, self.icnt + other.icnt,
                                 self.hist + other.hist, self.ece + other.ece, sums)

    def to_bytes(self) -> bytes:
        """The state arrays (see :mod:`kernels.serial`); round-trips exactly."""
        return pack_arrays([self.conf, self.icnt, self.hist, self.ece, self.sums])

    @classmethod
    def from_bytes(cls, b: bytes) -> "PerformanceSketch":
        return cls(*unpack_arrays(b))

    # results -------------------------------------------------------------------------------
    def _cells(self, cells: ArrayLike | None) -> np.ndarray:
        return np.arange(self.n_cells) if cells is None else np.asarray(cells, np.int64)

    def exact_sum(self, j: int, cells: ArrayLike | None = None) -> Fraction:
        """Σ of accumulator ``j`` (0 log loss, 1 Brier, 2 + e score in calibration bin e)
        over ``cells``, exactly."""
        return Fraction(sum(_big(self.sums[c, j]) for c in self._cells(cells).tolist()),
                        1 << 1074)

    def result(self, cells: ArrayLike | None = None) -> dict[str, Any]:
        """The figures of the rows in ``cells`` (default: all) as a plain record. Undefined
        figures (no rows, no positives, ...) are NaN; ``auc`` is NaN without both classes."""
        cs = self._cells(cells)
        tn, fp, fn, tp = (int(v) for v in self.conf[cs].sum(axis=0))
        n_lab, n_pos, bad_label, no_pred, bad_score = (int(v) for v in
                                                       self.icnt[cs].sum(axis=0))
        hist = self.hist[cs].sum(axis=0)
        neg, pos = int(hist[0].sum()), int(hist[1].sum())
        n_conf = tn + fp + fn + tp
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        auc = bound = math.nan
        if pos and neg:
            below = np.cumsum(hist[0]) - hist[0]  # negatives in lower bins
            twice_u = int((hist[1] * (2 * below + hist[0])).sum())
            auc = twice_u / (2 * pos * neg)
            bound = int((hist[1] * hist[0]).sum()) / (2 * pos * neg)
        n_s = pos + neg
        cal = self.ece[cs].sum(axis=0)
        score_sums = [self.exact_sum(2 + e, cs) for e in range(self.n_calibration_bins)]
        ece = (float(sum(abs(s - int(k)) for s, k in zip(score_sums, cal[:, 1].tolist())) / n_s)
               if n_s else math.nan)
        edges = self.calibration_edges()
        reliability = [{"lo": float(edges[e]), "hi": float(edges[e + 1]), "n": int(cal[e, 0]),
                        "mean_score": _ratio(score_sums[e], int(cal[e, 0])),
                        "positive_rate": _ratio(int(cal[e, 1]), int(cal[e, 0]))}
                       for e in range(self.n_calibration_bins)]
        return {
            "labelled": n_lab, "positives": n_pos, "bad_label": bad_label, "no_prediction": no_pred,
            "invalid_score": bad_score, "tn": tn, "fp": fp, "fn": fn, "tp": tp,
            "accuracy": _ratio(tp + tn, n_conf), "precision": precision, "recall": recall,
            "f1": f1, "auc": auc, "auc_error_bound": bound,
            "log_loss": _ratio(self.exact_sum(0, cs), n_s),
            "brier": _ratio(self.exact_sum(1, cs), n_s),
            "ece": ece, "reliability": reliability, "scored": n_s,
            "positive_rate": _ratio(n_pos, n_lab),
        }


def label_fairness(sketch: PerformanceSketch, groups: dict[str, Any], min_group: int = 0,
                   threshold: float = 0.8) -> dict[str, Any]:
    """Equal opportunity and equalized odds across ``groups`` (name -> cells of the group),
    as ``fairlearn.metrics`` defines them: TPR / FPR per group; ``*_difference`` = largest
    minus smallest rate (equalized odds: the larger of the TPR and FPR differences),
    ``*_ratio`` = smallest / largest (equalized odds: the smaller of the two ratios). Groups
    without a labelled positive *and* a labelled negative, or with fewer than ``min_group``
    labelled rows, are left out (listed in ``excluded``). With the interval rule of
    :mod:`kernels.fairness`: a two-sided two-proportion p-value per difference, and per ratio
    the one-sided p of "ratio >= ``threshold``" with its 95 % interval.

    >>> s = PerformanceSketch.empty(2, 4, 2)
    >>> s = s.update([0, 0, 0, 1, 1, 1], [1, 1, 0, 1, 1, 0], [1, 0, 0, 1, 1, 1])
    >>> f = label_fairness(s, {"a": [0], "b": [1]})
    >>> f["equal_opportunity_difference"], f["equalized_odds_difference"]
    (0.5, 1.0)
    """
    from kernels.fairness import diff_test, ratio_test

    rows: dict[str, tuple[int, int, int, int]] = {}
    excluded = []
    for name, cells in groups.items():
        tn, fp, fn, tp = (int(v) for v in sketch.conf[np.asarray(cells, np.int64)].sum(axis=0))
        if tp + fn == 0 or tn + fp == 0 or tn + fp + fn + tp < min_group:
            excluded.append(name)
        else:
            rows[name] = (tp, tp + fn, fp, fp + tn)
    out: dict[str, Any] = {"groups": {k: {"tpr": v[0] / v[1], "fpr": v[2] / v[3],
                                          "positives": v[1], "negatives": v[3]}
                                      for k, v in rows.items()},
                           "excluded": excluded}
    if len(rows) < 2:
        return out
    for rate, (k, n) in (("tpr", (0, 1)), ("fpr", (2, 3))):
        lo = min(rows, key=lambda g: rows[g][k] / rows[g][n])
        hi = max(rows, key=lambda g: rows[g][k] / rows[g][n])
        a, b = rows[lo], rows[hi]
        diff = b[k] / b[n] - a[k] / a[n]
        r, p_r, r_lo, r_hi = ratio_test(a[k], a[n], b[k], b[n], threshold)
        out[rate] = {"low_group": lo, "high_group": hi, "difference": diff,
                     "p_value": diff_test(a[k], a[n], b[k], b[n]),
                     "ratio": (a[k] / a[n]) / (b[k] / b[n]) if b[k] else 1.0,
                     "ratio_p_value": p_r, "ratio_ci": (r_lo, r_hi)}
    tpr, fpr = out["tpr"], out["fpr"]
    out["equal_opportunity_difference"] = tpr["difference"]
    out["equal_opportunity_ratio"] = tpr["ratio"]
    out["equalized_odds_difference"] = max(tpr["difference"], fpr["difference"])
    out["equalized_odds_ratio"] = min(tpr["ratio"], fpr["ratio"])
    return out
