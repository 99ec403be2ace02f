"""submission verification: how a plugin run's FLOPs were established and how its worker was isolated

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('flops_status', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('isolation', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('isolation')
        batch.drop_column('flops_status')
