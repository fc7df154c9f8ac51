"""The model card: the verdict first, every section in both renderings, the numbers given,
readable tables and captioned plots, nothing external. The HTML is read with a parser."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from evenflow.assess.explain import (
    Explanations,
    ExplanationSummary,
    FeatureImportance,
    GroupImportance,
    ProxyResult,
)
from evenflow.assess.fairness import FairnessReport, fairness_report
from evenflow.config.fairness import FairnessParams
from evenflow.govern.gates import GateDecision, GatePolicy, gate_failures
from evenflow.records import ExpectationFailure, ValidationReport
from evenflow.reports.card_rows import tradeoff_table
from evenflow.reports.model_card import (
    HTML_NAME,
    MARKDOWN_NAME,
    NOT_PROVIDED,
    SECTIONS,
    DataSummary,
    DriftOverview,
    Lineage,
    ModelCardInputs,
    render_model_card,
    write_model_card,
)

# A 1x1 PNG: enough to check embedding without drawing anything.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
DATA_MD5 = "3f2a9c0d1e8b7a6f5e4d3c2b1a098765.dir"
COMMIT = "9c1b2e3d4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"


@pytest.fixture(scope="module")
def fairness() -> FairnessReport:
    """A real report on 2,000 synthetic rows; race has a 12-row group (insufficient evidence:
    too few positives) and a 5-row group (private: only its n is shown)."""
    rng = np.random.default_rng(3)
    n = 2_000
    race = rng.choice(np.array(["A", "B"], dtype=object), n)
    race[:12] = "Tiny"
    race[12:17] = "Rare"
    label = (rng.uniform(size=n) < 0.35).astype(np.int64)
    score = 1 / (1 + np.exp(-(2.0 * (label - 0.5) + rng.normal(0, 1, n))))
    predictions = pd.DataFrame(
        {"label": label, "score": score, "sex": rng.choice(["F", "M"], n), "race": race}
    )
    return fairness_report(predictions, ["sex", "race"], FairnessParams(n_bootstrap=50))


@pytest.fixture(scope="module")
def explanations() -> Explanations:
    summary = ExplanationSummary(
        n_rows=1_500,
        expected_margin=-1.2345,
        global_importance=(
            FeatureImportance(feature="relationship", mean_abs_shap=0.8123),
            FeatureImportance(feature="age", mean_abs_shap=0.4567),
        ),
        groups=(
            GroupImportance(
                column="sex", group="F", n=700, mean_abs_shap={"relationship": 0.9, "age": 0.4}
            ),
            GroupImportance(
                column="sex", group="M", n=800, mean_abs_shap={"relationship": 0.7, "age": 0.5}
            ),
        ),
    )
    proxy = ProxyResult(
        column="sex",
        auc=0.9312,
        auc_kind="binary",
        n_rows=1_500,
        n_folds=3,
        classes={"F": 700, "M": 800},
        features_used=("relationship", "age"),
        top_features=(FeatureImportance(feature="relationship", mean_abs_shap=2.5),),
        model="XGBoost hist",
    )
    return Explanations(summary=summary, proxies={"sex": proxy})


@pytest.fixture(scope="module")
def plot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("card") / "plots" / "shap_summary.png"
    path.parent.mkdir()
    path.write_bytes(PNG)
    return path


@pytest.fixture(scope="module")
def inputs(fairness: FairnessReport, explanations: Explanations, plot: Path) -> ModelCardInputs:
    policy = GatePolicy(min_auc=0.95, max_disparity={"demographic_parity_difference": 0.3})
    # with its interval, as evaluation writes it: the AUC lower-bound clause reads it
    auc = {"roc_auc": 0.8765, "roc_auc_low": 0.8612, "roc_auc_high": 0.8901}
    gate = gate_failures(policy, auc, fairness, None, [])
    validation = ValidationReport(
        success=False,
        suite_name="adult",
        n_expectations=42,
        n_rows=12_345,
        failures=(
            ExpectationFailure(
                expectation="expect_column_values_to_not_be_null", column="age", observed="3 nulls"
            ),
        ),
        result_path=Path("gx/result.json"),
    )
    drift = SimpleNamespace(
        drifted_count=2,
        columns=[object()] * 14,
        drifted_share=0.1429,
        drift_share_threshold=0.5,
        dataset_drift=False,
        drifted_columns=("age", "hours-per-week"),
    )
    tradeoff = pd.DataFrame(
        {
            "mitigation": ["none", "threshold"],
            "accuracy": [0.8712, 0.8523],
            "dpd_sex": [0.176, np.float64(0.0123)],
            "eod_sex": [0.065, np.nan],
        }
    )
    return ModelCardInputs(
        model_name="adult",
        model_version="7",
        run_id="abc123run",
        intended_use="Research on income prediction <b>fairness</b>.",
        out_of_scope_use="Decisions about individuals: credit, hiring, housing.",
        data=DataSummary(
            dataset="adult",
            data_md5=DATA_MD5,
            rows={"train": 8_000, "valid": 2_000, "test": 2_345},
            validation=validation,
        ),
        metrics={
            "roc_auc": {"value": 0.8765, "low": 0.8612, "high": 0.8901},
            "accuracy": 0.8432,
        },
        threshold=0.5,
        fairness=fairness,
        mitigation="threshold",
        tradeoff=tradeoff,
        drift=DriftOverview.from_summary(drift),  # type: ignore[arg-type]
        explanations=explanations,
        shap_plots=(plot,),
        lineage=Lineage.from_tags(
            {
                "evenflow.data_md5": DATA_MD5,
                "evenflow.git_commit": COMMIT,
                "evenflow.git_dirty": "true",
                "evenflow.params_hash": "p" * 64,
                "evenflow.env_hash": "e" * 64,
                "evenflow.flow_run_id": "flow-run-0042",
            }
        ),
        gate=gate,
    )


@pytest.fixture(scope="module")
def rendered(inputs: ModelCardInputs) -> tuple[str, str]:
    """Rendered once: drawing the fairness plots is the slow part."""
    return render_model_card(inputs)


_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})


@dataclass
class Node:
    """An element of the parsed page: enough of a DOM to ask where things sit."""

    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def find_all(self, tag: str) -> list[Node]:
        """Every element of this tag below this one, in document order."""
        found = []
        for child in self.children:
            if isinstance(child, Node):
                found += [child] if child.tag == tag else []
                found += child.find_all(tag)
        return found

    def elements(self) -> list[Node]:
        """The child elements (text left out)."""
        return [c for c in self.children if isinstance(c, Node)]

    def text(self) -> str:
        """All text below, whitespace collapsed."""
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None and node.parent is not None, f"stray </{tag}>"
        self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(page: str) -> Node:
    """The page as a tree; every element closed where it was opened."""
    builder = _TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.current is builder.root, f"<{builder.current.tag}> never closed"
    return builder.root


def _body(page: str) -> Node:
    return parse(page).find_all("body")[0]


def _sections(page: str) -> list[Node]:
    return [n for n in _body(page).elements() if n.tag == "section"]


def _html_headings(page: str) -> list[str]:
    """Each section's heading, without its link back to the contents."""
    return [s.find_all("h2")[0].text().removesuffix(" ↑ contents") for s in _sections(page)]


