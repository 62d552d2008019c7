"""Search and titles in 13 languages, scored on conversations written for the project.

    .venv/bin/python bench/multilingual.py [--backend sqlite|mongo|both] [--output PATH]

1. Loads tests/data/multilingual.json (78 conversations in Chinese, Japanese, Korean,
   Hindi, Arabic, Russian, Turkish, German, French, Spanish, Portuguese, English and Thai,
   each a session of one entity) into a fresh store: a SQLite file, and/or a MongoDB
   database on mongoeco (started here, as the test run starts it).
2. Runs every query of the file (words inside sentences, other grammatical forms, folded
   spellings, typos, several words) by relevance, first: 20, as the entity's admin, and
   compares the sessions found with the ones the file expects: recall (expected sessions
   found) and precision (sessions found that were expected), per language and per kind;
   and each conversation's key words (distinctive words of its question), which must
   find it (recall only: another session may hold the word too).
3. Titles each conversation as the title service does (after the first exchange, again
   after each later one while nothing could be titled) with the offline generator, and
   counts the titles that hold one of the conversation's key words, the ones made before
   the user said anything of substance (greetings), and the malformed ones.
4. Prints the tables and writes them as JSON (bench/results/multilingual.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import _paths  # noqa: F401  (tests.support importable)
from machine import machine_facts, print_machine

from sessionhub.domain.models import TurnRole, TurnText
from sessionhub.domain.ports import Store
from sessionhub.domain.query import (
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    parse_query,
)
from sessionhub.domain.redaction import redact_details
from sessionhub.storage.sqlite.store import SqliteStore
from tests.support import multilingual
from tests.support.title_checks import title_problems
from tests.support.titles import keyphrase_titler

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "multilingual.json"
ADMIN = SearchScope("acme", None)
PAGE = 20
FIRST_TURNS = 6  # the title service's default window


@asynccontextmanager
async def sqlite_store() -> AsyncIterator[Store]:
    with tempfile.TemporaryDirectory(prefix="sessionhub-multilingual-") as tmp:
        store = SqliteStore(str(Path(tmp) / "store.db"))
        await store.open()
        try:
            yield store
        finally:
            await store.close()


@asynccontextmanager
async def mongo_store() -> AsyncIterator[Store]:
    from sessionhub.storage.mongo import MongoStore
    from sessionhub.storage.mongo.driver import connect
    from tests.support import mongo_wire

    python = mongo_wire.prepare()
    with tempfile.TemporaryDirectory(prefix="sessionhub-multilingual-") as tmp:
        server = mongo_wire.start(python, Path(tmp) / "mongoeco.log")
        try:
            with server.database() as url:
                store = MongoStore(
                    connect(url),
                    url.rsplit("/", 1)[1].split("?")[0],
                    redact=redact_details,
                    transactions=False,
                )
                await store.open()
                try:
                    yield store
                finally:
                    await store.close()
        finally:
            server.stop()


async def score_search(store: Store, data: dict) -> dict[str, Any]:
    ids = await multilingual.load(store)
    names = {session_id: cid for cid, session_id in ids.items()}
    by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    words_by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    misses = []
    # Beside the file's queries, each conversation's key words (distinctive words of its
    # user's question, as written): the conversation must be among what they find.
    key_words = [
        {"language": c["language"], "kind": "key word", "query": w, "expected": [c["id"]]}
        for c in data["conversations"]
        for w in c["title_words"]
    ]
    for q in data["queries"] + key_words:
        request = SearchRequest(
            parse_query(q["query"]), ADMIN, SearchFilter(), SearchOrder.RELEVANCE, None, PAGE
        )
        found = {names[h.session.id] for h in await store.search(request)}
        expected = set(q["expected"])
        hit = len(found & expected)
        if q["kind"] == "key word":
            found &= expected  # other sessions may hold the word too: recall only
        tallies = [by_language[q["language"]], by_kind[q["kind"]]]
        if q["kind"] in ("word", "key word"):
            tallies.append(words_by_language[q["language"]])
        for tally in tallies:
            tally[0] += hit
            tally[1] += len(expected)
            tally[2] += hit
            tally[3] += len(found)
        if found != expected:
            misses.append(
                {"query": q["query"], "expected": sorted(expected), "found": sorted(found)}
            )
    return {
        "by_language": {k: _ratios(v) for k, v in sorted(by_language.items())},
        "by_kind": {k: _ratios(v) for k, v in sorted(by_kind.items())},
        "distinctive_word_by_language": {
            k: _ratios(v) for k, v in sorted(words_by_language.items())
        },
        "misses": misses,
    }


def _ratios(tally: list[int]) -> dict[str, float]:
    hit, expected, found_right, found = tally
    return {
        "recall": round(hit / expected, 3) if expected else 1.0,
        "precision": round(found_right / found, 3) if found else 1.0,
        "queries_expected": expected,
    }


def score_titles(data: dict) -> dict[str, Any]:
    titler = keyphrase_titler()
    by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    titles = {}
    for c in data["conversations"]:
        turns = [TurnText(TurnRole(t["role"]), t["content"]) for t in c["turns"]]
        title, early = None, False
        for end, turn in enumerate(turns[:FIRST_TURNS]):
            if turn.role is TurnRole.ASSISTANT:
                title = titler.title(turns[: end + 1])
                if title:
                    # Titled after a greeting alone: the user had said nothing yet.
                    early = end == 1 and c.get("opens_with_greeting", False)
                    break
        user = [t.content for t in turns if t.role is TurnRole.USER]
        tally = by_language[c["language"]]
        tally[0] += 1
        tally[1] += bool(title) and any(w.lower() in title.lower() for w in c["title_words"])
        tally[2] += bool(title) and bool(title_problems(title, user, c["language"]))
        tally[3] += early
        titles[c["id"]] = title
    return {
        "by_language": {
            k: {"conversations": n, "named": named, "malformed": bad, "before_substance": early}
            for k, (n, named, bad, early) in sorted(by_language.items())
        },
        "titles": titles,
    }


async def run_backend(name: str, data: dict) -> dict[str, Any]:
    opened = sqlite_store() if name == "sqlite" else mongo_store()
    started = time.perf_counter()
    async with opened as store:
        result = await score_search(store, data)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def print_search(name: str, result: dict[str, Any]) -> None:
    print(f"\nSearch on {name} ({result['seconds']} s): recall / precision")
    for group in ("by_language", "by_kind", "distinctive_word_by_language"):
        print(f"  {group.replace('_', ' ')}:")
        for key, r in result[group].items():
            print(
                f"  {key:10} {r['recall']:6.3f} / {r['precision']:5.3f}  ({r['queries_expected']} expected)"
            )
        print()
    for miss in result["misses"]:
        print(f"  miss: {miss['query']!r} expected {miss['expected']} found {miss['found']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "mongo", "both"), default="both")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    facts = machine_facts()
    print_machine(facts)
    data = multilingual.DATA
    backends = ["sqlite", "mongo"] if args.backend == "both" else [args.backend]
    report: dict[str, Any] = {"machine": facts, "search": {}}
    for name in backends:
        report["search"][name] = asyncio.run(run_backend(name, data))
        print_search(name, report["search"][name])
    report["titles"] = score_titles(data)
    print("\nTitles (offline generator): named the subject / malformed / before substance")
    for language, t in report["titles"]["by_language"].items():
        print(
            f"  {language:4} {t['named']}/{t['conversations']}"
            f"  {t['malformed']}  {t['before_substance']}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, ensure_ascii=False, indent=2))
    print(f"\nWrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
