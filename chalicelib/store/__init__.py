"""Adapters to PostgreSQL and AWS; they translate infrastructure errors into platform errors."""
