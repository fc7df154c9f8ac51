"""The run layout: every artifact path and tag name evenflow writes or reads, in one place.

A training run's artifacts are read back by review, monitoring, scoring and reproduce, often years
later and by newer code; these names are therefore part of every registered model. Change one only
with a reader that still understands the old name.
"""

from __future__ import annotations

from urllib.parse import quote

# --- artifact folders of a training run ---------------------------------------------------------

VALIDATION_DIR = "validation"
DATA_DIR = "data"
PARAMS_DIR = "params"
TRAINING_DIR = "training"
REPORTS_DIR = "reports"
PREDICTIONS_DIR = "predictions"
EXPLANATIONS_DIR = "explanations"
MITIGATIONS_DIR = "mitigations"
GATE_DIR = "gate"
MODEL_CARD_DIR = "model_card"
LINEAGE_DIR = "lineage"
"""Written only for a run made from a dirty tree: its uncommitted diff."""
MONITORING_DIR = "monitoring"
"""Artifact folder of a monitoring run."""
SCORING_DIR = "scoring"
#: Counts per failed rule and row numbers of a scoring run's rejected rows (never their values).
REJECTS_SUMMARY = "rejects_summary.json"
"""Artifact folder of a scoring run: its summary and its rejected rows."""

# --- file names inside those folders --------------------------------------------------------

MANIFEST_FILE = "manifest.json"
SPLIT_REPORT_FILE = "split_report.json"
RUN_PARAMS_FILE = "run_params.json"
PREDICTIONS_FILE = "predictions.parquet"
VALID_PREDICTIONS_FILE = "valid_predictions.parquet"
METRICS_FILE = "metrics.json"
GROUPS_FILE = "groups.json"
BASELINES_FILE = "baselines.json"
BASELINE_GROUPS_FILE = "baseline_groups.json"
BASELINE_PREDICTIONS_FILE = "baseline_predictions.parquet"
FAIRNESS_DIR = "fairness"
FAIRNESS_FILE = "fairness.json"
FAIRNESS_HTML_FILE = "fairness.html"
DECISION_FILE = "decision.json"
CARD_HTML_FILE = "model_card.html"
CARD_MARKDOWN_FILE = "model_card.md"
THRESHOLD_POLICY_FILE = "threshold_policy.json"
PARTITION_WORKERS_FILE = "partition_workers.json"
BOOSTER_PARAMS_FILE = "booster_params.json"
CROSS_FIT_FILE = "cross_fit.json"
VALIDATION_RESULT_FILE = "validation_result.json"
MONITORING_FILE = "monitoring.json"
MONITORING_HTML_FILE = "monitoring.html"
HANDOFF_FILE = "handoff.json"
GIT_DIFF_FILE = "git_diff.json"
DRIFT_SUMMARY_FILE = "drift_summary.json"
"""Train-vs-test drift of the run's own splits, beside its reports (read back by the model card)."""
EXPLANATIONS_FILE = "explanations.json"
SHAP_SUMMARY_PLOT_FILE = "shap_summary.png"
SHAP_BY_GROUP_PLOT_FILE = "shap_by_group.png"
MITIGATIONS_TABLE_FILE = "mitigations.json"
MITIGATIONS_HTML_FILE = "mitigations.html"
MITIGATIONS_PLOT_FILE = "mitigations.png"

# --- artifact paths, relative to a run's artifact root ---------------------------------------

MANIFEST = f"{DATA_DIR}/{MANIFEST_FILE}"
SPLIT_REPORT = f"{DATA_DIR}/{SPLIT_REPORT_FILE}"
RUN_PARAMS = f"{PARAMS_DIR}/{RUN_PARAMS_FILE}"
PREDICTIONS = f"{PREDICTIONS_DIR}/{PREDICTIONS_FILE}"
METRICS = f"{REPORTS_DIR}/{METRICS_FILE}"
GROUPS = f"{REPORTS_DIR}/{GROUPS_FILE}"
FAIRNESS = f"{REPORTS_DIR}/{FAIRNESS_DIR}/{FAIRNESS_FILE}"
FAIRNESS_HTML = f"{REPORTS_DIR}/{FAIRNESS_DIR}/{FAIRNESS_HTML_FILE}"
DECISION = f"{GATE_DIR}/{DECISION_FILE}"
CARD_HTML = f"{MODEL_CARD_DIR}/{CARD_HTML_FILE}"
CARD_MARKDOWN = f"{MODEL_CARD_DIR}/{CARD_MARKDOWN_FILE}"
PARTITION_WORKERS = f"{TRAINING_DIR}/{PARTITION_WORKERS_FILE}"
BOOSTER_PARAMS = f"{TRAINING_DIR}/{BOOSTER_PARAMS_FILE}"
CROSS_FIT = f"{TRAINING_DIR}/{CROSS_FIT_FILE}"
EXPLANATIONS = f"{EXPLANATIONS_DIR}/{EXPLANATIONS_FILE}"
GIT_DIFF = f"{LINEAGE_DIR}/{GIT_DIFF_FILE}"