def _md_headings(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)


def _cells(row: Node) -> list[str]:
    return [cell.text() for cell in row.elements() if cell.tag in ("td", "th")]


def test_every_section_in_both_renderings(rendered: tuple[str, str]) -> None:
    page, markdown = rendered
    assert _html_headings(page) == list(SECTIONS)
    assert _md_headings(markdown) == list(SECTIONS)


def test_verdict_and_gate_table_come_first(rendered: tuple[str, str], inputs: Any) -> None:
    page, markdown = rendered
    gate: GateDecision = inputs.gate
    header, first, nav = _body(page).elements()[:3]
    assert (
        header.tag == "header" and header.find_all("h1")[0].text() == "Model card: adult version 7"
    )
    assert "MLflow run: abc123run" in header.text()
    assert first.tag == "section" and first.attrs["id"] == "verdict-and-gate-decision"
    verdict = next(n for n in first.find_all("div") if "verdict" in n.classes)
    assert verdict.classes == {"verdict", "failed"}
    assert verdict.text().startswith("Gates failed: not a candidate 1 of 6 gate clauses failed")
    assert "2 groups (1 private, 1 insufficient evidence) were left out" in verdict.text()
    assert [a.attrs["href"] for a in verdict.find_all("a")] == ["#gate-details"]
    (table,) = first.find_all("table")
    head, *rows = table.find_all("tr")
    assert _cells(head) == ["Clause", "Result", "Observed", "Compared", "Limit"]
    assert [_cells(r)[0] for r in rows] == [c.name for c in gate.clauses]
    by_name = {_cells(r)[0]: (r, _cells(r)) for r in rows}
    row, cells = by_name["min_auc"]
    assert cells[1:] == ["FAIL", "0.8765 [0.8612, 0.8901]", "0.8765 (point)", "≥ 0.95"]
    assert row.classes == {"failed"}
    row, cells = by_name["min_auc_lower_bound"]
    assert cells[1:] == ["pass", "0.8765 [0.8612, 0.8901]", "0.8612 (lower bound)", "> 0.5"]
    assert by_name["non_regression"][0].classes == {"skipped"}
    # figures right-aligned (no left class), names left
    assert [("l" in c.classes) for c in rows[0].elements()] == [True, True, False, False, False]
    assert nav.tag == "nav" and nav.attrs["id"] == "contents"
    top = markdown.split("## ", 2)[1]
    assert top.startswith("Verdict and gate decision\n\n**Gates failed: not a candidate.**")
    assert "| min_auc | FAIL | 0.8765 [0.8612, 0.8901] | 0.8765 (point) | ≥ 0.95 |" in top
    assert "[Gate details](#gate-details)" in markdown.split("## Intended use", 1)[0]


