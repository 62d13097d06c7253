"""decisions.slot_local: room for the longest IANA zone names ("Wed 25 Nov 10:00 America/Argentina/Buenos_Aires")

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-24 05:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('decisions') as batch:
        batch.alter_column('slot_local', type_=sa.String(length=96), existing_type=sa.String(length=32),
                           existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table('decisions') as batch:
        batch.alter_column('slot_local', type_=sa.String(length=32), existing_type=sa.String(length=96),
                           existing_nullable=True)