# --- the registered model's own artifacts (inside the MLflow model) -----------------------------

MODEL_ARTIFACT = "model"
"""Where a training run logs the MLflow model (``runs:/<run id>/model``)."""
BOOSTER_ARTIFACT = "booster"
SCHEMA_ARTIFACT = "schema"

# --- tags: lineage on every run (DESIGN.md, Records) -------------------------------------------

DATA_MD5_TAG = "evenflow.data_md5"
GIT_COMMIT_TAG = "evenflow.git_commit"
GIT_DIRTY_TAG = "evenflow.git_dirty"
PARAMS_HASH_TAG = "evenflow.params_hash"
ENV_HASH_TAG = "evenflow.env_hash"
FLOW_RUN_ID_TAG = "evenflow.flow_run_id"

# --- tags: training runs and model versions ----------------------------------------------------

EVALUATION_TAG = "evenflow.evaluation"
"""How the model was evaluated: ``held_out`` or ``cross_fit``."""
DEVICE_TAG = "evenflow.device"
DEVICE_REASON_TAG = "evenflow.device_reason"
N_WORKERS_TAG = "evenflow.n_workers"
EXISTING_VERSION_TAG = "evenflow.existing_version"
"""On a run that registered nothing because a version already held its build: that version's URI."""
GATE_TAG = "evenflow.gate"
"""On a model version and its training run: ``passed`` or ``failed``."""
GATE_FAILED_TAG = "evenflow.gate_failed"
"""On a model version and its training run: the failed clauses joined by ``; ``."""

DATASET_CONTEXT = "training"
"""Context of a training run's dataset input (``mlflow.data.context``); its digest is the data md5."""
RAW_MD5_INPUT_TAG = "evenflow.raw_md5"
"""On a run's dataset input: md5 of the raw file the shards were cut from."""
SHARD_DIR_INPUT_TAG = "evenflow.shard_dir"
"""On a run's dataset input: the DVC-tracked folder of the shards (what the digest hashes)."""

# --- MLflow's own tags, as evenflow sets them --------------------------------------------------

NOTE_TAG = "mlflow.note.content"
"""A run's description: Markdown the MLflow UI renders on the run page."""
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
"""Opens an experiment on its runs in the MLflow 3 UI, not on the GenAI overview."""
UI_WORKFLOW_QUERY = "workflowType=machine_learning"
"""Query of every UI link evenflow writes: MLflow 3.17's UI picks its GenAI or model-training
side from this parameter (else the browser's last choice, GenAI at first), not from the tag."""

# --- fairness metrics of a training run (charted and compared across runs in the UI) -----------

FAIRNESS_METRIC_PREFIX = "fairness"
FAIRNESS_SUMMARY_METRIC = FAIRNESS_METRIC_PREFIX + ".{slice}.{summary}"
"""A between-group summary of a slice, e.g. ``fairness.sex.equalized_odds_difference``.

``slice`` is the sensitive column, or the columns of an intersection joined by ``_x_``
(``fairness.sex_x_race.…``); ``summary`` is a field of the fairness report's slice summary.
"""
FAIRNESS_GROUP_METRIC = FAIRNESS_METRIC_PREFIX + ".{slice}.group.{group}.{rate}"
"""A reported group's rate, e.g. ``fairness.sex.group.Female.selection_rate``.

``group`` is the group's values joined by ``_x_``, every character outside ``[A-Za-z0-9_-]``
replaced by ``_``; ``rate`` is one of :data:`FAIRNESS_GROUP_RATES`.
"""
FAIRNESS_GROUP_RATES = ("selection_rate", "tpr", "fpr")
FAIRNESS_LOW_SUFFIX = ".low"
FAIRNESS_HIGH_SUFFIX = ".high"
"""Every fairness figure with an interval is logged three times: value, ``.low`` and ``.high``."""
FAIRNESS_GROUPS_COMPARED_METRIC = FAIRNESS_METRIC_PREFIX + ".{slice}.groups_compared"
FAIRNESS_GROUPS_LEFT_OUT_METRIC = FAIRNESS_METRIC_PREFIX + ".{slice}.groups_left_out"
"""Groups of a slice kept out (private or insufficient evidence): counted, never shown as figures."""
FAIRNESS_NAME_JOIN = "_x_"