def test_contents_links_resolve(rendered: tuple[str, str]) -> None:
    page, _ = rendered
    body = _body(page)
    ids = [n.attrs["id"] for n in [body, *_all(body)] if "id" in n.attrs]
    assert len(ids) == len(set(ids))  # every anchor unique
    nav = next(n for n in body.elements() if n.tag == "nav")
    listed = [a.attrs["href"] for a in nav.find_all("a")]
    assert listed == [f"#{s.attrs['id']}" for s in _sections(page)]
    assert [a.text() for a in nav.find_all("a")] == list(SECTIONS)
    links = [a.attrs["href"] for a in body.find_all("a")]
    assert links and all(href.startswith("#") and href[1:] in ids for href in links)


def _all(node: Node) -> list[Node]:
    return [n for child in node.elements() for n in (child, *_all(child))]


def test_every_plot_is_captioned_and_embedded(
    rendered: tuple[str, str], fairness: FairnessReport
) -> None:
    page, markdown = rendered
    images = _body(page).find_all("img")
    assert len(images) == 1 + 3 * len(fairness.slices)  # the SHAP plot, three per slice
    for img in images:
        assert img.attrs["alt"].strip()
        assert img.attrs["src"].startswith("data:image/png;base64,")
        figure = img.parent
        assert figure is not None and figure.tag == "figure"
        (caption,) = figure.find_all("figcaption")
        assert caption.text().startswith(img.attrs["alt"] + ".")
        assert len(caption.text()) > len(img.attrs["alt"]) + 40  # says what the axes are
    shap = next(i for i in images if i.attrs["alt"] == "SHAP summary")
    assert "SHAP value (x" in shap.parent.text()  # type: ignore[union-attr]
    rates = next(i for i in images if i.attrs["alt"] == "Rates by group: race")
    assert "(insufficient)" in rates.parent.text()  # type: ignore[union-attr]
    assert "![SHAP summary](" in markdown and "*SHAP summary.* One row per top feature" in markdown


def test_every_table_scrolls(rendered: tuple[str, str]) -> None:
    page, _ = rendered
    tables = _body(page).find_all("table")
    assert len(tables) > 20
    for table in tables:
        assert table.parent is not None and table.parent.tag == "div"
        assert table.parent.classes == {"scroll"}
    style = parse(page).find_all("style")[0].text()
    assert ".scroll{overflow-x:auto" in style
    assert ".scroll tr>:first-child{position:sticky;left:0" in style


