"""Synthetic Adult-like predictions with planted, known fairness effects: an oracle for the report.

Each row's true probability ``p`` is drawn from a Beta distribution that depends on ``sex``; the label
is Bernoulli(p), so a score equal to ``p`` is calibrated by construction. The Beta parameters are
solved so that each sex has a chosen base rate and a chosen true positive rate at the threshold,
which plants a known base-rate gap and a known TPR gap. One race group gets a monotone distortion
of its score, which plants a known miscalibration. Because everything follows from Beta integrals,
the population values in ``PlantedTruth`` are exact, not estimated.

Rows are generated in chunks of fixed size, each from its own seed (``SeedSequence([seed, index])``),
so any chunk can be generated alone and ``make_planted`` equals the concatenation of its chunks.

:mod:`evenflow.data.planted_parquet` streams those chunks to a directory of parquet parts as an
Adult-like training set, so 10M+ rows never sit in memory at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, model_validator
from scipy.optimize import brentq
from scipy.special import betainc

from evenflow.records import Record

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

CHUNK_ROWS = 1_000_000
JOIN = " × "
_SUM_TOLERANCE = 1e-9
_EDUCATION = ("HS-grad", "Some-college", "Bachelors", "Masters", "Doctorate")
_WORKCLASS = ("Private", "Self-emp", "Government", "Without-pay")
_MARITAL = ("Never-married", "Married", "Divorced", "Widowed")
_OCCUPATION = (
    "Service",
    "Craft-repair",
    "Sales",
    "Adm-clerical",
    "Prof-specialty",
    "Exec-managerial",
)


class PlantedEffects(Record):
    """The effects to plant; population values follow exactly (see ``PlantedTruth``)."""

    sex_shares: dict[str, float] = Field(
        default={"Male": 0.67, "Female": 0.33}, description="Population share of each sex."
    )
    race_shares: dict[str, float] = Field(
        default={
            "White": 0.855,
            "Black": 0.096,
            "Asian-Pac-Islander": 0.031,
            "Amer-Indian-Eskimo": 0.0096,
            "Other": 0.0084,
        },
        description="Population share of each race (independent of sex).",
    )
    base_rate: dict[str, float] = Field(
        default={"Male": 0.31, "Female": 0.11},
        description="Positive rate per sex; each must lie below the threshold.",
    )
    tpr: dict[str, float] = Field(
        default={"Male": 0.65, "Female": 0.55},
        description="True positive rate per sex at the threshold, for calibrated rows.",
    )
    threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="Decision threshold the TPRs are planted at."
    )
    miscalibrated_race: str = Field(
        default="Black", description="Race whose score is distorted (the others stay calibrated)."
    )
    miscalibration: float = Field(
        default=0.15,
        gt=-0.9,
        lt=0.9,
        description="d > 0: score = d + (1 - d) p (over-predicts); d < 0: score = (1 + d) p.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> PlantedEffects:
        for name, shares in (("sex_shares", self.sex_shares), ("race_shares", self.race_shares)):
            if abs(sum(shares.values()) - 1.0) > _SUM_TOLERANCE or min(shares.values()) <= 0:
                raise ValueError(f"{name} must be positive and sum to 1")
        if set(self.base_rate) != set(self.sex_shares) or set(self.tpr) != set(self.sex_shares):
            raise ValueError("base_rate and tpr need one value per sex in sex_shares")
        if not all(0.0 < r < self.threshold for r in self.base_rate.values()):
            raise ValueError("each base rate must lie in (0, threshold)")
        if not all(0.0 < t < 1.0 for t in self.tpr.values()):
            raise ValueError("each tpr must lie in (0, 1)")
        if self.miscalibrated_race not in self.race_shares:
            raise ValueError(f"miscalibrated_race {self.miscalibrated_race!r} is not a race")
        return self


class GroupTruth(Record):
    """Exact population values of one group."""

    share: float
    base_rate: float
    selection_rate: float
    tpr: float
    fpr: float
    precision: float
    accuracy: float
    ece: float = Field(description="Population ECE; exact for any binning (one-signed distortion).")


class PlantedTruth(Record):
    """The planted population values, keyed like the fairness report (slice name, group name)."""

    effects: PlantedEffects
    beta: dict[str, tuple[float, float]] = Field(description="Sex -> Beta(a, b) of the true p.")
    groups: dict[str, dict[str, GroupTruth]] = Field(
        description="Slice ('sex', 'race', 'sex × race') -> group name -> values."
    )

    def gap(self, slice_name: str, metric: str) -> float:
        """Max minus min of a metric over the slice's groups (the population disparity)."""
        values = [getattr(g, metric) for g in self.groups[slice_name].values()]
        return float(max(values) - min(values))

    @property
    def base_rate_gap(self) -> float:
        """Planted base-rate gap between the sexes."""
        return self.gap("sex", "base_rate")

    @property
    def tpr_gap(self) -> float:
        """Planted TPR gap between the sexes (population, all races)."""
        return self.gap("sex", "tpr")

    @property
    def miscalibrated_ece(self) -> float:
        """Population ECE of the miscalibrated race."""
        return self.groups["race"][self.effects.miscalibrated_race].ece


