"""fingerprint postings keyed by a clip number, the row its own primary key

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # docs/adr/0005-registry-compact-postings.md: a clip number replaces the label id in
    # each index row, and the row (hash, clip, frame) is the primary key, so the look-up
    # reads one compact index (on SQLite, the table itself).
    op.create_table(
        "fingerprint_clip",
        sa.Column("n", sa.Integer(), primary_key=True),
        sa.Column("label_id", sa.String(length=40), sa.ForeignKey("label.id"), nullable=False),
    )
    op.create_index("ix_fingerprint_clip_label_id", "fingerprint_clip", ["label_id"], unique=True)
    op.create_table(
        "fingerprint_posting",
        sa.Column("hash", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column(
            "clip",
            sa.Integer(),
            sa.ForeignKey("fingerprint_clip.n"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("frame", sa.Integer(), primary_key=True, autoincrement=False),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO fingerprint_clip (label_id) "
        "SELECT DISTINCT label_id FROM fingerprint_hash ORDER BY label_id"
    )
    # Only the quarter of hash values that look-ups now send (fingerprint._indexed: the
    # top two bits of hash x 2654435761 mod 2^32 are zero), the product taken in two
    # halves of the multiplier so that no 64-bit integer overflows.
    op.execute(
        "INSERT INTO fingerprint_posting (hash, clip, frame) "
        "SELECT h.hash, c.n, h.frame FROM fingerprint_hash h "
        "JOIN fingerprint_clip c ON c.label_id = h.label_id "
        "WHERE (h.hash * 31153 + (h.hash * 40503) % 65536 * 65536) % 4294967296 < 1073741824"
    )
    op.drop_table("fingerprint_hash")


def downgrade() -> None:
    op.create_table(
        "fingerprint_hash",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("hash", sa.BigInteger(), nullable=False),
        sa.Column("label_id", sa.String(length=40), sa.ForeignKey("label.id"), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
    )
    op.execute(
        "INSERT INTO fingerprint_hash (hash, label_id, frame) "
        "SELECT p.hash, c.label_id, p.frame FROM fingerprint_posting p "
        "JOIN fingerprint_clip c ON c.n = p.clip"
    )
    op.create_index("ix_fingerprint_hash_label_id", "fingerprint_hash", ["label_id"])
    op.create_index(
        "ix_fingerprint_hash_postings", "fingerprint_hash", ["hash", "label_id", "frame"]
    )
    op.drop_table("fingerprint_posting")
    op.drop_table("fingerprint_clip")
