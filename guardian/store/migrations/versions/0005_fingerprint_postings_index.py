"""fingerprint_hash: one covering index for the look-up by hash

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The registry reads (hash, label_id, frame) by hash: with all three in the index the
    # look-up never visits the table (docs/adr/0004-registry-postings-index.md).
    # Plain index operations: on SQLite, batch mode could copy the whole table.
    op.create_index(
        "ix_fingerprint_hash_postings", "fingerprint_hash", ["hash", "label_id", "frame"]
    )
    op.drop_index("ix_fingerprint_hash_hash", table_name="fingerprint_hash")


def downgrade() -> None:
    op.create_index("ix_fingerprint_hash_hash", "fingerprint_hash", ["hash"])
    op.drop_index("ix_fingerprint_hash_postings", table_name="fingerprint_hash")
