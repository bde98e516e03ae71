"""api keys, jobs, the audit append lock and stored manifest stores

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_key",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("scopes_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_key_prefix", "api_key", ["prefix"], unique=True)
    op.create_table(
        "job",
        sa.Column("id", sa.String(length=40), primary_key=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum("QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", name="jobstatus"),
            nullable=False,
        ),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("organization", sa.String(length=200), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("worker_pid", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_job_kind", "job", ["kind"])
    op.create_index("ix_job_status", "job", ["status"])
    lock = op.create_table(
        "audit_lock",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("appends", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(lock, [{"id": 1, "appends": 0}])
    op.create_table(
        "manifest_store",
        sa.Column("manifest_id", sa.String(length=120), primary_key=True),
        sa.Column("label_id", sa.String(length=40), sa.ForeignKey("label.id"), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_manifest_store_label_id", "manifest_store", ["label_id"])


def downgrade() -> None:
    op.drop_index("ix_manifest_store_label_id", table_name="manifest_store")
    op.drop_table("manifest_store")
    op.drop_table("audit_lock")
    op.drop_index("ix_job_status", table_name="job")
    op.drop_index("ix_job_kind", table_name="job")
    op.drop_table("job")
    sa.Enum(name="jobstatus").drop(op.get_bind(), checkfirst=True)
    op.drop_index("ix_api_key_prefix", table_name="api_key")
    op.drop_table("api_key")
