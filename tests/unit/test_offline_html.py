"""Every HTML page evenflow writes renders offline: no asset from another host, none missing.

Data Docs come from a real GX 1.x validation (a failing batch, in memory and chunk by chunk);
the other reports from the real renderers on small frames, Evidently's drift report included.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evenflow.assess.fairness import fairness_report
from evenflow.assess.mitigation import compare_mitigations
from evenflow.assess.monitoring import assess_drift, drift_breaches
from evenflow.config.fairness import FairnessParams
from evenflow.config.monitor import DriftPolicy
from evenflow.config.run import builtin_example
from evenflow.contracts.data_docs import (
    LOCAL_COPIES,
    SITE_VENDOR_DIR,
    asset_refs,
    css_asset_refs,
    external_asset_refs,
    local_file_refs,
    localise_site,
)
from evenflow.contracts.suite import infer_suite
from evenflow.contracts.validation import DOCS_DIR, validate_frame, validate_parquet
from evenflow.data.features import feature_specs
from evenflow.data.synth import make_planted
from evenflow.govern.monitoring import MonitoringReport
from evenflow.records import RawBatch, ValidationReport
from evenflow.reports.fairness_html import write_fairness_report
from evenflow.reports.mitigation_html import write_tradeoff
from evenflow.reports.monitoring_html import write_monitoring_html
from tests.monitoring_inputs import plant_adult_drift, unregistered_model

SENSITIVE = ("sex", "race")
FONT_AWESOME = LOCAL_COPIES[
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css"
]


@pytest.fixture(scope="module")
def failing_batch(adult_rows: pd.DataFrame) -> pd.DataFrame:
    """300 rows of Adult with one value out of the contract's range."""
    batch = adult_rows.head(300).copy()
    batch.loc[0, "hours-per-week"] = 500
    return batch


