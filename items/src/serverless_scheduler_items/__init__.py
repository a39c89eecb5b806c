"""Items service: CRUD over scheduled jobs (REST API + web UI)."""
