"""``streamdrift profile build``: a reference profile from training data (Parquet / CSV).

The columns named in the config are read with pyarrow and handed to
:meth:`kernels.ReferenceProfile.build`; the profile records where it came from (a hash of the
file, the row count, when, the config's field list, and the model name and version of the
config's ``model:`` section: a monitor whose config names another version warns, in its log
and on every window report (``profile_model_version``)).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitor.config import MonitorConfig
from monitor.errors import StreamdriftError


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _column(table: pa.Table, name: str, what: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise StreamdriftError(f"{what}: the input has no column {name!r} "
                               f"(it has: {', '.join(table.column_names[:30])})")
    return table.column(name)


def _floats(col: pa.ChunkedArray) -> np.ndarray:
    return pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False)


def _strings(col: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(col, pa.string()).to_pylist(), dtype=object)


def _binary(col: pa.ChunkedArray, positive) -> np.ndarray:
    vals = col.to_pylist()
    return np.array([-1 if v is None else int(v == positive) for v in vals], np.int8)


def build_profile(cfg: MonitorConfig, path: str | Path, max_rows: int | None = None,
                  table: pa.Table | None = None, progress: bool | None = None):
    """The reference profile of the file at ``path`` (or of ``table``). On a terminal (or
    with ``progress=True``) bars show the rows read and the features sketched."""
    from kernels import ReferenceProfile

    from monitor.files import read_table

    path = Path(path)
    if table is None:
        table = read_table(path, progress=progress)
    if max_rows is not None:
        table = table.slice(0, max_rows)
    from monitor.progress import bar

    p = cfg.prediction
    steps = bar(len(cfg.features.numeric) + len(cfg.features.categorical) + 1,
                "profile: columns, then sketches", unit="steps", enabled=progress)
    numeric, categorical = {}, {}
    for n in cfg.features.numeric:
        numeric[n] = _floats(_column(table, n, f"features.numeric.{n}"))
        steps.update(1)
    for n in cfg.features.categorical:
        categorical[n] = _strings(_column(table, n, f"features.categorical.{n}"))
        steps.update(1)
    score = _floats(_column(table, p.score, "prediction.score")) if p.score else None
    prediction = label = None
    if p.class_:
        prediction = _binary(_column(table, p.class_, "prediction.class"), p.positive_class)
    elif p.score and p.threshold is not None:
        prediction = (score >= p.threshold).astype(np.int8)
    if p.label and p.label in table.column_names:
        label = _binary(table.column(p.label), p.positive_label)
    group = None
    if cfg.sensitive:
        group = _strings(_column(table, cfg.sensitive.attribute, "sensitive.attribute"))
    meta = {
        "source": str(path.name),
        "source_sha256": _file_hash(path) if path.exists() else "",
        "rows": table.num_rows,
        "created_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "schema": {"numeric": list(cfg.features.numeric),
                   "categorical": list(cfg.features.categorical),
                   "score": p.score, "class": p.class_, "label": p.label,
                   "sensitive": cfg.sensitive.attribute if cfg.sensitive else None},
        "monitor": cfg.monitor,
        # the model version this reference belongs to: a monitor of another version warns
        "model": cfg.model.identity() if cfg.model is not None else
        {"name": cfg.monitor, "version": "unversioned"},
        # every column of the reference: fields the producer may send without it being a
        # schema change (the decoder's "known" fields)
        "fields": [c for c in table.column_names if not c.startswith("_")],
    }
    profile = ReferenceProfile.build(numeric=numeric, categorical=categorical, score=score,
                                     prediction=prediction, label=label, group=group,
                                     metadata=meta)
    steps.update(1)
    steps.close()
    return profile


def misfits(cfg: MonitorConfig, profile) -> list[str]:
    """How ``profile`` does not fit ``cfg`` (empty if it does): features missing from it,
    features of another type, another order (the statistics go by position), a score, a
    decision or groups the config watches and the profile lacks."""
    out = []
    have = {"numeric": profile.numeric_names, "categorical": profile.categorical_names}
    for kind, other in (("numeric", "categorical"), ("categorical", "numeric")):
        want = list(getattr(cfg.features, kind))
        for n in want:
            if n in have[other]:
                out.append(f"{n!r} is {kind} in the config and {other} in the profile")
        absent = [n for n in want if n not in have[kind] and n not in have[other]]
        if absent:
            out.append(f"features.{kind} {', '.join(map(repr, absent))} "
                       f"{'is' if len(absent) == 1 else 'are'} not in the profile")
        extra = [n for n in have[kind] if n not in want and n not in
                 getattr(cfg.features, other)]
        if extra:
            out.append(f"the profile has {kind} {', '.join(map(repr, extra))} the config "
                       "does not list")
        if not out and want != have[kind]:
            out.append(f"features.{kind} are in another order than in the profile")
    if cfg.prediction.score and not profile.has_score:
        out.append(f"prediction.score {cfg.prediction.score!r} is not in the profile")
    if cfg.sensitive and not profile.groups:
        out.append(f"sensitive.attribute {cfg.sensitive.attribute!r} has no groups in the "
                   "profile")
    return out


def check_fits(cfg: MonitorConfig, profile, path: str | Path) -> None:
    """Raise :class:`StreamdriftError` (one line: what differs, how to rebuild) if
    ``profile`` (read from ``path``) was built for other features than ``cfg``'s."""
    problems = misfits(cfg, profile)
    if problems:
        source = cfg.source if cfg.source is not None else "<config>"
        raise StreamdriftError(
            f"reference.profile: the profile at {path} does not fit the config: "
            f"{'; '.join(problems)}; rebuild the profile with `streamdrift profile build "
            f"-c {source} --input <training data> -o {path}`")


def save_profile(profile, path: str | Path) -> None:
    """Write ``profile`` (its :meth:`~kernels.ReferenceProfile.to_bytes`) to ``path``."""
    Path(path).write_bytes(profile.to_bytes())


def read_profile(path: str | Path):
    """The :class:`kernels.ReferenceProfile` written by :func:`save_profile` to ``path``."""
    from kernels import ReferenceProfile

    return ReferenceProfile.from_bytes(Path(path).read_bytes())