def test_no_external_reference(rendered: tuple[str, str]) -> None:
    page, _ = rendered
    for node in _all(parse(page)):
        for name, value in node.attrs.items():
            assert not re.match(r"\s*(https?:|//)", value, flags=re.IGNORECASE), (node.tag, name)
        assert node.tag not in ("script", "link", "iframe", "object")
    assert not re.search(r"https?://", page, flags=re.IGNORECASE)
    style = parse(page).find_all("style")[0].text()
    assert "@import" not in style and "url(" not in style


def test_gate_decision_is_never_a_json_dump(rendered: tuple[str, str], inputs: Any) -> None:
    page, markdown = rendered
    gate: GateDecision = inputs.gate
    texts = [t for n in _all(_body(page)) for t in n.children if isinstance(t, str)]
    for text in texts + markdown.splitlines():
        stripped = text.strip()
        if stripped.startswith(("{", "[{")):
            with pytest.raises(json.JSONDecodeError):
                json.loads(stripped)
    for dump in (gate.model_dump_json(), json.dumps(gate.model_dump(mode="json"))):
        assert dump[:40] not in page and dump[:40] not in markdown
    for text in (page, markdown):
        assert not re.search(r'"(passed|clauses|policy|excluded)"\s*:', text)
    assert not _body(page).find_all("pre") and "```" not in markdown


def test_fairness_groups_side_by_side_small_groups_marked(rendered: tuple[str, str]) -> None:
    page, _ = rendered
    (section,) = [s for s in _sections(page) if s.attrs["id"] == "fairness"]
    assert "Rows shaded yellow are groups with insufficient evidence" in section.text()
    rows = {_cells(r)[0]: r for r in section.find_all("tr") if r.elements()}
    tiny, rare = rows["Tiny (insufficient evidence)"], rows["Rare"]
    assert tiny.classes == {"insufficient"} and rare.classes == {"private"}
    tiny_cells = _cells(tiny)
    assert len(tiny_cells) == 4 + 9  # counts, then every rate side by side
    assert all(re.fullmatch(r"[\d.]+ \[[\d.]+, [\d.]+\]", c) for c in tiny_cells[4:8])
    assert _cells(rare)[:2] == ["Rare", "5"] and "0." not in " ".join(_cells(rare)[2:])
    (left_out,) = [s for s in _sections(page) if s.attrs["id"] == "groups-left-out-of-summaries"]
    totals, groups = left_out.find_all("table")
    counts = {_cells(r)[0]: _cells(r) for r in totals.find_all("tr")}
    assert counts["race"][2:] == ["12 (1 groups)", "5 (1 groups)"]  # rows left out, counted
    statuses = {_cells(r)[1]: r.classes for r in groups.find_all("tr")[1:]}
    assert statuses["Tiny"] == {"insufficient"} and statuses["Rare"] == {"private"}


def test_verdict_of_a_passed_gate_and_of_none(inputs: ModelCardInputs, fairness: Any) -> None:
    policy = GatePolicy(min_auc=0.8, max_disparity={"demographic_parity_difference": 0.3})
    auc = {"roc_auc": 0.8765, "roc_auc_low": 0.8612, "roc_auc_high": 0.8901}
    passed = gate_failures(policy, auc, fairness, None, [], baseline_metrics={"roc_auc": 0.8})
    assert passed.passed
    quick = inputs.model_copy(update={"fairness": None, "gate": passed})
    page, markdown = render_model_card(quick)
    first = _sections(page)[0]
    assert next(n for n in first.find_all("div") if "verdict" in n.classes).classes == {
        "verdict",
        "passed",
    }
    assert "Gates passed: candidate" in first.text()
    head, *rows = first.find_all("tr")
    assert _cells(head)[-1] == "Reference"  # the baseline's AUC beside the clause that used it
    baseline = next(_cells(r) for r in rows if _cells(r)[0] == "auc_vs_baseline")
    assert baseline[-1] == "0.8 margin 0.01"
    assert "**Gates passed: candidate.** All 6 gate clauses passed" in markdown
    page, markdown = render_model_card(quick.model_copy(update={"gate": None}))
    assert "No gate decision: not a candidate" in _sections(page)[0].text()
    assert not _sections(page)[0].find_all("table")
    assert "**No gate decision: not a candidate.**" in markdown


