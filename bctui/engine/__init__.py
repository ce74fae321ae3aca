"""The engine: config, secrets, runs, scheduling. Never imports Textual."""
