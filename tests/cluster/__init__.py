"""A real cluster: replicas over PostgreSQL and S3 behind nginx, under load, kills and outages."""
