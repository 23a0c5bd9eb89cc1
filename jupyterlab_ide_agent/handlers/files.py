"""The workspace's files for the prompt's ``@`` completion."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..workspace.files import MAX_LIMIT as FILES_MAX_LIMIT
from ..workspace.files import FileIndex
from .base import BaseHandler


class FilesHandler(BaseHandler):
    """``GET files?q=&limit=50``: the workspace's files and notebooks, ranked for the prompt's ``@`` completion."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.get_argument("q", "")
        if len(query) > 500:
            raise web.HTTPError(400, "q must be at most 500 characters")
        try:
            limit = int(self.get_argument("limit", "50"))
        except ValueError:
            raise web.HTTPError(400, "limit must be an integer") from None
        if not 1 <= limit <= FILES_MAX_LIMIT:
            raise web.HTTPError(400, f"limit must be between 1 and {FILES_MAX_LIMIT}")
        index = self.settings.get("ide_agent_file_index")
        if index is None:  # one cached listing per server, built on first use
            index = self.settings["ide_agent_file_index"] = FileIndex(self.sessions.workspace_dir)
        self.finish(await index.search(query, limit))
