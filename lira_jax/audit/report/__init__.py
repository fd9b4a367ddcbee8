"""What an audit writes and prints: table (the printed table, metrics.csv), per_example (examples.csv),
result (`Audit`, the API's result), html_report (report.html), plots (figures), progress (stderr)."""
