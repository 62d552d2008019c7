"""MongoDB beside SQLite: the scenarios of bench/scale.py on both backends, in one run.

    .venv/bin/python bench/scale_mongo.py [--turns 100k] [--mongodb-url URL]
                                          [--requests R] [--concurrency C [C ...]]
                                          [--scenarios S [S ...]]

1. The corpus of bench/scale.py at --turns, prepared the same way (its chat apps, its
   retention, its titles).
2. The same sessions, turns and shares as the MongoDB backend stores them (the codec of
   storage/mongo, with the search terms its writes add), kept as BSON beside the corpus.
3. MongoDB: with --mongodb-url, a new database on that server, filled over the wire; the
   server builds all of its indexes at start. Without, a mongoeco server started here (a
   pure-Python server of the MongoDB wire protocol, tests/support/mongo_wire.py), which
   loads the documents in process and builds every index but one before it listens:
   mongoeco checks a compound unique index by comparing each document with every other
   of its collection, which at 100k turns is 5·10⁹ comparisons (see MONGOECO_OMITS).
   The server then starts with SESSIONHUB_MONGO_CREATE_INDEXES=false.
4. A real `sessionhub serve` on SQLite, then on MongoDB, with the same workload
   (scale.pick_workload) and requests (scale.factories), measured as scale.py measures.
5. One table: per scenario and concurrency, p50 / p99 on each backend, the ratio of the
   medians, and the CPU per request of each process (the MongoDB server's too). The JSON
   goes to bench/results/scale-mongo-<size>.json.

mongoeco is a Python server, not a performance stand-in for mongod: its figures say what
the backend costs through the real driver and a socket on this machine, not what a
MongoDB deployment would answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import _paths  # noqa: F401  (tests.support importable)
import bson
import machine
import pymongo
import scale
import search
from measured_server import running_server
from report import report_header, write_report
from scale import DESCRIPTIONS, ScaleResult
from search import human_bytes, size_label

from sessionhub.storage.mongo import codec as mongo_codec
from sessionhub.storage.mongo import driver, indexes
from sessionhub.storage.mongo import search as mongo_search
from sessionhub.storage.sqlite import codec as sqlite_codec
from sessionhub.storage.sqlite.driver import sqlite as sqlite3
from sessionhub.storage.sqlite.shares import SHARE_COLUMNS, share_from_row
from tests.support import mongo_wire, servers

DUMP_VERSION = 1  # bump when the documents written for MongoDB change
DATABASE = "sessionhub_bench"
# Left out on mongoeco only (see the module docstring). It arbitrates concurrent appends
# to one session; the scenarios never append to one session from two requests at once.
MONGOECO_OMITS = ("turns_unique_seq_by_entity_session",)
INSERT_BATCH = 500
LOAD_TIMEOUT_S = 1800.0


# The corpus as MongoDB documents


def dump_corpus(db: Path, folder: Path) -> dict[str, Any]:
    """Writes the corpus's sessions, turns and shares as the MongoDB store writes them,
    one BSON file per collection, and a manifest; reuses them when complete."""
    manifest_file = folder / "manifest.json"
    if manifest_file.exists():
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("version") == DUMP_VERSION:
            return manifest
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sessions: dict[str, dict[str, Any]] = {}
        for row in conn.execute(f"SELECT {sqlite_codec.SESSION_COLUMNS} FROM sessions"):
            session = sqlite_codec.session_from_row(row)
            doc = mongo_codec.session_doc(session)
            doc["title_terms"] = mongo_search.term_set(session.title)
            sessions[session.id] = doc
        counts = {indexes.SESSIONS: _write(folder, indexes.SESSIONS, sessions.values())}
        turn_columns = sqlite_codec.qualified(sqlite_codec.TURN_COLUMNS, "t")
        rows = conn.execute(
            f"SELECT {turn_columns}, s.entity_id FROM turns t"
            " JOIN sessions s ON s.id = t.session_id"
        )
        counts[indexes.TURNS] = _write(folder, indexes.TURNS, _turn_docs(rows, sessions))
        shares = (
            mongo_codec.share_doc(share, sessions[share.session_id])
            for share in map(share_from_row, conn.execute(f"SELECT {SHARE_COLUMNS} FROM shares"))
        )
        counts[indexes.SHARES] = _write(folder, indexes.SHARES, shares)
    finally:
        conn.close()
    manifest = {
        "version": DUMP_VERSION,
        "database": DATABASE,
        "collections": list(counts),
        "documents": counts,
        "indexes": [
            [collection, name, keys, index_options]
            for collection, name, keys, index_options in indexes.INDEXES
            if name not in MONGOECO_OMITS
        ],
        "omitted_on_mongoeco": list(MONGOECO_OMITS),
        "seconds": round(time.perf_counter() - started, 1),
    }
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _turn_docs(rows: Any, sessions: dict[str, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for row in rows:
        turn = sqlite_codec.turn_from_row(row[:-1], row[-1])
        doc = mongo_codec.turn_doc(turn, sessions[turn.session_id])
        doc["terms"] = mongo_search.turn_terms(turn)
        yield doc


def _write(folder: Path, collection: str, docs: Any) -> int:
    count = 0
    with open(folder / f"{collection}.bson", "wb") as out:
        for doc in docs:
            out.write(bson.encode(doc))
            count += 1
    return count


def load_over_the_wire(url: str, folder: Path, manifest: dict[str, Any]) -> float:
    """Fills the database `url` names with the dumped documents, through PyMongo."""
    started = time.perf_counter()
    with pymongo.MongoClient(url) as client:
        db = client.get_default_database()
        for collection in manifest["collections"]:
            docs = bson.decode_all((folder / f"{collection}.bson").read_bytes())
            for i in range(0, len(docs), INSERT_BATCH):
                db[collection].insert_many(docs[i : i + INSERT_BATCH], ordered=False)
    return time.perf_counter() - started


def build_indexes(url: str) -> float:
    """The store's collections and indexes (`indexes.ensure`, what the server runs at
    start), built before sessionhub starts, as an operator would on a large data set."""
    started = time.perf_counter()

    async def build() -> None:
        client = driver.connect(url)
        try:
            await indexes.ensure(client.get_default_database())
        finally:
            client.close()

    asyncio.run(build())
    return time.perf_counter() - started


# The MongoDB server and the measured sessionhub servers


@contextmanager
def mongodb(args: argparse.Namespace, folder: Path, manifest: dict[str, Any]) -> Iterator[dict]:
    """The MongoDB to measure on, holding the corpus: what it is, its URL, the settings
    the server needs for it, and the pid of its process when it runs here."""
    if args.mongodb_url:
        url = urlunsplit(urlsplit(args.mongodb_url)._replace(path=f"/{DATABASE}"))
        with pymongo.MongoClient(url) as client:
            client.drop_database(DATABASE)
            version = _server_version(client)
        print(f"Loading the corpus into {DATABASE} over the wire ...", flush=True)
        seconds = load_over_the_wire(url, folder, manifest)
        print(f"  {seconds:.1f} s; building the store's indexes ...", flush=True)
        index_seconds = build_indexes(url)
        print(f"  {index_seconds:.1f} s", flush=True)
        try:
            yield {
                "server": f"{version} at --mongodb-url",
                "url": url,
                "env": {"SESSIONHUB_MONGO_CREATE_INDEXES": "false"},
                "pid": None,
                "load_seconds": round(seconds, 1),
                "index_seconds": round(index_seconds, 1),
                "omitted_indexes": [],
            }
        finally:
            with pymongo.MongoClient(url) as client:
                client.drop_database(DATABASE)
        return
    python = mongo_wire.prepare()
    log = folder / "mongoeco.log"
    print("Starting mongoeco, loading the corpus in process ...", flush=True)
    started = time.perf_counter()
    server = mongo_wire.start(python, log, load_dir=folder, timeout_s=LOAD_TIMEOUT_S)
    seconds = time.perf_counter() - started
    for line in log.read_text().splitlines():
        print(f"  {line}", flush=True)
    try:
        yield {
            "server": f"mongoeco {mongo_wire.version(python)} (Python, in memory), started here",
            "url": server.url(DATABASE),
            "env": {"SESSIONHUB_MONGO_CREATE_INDEXES": "false"},
            "pid": server.process.pid,
            "load_seconds": round(seconds, 1),
            "omitted_indexes": list(MONGOECO_OMITS),
        }
    finally:
        server.stop()


@contextmanager
def sessionhub_on(database_url: str, env: dict[str, str]) -> Iterator[servers.Server]:
    with (
        tempfile.TemporaryDirectory(prefix="sessionhub-bench-scale-mongo-") as folder,
        running_server(
            Path(folder), extra_env={"SESSIONHUB_DATABASE_URL": database_url, **env}
        ) as server,
    ):
        yield server


def measure_backend(
    server: servers.Server,
    store_pid: int | None,
    work: scale.Workload,
    args: argparse.Namespace,
) -> list[dict[str, Any]]:
    """Every scenario at every concurrency level on one running server."""
    pid = server.process.pid
    scale.settle(pid)
    tokens = scale.Tokens(server)
    deep: list[tuple[str, str, str]] = []
    if "deep" in args.scenarios:
        deep, _ = asyncio.run(scale.deep_cursors(server.base_url, work, tokens, args.deep_pages))
    make = scale.factories(work, tokens, deep, args.seed)
    measured = []
    for scenario in args.scenarios:
        for level in args.concurrency:
            scale.settle(pid)
            store_cpu = scale.cpu_seconds(store_pid) if store_pid else 0.0
            result: ScaleResult = asyncio.run(
                scale.measure_scenario(server.base_url, pid, scenario, make[scenario], args, level)
            )
            store_cpu = scale.cpu_seconds(store_pid) - store_cpu if store_pid else None
            row = asdict(result)
            row["store_cpu_ms_per_request"] = (
                None if store_cpu is None else round(store_cpu * 1000 / max(1, result.requests), 3)
            )
            print(
                f"  {DESCRIPTIONS[scenario]} c={level}: p50 {result.p50_ms:.2f} ms,"
                f" p99 {result.p99_ms:.2f} ms, {result.errors} errors",
                flush=True,
            )
            for sample in result.error_samples:
                print(f"    {sample}", flush=True)
            measured.append(row)
    return measured


# The report


def print_side_by_side(sqlite_rows: list[dict], mongo_rows: list[dict], mongo_label: str) -> None:
    print(f"\nSQLite (embedded) beside MongoDB: {mongo_label}")
    header = (
        f"{'scenario':<36} {'c':>2}  {'SQLite p50':>10} {'p99':>8}  {'MongoDB p50':>11}"
        f" {'p99':>8}  {'p50 ratio':>9}  {'CPU ms/req: server':>18} {'mongo':>6}"
    )
    print(header)
    print("-" * len(header))
    for lite, mongo in zip(sqlite_rows, mongo_rows, strict=True):
        ratio = mongo["p50_ms"] / lite["p50_ms"] if lite["p50_ms"] else float("nan")
        store_cpu = mongo["store_cpu_ms_per_request"]
        print(
            f"{lite['scenario'] + ': ' + lite['description']:<36} {lite['concurrency']:>2}"
            f"  {lite['p50_ms']:>10.2f} {lite['p99_ms']:>8.2f}"
            f"  {mongo['p50_ms']:>11.2f} {mongo['p99_ms']:>8.2f}  {ratio:>8.1f}x"
            f"  {lite['server_cpu_ms_per_request']:>8.2f} / {mongo['server_cpu_ms_per_request']:<7.2f}"
            f" {'-' if store_cpu is None else f'{store_cpu:.2f}':>6}"
        )
    print("(CPU: SQLite's sessionhub / MongoDB's sessionhub; mongo: the MongoDB server's process)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    search.add_corpus_options(parser, "100k")
    parser.add_argument(
        "--mongodb-url",
        default=os.environ.get("MONGODB_URL"),
        help="a MongoDB to measure on ($MONGODB_URL); its database "
        f"{DATABASE} is replaced [a mongoeco server started here]",
    )
    scale.add_scenario_options(parser, requests=300, warmup=30, deep_pages=20)
    parser.add_argument(
        "--output", type=Path, default=None, help="[bench/results/scale-mongo-<size>.json]"
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.warmup < 0 or any(c < 1 for c in args.concurrency):
        parser.error("--requests >= 1, --warmup >= 0 and every --concurrency >= 1")
    args.reuse = True
    args.sessions = None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine.machine_facts()
    facts["loadavg_at_start"] = os.getloadavg()
    machine.print_machine(facts)

    db, corpus = search.ensure_corpus(args)
    chat_apps = scale.bench_chat_apps(args.data_dir)
    prepared = scale.prepare(db, db.with_suffix(".json"), chat_apps)
    dump_dir = db.with_suffix(".mongo")
    print(f"MongoDB documents of {db.name} ...", flush=True)
    manifest = dump_corpus(db, dump_dir)
    print(f"  {manifest['documents']} ({human_bytes(_size(dump_dir))})", flush=True)

    levels = len(args.concurrency)
    work = scale.pick_workload(db, args.seed, (args.requests + args.warmup) * levels + 10)
    print(f"Workload: {work.facts}", flush=True)
    chat_apps_env = {"SESSIONHUB_CHAT_APPS_FILE": str(chat_apps)}

    print(f"\nSQLite: sessionhub serve on {db.name}", flush=True)
    with sessionhub_on(f"sqlite:///{db}", chat_apps_env) as server:
        sqlite_rows = measure_backend(server, None, work, args)
    with mongodb(args, dump_dir, manifest) as mongo:
        print(f"\nMongoDB: sessionhub serve on {mongo['server']}", flush=True)
        with sessionhub_on(mongo["url"], {**chat_apps_env, **mongo["env"]}) as server:
            mongo_rows = measure_backend(server, mongo["pid"], work, args)
        mongo_info = {k: v for k, v in mongo.items() if k != "env"}
    print_side_by_side(sqlite_rows, mongo_rows, mongo_info["server"])

    facts["loadavg_at_end"] = os.getloadavg()
    report = {
        **report_header("scale-mongo", facts),
        "command": " ".join([".venv/bin/python", "bench/scale_mongo.py", *(argv or sys.argv[1:])]),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "dataset": {
            **{k: v for k, v in corpus.items() if k != "bytes_by_table"},
            "label": f"{size_label(args.turns)} turns",
            "prepared": prepared,
            "mongo_documents": manifest["documents"],
        },
        "mongodb": mongo_info,
        "workload": work.facts,
        "sqlite": sqlite_rows,
        "mongo": mongo_rows,
    }
    output = args.output or scale.RESULTS_DIR / f"scale-mongo-{size_label(args.turns)}.json"
    write_report(output, report)
    failed = any(r["errors"] for r in sqlite_rows + mongo_rows)
    return 1 if failed else 0


def _server_version(client: pymongo.MongoClient) -> str:
    """What the server says it is: its version, or its wire version where it has no
    buildInfo (mongoeco)."""
    try:
        return f"MongoDB {client.server_info()['version']}"
    except pymongo.errors.OperationFailure:
        wire = client.admin.command("hello").get("maxWireVersion")
        return f"a MongoDB-protocol server (maxWireVersion {wire}, no buildInfo)"


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


if __name__ == "__main__":
    sys.exit(main())
