"""change requests and the values each applied change wrote

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 13:00:00
"""
import sqlalchemy as sa
from alembic import op

import app.store.base

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

UTC = app.store.base.UTCDateTime(timezone=True)
JSON = app.store.base.JSONType


def upgrade() -> None:
    op.create_table(
        'change_requests',
        sa.Column('id', sa.String(length=96), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=False),
        sa.Column('content_hash', sa.String(length=64), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('triage', JSON, nullable=False),
        sa.Column('new_values', JSON, nullable=False),
        sa.Column('status', sa.String(length=24), nullable=False),
        sa.Column('taxonomy_version', sa.String(length=64), nullable=False),
        sa.Column('submitted_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('updated_at', UTC, nullable=False),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_change_requests_customer_id', 'change_requests', ['customer_id'])
    op.create_index('ix_change_requests_status', 'change_requests', ['status'])
    op.create_table(
        'applied_changes',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('request_id', sa.String(length=96), nullable=False),
        sa.Column('customer_id', sa.String(length=64), nullable=False),
        sa.Column('change_type', sa.String(length=32), nullable=False),
        sa.Column('field', sa.String(length=64), nullable=False),
        sa.Column('before', JSON, nullable=True),
        sa.Column('after', JSON, nullable=True),
        sa.Column('verified_by', sa.String(length=64), nullable=False),
        sa.Column('applied_by', sa.String(length=64), nullable=False),
        sa.Column('applied_at', UTC, nullable=False),
        sa.Column('reversed_by', sa.String(length=64), nullable=True),
        sa.Column('reversed_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['request_id'], ['change_requests.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_applied_changes_request_id', 'applied_changes', ['request_id'])
    op.create_index('ix_applied_changes_customer_id', 'applied_changes', ['customer_id'])


def downgrade() -> None:
    op.drop_index('ix_applied_changes_customer_id', table_name='applied_changes')
    op.drop_index('ix_applied_changes_request_id', table_name='applied_changes')
    op.drop_table('applied_changes')
    op.drop_index('ix_change_requests_status', table_name='change_requests')
    op.drop_index('ix_change_requests_customer_id', table_name='change_requests')
    op.drop_table('change_requests')
