"""label: watermark payload, tag and model

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("label") as batch:
        batch.add_column(sa.Column("wm_payload", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("wm_tag", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("wm_model", sa.String(length=80), nullable=True))
        batch.create_index("ix_label_wm_tag", ["wm_tag"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("label") as batch:
        batch.drop_index("ix_label_wm_tag")
        batch.drop_column("wm_model")
        batch.drop_column("wm_tag")
        batch.drop_column("wm_payload")
