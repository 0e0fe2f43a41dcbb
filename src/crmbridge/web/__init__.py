"""The local web UI and its JSON API (``crmbridge serve``, docs/web.md).

FastAPI renders pages on the server (Jinja2 templates, htmx for the parts that change in
place); every page has a JSON twin under ``/api/...`` with the same data, described by the
OpenAPI document at ``/openapi.json``. The UI calls the same library functions as the command
line: connections, profiles, preview, runs, the run history, syncs, links and conflicts.
"""

from crmbridge.web.app import create_app
from crmbridge.web.config import WebConfig

__all__ = ["WebConfig", "create_app"]
