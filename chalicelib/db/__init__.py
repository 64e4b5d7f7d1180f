"""Schema migrations and demo seed data."""
