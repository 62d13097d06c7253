"""decisions: the objective chosen, its predicted impact per KPI, and the objectives' version

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 20:40:00
"""
import sqlalchemy as sa
from alembic import op

import app.store.base

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

JSON = app.store.base.JSONType


def upgrade() -> None:
    with op.batch_alter_table('decisions') as batch:
        batch.add_column(sa.Column('objective', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('objectives_version', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('impact', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('decisions') as batch:
        batch.drop_column('impact')
        batch.drop_column('objectives_version')
        batch.drop_column('objective')
