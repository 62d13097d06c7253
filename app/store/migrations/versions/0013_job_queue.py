"""jobs: the queue background workers claim from with FOR UPDATE SKIP LOCKED, with leases and retries

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-24 04:00:00
"""
import sqlalchemy as sa
from alembic import op

import app.store.base

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

UTC = app.store.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'jobs',
        sa.Column('id', sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=160), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('recurring', sa.Boolean(), nullable=False),
        sa.Column('run_after', UTC, nullable=False),
        sa.Column('lease_until', UTC, nullable=True),
        sa.Column('claimed_by', sa.String(length=96), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('started_at', UTC, nullable=True),
        sa.Column('finished_at', UTC, nullable=True),
        sa.Column('result', sa.Text(), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.UniqueConstraint('kind', 'key', name='uq_jobs_kind_key'),
    )
    op.create_index('ix_jobs_claimable', 'jobs', ['status', 'priority', 'run_after'])


def downgrade() -> None:
    op.drop_index('ix_jobs_claimable', table_name='jobs')
    op.drop_table('jobs')
