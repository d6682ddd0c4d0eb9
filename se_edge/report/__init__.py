"""How results are shown: one Markdown table helper (table.py), one figure helper (figures.py), the run's
report.json / report.md / plots (run_report.py) and debug.md / debug.png (debug_report.py)."""
