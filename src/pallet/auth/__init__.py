"""Authentication (who is calling) and authorization (may they read / upload this project)."""