@pytest.fixture(scope="module", params=["in memory", "chunk by chunk"])
def validated(
    request: pytest.FixtureRequest,
    adult_rows: pd.DataFrame,
    failing_batch: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> ValidationReport:
    """The failing batch's report, checked one way or the other (both copy Data Docs out)."""
    suite = infer_suite(adult_rows, builtin_example().dataset)
    out = tmp_path_factory.mktemp("validated")
    if request.param == "in memory":
        return validate_frame(failing_batch, suite, out, dataset="adult")
    path = out / "batch.parquet"
    failing_batch.to_parquet(path)
    return validate_parquet(path, suite, out / "result", dataset="adult", chunk_rows=100)


@pytest.fixture(scope="module")
def site(validated: ValidationReport) -> Path:
    return validated.result_path.parent / DOCS_DIR


def _pages(folder: Path) -> list[Path]:
    pages = sorted(folder.rglob("*.html"))
    assert pages, f"no HTML under {folder}"
    return pages


def _refs(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return css_asset_refs(text) if path.suffix == ".css" else asset_refs(text)


def _external(path: Path) -> list[str]:
    if path.suffix == ".css":
        return [ref for ref in css_asset_refs(path.read_text(encoding="utf-8")) if "//" in ref]
    return external_asset_refs(path.read_text(encoding="utf-8"))


def test_data_docs_load_nothing_from_another_host(validated: ValidationReport, site: Path) -> None:
    assert not validated.success  # the site holds a failed validation
    files = [*_pages(site), *sorted(site.rglob("*.css"))]
    external = {str(path.relative_to(site)): _external(path) for path in files}
    assert not {name: refs for name, refs in external.items() if refs}


def test_every_local_asset_of_the_data_docs_is_in_the_site(site: Path) -> None:
    missing = []
    for path in [*_pages(site), *sorted(site.rglob("*.css"))]:
        for ref in local_file_refs(_refs(path)):
            target = (path.parent / re.split(r"[?#]", ref)[0]).resolve()
            if not target.is_file() or not target.is_relative_to(site.resolve()):
                missing.append(f"{path.relative_to(site)}: {ref}")
    assert missing == []
    assert (site / SITE_VENDOR_DIR / "fontawesome-free-6.6.0" / "LICENSE.txt").is_file()


def test_index_table_lists_the_validation_and_loads_its_scripts_locally(
    validated: ValidationReport, site: Path
) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    assert validated.docs_path is not None
    page = validated.docs_path.relative_to(site).as_posix()
    # bootstrap-table builds the index's rows from this data, marked failed (fa-times).
    rows = re.search(r"data: (\[.*?\]),\s*\n", index)
    assert rows is not None, "the index has no table data"
    assert f"'_table_row_link_path': '{page}'" in rows[1]
    assert "fa-times text-danger" in rows[1]
    scripts = re.findall(r'<script src="([^"]+)"', index)
    needed = ["jquery.min.js", "bootstrap.bundle.min.js", "bootstrap-table.min.js"]
    order = [next(i for i, src in enumerate(scripts) if src.endswith(name)) for name in needed]
    assert order == sorted(order), scripts  # jQuery, then Bootstrap, then bootstrap-table
    assert all(src.startswith(f"{SITE_VENDOR_DIR}/") for src in scripts), scripts
    assert index.index(scripts[-1]) < index.index(".bootstrapTable(")


def test_validation_page_has_its_styles_and_status_icons(
    validated: ValidationReport, site: Path
) -> None:
    assert validated.docs_path is not None
    page = validated.docs_path.read_text(encoding="utf-8")
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    names = {Path(href).name for href in stylesheets}
    assert {"bootstrap.min.css", "fontawesome.min.css", "solid.min.css"} <= names
    assert "fas fa-check-circle" in page  # a met expectation's icon
    assert re.search(r"fas fa-times", page)  # the failed one's
    solid = site / SITE_VENDOR_DIR / "fontawesome-free-6.6.0" / "css" / "solid.min.css"
    fonts = css_asset_refs(solid.read_text(encoding="utf-8"))
    assert fonts == ["../webfonts/fa-solid-900.woff2"]
    assert (solid.parent / fonts[0]).is_file()


def test_checker_reports_assets_not_links() -> None:
    html = """<html><head>
      <script src="https://cdn.example.org/x.js"></script>
      <link rel="stylesheet" href="//cdn.example.org/y.css">
      <link rel="icon" href="static/favicon.ico">
      <style>@import "https://fonts.example.org/f.css"; .a { background: url(img/a.png) }</style>
    </head><body style="background: url('http://img.example.org/b.png')">
      <a href="https://docs.example.org/guide">guide</a>
      <img src="data:image/png;base64,AAAA" srcset="small.png 1x, https://img.example.org/l.png 2x">
    </body></html>"""
    assert external_asset_refs(html) == [
        "https://cdn.example.org/x.js",
        "//cdn.example.org/y.css",
        "https://fonts.example.org/f.css",
        "http://img.example.org/b.png",
        "https://img.example.org/l.png",
    ]
    assert local_file_refs(asset_refs(html)) == ["static/favicon.ico", "img/a.png", "small.png"]


@pytest.fixture
def gx_like_site(tmp_path: Path) -> Path:
    """A two-page site shaped as GX writes one, with a CDN evenflow has no copy of."""
    site = tmp_path / "site"
    (site / "static" / "images").mkdir(parents=True)
    (site / "static" / "images" / "favicon.ico").write_bytes(b"\0")
    head = (
        '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
        '<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/'
        '6.6.0/css/all.min.css">'
    )
    (site / "index.html").write_text(f"<head>{head}</head>", encoding="utf-8")
    deep = site / "validations" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "page.html").write_text(
        '<link rel="shortcut icon" href="../../../static/images/favicon.ico">'
        '<script src="https://cdn.example.org/new.js"></script>',
        encoding="utf-8",
    )
    return site


def test_unknown_cdn_assets_are_kept_and_named(
    gx_like_site: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="evenflow.contracts.data_docs"):
        localise_site(gx_like_site)
    page = gx_like_site / "validations" / "a" / "b" / "c" / "page.html"
    assert external_asset_refs(page.read_text(encoding="utf-8")) == [
        "https://cdn.example.org/new.js"
    ]
    assert "https://cdn.example.org/new.js" in caplog.text
    # GX links this page's favicon one folder short; the copy points at the real file.
    assert local_file_refs(asset_refs(page.read_text(encoding="utf-8"))) == [
        "../../../../static/images/favicon.ico"
    ]
    index = (gx_like_site / "index.html").read_text(encoding="utf-8")
    assert external_asset_refs(index) == []
    assert "vega" not in index  # dropped: not shipped, and no chart needs it here
    # Font Awesome's one stylesheet stands in for two, and each file is copied into the site.
    assert local_file_refs(asset_refs(index)) == [
        f"{SITE_VENDOR_DIR}/{file}"
        for file in (*LOCAL_COPIES["https://code.jquery.com/jquery-3.7.1.min.js"], *FONT_AWESOME)
    ]
    for ref in local_file_refs(asset_refs(index)):
        assert (gx_like_site / ref).is_file()


@pytest.fixture(scope="module")
def reports_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reports")


@pytest.fixture(scope="module")
def planted() -> pd.DataFrame:
    frame, _ = make_planted(3_000, seed=3)
    return frame


def _fairness_page(planted: pd.DataFrame, out: Path) -> Path:
    report = fairness_report(planted, SENSITIVE, FairnessParams(n_bootstrap=0))
    return write_fairness_report(report, out / "fairness").html_path


def _mitigation_page(planted: pd.DataFrame, out: Path) -> Path:
    strict = planted.assign(decision=(planted["score"] >= 0.6).astype(int))
    results = {"none": planted, "threshold": strict}
    table = compare_mitigations(results, SENSITIVE, FairnessParams(n_bootstrap=0), 0.5)
    return write_tradeoff(table, out / "mitigations").html_path


def _scorer(frame: pd.DataFrame) -> np.ndarray:
    z = 0.08 * (frame["hours-per-week"].to_numpy() - 40)
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _monitoring_pages(adult_rows: pd.DataFrame, out: Path) -> list[Path]:
    """The monitoring page and Evidently's drift report beside it."""
    features = feature_specs(adult_rows, builtin_example().dataset)
    policy = DriftPolicy(max_rows=1_000)
    batch = plant_adult_drift(adult_rows.tail(1_000))
    drift = assess_drift(adult_rows.head(1_000), batch, features, policy, out, scorer=_scorer)
    report = MonitoringReport(
        dataset="adult",
        model=unregistered_model(builtin_example().dataset, features, FairnessParams()),
        batch=RawBatch(dataset="adult", path=out / "b.csv", md5="m", n_rows=1_000, columns=()),
        labelled=False,
        policy=policy,
        drift=drift,
        performance=None,
        passed=False,
        breaches=tuple(drift_breaches(drift)),
    )
    return [write_monitoring_html(report, out), drift.evidently_html]


@pytest.fixture(scope="module")
def report_pages(
    planted: pd.DataFrame, adult_rows: pd.DataFrame, reports_dir: Path
) -> dict[str, Path]:
    monitoring, evidently = _monitoring_pages(adult_rows, reports_dir / "monitoring")
    return {
        "fairness": _fairness_page(planted, reports_dir),
        "mitigations": _mitigation_page(planted, reports_dir),
        "monitoring": monitoring,
        "evidently drift": evidently,
    }


def test_reports_load_nothing_from_another_host(report_pages: dict[str, Path]) -> None:
    found: dict[str, list[str]] = {}
    for name, path in report_pages.items():
        text = path.read_text(encoding="utf-8")
        assert "<html" in text.lower(), name
        found[name] = external_asset_refs(text)
        missing = [r for r in local_file_refs(asset_refs(text)) if not (path.parent / r).exists()]
        found[f"{name} (missing)"] = missing
    assert not {name: refs for name, refs in found.items() if refs}
    # Evidently's report embeds its scripts (megabytes of them), rather than loading them.
    evidently = report_pages["evidently drift"]
    assert os.path.getsize(evidently) > 500_000
