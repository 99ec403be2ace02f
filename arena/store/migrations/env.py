"""Alembic environment: runs on the connection arena passes in (``config.attributes["connection"]``)."""

from alembic import context

from arena.store.models import VERSION_TABLE, Base


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # offline / CLI use: build an engine from the URL
        from sqlalchemy import create_engine

        engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
        with engine.connect() as connection:
            _configure_and_run(connection)
        return
    _configure_and_run(connection)


def _configure_and_run(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


run()
