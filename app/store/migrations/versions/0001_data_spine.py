"""data spine: customers, consents, events, outreach attempts

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 19:12:46.755724
"""
from alembic import op
import sqlalchemy as sa
import app.store.base
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customers',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=True),
    sa.Column('last_name', sa.String(length=100), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('segment', sa.String(length=64), nullable=True),
    sa.Column('industry', sa.String(length=64), nullable=True),
    sa.Column('lifecycle_stage', sa.String(length=16), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('age', sa.Integer(), nullable=True),
    sa.Column('sensitive', sa.Boolean(), nullable=False),
    sa.Column('do_not_contact', sa.Boolean(), nullable=False),
    sa.Column('owner_rep', sa.String(length=64), nullable=True),
    sa.Column('team', sa.String(length=64), nullable=True),
    sa.Column('created_at', app.store.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customers_owner_rep'), ['owner_rep'], unique=False)
        batch_op.create_index(batch_op.f('ix_customers_segment'), ['segment'], unique=False)

    op.create_table('consents',
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('granted', sa.Boolean(), nullable=False),
    sa.Column('updated_at', app.store.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('customer_id', 'channel')
    )
    op.create_table('events',
    sa.Column('id', sa.String(length=96), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('occurred_at', app.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('type', sa.String(length=32), nullable=False),
    sa.Column('product', sa.String(length=64), nullable=True),
    sa.Column('intent', sa.String(length=32), nullable=True),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('text', sa.Text(), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_customer_time', ['customer_id', 'occurred_at'], unique=False)

    op.create_table('outreach_attempts',
    sa.Column('id', sa.String(length=96), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=False),
    sa.Column('attempted_at', app.store.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('template_id', sa.String(length=96), nullable=True),
    sa.Column('campaign', sa.String(length=64), nullable=True),
    sa.Column('product', sa.String(length=64), nullable=True),
    sa.Column('rep_id', sa.String(length=64), nullable=True),
    sa.Column('value', sa.Float(), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('outreach_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_outreach_customer_time', ['customer_id', 'attempted_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outreach_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_outreach_customer_time')

    op.drop_table('outreach_attempts')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_customer_time')

    op.drop_table('events')
    op.drop_table('consents')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customers_segment'))
        batch_op.drop_index(batch_op.f('ix_customers_owner_rep'))

    op.drop_table('customers')