def test_tradeoff_bounds_sit_under_their_value() -> None:
    header, rows = tradeoff_table(
        [
            {
                "method": "none",
                "accuracy": 0.87,
                "accuracy_low": 0.86,
                "accuracy_high": 0.88,
                "dpd[sex]": 0.1,
                "dpd_low[sex]": 0.05,
                "dpd_high[sex]": 0.15,
                "auc": None,
            }
        ]
    )
    assert header == ["method", "accuracy", "dpd[sex]", "auc"]
    assert [str(c) for c in rows[0]] == ["none", "0.87 [0.86, 0.88]", "0.1 [0.05, 0.15]", "–"]


def test_sections_without_input_say_so(inputs: ModelCardInputs) -> None:
    bare = inputs.model_copy(
        update={
            "fairness": None,
            "drift": None,
            "explanations": None,
            "gate": None,
            "tradeoff": None,
        }
    )
    page, markdown = render_model_card(bare)
    assert _html_headings(page) == list(SECTIONS)
    assert _md_headings(markdown) == list(SECTIONS)
    for section in ("Fairness", "Drift", "Explanations (SHAP)", "Proxy check", "Gate details"):
        body = markdown.split(f"## {section}\n\n", 1)[1]
        assert body.startswith(NOT_PROVIDED)


@pytest.mark.parametrize(
    "text",
    [
        "0.8765",  # AUC
        "[0.8612, 0.8901]",  # its interval
        "0.8432",  # accuracy without interval
        DATA_MD5,
        "12,345",  # rows validated
        "2,345",  # test rows
        "expect_column_values_to_not_be_null on column &#x27;age&#x27;: observed 3 nulls",
        "2 of 14",  # drift
        "0.1429",
        "hours-per-week",
        "0.8123",  # SHAP importance
        "0.9312",  # proxy AUC
        "relationship (2.5)",
        COMMIT,
        "flow-run-0042",
        "0.8523",  # trade-off table
        "0.0123",
        "min_auc",
        "0.95",
        "Gates failed: not a candidate",
        "Tiny (insufficient evidence)",  # shown, marked
        "Rare",  # private cell
    ],
)
def test_numbers_given_appear(rendered: tuple[str, str], text: str) -> None:
    page, markdown = rendered
    assert text in page
    assert text.replace("&#x27;", "'") in markdown


def test_fairness_tables_from_the_report(
    rendered: tuple[str, str], fairness: FairnessReport
) -> None:
    page, markdown = rendered
    dpd = fairness.slice("sex").summary.demographic_parity_difference
    assert dpd is not None
    assert dpd.value is not None
    assert f"{dpd.value:.3f}" in page  # the fairness report's own table, embedded
    assert f"{dpd.value:.4g}" in markdown
    assert "<h1>Fairness report</h1>" not in page
    assert page.count("<h1>") == 1
    left_out_headings = [h for h in _body(page).find_all("h3") if "left out" in h.text()]
    assert [h.text() for h in left_out_headings] == ["Groups the gate left out"]  # not repeated
    left_out = markdown.split("## Groups left out of summaries\n\n", 1)[1]
    assert "| race | Tiny | insufficient | 12 |" in left_out
    assert "| race | Rare | private | 5 | – | – |" in left_out  # only n for a private cell
    race = fairness.slice("race").summary
    assert f"| race | {race.n_rows_compared:,} |" in left_out  # rows compared, per slice
    fairness_md = markdown.split("## Fairness\n\n", 1)[1].split("## Mitigation", 1)[0]
    rare = next(line for line in fairness_md.splitlines() if line.startswith("| Rare |"))
    assert rare.count("private") == 6 and "0." not in rare  # never a rate for a private cell
    assert "leave out 17 rows" in fairness_md


def test_html_is_self_contained(rendered: tuple[str, str]) -> None:
    page, _ = rendered
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|//)", page, flags=re.IGNORECASE)
    assert "http" not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64encode(PNG).decode() in embedded
    assert len(embedded) > 1  # the SHAP plot and the fairness report's plots


def test_text_from_config_is_escaped(rendered: tuple[str, str]) -> None:
    page, markdown = rendered
    assert "&lt;b&gt;fairness&lt;/b&gt;" in page
    assert "<b>fairness</b>" not in page
    assert "Research on income prediction <b>fairness</b>." in markdown


