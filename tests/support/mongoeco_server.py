"""Runs a mongoeco wire server (a pure-Python server of the MongoDB wire protocol, in
memory) on 127.0.0.1 until it is terminated. It runs under the Python 3.13 environment
that tests/support/mongo_wire.py makes, not under the project's own: it imports nothing of
sessionhub.

    python mongoeco_server.py PORT

Prints `ready PORT` once it accepts connections."""

from __future__ import annotations

import asyncio
import signal
import sys

from mongoeco.wire.proxy import AsyncMongoEcoProxyServer


async def serve(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with AsyncMongoEcoProxyServer(host="127.0.0.1", port=port) as server:
        print(f"ready {server.address.port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
