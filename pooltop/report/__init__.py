"""The leak report: analysis (pure), rendering as text, JSON or HTML, and its command.

- analysis: trends and a verdict per counter
- render: Report, the renderers, build_report (a recording read into a report)
- series: the report on snapshot files (one point in time, or a series of them)
- command: `pooltop report`
"""
