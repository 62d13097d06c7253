"""one release gate: immutable draft versions, reviews per version, releases; card, user and feedback columns

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 06:00:00

Drafts become immutable versions grouped in lineages; a draft's review (what the guardrails said, where it
stands with compliance) moves to `reviews`, which replaces `review_items`; what went out is a `releases` row.
Existing data is carried over: each old draft is a lineage of one version, its review and queue item become
one `reviews` row, and a sent draft gets a release (its hash computed from the stored text).
"""
import hashlib
import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.store.base

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
UTC = app.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    bind = op.get_bind()
    reviews = op.create_table(
        'reviews',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('draft_id', sa.String(length=32), nullable=False),
        sa.Column('lineage_id', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=False),
        sa.Column('template_id', sa.String(length=96), nullable=False),
        sa.Column('verdict', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('routing', JSON, nullable=False),
        sa.Column('findings', JSON, nullable=False),
        sa.Column('sources', JSON, nullable=False),
        sa.Column('policy_version', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('decided_at', UTC, nullable=True),
        sa.Column('reason_code', sa.String(length=32), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('approved_draft_id', sa.String(length=32), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('draft_id'),
    )
    with op.batch_alter_table('reviews') as batch_op:
        batch_op.create_index('ix_reviews_lineage_id', ['lineage_id'], unique=False)
        batch_op.create_index('ix_reviews_customer_id', ['customer_id'], unique=False)
        batch_op.create_index('ix_reviews_status', ['status'], unique=False)
    releases = op.create_table(
        'releases',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('draft_id', sa.String(length=32), nullable=False),
        sa.Column('lineage_id', sa.String(length=32), nullable=False),
        sa.Column('body_sha256', sa.String(length=64), nullable=False),
        sa.Column('subject_sha256', sa.String(length=64), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('released_by', sa.String(length=64), nullable=False),
        sa.Column('released_at', UTC, nullable=False),
        sa.Column('subject_ref', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['draft_id'], ['drafts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('draft_id'),
        sa.UniqueConstraint('lineage_id'),
    )

    # Carry the old reviews, queue items and sends over before their columns go (typed, so JSON and times
    # come back as values on SQLite as on PostgreSQL).
    old_drafts = sa.table('drafts', *[sa.column(n, t) for n, t in (
        ('id', sa.String), ('customer_id', sa.String), ('template_id', sa.String), ('channel', sa.String),
        ('subject', sa.Text), ('body', sa.Text), ('review_status', sa.String), ('policy_version', sa.String),
        ('findings', JSON), ('sent_at', UTC), ('created_at', UTC))])
    old_items = sa.table('review_items', *[sa.column(n, t) for n, t in (
        ('id', sa.String), ('draft_id', sa.String), ('status', sa.String), ('verdict', sa.String), ('routing', JSON),
        ('findings', JSON), ('sources', JSON), ('policy_version', sa.String), ('created_at', UTC),
        ('decided_by', sa.String), ('decided_at', UTC), ('reason_code', sa.String), ('comment', sa.Text),
        ('version', sa.Integer))])
    drafts = bind.execute(sa.select(old_drafts)).mappings().all()
    items = {row["draft_id"]: row for row in bind.execute(sa.select(old_items)).mappings()}
    sent_by_card = {row["draft_id"]: row for row in bind.execute(sa.text(
        "SELECT draft_id, id, rep_id FROM cards WHERE draft_id IS NOT NULL")).mappings()}
    review_rows, release_rows = [], []
    for d in drafts:
        item = items.get(d["id"])
        if item is not None:
            status = {"pending": "needs_approval"}.get(item["status"], item["status"])
            review_rows.append({"id": item["id"], "draft_id": d["id"], "lineage_id": d["id"],
                                "customer_id": d["customer_id"], "template_id": d["template_id"],
                                "verdict": item["verdict"], "status": status, "routing": item["routing"],
                                "findings": item["findings"], "sources": item["sources"],
                                "policy_version": item["policy_version"], "created_at": item["created_at"],
                                "decided_by": item["decided_by"], "decided_at": item["decided_at"],
                                "reason_code": item["reason_code"], "comment": item["comment"],
                                "approved_draft_id": d["id"] if item["status"] == "approved" else None,
                                "version": item["version"]})
        elif d["review_status"] is not None:
            review_rows.append({"id": uuid.uuid4().hex[:12], "draft_id": d["id"], "lineage_id": d["id"],
                                "customer_id": d["customer_id"], "template_id": d["template_id"],
                                "verdict": d["review_status"], "status": d["review_status"], "routing": [],
                                "findings": d["findings"] or [], "sources": {},
                                "policy_version": d["policy_version"] or "", "created_at": d["created_at"],
                                "decided_by": None, "decided_at": None, "reason_code": None, "comment": None,
                                "approved_draft_id": None, "version": 1})
        if d["sent_at"] is not None:
            card = sent_by_card.get(d["id"])
            release_rows.append({"id": uuid.uuid4().hex, "draft_id": d["id"], "lineage_id": d["id"],
                                 "body_sha256": hashlib.sha256(d["body"].encode()).hexdigest(),
                                 "subject_sha256": hashlib.sha256(d["subject"].encode()).hexdigest() if d["subject"] else None,
                                 "channel": d["channel"], "released_by": (card or {}).get("rep_id") or "migrated",
                                 "released_at": d["sent_at"], "subject_ref": (card or {}).get("id")})
    if review_rows:
        op.bulk_insert(reviews, review_rows)
    if release_rows:
        op.bulk_insert(releases, release_rows)
    op.drop_table('review_items')

    with op.batch_alter_table('drafts') as batch_op:
        batch_op.add_column(sa.Column('lineage_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('revision', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('author', sa.String(length=128), nullable=True))
    bind.execute(sa.text("UPDATE drafts SET lineage_id = id, revision = 1, "
                         "author = CASE WHEN mode = 'template_only' THEN 'template' "
                         "WHEN mode = 'edited' THEN COALESCE(drafting, 'a rep') ELSE COALESCE(model, 'model') END"))
    bind.execute(sa.text("UPDATE drafts SET mode = 'rep_edit', drafting = NULL WHERE mode = 'edited'"))
    with op.batch_alter_table('drafts') as batch_op:
        batch_op.alter_column('lineage_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column('revision', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('author', existing_type=sa.String(length=128), nullable=False)
        batch_op.create_index('ix_drafts_lineage_id', ['lineage_id'], unique=False)
        batch_op.create_unique_constraint('uq_drafts_lineage_revision', ['lineage_id', 'revision'])
        batch_op.drop_index('ix_drafts_review_status')
        batch_op.drop_column('review_status')
        batch_op.drop_column('policy_version')
        batch_op.drop_column('findings')
        batch_op.drop_column('sent_at')

    with op.batch_alter_table('cards') as batch_op:
        batch_op.add_column(sa.Column('adopted_draft_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('release_id', sa.String(length=32), nullable=True))
    bind.execute(sa.text("UPDATE cards SET adopted_draft_id = draft_id WHERE status IN ('adopted', 'executed')"))
    bind.execute(sa.text("UPDATE cards SET release_id = (SELECT r.id FROM releases r WHERE r.lineage_id = cards.draft_id) "
                         "WHERE status = 'executed'"))
    with op.batch_alter_table('cards') as batch_op:
        batch_op.drop_column('adopted_text')
    with op.batch_alter_table('card_actions') as batch_op:
        batch_op.alter_column('kind', existing_type=sa.String(length=16), type_=sa.String(length=24))

    with op.batch_alter_table('users') as batch_op:
        batch_op.add_column(sa.Column('token_expires_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('revoked_at', UTC, nullable=True))

    with op.batch_alter_table('feedback') as batch_op:
        batch_op.add_column(sa.Column('card_id', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('value', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('arm', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('model_version', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_feedback_card_id', ['card_id'], unique=False)
    # Outcomes recorded on cards before this migration become outcome labels.
    bind.execute(sa.text(
        "INSERT INTO feedback (kind, customer_id, decision_id, draft_id, template_id, channel, card_id, outcome, value, "
        "arm, model_version, created_by, created_at) "
        "SELECT 'outcome', c.customer_id, c.decision_id, c.draft_id, c.template_id, c.executed_channel, c.id, c.outcome, "
        "c.outcome_value, d.arm, d.model_version, COALESCE(c.rep_id, 'migrated'), c.updated_at "
        "FROM cards c LEFT JOIN decisions d ON d.id = c.decision_id WHERE c.outcome IS NOT NULL"))

    with op.batch_alter_table('score_runs') as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=8), nullable=False, server_default='batch'))
    bind.execute(sa.text("UPDATE score_runs SET kind = 'live' WHERE id LIKE 'live-%'"))


def downgrade() -> None:
    raise NotImplementedError("0007 moves reviews into their own table; restore a backup to go back")
