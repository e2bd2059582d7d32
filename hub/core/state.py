"""The application-wide keys: the configuration and the start time."""

from __future__ import annotations

from aiohttp import web

from config.schema import HubConfig

CONFIG = web.AppKey("config", HubConfig)
STARTED = web.AppKey("started", float)
