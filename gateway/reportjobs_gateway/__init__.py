"""HTTP gateway: turns requests into ReportJobs and ReportJobs into answers."""
