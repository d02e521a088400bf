"""Recorded Azure REST answers through the SDK's own transport (for services with no emulator).

A ``requests`` adapter mounted on the session of azure-core's ``RequestsTransport``
answers each request from a handler, so every SDK layer above the socket runs as
in production: policies (bearer token, Key Vault's challenge, retries), request
building, response parsing and error mapping.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import RequestsTransport
from requests.structures import CaseInsensitiveDict

Handler = Callable[[requests.PreparedRequest], tuple[int, Any, dict[str, str]]]


class CannedAdapter(requests.adapters.BaseAdapter):
    """Answers every request with ``handler(request) -> (status, json body, headers)``."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.seen.append(request)
        status, body, headers = self.handler(request)
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 401: "Unauthorized", 404: "Not Found", 503: "Service Unavailable"}.get(
            status, "Status")
        content = b"" if body is None else json.dumps(body).encode()
        all_headers = {"Content-Type": "application/json; charset=utf-8", "Content-Length": str(len(content)),
                       **headers}
        response.raw = urllib3.HTTPResponse(body=io.BytesIO(content), headers=all_headers, status=status,
                                            preload_content=False)
        response._content = content
        response._content_consumed = True
        response.headers = CaseInsensitiveDict(all_headers)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        return None


def canned_transport(handler: Handler) -> tuple[RequestsTransport, CannedAdapter]:
    """Return an azure-core transport whose session is served by ``handler``, and the adapter."""
    adapter = CannedAdapter(handler)
    session = requests.Session()
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False), adapter


class StaticCredential:
    """A token credential that hands out one fixed token (no identity platform involved)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("test-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo("test-token", int(time.time()) + 3600)
