"""Periodic jobs: a registry of named, idempotent jobs (`jobs.py`) and the runner that runs
each one at most once at a time across every controller sharing the database (`runner.py`)."""
