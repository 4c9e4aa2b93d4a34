"""The admin web UI at /admin: server-rendered Jinja2 pages with htmx, vendored (docs/admin-ui.md).

`routes.install(app)` adds the pages, the static files and the UI's error pages; `sign_in.py`
checks passwords (used by api/deps.py, so this package's __init__ imports nothing).
"""
