"""Files sent to a client: a temporary export streamed as an attachment, then removed."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

CHUNK = 256 * 1024


async def send_file(
    request: web.Request, path: Path, filename: str, content_type: str
) -> web.StreamResponse:
    """Stream a temporary file to the client as an attachment, then remove it."""
    try:
        size = (await asyncio.to_thread(path.stat)).st_size
        resp = web.StreamResponse(
            headers={
                "Content-Type": content_type,
                "Content-Length": str(size),
                "Content-Disposition": f'attachment; filename="{filename}"; '
                f"filename*=UTF-8''{quote(filename)}",
                "Cache-Control": "no-store",
            }
        )
        await resp.prepare(request)
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(path.unlink)
