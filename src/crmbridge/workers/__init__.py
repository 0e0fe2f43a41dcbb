"""Scale-out on Celery: runs, and partitions of big ones, as tasks on workers (docs/workers.md)."""
