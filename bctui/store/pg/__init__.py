"""The profile store on PostgreSQL (psycopg 3): the same interface as the SQLite store."""