# --- tags: monitoring and scoring runs ---------------------------------------------------------

KIND_TAG = "evenflow.kind"
MODEL_NAME_TAG = "evenflow.model_name"
MODEL_VERSION_TAG = "evenflow.model_version"
MODEL_ALIAS_TAG = "evenflow.model_alias"
MODEL_RUN_ID_TAG = "evenflow.model_run_id"
BATCH_MD5_TAG = "evenflow.batch_md5"
REFERENCE_DATA_MD5_TAG = "evenflow.reference_data_md5"
MONITORING_TAG = "evenflow.monitoring"
LABELLED_TAG = "evenflow.labelled"
DRIFTED_COLUMNS_TAG = "evenflow.drifted_columns"
RETRAINING_TAG = "evenflow.retraining"
OUTPUT_TAG = "evenflow.output"
THRESHOLD_TAG = "evenflow.threshold"
SCORING_PARQUET_KEY = b"evenflow.scoring"
"""Key of the lineage and summary in a scored Parquet file's key-value metadata."""

# --- tags: review, promotion and the ledger (on registered model versions and models) -----------

REVIEWED_SHA_TAG = "evenflow.reviewed_evidence_sha256"
REVIEWED_AT_TAG = "evenflow.reviewed_at"
REVIEWED_FILES_TAG = "evenflow.reviewed_evidence_files"
REVIEWED_AGAINST_TAG = "evenflow.reviewed_against_champion"
PROMOTED_BY_TAG = "evenflow.promoted_by"
PROMOTED_AT_TAG = "evenflow.promoted_at"
PROMOTION_NOTE_TAG = "evenflow.promotion_note"
PROMOTED_SHA_TAG = "evenflow.promoted_evidence_sha256"
PROMOTION_SEQ_TAG = "evenflow.promotion_ledger_seq"
PROMOTION_OVERRIDE_TAG = "evenflow.promotion_override"
REJECTED_BY_TAG = "evenflow.rejected_by"
REJECTED_AT_TAG = "evenflow.rejected_at"
REJECTION_NOTE_TAG = "evenflow.rejection_note"
REJECTED_SHA_TAG = "evenflow.rejected_evidence_sha256"
REJECTION_SEQ_TAG = "evenflow.rejection_ledger_seq"
ROLLED_BACK_BY_TAG = "evenflow.rolled_back_by"
ROLLED_BACK_AT_TAG = "evenflow.rolled_back_at"
ROLLBACK_NOTE_TAG = "evenflow.rollback_note"
ROLLBACK_SEQ_TAG = "evenflow.rollback_ledger_seq"
RESTORED_SEQ_TAG = "evenflow.restored_ledger_seq"
LEDGER_PREFIX = "evenflow.ledger."
"""Registered-model tags ``evenflow.ledger.000001``…: the promotion ledger, one entry per tag."""

# --- groups of the names above that readers compare or hash ------------------------------------

EVIDENCE_FILES = (CARD_HTML, CARD_MARKDOWN, FAIRNESS, DECISION)
"""What a reviewer signs: the card, the fairness report and the gate decision (review hashes them)."""
BUILD_TAGS = (DATA_MD5_TAG, PARAMS_HASH_TAG, GIT_COMMIT_TAG, ENV_HASH_TAG)
"""What makes two builds of a model the same: data, parameters, committed code and environment."""

# --- aliases ---------------------------------------------------------------------------------

CANDIDATE = "candidate"
CHAMPION = "champion"


# --- pages of the MLflow UI (relative: the UI's router reads the fragment) -------------------------

LOCAL_UI = "http://127.0.0.1:5000"
"""Where ``evenflow ui`` serves the MLflow UI of a project whose store is a local file."""


def artifact_page(experiment_id: str, run_id: str, path: str = "") -> str:
    """The MLflow UI's page of a run artifact, relative to the UI (its router reads the fragment).

    ``#/experiments/1/runs/abc/artifacts/model_card/model_card.html?workflowType=machine_learning``
    opens the run's artifact browser on that file and previews it, on the UI's model-training
    side; the same link works from a run or a version page.
    """
    tail = f"/{quote(path)}" if path else ""
    return f"#/experiments/{experiment_id}/runs/{run_id}/artifacts{tail}?{UI_WORKFLOW_QUERY}"


def run_page(experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of a run, relative to the UI."""
    return f"#/experiments/{experiment_id}/runs/{run_id}?{UI_WORKFLOW_QUERY}"


def version_page(name: str, version: str) -> str:
    """The MLflow UI's page of a registered model version, relative to the UI."""
    return f"#/models/{quote(name)}/versions/{version}?{UI_WORKFLOW_QUERY}"
