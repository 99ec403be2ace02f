"""prior_gzip_bytes, prior_lines, prior_learned_bits: a task-specific model's hand-written prior as a cost

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prior_gzip_bytes', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prior_lines', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('prior_learned_bits', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('prior_learned_bits')
        batch_op.drop_column('prior_lines')
        batch_op.drop_column('prior_gzip_bytes')
