"""Runs a mongoeco wire server (a pure-Python server of the MongoDB wire protocol, in
memory) on 127.0.0.1 until it is terminated. It runs under the Python 3.13 environment
that tests/support/mongo_wire.py makes, not under the project's own: it imports nothing of
sessionhub.

    python mongoeco_server.py PORT [LOAD_DIR]

With LOAD_DIR (what bench/scale_mongo.py writes: manifest.json and one <collection>.bson
per collection), it first loads those documents and builds the manifest's indexes in
process. Over the wire mongoeco inserts one document at a time and checks each against
every document of its collection, so a large data set would take hours to arrive.

Prints `ready PORT` once it accepts connections."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import bson
from mongoeco import AsyncMongoClient
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

BATCH = 1000
# The manifest's index options as pymongo spells them, to mongoeco's in-process names.
OPTION_NAMES = {
    "unique": "unique",
    "sparse": "sparse",
    "partialFilterExpression": "partial_filter_expression",
    "expireAfterSeconds": "expire_after_seconds",
}


async def load(client: AsyncMongoClient, folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    db = client[manifest["database"]]
    for collection in manifest["collections"]:
        started = time.perf_counter()
        documents = bson.decode_all((folder / f"{collection}.bson").read_bytes())
        await db.create_collection(collection)
        for i in range(0, len(documents), BATCH):
            await db[collection].insert_many(documents[i : i + BATCH])
        took = time.perf_counter() - started
        print(f"loaded {collection}: {len(documents)} documents in {took:.1f} s", flush=True)
    for collection, name, keys, options in manifest["indexes"]:
        started = time.perf_counter()
        await db[collection].create_index(
            [tuple(key) for key in keys],
            name=name,
            **{OPTION_NAMES[option]: value for option, value in options.items()},
        )
        took = time.perf_counter() - started
        print(f"indexed {collection}.{name} in {took:.1f} s", flush=True)


async def serve(port: int, load_dir: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    client = AsyncMongoClient()
    if load_dir is not None:
        await load(client, load_dir)
    async with AsyncMongoEcoProxyServer(client=client, host="127.0.0.1", port=port) as server:
        print(f"ready {server.address.port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None))
