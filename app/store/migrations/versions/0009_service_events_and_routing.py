"""service events with hashed identity keys and quarantine; people's intent labels; routing lineage on the event queue; routed cards'
SLA; a classification's secondary intent, severity and stage

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 12:00:00
"""
import sqlalchemy as sa
from alembic import op

import app.store.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

UTC = app.store.base.UTCDateTime(timezone=True)
LINEAGE = (
    ('customer_id', sa.String(length=64)), ('route', sa.String(length=48)), ('card_id', sa.String(length=16)),
    ('decision_id', sa.Integer()), ('score_before', sa.Float()), ('score_after', sa.Float()),
    ('feature_set_version', sa.String(length=64)), ('model_version', sa.String(length=64)),
    ('taxonomy_version', sa.String(length=64)), ('routing_policy_version', sa.String(length=64)),
)


def upgrade() -> None:
    op.create_table(
        'service_events',
        sa.Column('event_id', sa.String(length=96), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('event_type', sa.String(length=32), nullable=False),
        sa.Column('occurred_at', UTC, nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('session_key', sa.String(length=32), nullable=True),
        sa.Column('user_key', sa.String(length=32), nullable=True),
        sa.Column('email_key', sa.String(length=32), nullable=True),
        sa.Column('email_domain', sa.String(length=254), nullable=True),
        sa.Column('account_key', sa.String(length=32), nullable=True),
        sa.Column('agent_id', sa.String(length=64), nullable=True),
        sa.Column('outcome', sa.String(length=64), nullable=True),
        sa.Column('satisfaction', sa.Float(), nullable=True),
        sa.Column('resolution_flag', sa.Boolean(), nullable=True),
        sa.Column('product', sa.String(length=64), nullable=True),
        sa.Column('identity_status', sa.String(length=16), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=True),
        sa.Column('match_method', sa.String(length=16), nullable=False),
        sa.Column('match_confidence', sa.Float(), nullable=False),
        sa.Column('match_reason', sa.Text(), nullable=False),
        sa.Column('candidates', app.store.base.JSONType, nullable=False),
        sa.Column('received_at', UTC, nullable=False),
        sa.Column('reviewed_by', sa.String(length=64), nullable=True),
        sa.Column('reviewed_at', UTC, nullable=True),
        sa.PrimaryKeyConstraint('event_id'),
    )
    op.create_index('ix_service_events_session_key', 'service_events', ['session_key'])
    op.create_index('ix_service_events_identity_status', 'service_events', ['identity_status', 'received_at'])
    op.create_table(
        'intent_labels',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('event_id', sa.String(length=96), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=False),
        sa.Column('read_as', sa.String(length=64), nullable=True),
        sa.Column('labelled_by', sa.String(length=64), nullable=False),
        sa.Column('labelled_at', UTC, nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_intent_labels_event_id', 'intent_labels', ['event_id'])
    with op.batch_alter_table('event_jobs') as batch:
        for name, kind in LINEAGE:
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.create_index('ix_event_jobs_customer_id', ['customer_id'])
    with op.batch_alter_table('cards') as batch:
        batch.add_column(sa.Column('route', sa.String(length=48), nullable=True))
        batch.add_column(sa.Column('sla_minutes', sa.Integer(), nullable=True))
        batch.alter_column('trigger', type_=sa.String(length=200), existing_type=sa.String(length=96))
    with op.batch_alter_table('event_intents') as batch:
        batch.add_column(sa.Column('secondary', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('secondary_confidence', sa.Float(), nullable=True))
        batch.add_column(sa.Column('severity', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('stage_candidate', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('event_intents') as batch:
        for name in ('stage_candidate', 'severity', 'secondary_confidence', 'secondary'):
            batch.drop_column(name)
    with op.batch_alter_table('cards') as batch:
        batch.alter_column('trigger', type_=sa.String(length=96), existing_type=sa.String(length=200))
        batch.drop_column('sla_minutes')
        batch.drop_column('route')
    with op.batch_alter_table('event_jobs') as batch:
        batch.drop_index('ix_event_jobs_customer_id')
        for name, _ in reversed(LINEAGE):
            batch.drop_column(name)
    op.drop_index('ix_intent_labels_event_id', table_name='intent_labels')
    op.drop_table('intent_labels')
    op.drop_index('ix_service_events_identity_status', table_name='service_events')
    op.drop_index('ix_service_events_session_key', table_name='service_events')
    op.drop_table('service_events')
