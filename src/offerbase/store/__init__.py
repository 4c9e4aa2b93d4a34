"""Persistence: tables, repositories (all SQL lives here), migrations, capping counters."""
