"""Reports people read: the JSON Schemas of ``report.json`` and the plan, validation, and
Markdown / HTML rendering and comparison of run reports.

Nothing here imports torch; matplotlib is imported only to draw plots (extra ``plots``).
"""
