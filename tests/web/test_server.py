"""How uvicorn serves the app: every connection has Nagle's algorithm off, also on a listening
socket bound the way uvicorn binds it for several server processes (protocol number 0, on which
asyncio leaves Nagle on), so an answer's body never waits for the client's delayed ACK."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

from uvicorn import Config, Server

from tradewindow.web.server import EVENT_LOOP, HTTP_PROTOCOL, NoDelayHttpToolsProtocol


async def _hello(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"hi"})


async def _nagle_off_on_served_connections(http: str) -> list[int]:
    listening = socket.socket(socket.AF_INET)          # as uvicorn's Config.bind_socket does
    listening.bind(("127.0.0.1", 0))
    assert listening.proto == 0
    server = Server(Config(app=_hello, http=http, loop=EVENT_LOOP, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        await asyncio.sleep(0.01)
    reader, writer = await asyncio.open_connection(*listening.getsockname())
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        return [protocol.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                for protocol in server.server_state.connections]
    finally:
        writer.close()
        server.should_exit = True
        await serving


def _nagle_flags(http: str) -> list[int]:
    """In a thread of its own: the browser tests leave an event loop running in this one."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(_nagle_off_on_served_connections(http))).result()


def test_uvicorn_is_told_to_use_the_protocol():
    config = Config(app=_hello, http=HTTP_PROTOCOL, loop=EVENT_LOOP)
    config.load()
    assert config.http_protocol_class is NoDelayHttpToolsProtocol


def test_connections_have_nagle_off():
    assert _nagle_flags(HTTP_PROTOCOL) == [1]


def test_plain_httptools_leaves_nagle_on_such_a_socket():
    """Why the protocol exists (if uvicorn or the event loop change this, it can go)."""
    assert _nagle_flags("httptools") == [0]
