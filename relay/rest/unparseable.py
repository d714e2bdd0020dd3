"""Requests aiohttp cannot parse (a request line or a header over 8,190 bytes, bad syntax) are
answered in Ably's error envelope and logged as one line, like every other refusal, instead of
aiohttp's plain-text 400 and a logged traceback. aiohttp answers these before any route or
middleware runs, from its connection handler: the runner installs one that overrides that
answer."""

from __future__ import annotations

import json
import logging

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from channel_relay.protocol.errors import AblyError, error_body

__all__ = ["EnvelopeRunner"]

log = logging.getLogger(__name__)


class _Handler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong):
            error = AblyError.bad_request("Request line or header too long (over 8190 bytes)")
        else:
            error = AblyError.bad_request("Malformed HTTP request")
        log.info(
            "refused a request from %s: %s", request.remote, error.message, extra={"code": 40000}
        )
        response = web.Response(
            status=error.status,
            body=json.dumps(error_body(error)).encode(),
            headers={
                "Content-Type": "application/json",
                "X-Ably-Errorcode": str(error.code),
                "X-Ably-Errormessage": error.message,
            },
        )
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class EnvelopeRunner(web.AppRunner):
    """web.AppRunner whose connections answer unparseable requests in Ably's envelope."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application builds a plain web.Server; only the connection handler it makes
        # differs, and _Server adds no state, so the built server takes the subclass as is.
        server.__class__ = _Server
        return server
