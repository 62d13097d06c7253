"""change requests: knowledge questions, cooling-off, confirmations

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 15:00:00
"""
import sqlalchemy as sa
from alembic import op

import app.store.base

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

UTC = app.store.base.UTCDateTime(timezone=True)
JSON = app.store.base.JSONType


def upgrade() -> None:
    with op.batch_alter_table('change_requests') as batch:
        batch.add_column(sa.Column('challenge', JSON, nullable=True))
        batch.add_column(sa.Column('verified_by', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('effective_at', UTC, nullable=True))
        batch.add_column(sa.Column('confirmed_at', UTC, nullable=True))
        batch.create_index('ix_change_requests_effective_at', ['effective_at'])
    op.create_table(
        'change_confirmations',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('request_id', sa.String(length=96), nullable=False),
        sa.Column('draft_id', sa.String(length=32), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('contact', sa.String(length=16), nullable=False),
        sa.Column('to_address', sa.String(length=254), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['change_requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_change_confirmations_request_id', 'change_confirmations', ['request_id'])


def downgrade() -> None:
    op.drop_index('ix_change_confirmations_request_id', table_name='change_confirmations')
    op.drop_table('change_confirmations')
    with op.batch_alter_table('change_requests') as batch:
        batch.drop_index('ix_change_requests_effective_at')
        batch.drop_column('confirmed_at')
        batch.drop_column('effective_at')
        batch.drop_column('verified_by')
        batch.drop_column('challenge')
