"""How uvicorn serves the app: httptools' C parser on uvloop, with Nagle's algorithm off on every
connection.

uvicorn's default, the pure-Python h11 parser on asyncio's loop, cost about 0.4 ms more server CPU
per lodged declaration than httptools on uvloop, which do the same HTTP/1.1.

uvicorn writes an answer's head and body as two writes. The event loop turns Nagle's algorithm off
(TCP_NODELAY) only on sockets whose protocol number says TCP, which the sockets it creates itself
have; with several server processes uvicorn binds the listening socket itself (protocol number 0),
so its connections kept Nagle on: the body then waited for the client to acknowledge the head,
which a client delays by up to 40 ms. Every request took at least 44 ms, a 404 included."""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# For uvicorn's `http` and `loop` settings.
HTTP_PROTOCOL = "tradewindow.web.server:NoDelayHttpToolsProtocol"
EVENT_LOOP = "uvloop"


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with TCP_NODELAY set on each TCP connection it serves."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
