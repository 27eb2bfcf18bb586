"""What operators run Reclaim with: health checks, metrics, logs and backups."""
