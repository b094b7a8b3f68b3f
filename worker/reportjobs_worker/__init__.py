"""The container a Job runs: sleep N seconds, report what happened."""
