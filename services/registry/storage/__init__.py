"""Registry storage: models (one Base for the process), repository functions, alembic migrations."""
