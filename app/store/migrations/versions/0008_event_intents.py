"""event intents: what the classifier made of a posted event's text, with the taxonomy and model versions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:00:00
"""
import sqlalchemy as sa
from alembic import op

import app.store.base

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

UTC = app.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'event_intents',
        sa.Column('event_id', sa.String(length=96), nullable=False),
        sa.Column('intent', sa.String(length=64), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=False),
        sa.Column('runner_up', sa.String(length=64), nullable=True),
        sa.Column('taxonomy_version', sa.String(length=64), nullable=False),
        sa.Column('model', sa.String(length=128), nullable=False),
        sa.Column('classified_at', UTC, nullable=False),
        sa.PrimaryKeyConstraint('event_id'),
    )
    op.create_index('ix_event_intents_intent', 'event_intents', ['intent'])


def downgrade() -> None:
    op.drop_index('ix_event_intents_intent', table_name='event_intents')
    op.drop_table('event_intents')