@dataclass(frozen=True)
class _Cell:
    """Exact values of one (sex, race) cell."""

    share: float
    base_rate: float
    selection_rate: float
    tpr: float
    fpr: float
    ece: float


def plan_planted(effects: PlantedEffects) -> PlantedTruth:
    """Solve the Beta parameters and compute the exact population values of every group."""
    beta = {
        sex: _solve_beta(effects.base_rate[sex], effects.tpr[sex], effects.threshold)
        for sex in effects.sex_shares
    }
    cells = {
        (sex, race): _cell(effects, beta[sex], sex_share * race_share, race)
        for sex, sex_share in effects.sex_shares.items()
        for race, race_share in effects.race_shares.items()
    }
    groups = {
        "sex": {
            s: _aggregate([c for k, c in cells.items() if k[0] == s]) for s in effects.sex_shares
        },
        "race": {
            r: _aggregate([c for k, c in cells.items() if k[1] == r]) for r in effects.race_shares
        },
        f"sex{JOIN}race": {f"{s}{JOIN}{r}": _aggregate([c]) for (s, r), c in cells.items()},
    }
    return PlantedTruth(effects=effects, beta=beta, groups=groups)


def make_planted(
    n_rows: int, seed: int, effects: PlantedEffects | None = None
) -> tuple[pd.DataFrame, PlantedTruth]:
    """Generate ``n_rows`` rows with planted effects, and the exact population truth.

    Args:
        n_rows: Rows to generate.
        seed: Seed; chunk ``i`` is drawn from ``SeedSequence([seed, i])``.
        effects: What to plant; the defaults look like Adult (base rates 0.31 / 0.11).

    Returns:
        The frame (``_row_id``, Adult-like features, ``sex``, ``race``, ``label``, ``score``) and
        the planted population values.
    """
    truth = plan_planted(effects or PlantedEffects())
    chunks = list(iter_planted_chunks(n_rows, seed, truth))
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return frame, truth


def iter_planted_chunks(
    n_rows: int, seed: int, truth: PlantedTruth, chunk_rows: int = CHUNK_ROWS
) -> Iterator[pd.DataFrame]:
    """Yield the rows in chunks of ``chunk_rows`` (the last may be shorter)."""
    if n_rows < 1:
        raise ValueError("n_rows must be at least 1")
    for index, start in enumerate(range(0, n_rows, chunk_rows)):
        yield planted_chunk(index, min(chunk_rows, n_rows - start), seed, truth, start)


