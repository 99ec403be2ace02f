"""derived runs: a run made from another run's model (head pruning), not trained from scratch

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_run_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('derived_method', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('heads_kept', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('finetune_steps', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_parent_run_id'), ['parent_run_id'], unique=False)
        batch_op.create_foreign_key('fk_runs_parent_run_id', 'runs', ['parent_run_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_runs_parent_run_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_runs_parent_run_id'))
        batch_op.drop_column('finetune_steps')
        batch_op.drop_column('heads_kept')
        batch_op.drop_column('derived_method')
        batch_op.drop_column('parent_run_id')