def test_tradeoff_missing_values_show_as_dash(
    inputs: ModelCardInputs, rendered: tuple[str, str]
) -> None:
    _, markdown = rendered
    assert inputs.tradeoff is not None
    assert inputs.tradeoff[1]["eod_sex"] is None
    assert "| threshold | 0.8523 | 0.0123 | – |" in markdown


def test_gate_clauses_listed_with_numbers(rendered: tuple[str, str]) -> None:
    _, markdown = rendered
    gate = markdown.split("## Gate details\n\n", 1)[1]
    assert "| min_auc | FAIL | ROC AUC 0.8765 (point; point 0.8765" in gate
    assert "| max_disparity.demographic_parity_difference[sex] | pass |" in gate
    assert "every single sensitive column" in gate
    left_out = gate.split("### Groups the gate left out\n\n", 1)[1].split("### Policy", 1)[0]
    assert "| fairness | race | Rare | private | 5 | 5 rows < min_cell=10" in left_out
    assert "| fairness | race | Tiny | insufficient | 12 | insufficient evidence:" in left_out


def test_write_model_card_is_atomic_and_links_plots(inputs: ModelCardInputs) -> None:
    out = inputs.shap_plots[0].parent.parent / "card"  # beside the plots folder
    quick = inputs.model_copy(update={"fairness": None})  # the fairness plots are slow to draw
    html_path, md_path = write_model_card(quick, out)
    assert (html_path, md_path) == (out / HTML_NAME, out / MARKDOWN_NAME)
    assert sorted(p.name for p in out.iterdir()) == sorted([HTML_NAME, MARKDOWN_NAME])
    assert "](../plots/shap_summary.png)" in md_path.read_text(encoding="utf-8")
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_inputs_round_trip_as_json(inputs: ModelCardInputs) -> None:
    again = ModelCardInputs.model_validate_json(inputs.model_dump_json())
    assert again == inputs


def test_lineage_reads_dirty_flag() -> None:
    tags: dict[str, Any] = {
        "evenflow.data_md5": "d",
        "evenflow.git_commit": "c",
        "evenflow.git_dirty": "false",
        "evenflow.params_hash": "p",
        "evenflow.env_hash": "e",
        "evenflow.flow_run_id": "f",
    }
    assert Lineage.from_tags(tags).git_dirty is False


def test_failed_render_leaves_the_previous_card(
    inputs: ModelCardInputs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = inputs.model_copy(update={"fairness": None})
    html_path, md_path = write_model_card(quick, tmp_path)
    before = (html_path.read_bytes(), md_path.read_bytes())

    def broken(*_: object, **__: object) -> tuple[str, str]:
        raise RuntimeError("boom")

    monkeypatch.setattr("evenflow.reports.model_card.render_model_card", broken)
    with pytest.raises(RuntimeError):
        write_model_card(quick, tmp_path)
    assert (html_path.read_bytes(), md_path.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([HTML_NAME, MARKDOWN_NAME])


def test_headline_intervals_reach_the_card(inputs: ModelCardInputs) -> None:
    from evenflow.usecases.register import _metrics_with_intervals

    metrics = {
        "roc_auc": 0.8,
        "roc_auc_low": 0.78,
        "roc_auc_high": 0.82,
        "log_loss": 0.4,
        "log_loss_low": 0.39,
        "log_loss_high": 0.41,
        "ece": 0.03,
        "ece_low": float("nan"),  # undefined bound: no interval, not a fake one
        "ece_high": float("nan"),
        "n": 1000.0,
    }
    shown = _metrics_with_intervals(metrics, None)
    assert sorted(shown) == ["ece", "log_loss", "n", "roc_auc"]  # bounds sit beside, not below
    card = ModelCardInputs(**{**dict(inputs), "metrics": shown, "fairness": None})
    _, markdown = render_model_card(card)
    section = markdown.split("## Metrics\n\n", 1)[1].split("## Fairness", 1)[0]
    assert "| roc_auc | 0.8 [0.78, 0.82] |" in section
    assert "| log_loss | 0.4 [0.39, 0.41] |" in section
    assert "| ece | 0.03 |" in section