def planted_chunk(
    index: int, n_rows: int, seed: int, truth: PlantedTruth, row_offset: int
) -> pd.DataFrame:
    """Generate one chunk from its own seed, so chunks can be made independently and in parallel."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    effects = truth.effects
    sex = _draw_category(rng, effects.sex_shares, n_rows)
    race = _draw_category(rng, effects.race_shares, n_rows)
    sex_names = np.array(list(effects.sex_shares))
    a = np.array([truth.beta[s][0] for s in sex_names])[sex]
    b = np.array([truth.beta[s][1] for s in sex_names])[sex]
    p = rng.beta(a, b)
    label = (rng.random(n_rows) < p).astype(np.int64)
    race_names = np.array(list(effects.race_shares))
    distorted = race_names[race] == effects.miscalibrated_race
    score = np.where(distorted, _distort(p, effects.miscalibration), p)
    frame = _features(rng, p)
    frame.insert(0, "_row_id", np.arange(row_offset, row_offset + n_rows, dtype=np.int64))
    frame["sex"] = sex_names[sex]
    frame["race"] = race_names[race]
    frame["label"] = label
    frame["score"] = score.astype(np.float64)
    return frame


def _draw_category(
    rng: np.random.Generator, shares: dict[str, float], n: int
) -> npt.NDArray[np.int64]:
    cumulative = np.cumsum(list(shares.values()))
    codes = np.searchsorted(cumulative / cumulative[-1], rng.random(n), side="right")
    return np.minimum(codes, len(shares) - 1).astype(np.int64)


def _distort(p: FloatArray, d: float) -> FloatArray:
    """One-signed, monotone distortion: scores move toward 1 (d > 0) or toward 0 (d < 0)."""
    return d + (1.0 - d) * p if d > 0 else (1.0 + d) * p


def _undistorted_threshold(threshold: float, d: float) -> float:
    """The true-probability cut that a distorted score crosses at ``threshold``."""
    cut = (threshold - d) / (1.0 - d) if d > 0 else threshold / (1.0 + d)
    return float(min(max(cut, 0.0), 1.0))


def _upper_tail(a: float, b: float, cut: float) -> float:
    """P(X >= cut) for X ~ Beta(a, b)."""
    return float(1.0 - betainc(a, b, cut))


def _solve_beta(base_rate: float, tpr: float, threshold: float) -> tuple[float, float]:
    """Beta(a, b) with mean ``base_rate`` whose size-biased upper tail at ``threshold`` is ``tpr``.

    With y ~ Bernoulli(p) and p ~ Beta(a, b), p given y = 1 is Beta(a + 1, b); so TPR at the
    threshold is that tail. It falls from 1 toward 0 as the concentration a + b grows.
    """

    def excess(log_concentration: float) -> float:
        k = float(np.exp(log_concentration))
        return _upper_tail(base_rate * k + 1.0, (1.0 - base_rate) * k, threshold) - tpr

    log_k = brentq(excess, np.log(1e-3), np.log(1e5), xtol=1e-12)
    k = float(np.exp(log_k))
    return base_rate * k, (1.0 - base_rate) * k


def _cell(effects: PlantedEffects, beta: tuple[float, float], share: float, race: str) -> _Cell:
    a, b = beta
    base_rate = a / (a + b)
    d = effects.miscalibration if race == effects.miscalibrated_race else 0.0
    cut = _undistorted_threshold(effects.threshold, d)
    # E|score - p|: d (1 - E p) when moving toward 1, |d| E p when moving toward 0.
    ece = d * (1.0 - base_rate) if d > 0 else -d * base_rate
    return _Cell(
        share=share,
        base_rate=base_rate,
        selection_rate=_upper_tail(a, b, cut),
        tpr=_upper_tail(a + 1.0, b, cut),
        fpr=_upper_tail(a, b + 1.0, cut),
        ece=ece,
    )


def _aggregate(cells: list[_Cell]) -> GroupTruth:
    """Mix cells by share; ECE adds up because every distortion in a group has the same sign."""
    w = np.array([c.share for c in cells])
    pi = np.array([c.base_rate for c in cells])
    sel = np.array([c.selection_rate for c in cells])
    tpr = np.array([c.tpr for c in cells])
    fpr = np.array([c.fpr for c in cells])
    tp, fp = w * pi * tpr, w * (1.0 - pi) * fpr
    return GroupTruth(
        share=float(w.sum()),
        base_rate=float((w * pi).sum() / w.sum()),
        selection_rate=float((w * sel).sum() / w.sum()),
        tpr=float(tp.sum() / (w * pi).sum()),
        fpr=float(fp.sum() / (w * (1.0 - pi)).sum()),
        precision=float(tp.sum() / (w * sel).sum()),
        accuracy=float((tp + w * (1.0 - pi) - fp).sum() / w.sum()),
        ece=float((w * np.array([c.ece for c in cells])).sum() / w.sum()),
    )


def _features(rng: np.random.Generator, p: FloatArray) -> pd.DataFrame:
    """Adult-like features that carry the signal of ``p`` (plus noise), for training tests."""
    n = p.size
    clipped = np.clip(p, 1e-4, 1.0 - 1e-4)
    z = (np.log(clipped) - np.log1p(-clipped)) / 2.0  # half the logit of p
    noise = rng.standard_normal((5, n))
    education_num = np.clip(np.round(10.0 + 1.5 * z + 2.0 * noise[0]), 1, 16).astype(np.int64)
    gain_draw = rng.random(n)
    capital_gain = np.where(
        gain_draw < 0.05 + 0.1 / (1.0 + np.exp(-z)), np.round(np.exp(7.0 + 1.2 * noise[3])), 0.0
    ).astype(np.int64)
    return pd.DataFrame(
        {
            "age": np.clip(np.round(38.0 + 5.0 * z + 11.0 * noise[1]), 17, 90).astype(np.int64),
            "workclass": _pick(_WORKCLASS, 0.3 * z + noise[2], (-0.2, 1.0, 2.5)),
            "education": _pick(
                _EDUCATION, education_num.astype(np.float64), (10.5, 12.5, 14.5, 15.5)
            ),
            "education-num": education_num,
            "marital-status": _pick(_MARITAL, -z + noise[4], (-0.5, 0.8, 2.0)),
            "occupation": _pick(
                _OCCUPATION, z + rng.standard_normal(n), (-1.5, -0.7, 0.0, 0.7, 1.5)
            ),
            "capital-gain": capital_gain,
            "hours-per-week": np.clip(
                np.round(40.0 + 3.0 * z + 10.0 * rng.standard_normal(n)), 1, 99
            ).astype(np.int64),
        }
    )


def _pick(
    names: tuple[str, ...], latent: FloatArray, cuts: tuple[float, ...]
) -> npt.NDArray[np.str_]:
    """Categorical column from a latent value cut at fixed points (one name per interval)."""
    return np.array(names)[np.searchsorted(np.array(cuts), latent)]
