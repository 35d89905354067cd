"""The tables, as SQLAlchemy Core metadata (the migrations in ``migrations/`` create them).

Times are seconds since the Unix epoch (``DOUBLE``), as in :class:`~watchkeeper.window.Window`.
JSON goes in ``TEXT`` written by :mod:`json`, so both dialects store and return the same bytes.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("created_at", sa.Double, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("revoked_at", sa.Double, nullable=True),
    sa.Column("expires_at", sa.Double, nullable=True),
    sa.Column("last_used_at", sa.Double, nullable=True),
)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("embedding_dim", sa.Integer, nullable=True),
    sa.Column("n_classes", sa.Integer, nullable=True),
    sa.UniqueConstraint("project_id", "name", name="uq_models_project_name"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("artifact_uri", sa.Text, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("data_fingerprint", sa.Text, nullable=True),
    sa.Column("environment", sa.Text, nullable=True),
    sa.Column("operating_point", sa.Text, nullable=True),
    sa.Column("expected_prevalence", sa.Double, nullable=True),
    sa.Column("expected_volume", sa.Double, nullable=True),
    sa.Column("window", sa.String(64), nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    # the registry (0007): the artifact's manifest (files and their SHA-256; its digest is in
    # ``sha256``), an optional ed25519 signature of that digest, and the version's lineage
    sa.Column("manifest", sa.Text, nullable=True),
    sa.Column("signature", sa.Text, nullable=True),
    sa.Column("lineage", sa.Text, nullable=True),
    sa.UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

alias_moves = sa.Table(
    "alias_moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("from_version", sa.String(128), nullable=True),
    sa.Column("to_version", sa.String(128), nullable=False),
    # "set" or "rollback" (a rollback undoes the newest set move not yet undone)
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(256), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Index("ix_alias_moves_model_alias", "model_id", "alias", "id"),
)

reference_sets = sa.Table(
    "reference_sets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    # '' when the reference belongs to the model rather than to one version
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("profile", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.UniqueConstraint("model_id", "version", name="uq_reference_sets_model_version"),
)

feature_schemas = sa.Table(
    "feature_schemas",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("spec_hash", sa.String(64), nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.UniqueConstraint("model_id", "spec_hash", name="uq_feature_schemas_model_hash"),
)

event_chunks = sa.Table(
    "event_chunks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("schema_id", sa.Integer, sa.ForeignKey("feature_schemas.id"), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("min_ts", sa.Double, nullable=False),
    sa.Column("max_ts", sa.Double, nullable=False),
    # n_rows x k float64, C order: score, latency and numeric features in the schema's order
    sa.Column("nums", sa.LargeBinary, nullable=True),
    # JSON list of columns: predicted label, categorical features and tags, schema's order
    sa.Column("objs", sa.Text, nullable=True),
    sa.Column("embeddings", sa.LargeBinary, nullable=True),  # n_rows x d float32
    sa.Column("embedding_dim", sa.Integer, nullable=True),
    sa.Column("probs", sa.LargeBinary, nullable=True),  # n_rows x k float64
    sa.Column("n_classes", sa.Integer, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    # the events' ids (JSON list), times (n_rows float64) and versions (JSON list), so that a
    # window reads them with its chunks instead of one Python tuple per event (0004)
    sa.Column("ids", sa.Text, nullable=True),
    sa.Column("ts", sa.LargeBinary, nullable=True),
    sa.Column("versions", sa.Text, nullable=True),
    sa.Index("ix_event_chunks_model_max_ts", "model_id", "max_ts"),
)

# One row per event: the idempotency key, the time and version to select a window, and where
# the event's values sit in its chunk.
# No foreign keys on the hot table: log_events writes each event with its chunk in one
# transaction, and retention removes events before their chunk (migration 0005 says why).
events = sa.Table(
    "events",
    metadata,
    sa.Column("model_id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("version", sa.String(128), nullable=True),
    sa.Column("chunk_id", sa.Integer, nullable=False),
    sa.Column("chunk_row", sa.Integer, nullable=False),
    sa.Column("received_at", sa.Double, nullable=False),
    # a copy of labels.label (JSON), so a window needs no join (migration 0003 says why)
    sa.Column("label", sa.Text, nullable=True),
    # covering: a window is read from this index alone, without visiting the table
    sa.Index(
        "ix_events_model_ts",
        "model_id",
        "ts",
        "event_id",
        "version",
        "chunk_id",
        "chunk_row",
        "label",
    ),
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("event_id", sa.String(256), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),  # JSON scalar
    sa.Column("received_at", sa.Double, nullable=False),
)

serving_environments = sa.Table(
    "serving_environments",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("env_hash", sa.String(64), primary_key=True),
    sa.Column("environment", sa.Text, nullable=False),
    sa.Column("first_seen", sa.Double, nullable=False),
    sa.Column("last_seen", sa.Double, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
)

ingest_counters = sa.Table(
    "ingest_counters",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("bucket", sa.BigInteger, primary_key=True),  # minute, epoch seconds
    sa.Column("accepted", sa.BigInteger, nullable=False),
    sa.Column("duplicates", sa.BigInteger, nullable=False),
    sa.Column("rejected", sa.BigInteger, nullable=False),
    sa.Column("last_event_ts", sa.Double, nullable=True),
    sa.Column("last_received_at", sa.Double, nullable=True),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("check_name", sa.String(128), nullable=False),
    sa.Column("subject", sa.String(256), nullable=True),
    sa.Column("method", sa.String(128), nullable=True),
    sa.Column("statistic", sa.Double, nullable=True),
    sa.Column("p_value", sa.Double, nullable=True),
    sa.Column("alpha", sa.Double, nullable=True),
    sa.Column("threshold", sa.Double, nullable=True),
    sa.Column("drift", sa.Boolean, nullable=True),
    sa.Column("severity", sa.String(32), nullable=True),
    sa.Column("window_start", sa.Double, nullable=True),
    sa.Column("window_end", sa.Double, nullable=True),
    sa.Column("details", sa.Text, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Index("ix_findings_model_end", "model_id", "window_end"),
)

metric_values = sa.Table(
    "metric_values",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=True),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("labels", sa.Text, nullable=True),
    sa.Index("ix_metric_values_model_name_ts", "model_id", "name", "ts"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("model", sa.String(128), nullable=True),
    sa.Column("status", sa.String(32), nullable=True),
    sa.Column("severity", sa.String(32), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.UniqueConstraint("project_id", "key", name="uq_alerts_project_key"),
)

monitor_configs = sa.Table(
    "monitor_configs",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), primary_key=True),
    sa.Column("config", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

states = sa.Table(
    "states",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("key", sa.String(512), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

outlier_scores = sa.Table(
    "outlier_scores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, nullable=False),
    sa.Column("event_id", sa.String(256), nullable=False),
    sa.Column("version", sa.String(128), nullable=True),
    sa.Column("ts", sa.Double, nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("score", sa.Double, nullable=True),
    sa.Column("p_value", sa.Double, nullable=True),
    sa.Column("window_end", sa.Double, nullable=True),
    sa.Index("ix_outlier_scores_model_p", "model_id", "p_value"),
    sa.Index("ix_outlier_scores_model_ts", "model_id", "ts"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project", sa.String(128), nullable=True),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("actor", sa.String(256), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.String(512), nullable=True),
    sa.Column("details", sa.Text, nullable=True),
    sa.Index("ix_audit_log_project_at", "project", "at"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("spec", sa.Text, nullable=True),
    sa.Column("trigger", sa.Text, nullable=True),
    sa.Column("outputs", sa.Text, nullable=True),
    sa.Column("log", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("holder", sa.String(256), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("started_at", sa.Double, nullable=True),
    sa.Column("finished_at", sa.Double, nullable=True),
    sa.Column("heartbeat_at", sa.Double, nullable=True),
    sa.Index("ix_jobs_model_id", "model_id", "id"),
    sa.Index("ix_jobs_state", "state"),
)
"""Training jobs (migration 0008): state, logs and outputs of each run of a trainer."""
