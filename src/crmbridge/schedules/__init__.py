"""Schedules: cron times, the scheduler service and its command."""
