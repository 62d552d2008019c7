"""Search benchmark: a generated corpus in a real SQLite store, queried through the real code.

    .venv/bin/python bench/search.py [--turns 100k|1M|10M] [--seed S] [--reuse]
                                     [--queries Q] [--budget SECONDS] [--orders ...]
                                     [--scopes ...] [--graphql] [--explain]

1. Generates a corpus (seeded): sessions of several turns across a few entities, many
   users per entity, a few heavy users with many sessions, some sessions shared; the
   text is drawn from a made-up vocabulary with Zipf frequencies (a few very common
   words, a long tail). It opens a `SqliteStore` once, so that the migrations create the
   schema, closes it, and bulk-inserts sessions, turns, tags, shares and the matching
   `search_index` rows with plain sqlite3 `executemany` in big transactions, through the
   helpers the store itself uses (`codec.session_row`, `codec.turn_row`, `share_row`, `turn_body`,
   `scope_tokens`, the entities' stretches of rowids, the turn time blocks). A self-check first writes a few generated sessions through the store's
   own API and through the bulk path and compares every row.
2. Measures `SqliteStore.search` (with `parse_query` and a `SearchScope` built the way
   `SearchService` builds it, shared sessions included) per query class - a rare word, a
   very common word, a phrase, a filtered query (chat app + 30-day range) - for a user with
   few sessions and for the admin of the largest entity, in RELEVANCE and NEWEST order.
   Optionally (--graphql) the same through a real `sessionhub serve` on the corpus.
3. Prints a table (p50 / p99 per class) and writes it as JSON, with the machine, the corpus
   and the generation time, to bench/results/search-<size>.json. --explain prints, for
   every class over the target, where the time of one query goes.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import gc
import itertools
import json
import math
import multiprocessing
import os
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import options
from lifecycle import QUESTION_STARTS, SYLLABLES, TOOLS
from machine import machine_facts, print_machine
from measured_server import Server, running_server, token_for
from report import latency_fields, percentile, print_aligned, report_header, write_report
from store_file import create_schema

from sessionhub.domain.analysis import analyze
from sessionhub.domain.models import (
    AuditEvent,
    GranteeKind,
    NewTurn,
    Principal,
    Role,
    Session,
    SessionStatus,
    Share,
    ShareMode,
    TitleSource,
    TokenUsage,
    ToolInvocation,
    ToolStatus,
    Turn,
    TurnRole,
    UserType,
)
from sessionhub.domain.query import (
    SearchFilter,
    SearchOrder,
    SearchRequest,
    SearchScope,
    parse_query,
)
from sessionhub.domain.search import search_scope
from sessionhub.domain.titles import opening_words
from sessionhub.storage.sqlite import codec, search
from sessionhub.storage.sqlite.codec import SESSION_COLUMNS, TURN_COLUMNS
from sessionhub.storage.sqlite.driver import sqlite as sqlite3
from sessionhub.storage.sqlite.search import index as fts_index
from sessionhub.storage.sqlite.search import phrases
from sessionhub.storage.sqlite.search import query as fts_query
from sessionhub.storage.sqlite.search import scope as fts_scope
from sessionhub.storage.sqlite.search.tuning import SearchTuning
from sessionhub.storage.sqlite.search.vocabulary import index_query
from sessionhub.storage.sqlite.shares import SHARE_COLUMNS, share_row
from sessionhub.storage.sqlite.store import SqliteStore

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
# Where corpora are kept, shared with scale.py (which serves the same files): large at
# 10M turns, so point it at a roomy disk outside the git tree.
DATA_DIR_ENV = "SESSIONHUB_BENCH_DATA_DIR"
DEFAULT_DATA_DIR = Path(
    os.environ.get(DATA_DIR_ENV) or Path(tempfile.gettempdir()) / "sessionhub-bench"
)
GENERATOR_VERSION = 3  # bump when the generated corpus changes for the same seed
TARGET_P99_MS = 50.0
PAGE = 20  # first: 20, as the API defaults; the store is asked for one more
STORE_TUNING = SearchTuning()  # what the store runs with

# Corpus shape

VOCABULARY_SIZE = 50_000
ZIPF_EXPONENT = 1.0
TABLE_SLOTS = 1 << 22
COMMON_RANKS = range(0, 10)  # "very common": each in 35-85% of the turns
MEDIUM_RANKS = range(50, 5_000)  # words of the filtered query
RARE_MIN_RANK = 5_000  # "rare": each 2-20 in a million words
ENTITIES = (("acme", 0.4), ("globex", 0.3), ("initech", 0.2), ("umbrella", 0.1))
CHAT_APPS = (("support", 0.6), ("knowledge", 0.4))  # ids of server/chat_apps.toml
SHARING_APP = "knowledge"  # the one that allows sharing (and external sharing)
SESSIONS_PER_USER = 20  # on average; the owners' weights are skewed
HEAVY_USERS_PER_ENTITY = 3
HEAVY_SHARE = 0.05  # of its entity's sessions, each heavy user
MEAN_EXTRA_TURNS = 8.0  # turns per session: 2 + exponential, capped
MAX_TURNS_PER_SESSION = 200  # the support app's max_session_history
END = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
FAR_FUTURE = datetime(2099, 1, 1, tzinfo=UTC)
CJK_SHARE = 0.05  # of the sessions, written in (made-up) Chinese
CJK_CHARACTERS = 3_000  # drawn from the first this many of the CJK Unified Ideographs
TAGS = ("billing", "bug", "howto", "urgent", "feedback", "draft", "sql", "onboarding")

BATCH_SESSIONS = 500  # sessions per generated batch (one task of a worker)
COMMIT_TURNS = 200_000  # turns per transaction
BYTES_PER_TURN_GUESS = 2_600  # for the disk check before generating; refined by --reuse runs

SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")

# Measurement

QUERY_CLASSES = ("rare", "common", "phrase", "filtered", "cjk", "typo")
SCOPES = ("user", "admin", "heavy")
USERS_IN_SAMPLE = 25  # users with few sessions, queried in turn
FEW_SESSIONS = (3, 10)
FILTER_WINDOW = timedelta(days=30)
WARMUP_PER_CLASS = 3
MIN_QUERIES = 10
WORD = re.compile(r"\w+", re.UNICODE)
CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
TYPO_RANKS = range(500, 20_000)  # words of the typo query: five letters or more, then one typo

BASELINE_DOCUMENT = "{ chatApps { id } }"
SEARCH_DOCUMENT = """
query Search($q: String!, $filter: SearchFilter, $order: SearchOrder, $first: Int) {
  searchSessions(query: $q, filter: $filter, orderBy: $order, first: $first) {
    edges { cursor node { score titleSnippet session { id title lastActivityAt }
            turns { turnId seq role snippet } } }
    pageInfo { hasNextPage endCursor }
  }
}"""


# Sizes


def parse_size(text: str) -> int:
    match = SIZE_RE.match(text.replace("_", "").replace(",", ""))
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a number of turns, like 100k, 1M or 250000"
        )
    number, unit = float(match.group(1)), match.group(2).lower()
    turns = int(number * {"": 1, "k": 1_000, "m": 1_000_000}[unit])
    if turns < 1_000:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1000 turns")
    return turns


def size_label(turns: int) -> str:
    if turns % 1_000_000 == 0:
        return f"{turns // 1_000_000}M"
    if turns % 1_000 == 0:
        return f"{turns // 1_000}k"
    return str(turns)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GB"


def human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


# Vocabulary and text


class Vocabulary:
    """A made-up vocabulary of VOCABULARY_SIZE words with Zipf frequencies (rank r has
    weight 1/(r+1)^s): a few very common words, a long tail. Short words get the top
    ranks, as in real language. Words are letters only, so no word looks like a scope
    token (digits)."""

    def __init__(self, seed: int, size: int = VOCABULARY_SIZE) -> None:
        rng = random.Random(seed)
        words: set[str] = set()
        for _ in range(size * 50):  # bounded: stops once the vocabulary is full
            if len(words) >= size:
                break
            syllables = rng.choices((1, 2, 3, 4), weights=(4, 25, 45, 26))[0]
            words.add("".join(rng.choice(SYLLABLES) for _ in range(syllables)))
        keyed = sorted(words)
        rng.shuffle(keyed)
        self.words = sorted(keyed, key=len)[:size]
        self.rank = {w: r for r, w in enumerate(self.words)}
        # Drawing from a table in which each word fills slots in proportion to its weight
        # is three times faster than bisecting cumulative weights; with 2^22 slots the
        # rarest word still has 7 (its frequency is off by at most 1/14).
        weights = [1.0 / (r + 1) ** ZIPF_EXPONENT for r in range(len(self.words))]
        total = sum(weights)
        slots = [max(1, round(w / total * TABLE_SLOTS)) for w in weights]
        slots[0] += TABLE_SLOTS - sum(slots)
        self.table = [w for w, n in zip(self.words, slots, strict=True) for _ in range(n)]


def cjk_word(rank: int) -> str:
    """A made-up word of Chinese characters, the same for the same rank: shorter words
    for the common ranks, as in the main vocabulary."""
    rng = random.Random(rank * 7919 + 17)
    length = 1 if rank < 40 else 2 if rank < 4_000 else 3
    return "".join(chr(0x4E00 + rng.randrange(CJK_CHARACTERS)) for _ in range(length))


class TextWriter:
    def __init__(self, vocabulary: Vocabulary, rng: random.Random, cjk: bool = False) -> None:
        self.v = vocabulary
        self.rng = rng
        self.cjk = cjk

    def words(self, count: int) -> list[str]:
        if self.cjk:
            # The same Zipf draw, each word written as its made-up Chinese counterpart.
            return [cjk_word(self.v.rank[w]) for w in self.rng.choices(self.v.table, k=count)]
        return self.rng.choices(self.v.table, k=count)

    def user_message(self) -> str:
        words = self.words(self.rng.randint(3, 22))
        if self.cjk:
            return "".join(words) + "？"
        return f"{self.rng.choice(QUESTION_STARTS)} {' '.join(words)}?"

    def answer(self) -> str:
        """Agent answers: log-normal length, median 120 words (mean about 145)."""
        rng = self.rng
        count = max(10, min(800, int(rng.lognormvariate(math.log(120), 0.6))))
        words = self.words(count)
        sentences, i = [], 0
        while i < count:
            j = i + rng.randint(6, 18)
            sentences.append(("" if self.cjk else " ").join(words[i:j]))
            i = j
        if self.cjk:
            return "\n\n".join(
                "。".join(sentences[k : k + 4]) + "。" for k in range(0, len(sentences), 4)
            )
        paragraphs = [". ".join(sentences[k : k + 4]) + "." for k in range(0, len(sentences), 4)]
        return "\n\n".join(paragraphs).capitalize()

    def tool_invocation(self, at: datetime, rng: random.Random) -> ToolInvocation:
        rows = [
            {
                "id": rng.randint(1, 10**6),
                "label": " ".join(self.words(3)),
                "score": round(rng.random(), 3),
            }
            for _ in range(rng.randint(1, 4))
        ]
        return ToolInvocation(
            id=uuid7(at, rng),
            name=rng.choice(TOOLS),
            input={
                "query": " ".join(self.words(rng.randint(2, 5))),
                "limit": rng.choice((5, 10, 20)),
            },
            output={"rows": rows, "total": len(rows)},
            status=ToolStatus.SUCCEEDED,
            started_at=at - timedelta(seconds=2),
            duration_ms=round(rng.uniform(5, 900), 1),
        )


def uuid7(at: datetime, rng: random.Random) -> str:
    """A UUIDv7 like `new_id()` makes, from a given time and a seeded generator."""
    ms = codec.to_micros(at) // 1000
    value = (
        (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62) | rng.getrandbits(62)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# The corpus plan: who owns which session, in which app, with how many turns


def user_id(entity: int, index: int) -> str:
    return f"{ENTITIES[entity][0]}-u{index:06d}"


@dataclass
class Plan:
    """Global decisions, made once (cheaply) before the text of any session is drawn:
    per session its entity, app, owner and turn count; per entity its users."""

    seed: int
    turns: int
    n_turns: array  # per session
    entity: array
    app: array
    owner: array  # user index within the entity
    first_turn: array  # rowid of each session's first turn
    users_per_entity: list[int]

    @property
    def sessions(self) -> int:
        return len(self.n_turns)

    @staticmethod
    def make(turns: int, seed: int, mean_extra: float = MEAN_EXTRA_TURNS) -> Plan:
        rng = random.Random(seed * 7919 + 1)
        n_turns, first, total = array("H"), array("q"), 0
        while total < turns:
            n = min(MAX_TURNS_PER_SESSION, 2 + int(rng.expovariate(1.0 / mean_extra)))
            n = min(n, turns - total)
            first.append(total + 1)
            n_turns.append(n)
            total += n
        count = len(n_turns)
        entity = array("B", rng.choices(range(len(ENTITIES)), [w for _, w in ENTITIES], k=count))
        app = array("B", rng.choices(range(len(CHAT_APPS)), [w for _, w in CHAT_APPS], k=count))
        per_entity = [0] * len(ENTITIES)
        for e in entity:
            per_entity[e] += 1
        users = [max(HEAVY_USERS_PER_ENTITY + 10, n // SESSIONS_PER_USER) for n in per_entity]
        cum = []
        for e in range(len(ENTITIES)):
            regular = [
                rng.lognormvariate(0.0, 1.0) for _ in range(users[e] - HEAVY_USERS_PER_ENTITY)
            ]
            scale = (1.0 - HEAVY_SHARE * HEAVY_USERS_PER_ENTITY) / sum(regular)
            weights = [HEAVY_SHARE] * HEAVY_USERS_PER_ENTITY + [w * scale for w in regular]
            cum.append(list(itertools.accumulate(weights)))
        owner = array("I", (bisect.bisect(cum[e], rng.random() * cum[e][-1]) for e in entity))
        for i, e in enumerate(entity):  # rounding at the very end of the list
            owner[i] = min(owner[i], users[e] - 1)
        return Plan(seed, turns, n_turns, entity, app, owner, first, users)

    def entity_bases(self) -> dict[str, int]:
        return entity_bases(ENTITIES[e][0] for e in self.entity)

    def start(self, index: int) -> datetime:
        """Sessions start in index order, ever denser (linear growth over the year)."""
        fraction = math.sqrt((index + 0.5) / self.sessions)
        return END - SPAN + SPAN * fraction


# Generating sessions


@dataclass
class GeneratedSession:
    """A session as the API would have built it: created with its first message, then
    its turns appended; perhaps retitled (AUTO) after its second turn, archived at the
    end, shared."""

    created: Session  # as passed to create_session (before any turn)
    turns: list[NewTurn]
    retitle: tuple[str, datetime] | None
    archived_at: datetime | None
    shares: list[Share]
    final: Session = field(init=False)

    def __post_init__(self) -> None:
        s = replace(
            self.created, tags=list(self.created.tags), participants=list(self.created.participants)
        )
        usage = TokenUsage()
        for i, turn in enumerate(self.turns):
            s.turn_count += 1
            s.last_activity_at = max(s.last_activity_at, turn.created_at)
            s.updated_at = max(s.updated_at, turn.created_at)
            usage = usage + turn.usage
            if turn.author_id not in s.participants:
                s.participants.append(turn.author_id)
            if i == 1 and self.retitle is not None:
                s.title, s.title_source = self.retitle[0], TitleSource.AUTO
                s.updated_at = self.retitle[1]
                s.title_version += 1  # as rename_session counts it
        s.usage = usage
        if self.archived_at is not None:
            s.archived_at = self.archived_at
            s.updated_at = self.archived_at
        self.final = s


def generate_session(plan: Plan, index: int, vocabulary: Vocabulary) -> GeneratedSession:
    rng = random.Random(plan.seed * 1_000_003 + index)
    text = TextWriter(vocabulary, rng, cjk=rng.random() < CJK_SHARE)
    e, owner_index = plan.entity[index], plan.owner[index]
    entity, app = ENTITIES[e][0], CHAT_APPS[plan.app[index]][0]
    owner = user_id(e, owner_index)
    at = plan.start(index) + timedelta(microseconds=rng.randrange(1_000_000))
    turns: list[NewTurn] = []
    for position in range(plan.n_turns[index]):
        if position % 2 == 0:
            role, content, tools, usage = TurnRole.USER, text.user_message(), [], TokenUsage()
        else:
            at += timedelta(seconds=rng.uniform(3, 40))
            role, content = TurnRole.ASSISTANT, text.answer()
            tools = (
                [text.tool_invocation(at, rng) for _ in range(rng.randint(1, 2))]
                if rng.random() < 0.15
                else []
            )
            usage = TokenUsage(
                rng.randint(50, 4000), rng.randint(100, 1200), round(rng.uniform(0.0005, 0.05), 5)
            )
        turns.append(
            NewTurn(
                id=uuid7(at, rng),
                session_id="",
                role=role,
                author_id=owner,
                content=content,
                created_at=at,
                tool_invocations=tools,
                usage=usage,
                author_entity_id=entity,
            )
        )
        at += timedelta(seconds=rng.uniform(20, 900))
    created_at = turns[0].created_at
    session_id = uuid7(created_at, rng)
    for turn in turns:
        turn.session_id = session_id
    tags = sorted(set(rng.sample(TAGS, rng.randint(1, 2)))) if rng.random() < 0.1 else []
    created = Session(
        id=session_id,
        entity_id=entity,
        chat_app_id=app,
        owner_id=owner,
        title=opening_words(turns[0].content) or None,
        title_source=TitleSource.PENDING,
        created_at=created_at,
        updated_at=created_at,
        last_activity_at=created_at,
        tags=tags,
        participants=[owner],
        status=SessionStatus.ACTIVE,
    )
    retitle = None
    if len(turns) > 1 and rng.random() < 0.5:
        retitle = (
            " ".join(text.words(rng.randint(3, 6))).capitalize(),
            turns[1].created_at + timedelta(seconds=1),
        )
    last = turns[-1].created_at
    archived_at = last + timedelta(days=rng.uniform(1, 30)) if rng.random() < 0.05 else None
    shares = _shares(plan, e, owner_index, session_id, entity, owner, app, last, rng)
    return GeneratedSession(created, turns, retitle, archived_at, shares)


def _shares(
    plan: Plan,
    e: int,
    owner_index: int,
    session_id: str,
    entity: str,
    owner: str,
    app: str,
    at: datetime,
    rng: random.Random,
) -> list[Share]:
    """Only the app that allows sharing: 5% of its sessions to a colleague or two, 0.2% to
    the whole entity, 0.5% to a user of another entity; one in five of them revoked or
    expired since."""
    if app != SHARING_APP:
        return []
    grants: list[tuple[GranteeKind, str | None, str | None]] = []
    roll = rng.random()
    if roll < 0.05:
        for _ in range(rng.randint(1, 2)):
            colleague = rng.randrange(plan.users_per_entity[e])
            if colleague != owner_index:
                grants.append((GranteeKind.USER, entity, user_id(e, colleague)))
    elif roll < 0.052:
        grants.append((GranteeKind.ENTITY, entity, None))
    elif roll < 0.057:
        other = rng.choice([i for i in range(len(ENTITIES)) if i != e])
        grants.append(
            (
                GranteeKind.EXTERNAL,
                ENTITIES[other][0],
                user_id(other, rng.randrange(plan.users_per_entity[other])),
            )
        )
    shares = []
    for kind, grantee_entity, grantee_user in grants:
        created_at = at + timedelta(minutes=rng.uniform(1, 600))
        fate = rng.random()
        expires_at = revoked_at = revoked_by = None
        if fate < 0.1:
            revoked_at, revoked_by = created_at + timedelta(days=rng.uniform(1, 20)), owner
        elif fate < 0.2:
            expires_at = created_at + timedelta(days=7)  # long past
        elif fate < 0.4:
            expires_at = FAR_FUTURE
        shares.append(
            Share(
                id=uuid7(created_at, rng),
                session_id=session_id,
                entity_id=entity,
                grantee_kind=kind,
                grantee_entity_id=grantee_entity,
                grantee_user_id=grantee_user,
                mode=ShareMode.READ,
                created_by=owner,
                created_at=created_at,
                expires_at=expires_at,
                revoked_at=revoked_at,
                revoked_by=revoked_by,
            )
        )
    return shares


# Rows, exactly as the store writes them


@dataclass
class Rows:
    sessions: list[tuple] = field(default_factory=list)
    tags: list[tuple] = field(default_factory=list)
    turns: list[tuple] = field(default_factory=list)
    index: list[tuple] = field(default_factory=list)
    pairs: list[tuple] = field(default_factory=list)
    shares: list[tuple] = field(default_factory=list)
    word_rows: Counter[str] = field(default_factory=Counter)
    stem_links: set[tuple[str, str, str]] = field(default_factory=set)

    def _index(self, rowid: int, text: str, scope: str) -> None:
        analysis = analyze(text)
        body = analysis.stream
        self.index.append((rowid, body, scope, analysis.language))
        self.pairs.append((rowid, phrases.pair_terms(body, scope)))
        self.word_rows.update(set(analysis.words))
        self.stem_links |= analysis.links

    def add(
        self,
        g: GeneratedSession,
        session_rowid: int,
        first_turn_rowid: int,
        bases: dict[str, int],
    ) -> None:
        s = g.final
        self.sessions.append((session_rowid, *codec.session_row(s)))
        self.tags.extend((s.id, tag) for tag in s.tags)
        # As the store decides it: an ENTITY share neither revoked nor recorded as expired.
        entity_shared = any(
            sh.grantee_kind is GranteeKind.ENTITY and sh.revoked_at is None for sh in g.shares
        )
        scopes: dict[str, str] = {}  # per role: the hashes once per session, not per turn
        for seq, new in enumerate(g.turns, 1):
            rowid = first_turn_rowid + seq - 1
            row = codec.turn_row(Turn.numbered(new, seq, s.entity_id))
            self.turns.append((rowid, *row))
            role = new.role.value
            scope = scopes.get(role)
            if scope is None:
                scope = scopes[role] = fts_scope.scope_tokens(
                    s.entity_id, s.owner_id, s.chat_app_id, s.id, role, entity_shared
                )
            self._index(
                fts_scope.turn_row_id(bases[s.entity_id], rowid),
                fts_index.turn_body(new.content, row[7]),
                scope,
            )
        if s.title:
            self._index(
                fts_scope.title_row_id(bases[s.entity_id], session_rowid),
                s.title,
                fts_scope.scope_tokens(
                    s.entity_id,
                    s.owner_id,
                    s.chat_app_id,
                    s.id,
                    fts_index.TITLE_ROLE,
                    entity_shared,
                ),
            )
        self.shares.extend(share_row(sh) for sh in g.shares)

    @property
    def turn_count(self) -> int:
        return len(self.turns)


def entity_bases(entity_ids: Iterator[str]) -> dict[str, int]:
    """The entities' stretches of index rowids as the store numbers them: in the order of
    their first session."""
    bases: dict[str, int] = {}
    for entity_id in entity_ids:
        if entity_id not in bases:
            bases[entity_id] = (len(bases) + 1) << fts_scope.ENTITY_SHIFT
            if len(bases) == len(ENTITIES):
                break
    return bases


def insert_entities(conn: sqlite3.Connection, bases: dict[str, int]) -> None:
    conn.executemany(
        "INSERT INTO search_entities (number, entity_id) VALUES (?, ?)",
        [(base >> fts_scope.ENTITY_SHIFT, entity_id) for entity_id, base in bases.items()],
    )


def note_turn_times(conn: sqlite3.Connection) -> None:
    """turn_time_blocks from all the turns, as the store keeps it turn by turn."""
    conn.execute(
        "INSERT INTO turn_time_blocks (block, earliest, latest)"
        f" SELECT rowid >> {STORE_TUNING.time_block_shift}, min(created_at), max(created_at)"
        f" FROM turns GROUP BY rowid >> {STORE_TUNING.time_block_shift}"
    )


def insert_rows(conn: sqlite3.Connection, rows: Rows) -> None:
    conn.executemany(
        f"INSERT INTO sessions (rowid, {SESSION_COLUMNS})"
        f" VALUES ({', '.join('?' * (1 + len(SESSION_COLUMNS.split(','))))})",
        rows.sessions,
    )
    conn.executemany("INSERT INTO session_tags (session_id, tag) VALUES (?, ?)", rows.tags)
    conn.executemany(
        f"INSERT INTO turns (rowid, {TURN_COLUMNS})"
        f" VALUES ({', '.join('?' * (1 + len(TURN_COLUMNS.split(','))))})",
        rows.turns,
    )
    conn.executemany(
        "INSERT INTO search_index (rowid, body, scope, language) VALUES (?, ?, ?, ?)", rows.index
    )
    conn.executemany(f"INSERT INTO {phrases.PAIRS_TABLE} (rowid, terms) VALUES (?, ?)", rows.pairs)
    conn.executemany(
        "INSERT INTO search_words (word, rows) VALUES (?, ?)"
        " ON CONFLICT (word) DO UPDATE SET rows = rows + excluded.rows",
        rows.word_rows.items(),
    )
    conn.executemany(
        "INSERT OR IGNORE INTO search_stems (language, stem, word) VALUES (?, ?, ?)",
        rows.stem_links,
    )
    conn.executemany(
        f"INSERT INTO shares ({SHARE_COLUMNS}) VALUES ({', '.join('?' * 13)})", rows.shares
    )


# Worker processes draw the text (the expensive Python part); the parent only inserts.

_WORKER: dict[str, Any] = {}


def _init_worker(plan: Plan, vocabulary_seed: int) -> None:
    _WORKER["plan"] = plan
    _WORKER["vocabulary"] = Vocabulary(vocabulary_seed)
    _WORKER["bases"] = plan.entity_bases()


def _make_batch(batch: int) -> Rows:
    plan: Plan = _WORKER["plan"]
    vocabulary: Vocabulary = _WORKER["vocabulary"]
    rows = Rows()
    for index in range(batch * BATCH_SESSIONS, min(plan.sessions, (batch + 1) * BATCH_SESSIONS)):
        rows.add(
            generate_session(plan, index, vocabulary),
            index + 1,
            plan.first_turn[index],
            _WORKER["bases"],
        )
    return rows


def batches(plan: Plan, workers: int) -> Iterator[Rows]:
    """Batches in order, drawn by `workers` processes, at most a few ahead of the
    consumer (memory stays bounded whatever the speed of either side)."""
    count = -(-plan.sessions // BATCH_SESSIONS)
    if workers <= 0:
        _init_worker(plan, plan.seed)
        for b in range(count):
            yield _make_batch(b)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, _init_worker, (plan, plan.seed)) as pool:
        window = workers * 3
        pending = [pool.apply_async(_make_batch, (b,)) for b in range(min(window, count))]
        submitted = len(pending)
        while pending:
            rows = pending.pop(0).get()
            if submitted < count:
                pending.append(pool.apply_async(_make_batch, (submitted,)))
                submitted += 1
            yield rows


class Progress:
    def __init__(self, total: int, what: str) -> None:
        self.total, self.what = total, what
        self.started = self.last = time.perf_counter()
        self.tty = sys.stdout.isatty()
        self.next_line = 0.1

    def update(self, done: int) -> None:
        now = time.perf_counter()
        fraction = done / self.total
        if self.tty and now - self.last < 0.5 and done < self.total:
            return
        if not self.tty and fraction < self.next_line and done < self.total:
            return
        self.last = now
        self.next_line = math.floor(fraction * 10 + 1) / 10
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        line = (
            f"  {done:>12,}/{self.total:,} {self.what} ({fraction:6.1%})  {rate:>9,.0f}/s"
            f"  elapsed {human_seconds(elapsed)}  left ~{human_seconds(eta)}"
        )
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", flush=True)

    def done(self) -> None:
        if self.tty:
            print(flush=True)


def mean_extra_turns(turns: int, sessions: int | None) -> float:
    """The mean of the exponential part of a session's length that gives about `sessions`
    sessions for `turns` turns (2 + int(Exp(m)) has the mean 2 + 1/(e^(1/m) - 1));
    MEAN_EXTRA_TURNS when no session count is asked for."""
    if sessions is None:
        return MEAN_EXTRA_TURNS
    ratio = turns / sessions
    if ratio <= 2.05:
        raise SystemExit(
            f"{turns:,} turns for {sessions:,} sessions: give more than 2 turns a session"
        )
    return 1.0 / math.log(1.0 + 1.0 / (ratio - 2.0))


def generate_corpus(
    path: Path, turns: int, seed: int, workers: int, mean_extra: float = MEAN_EXTRA_TURNS
) -> dict[str, Any]:
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    create_schema(path)
    plan = Plan.make(turns, seed, mean_extra)
    print(
        f"  plan: {plan.sessions:,} sessions, {sum(plan.users_per_entity):,} users in {len(ENTITIES)} entities "
        f"({time.perf_counter() - started:.1f} s)",
        flush=True,
    )
    # Loading speed only: no rollback journal and no fsync while the file is filled (the
    # content and the FTS5 settings are the store's); WAL again at the end, as the store
    # wants it.
    conn = connect(
        path,
        "PRAGMA journal_mode = OFF",
        "PRAGMA synchronous = OFF",
        "PRAGMA cache_size = -1048576",
        "PRAGMA temp_store = MEMORY",
    )
    progress = Progress(turns, "turns")
    done = in_transaction = 0
    waited = inserting = 0.0
    conn.execute("BEGIN")
    insert_entities(conn, plan.entity_bases())
    t0 = time.perf_counter()
    for rows in batches(plan, workers):
        t1 = time.perf_counter()
        insert_rows(conn, rows)
        done += rows.turn_count
        in_transaction += rows.turn_count
        if in_transaction >= COMMIT_TURNS:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            in_transaction = 0
        progress.update(done)
        t2 = time.perf_counter()
        waited, inserting, t0 = waited + (t1 - t0), inserting + (t2 - t1), t2
    note_turn_times(conn)
    conn.execute("COMMIT")
    progress.done()
    merge_segments(conn)
    print(
        f"  the inserting process spent {inserting:.1f} s in SQLite and {waited:.1f} s waiting for text",
        flush=True,
    )
    conn.execute("PRAGMA journal_mode = WAL")
    stats = corpus_stats(conn)
    conn.close()
    seconds = time.perf_counter() - started
    return {
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "turns_requested": turns,
        "seconds": round(seconds, 1),
        "turns_per_second": round(turns / seconds),
        "workers": workers,
        "insert_seconds": round(inserting, 1),
        "waiting_for_text_seconds": round(waited, 1),
        "db_bytes": path.stat().st_size,
        **stats,
    }


def connect(path: Path | str, *pragmas: str, **options: Any) -> sqlite3.Connection:
    """An autocommit connection to the corpus (sqlite3.connect's `options` added), with
    `pragmas` run on it."""
    conn = sqlite3.connect(path, isolation_level=None, **options)
    for pragma in pragmas:
        conn.execute(pragma)
    return conn


def merge_segments(conn: sqlite3.Connection) -> None:
    """At once, the merging the store does in the background over time (FTS5's own is off,
    migration 0011): the indexes as a server that had written the corpus would hold them."""
    for table in fts_query.FTS5_TABLES:
        while True:
            before = conn.total_changes
            conn.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('merge', 5000)")
            if conn.total_changes - before < 2:
                break


def corpus_stats(conn: sqlite3.Connection) -> dict[str, Any]:
    (sessions,) = conn.execute("SELECT count(*) FROM sessions").fetchone()
    (turns,) = conn.execute("SELECT max(rowid) FROM turns").fetchone()
    per_entity = dict(
        conn.execute("SELECT entity_id, count(*) FROM sessions GROUP BY entity_id").fetchall()
    )
    (shares,) = conn.execute("SELECT count(*) FROM shares").fetchone()
    (segments,) = conn.execute("SELECT count(DISTINCT segid) FROM search_index_idx").fetchone()
    pages = (
        dict(
            conn.execute(
                "SELECT name, sum(pgsize) FROM dbstat WHERE name IN"
                " ('turns', 'sessions', 'search_index_data', 'search_index_content', 'search_index_idx')"
                " GROUP BY name"
            ).fetchall()
        )
        if _has_dbstat(conn)
        else {}
    )
    return {
        "sessions": sessions,
        "turns": turns,
        "sessions_per_entity": per_entity,
        "shares": shares,
        "fts5_segments": segments,
        "bytes_by_table": pages,
    }


def _has_dbstat(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 1").fetchall()
        return True
    except sqlite3.OperationalError:
        return False


# Self-check: the bulk path writes what the API writes


async def _write_through_store(path: Path, generated: list[GeneratedSession]) -> None:
    store = SqliteStore(str(path), readers=1)
    await store.open()
    try:
        for g in generated:
            await store.create_session(g.created, g.turns[0], MAX_TURNS_PER_SESSION)
            for i, turn in enumerate(g.turns[1:], 1):
                await store.append_turn(turn, MAX_TURNS_PER_SESSION)
                if i == 1 and g.retitle is not None:
                    await store.rename_session(
                        g.created.id, g.retitle[0], TitleSource.AUTO, g.retitle[1]
                    )
            if g.archived_at is not None:
                await store.set_archived(g.created.id, g.archived_at, g.archived_at)
            for share in g.shares:
                stored = replace(share, revoked_at=None, revoked_by=None)
                await store.create_share(stored, _audit(share, share.created_at))
                if share.revoked_at is not None:
                    await store.revoke_share(
                        share.id,
                        share.revoked_at,
                        share.revoked_by,
                        _audit(share, share.revoked_at),
                    )
    finally:
        await store.close()


def _audit(share: Share, at: datetime) -> AuditEvent:
    return AuditEvent(
        secrets.token_hex(8),
        share.entity_id,
        share.created_by,
        "share",
        f"session:{share.session_id}",
        at,
    )


def _phrase_index_dump(conn: sqlite3.Connection) -> list[tuple]:
    """(term, rowids) of every term of the phrase index, which keeps no text to compare."""
    conn.execute(
        f"CREATE VIRTUAL TABLE temp.pair_terms USING fts5vocab(main, {phrases.PAIRS_TABLE}, row)"
    )
    terms = [t for (t,) in conn.execute("SELECT term FROM temp.pair_terms ORDER BY term")]
    return [
        (
            term,
            tuple(
                r
                for (r,) in conn.execute(
                    f"SELECT rowid FROM {phrases.PAIRS_TABLE} WHERE {phrases.PAIRS_TABLE} MATCH ?"
                    " ORDER BY rowid",
                    ('"' + term.replace('"', '""') + '"',),
                )
            ),
        )
        for term in terms
    ]


def _table_dump(path: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {
            "search_pairs": _phrase_index_dump(conn),
            "sessions": conn.execute(
                f"SELECT rowid, {SESSION_COLUMNS} FROM sessions ORDER BY rowid"
            ).fetchall(),
            "session_tags": conn.execute("SELECT * FROM session_tags ORDER BY 1, 2").fetchall(),
            "turns": conn.execute(
                f"SELECT rowid, {TURN_COLUMNS} FROM turns ORDER BY rowid"
            ).fetchall(),
            "search_index": conn.execute(
                "SELECT rowid, body, scope, language FROM search_index ORDER BY rowid"
            ).fetchall(),
            "search_words": conn.execute("SELECT * FROM search_words ORDER BY word").fetchall(),
            "search_stems": conn.execute("SELECT * FROM search_stems ORDER BY 1, 2, 3").fetchall(),
            "shares": conn.execute(f"SELECT {SHARE_COLUMNS} FROM shares ORDER BY id").fetchall(),
            "turn_time_blocks": conn.execute(
                "SELECT * FROM turn_time_blocks ORDER BY block"
            ).fetchall(),
            "search_entities": conn.execute(
                "SELECT number, entity_id FROM search_entities ORDER BY number"
            ).fetchall(),
        }
    finally:
        conn.close()


def self_check(seed: int, plain: int = 40, special: int = 20) -> None:
    """Writes a few generated sessions (the first `plain` ones, and `special` of those
    that are shared, archived or retitled) through the store's API and through the bulk
    path, and stops if any row differs."""
    plan = Plan.make(20_000, seed)
    vocabulary = Vocabulary(seed)
    chosen = list(range(plain))
    for kind in ("shares", "archived_at", "retitle"):
        found = 0
        for i in range(plain, plan.sessions):
            if found >= special:
                break
            if i not in chosen and getattr(generate_session(plan, i, vocabulary), kind):
                chosen.append(i)
                found += 1
    generated = [generate_session(plan, i, vocabulary) for i in sorted(chosen)]
    count = len(generated)
    with tempfile.TemporaryDirectory(prefix="sessionhub-bench-check-") as tmp:
        api, bulk = Path(tmp) / "api.db", Path(tmp) / "bulk.db"
        asyncio.run(_write_through_store(api, generated))
        create_schema(bulk)
        rows, first_turn = Rows(), 1
        bases = entity_bases(g.final.entity_id for g in generated)
        for i, g in enumerate(generated):
            rows.add(g, i + 1, first_turn, bases)
            first_turn += len(g.turns)
        conn = sqlite3.connect(bulk, isolation_level=None)
        conn.execute("BEGIN")
        insert_entities(conn, bases)
        insert_rows(conn, rows)
        note_turn_times(conn)
        conn.execute("COMMIT")
        conn.close()
        a, b = _table_dump(api), _table_dump(bulk)
        # A link from a word to its stem stays while the word is in the index, even once
        # the row it came from (a first title, say) is gone: the store may hold more.
        api_links, bulk_links = set(a.pop("search_stems")), set(b.pop("search_stems"))
        if not bulk_links <= api_links:
            missing = sorted(bulk_links - api_links)[:3]
            raise SystemExit(f"Self-check failed: the store lacks stem links {missing}")
        for table in a:
            if a[table] != b[table]:
                first = next(
                    (i for i, (x, y) in enumerate(zip(a[table], b[table], strict=False)) if x != y),
                    min(len(a[table]), len(b[table])),
                )
                raise SystemExit(
                    f"Self-check failed: table {table} differs between the API and the bulk path"
                    f" ({len(a[table])} vs {len(b[table])} rows; first difference at row {first}:\n"
                    f"  api:  {a[table][first] if first < len(a[table]) else None}\n"
                    f"  bulk: {b[table][first] if first < len(b[table]) else None})"
                )
        shared = sum(len(g.shares) for g in generated)
        archived = sum(1 for g in generated if g.archived_at)
        print(
            f"  self-check: {count} sessions ({archived} archived), {len(a['turns'])} turns,"
            f" {len(a['search_index'])} index rows ({len(a['search_pairs'])} phrase index terms),"
            f" {shared} shares written through the store API"
            " and through the bulk path: every row identical",
            flush=True,
        )


# The corpus on disk, reused when asked


def corpus_paths(
    data_dir: Path, turns: int, seed: int, sessions: int | None = None
) -> tuple[Path, Path]:
    shape = "" if sessions is None else f"-{size_label(sessions)}s"
    stem = f"search-{size_label(turns)}{shape}-seed{seed}-v{GENERATOR_VERSION}"
    return data_dir / f"{stem}.db", data_dir / f"{stem}.json"


def projected_bytes(data_dir: Path, turns: int) -> float:
    """From the largest corpus already generated there, or a guess."""
    best: tuple[int, float] | None = None
    for meta_file in data_dir.glob("search-*.json"):
        with contextlib.suppress(OSError, ValueError, KeyError):
            meta = json.loads(meta_file.read_text())
            if best is None or meta["turns"] > best[0]:
                best = (meta["turns"], meta["db_bytes"] / meta["turns"])
    return turns * (best[1] if best else BYTES_PER_TURN_GUESS)


def ensure_corpus(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    args.data_dir.mkdir(parents=True, exist_ok=True)
    sessions = getattr(args, "sessions", None)  # None: the default shape (bench/scale.py sets it)
    db, meta_file = corpus_paths(args.data_dir, args.turns, args.seed, sessions)
    if args.reuse and db.exists() and meta_file.exists():
        meta = json.loads(meta_file.read_text())
        if meta.get("generator") == GENERATOR_VERSION and meta.get("complete"):
            print(
                f"Reusing {db} ({human_bytes(db.stat().st_size)}, generated in {meta['seconds']} s)\n"
            )
            meta["reused"] = True
            return db, meta
    meta_file.unlink(missing_ok=True)
    needed = projected_bytes(args.data_dir, args.turns)
    free = shutil.disk_usage(args.data_dir).free
    if needed > 0.8 * free and not args.force:
        raise SystemExit(
            f"The {size_label(args.turns)} corpus needs about {human_bytes(needed)}; {args.data_dir} has "
            f"{human_bytes(free)} free. Free some space, choose --data-dir, or pass --force."
        )
    print(
        f"Generating {args.turns:,} turns into {db} (about {human_bytes(needed)}) ...", flush=True
    )
    self_check(args.seed)
    meta = generate_corpus(
        db, args.turns, args.seed, args.workers, mean_extra_turns(args.turns, sessions)
    )
    meta["sessions_requested"] = sessions
    meta["complete"] = True
    meta_file.write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"  {meta['turns']:,} turns, {meta['sessions']:,} sessions in {human_seconds(meta['seconds'])} "
        f"({meta['turns_per_second']:,} turns/s); {human_bytes(meta['db_bytes'])} on disk, "
        f"{meta['fts5_segments']} FTS5 segments\n",
        flush=True,
    )
    meta["reused"] = False
    return db, meta


def prewarm(path: Path) -> float:
    """Reads the file once, so that the first queries do not pay for a cold page cache
    (as on a server that has been up for a while). Returns the seconds it took."""
    started = time.perf_counter()
    with path.open("rb", buffering=0) as f:
        while f.read(16 << 20):
            pass
    return time.perf_counter() - started


# The queries


@dataclass
class Reader:
    """Who searches: the scope as SearchService builds it, and how the bench samples text
    they can read (to find words and phrases that are in their conversations)."""

    kind: str
    entity_id: str
    user_id: str
    scope: SearchScope
    sessions: int
    turn_rowids: list[int] | None  # None: sample the whole entity


@dataclass
class Query:
    scope: str
    cls: str
    text: str
    reader: Reader
    search_filter: SearchFilter


def readers_for(db: Path, kind: str, rng: random.Random) -> list[Reader]:
    """The readers of a kind, with their scope still missing its shared sessions."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        largest, sessions = conn.execute(
            "SELECT entity_id, count(*) c FROM sessions GROUP BY entity_id ORDER BY c DESC LIMIT 1"
        ).fetchone()
        if kind == "admin":
            user = f"{largest}-admin"
            return [Reader(kind, largest, user, SearchScope(largest, None), sessions, None)]
        if kind == "heavy":
            owners = [(largest, user_id(0, i)) for i in range(HEAVY_USERS_PER_ENTITY)]
        else:
            owners = conn.execute(
                "SELECT entity_id, owner_id FROM sessions GROUP BY entity_id, owner_id"
                " HAVING count(*) BETWEEN ? AND ? ORDER BY entity_id, owner_id",
                FEW_SESSIONS,
            ).fetchall()
            owners = rng.sample(owners, min(USERS_IN_SAMPLE, len(owners)))
        readers = []
        for entity, user in owners:
            rowids = [
                r[0]
                for r in conn.execute(
                    "SELECT t.rowid FROM sessions s JOIN turns t ON t.session_id = s.id"
                    " WHERE s.entity_id = ? AND s.owner_id = ?",
                    (entity, user),
                )
            ]
            (count,) = conn.execute(
                "SELECT count(*) FROM sessions WHERE entity_id = ? AND owner_id = ?", (entity, user)
            ).fetchone()
            readers.append(Reader(kind, entity, user, SearchScope(entity, user), count, rowids))
        return readers
    finally:
        conn.close()


async def scope_of(store: SqliteStore, reader: Reader) -> SearchScope:
    """The reader's scope, built by the function SearchService builds it with."""
    roles = frozenset({Role.ADMIN}) if reader.kind == "admin" else frozenset({Role.USER})
    principal = Principal(reader.user_id, reader.entity_id, UserType.INTERNAL, roles)
    return await search_scope(store, principal, datetime.now(UTC))


class QueryMaker:
    """Query texts of each class, drawn from what the reader can actually read (people
    search for what they remember), except the common words, which are everywhere."""

    def __init__(self, db: Path, vocabulary: Vocabulary, seed: int) -> None:
        self.conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        self.v = vocabulary
        self.rng = random.Random(seed)
        (self.max_rowid,) = self.conn.execute("SELECT max(rowid) FROM turns").fetchone()

    def close(self) -> None:
        self.conn.close()

    def _turn(self, reader: Reader) -> tuple[list[str], int, str]:
        """Words (lower case, vocabulary only, in order), time and chat app of a random
        turn the reader can read."""
        for _ in range(1000):  # bounded: rejection sampling over the entity
            if reader.turn_rowids:
                rowid = self.rng.choice(reader.turn_rowids)
            else:
                rowid = self.rng.randint(1, self.max_rowid)
            row = self.conn.execute(
                "SELECT t.content, t.tool_invocations, t.created_at, s.chat_app_id, s.entity_id"
                " FROM turns t JOIN sessions s ON s.id = t.session_id WHERE t.rowid = ?",
                (rowid,),
            ).fetchone()
            if row is None or row[4] != reader.entity_id:
                continue
            words = [
                w
                for w in WORD.findall(fts_index.turn_body(row[0], row[1]).lower())
                if w in self.v.rank
            ]
            if words:
                return words, row[2], row[3]
        raise SystemExit(f"No readable turn found for {reader.user_id}")

    def _cjk_word(self, reader: Reader) -> str:
        """A word of a Chinese turn the reader can read (else, for a reader with no
        Chinese session, of their entity): two to four characters of a run (a word inside
        a sentence, as people remember it)."""
        for attempt in range(20_000):  # bounded: about one session in twenty is Chinese
            rowid = (
                self.rng.choice(reader.turn_rowids)
                if reader.turn_rowids and attempt < 2_000
                else self.rng.randint(1, self.max_rowid)
            )
            row = self.conn.execute(
                "SELECT t.content, s.entity_id FROM turns t JOIN sessions s"
                " ON s.id = t.session_id WHERE t.rowid = ?",
                (rowid,),
            ).fetchone()
            if row is None or row[1] != reader.entity_id:
                continue
            runs = [r for r in CJK_RUN.findall(row[0]) if len(r) >= 4]
            if runs:
                run = self.rng.choice(runs)
                length = self.rng.randint(2, 4)
                start = self.rng.randrange(len(run) - length + 1)
                return run[start : start + length]
        raise SystemExit(f"No Chinese turn found for {reader.user_id}")

    def _pick(self, reader: Reader, ranks: range) -> tuple[str, int, str]:
        for _ in range(50):  # bounded
            words, at, app = self._turn(reader)
            fitting = [w for w in words if self.v.rank[w] in ranks]
            if fitting:
                return self.rng.choice(fitting), at, app
        return self.v.words[self.rng.choice(ranks)], at, app

    def make(self, cls: str, reader: Reader) -> tuple[str, SearchFilter]:
        match cls:
            case "common":
                return self.v.words[self.rng.choice(COMMON_RANKS)], SearchFilter()
            case "rare":
                word, _, _ = self._pick(reader, range(RARE_MIN_RANK, len(self.v.words)))
                return word, SearchFilter()
            case "phrase":
                for _ in range(50):  # bounded
                    words, _, _ = self._turn(reader)
                    if len(words) >= 3:
                        length = self.rng.choice((2, 2, 3))
                        start = self.rng.randrange(len(words) - length + 1)
                        return '"' + " ".join(words[start : start + length]) + '"', SearchFilter()
                raise SystemExit(f"No phrase found for {reader.user_id}")
            case "cjk":
                return self._cjk_word(reader), SearchFilter()
            case "typo":
                for _ in range(50):  # bounded
                    word, _, _ = self._pick(reader, TYPO_RANKS)
                    i = self.rng.randrange(1, max(2, len(word) - 1))
                    typed = word[:i] + word[i + 1 : i + 2] + word[i] + word[i + 2 :]
                    if len(word) >= 5 and typed != word:  # two letters swapped, not the first
                        return typed, SearchFilter()
                raise SystemExit(f"No word for a typo found for {reader.user_id}")
            case "filtered":
                word, at, app = self._pick(reader, MEDIUM_RANKS)
                middle = codec.from_micros(at) + timedelta(days=self.rng.uniform(-10, 10))
                return word, SearchFilter(
                    chat_app_ids=(app,),
                    since=middle - FILTER_WINDOW / 2,
                    until=middle + FILTER_WINDOW / 2,
                )
        raise ValueError(cls)


@dataclass
class Result:
    scope: str
    query_class: str
    order: str
    queries: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    mean_hits: float
    zero_hit_share: float
    via: str = "store"
    cpu_p50_ms: float | None = None
    cpu_p99_ms: float | None = None
    slowest_query: str = ""


def summarize(
    scope: str, cls: str, order: str, samples: list[tuple[float, int, str, float | None]], via: str
) -> Result:
    latencies = sorted(s[0] for s in samples)
    cpu = sorted(s[3] for s in samples if s[3] is not None)
    return Result(
        scope=scope,
        query_class=cls,
        order=order,
        queries=len(samples),
        **latency_fields(latencies, 2),
        mean_hits=round(statistics.fmean(s[1] for s in samples), 1),
        zero_hit_share=round(sum(1 for s in samples if s[1] == 0) / len(samples), 3),
        via=via,
        cpu_p50_ms=round(percentile(cpu, 50), 2) if cpu else None,
        cpu_p99_ms=round(percentile(cpu, 99), 2) if cpu else None,
        slowest_query=max(samples)[2],
    )


def make_queries(
    maker: QueryMaker, readers: dict[str, list[Reader]], count: int
) -> dict[tuple[str, str], list[Query]]:
    out: dict[tuple[str, str], list[Query]] = {}
    for kind, group in readers.items():
        for cls in QUERY_CLASSES:
            queries = []
            for i in range(count + WARMUP_PER_CLASS):
                reader = group[i % len(group)]
                text, search_filter = maker.make(cls, reader)
                queries.append(Query(kind, cls, text, reader, search_filter))
            out[(kind, cls)] = queries
    return out


async def measure_store(
    store: SqliteStore,
    queries: dict[tuple[str, str], list[Query]],
    orders: list[SearchOrder],
    budget: float,
) -> list[Result]:
    results = []
    for order in orders:
        for (kind, cls), group in queries.items():
            samples: list[tuple[float, int, str, float | None]] = []
            started = time.perf_counter()
            for i, q in enumerate(group):
                c0, t0 = time.process_time_ns(), time.perf_counter_ns()
                hits = await store.search(
                    SearchRequest(
                        parse_query(q.text), q.reader.scope, q.search_filter, order, None, PAGE + 1
                    )
                )
                ms = (time.perf_counter_ns() - t0) / 1e6
                cpu = (time.process_time_ns() - c0) / 1e6
                if i >= WARMUP_PER_CLASS:
                    samples.append((ms, min(len(hits), PAGE), q.text, cpu))
                    if len(samples) >= MIN_QUERIES and time.perf_counter() - started > budget:
                        break
            results.append(_report(summarize(kind, cls, order.value, samples, "store")))
    return results


# Where the time of one query goes


def explain(db: Path, q: Query, order: SearchOrder) -> dict[str, Any]:
    """Runs the store's own search function on a plain connection with the store's
    pragmas, records the statements it runs, and times each of them and the FTS5 MATCH
    alone: over the whole index, and in the caller's stretches and scope."""
    conn = connect(
        db,
        "PRAGMA query_only = ON",
        "PRAGMA temp_store = MEMORY",
        "PRAGMA cache_size = -65536",
        "PRAGMA mmap_size = 268435456",
    )
    query = parse_query(q.text)
    statements: list[str] = []

    def timed(sql: str, params: Any = ()) -> tuple[float, list[tuple]]:
        t0 = time.perf_counter_ns()
        rows = conn.execute(sql, params).fetchall()
        return (time.perf_counter_ns() - t0) / 1e6, rows

    t0 = time.perf_counter_ns()
    search.find(
        conn,
        SearchRequest(query, q.reader.scope, q.search_filter, order, None, PAGE + 1),
        STORE_TUNING,
    )
    total = (time.perf_counter_ns() - t0) / 1e6
    # The store's own statements; FTS5's nested ones ("-- ...") are counted, not kept.
    nested: dict[str, int] = {}

    def trace(sql: str) -> None:
        if sql.startswith("-- "):
            nested[sql[3:]] = nested.get(sql[3:], 0) + 1
        elif sql.startswith(("SELECT", "WITH")):
            statements.append(sql)

    conn.set_trace_callback(trace)
    search.find(
        conn,
        SearchRequest(query, q.reader.scope, q.search_filter, order, None, PAGE + 1),
        STORE_TUNING,
    )
    conn.set_trace_callback(None)
    # The first step of the query's ladder (every word, as typed or a form of it).
    m = fts_query.matcher(index_query(conn, query), phrase_index=STORE_TUNING.phrase_index)
    parts = fts_scope.readable_parts(conn, q.reader.scope)
    in_scope = m.exact_stretches(parts, q.search_filter)
    report: dict[str, Any] = {
        "query": q.text,
        "scope": q.scope,
        "class": q.cls,
        "order": order.value,
        "index": m.table,
    }
    report["search_ms"] = round(total, 2)
    # The text alone: no scope, no filter, the whole index.
    text_only = m.exact_stretches([fts_scope.ReadablePart("", 0, None)], SearchFilter())[0]
    ms, rows = timed(f"SELECT count(*) FROM {m.table} WHERE {m.table} MATCH ?", (text_only.match,))
    report["match_text_only_count"] = {"ms": round(ms, 2), "rows": rows[0][0]}
    scoped_ms, scoped_rows = 0.0, 0
    for stretch in in_scope:
        ms, rows = timed(
            f"SELECT count(*) FROM {m.table} WHERE {m.table} MATCH ? AND rowid BETWEEN ? AND ?",
            (stretch.match, stretch.low, stretch.high),
        )
        scoped_ms, scoped_rows = scoped_ms + ms, scoped_rows + rows[0][0]
    report["match_in_scope_count"] = {"ms": round(scoped_ms, 2), "rows": scoped_rows}
    report["fts5_nested_statements"] = dict(sorted(nested.items(), key=lambda kv: -kv[1])[:6])
    report["statements"] = []
    for sql in statements:
        ms, rows = timed(sql)
        plan = [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]
        report["statements"].append(
            {"ms": round(ms, 2), "rows": len(rows), "sql": sql[:160] + "…", "plan": plan}
        )
    conn.close()
    return report


def print_explain(report: dict[str, Any]) -> None:
    print(
        f"\n  {report['scope']} / {report['class']} / {report['order']}: {report['query']!r}"
        f" (on {report['index']})"
    )
    print(f"    search() total                         {report['search_ms']:10.2f} ms")
    for name in ("match_text_only_count", "match_in_scope_count"):
        stage = report[name]
        print(f"    {name:<38} {stage['ms']:10.2f} ms  ({stage['rows']:,} rows)")
    print("    statements FTS5 ran inside them (per search):")
    for sql, count in report["fts5_nested_statements"].items():
        print(f"      {count:>9,} x {sql[:90]}")
    for i, st in enumerate(report["statements"], 1):
        print(f"    statement {i}: {st['ms']:10.2f} ms, {st['rows']} rows")
        for line in st["plan"]:
            print(f"      {line}")


# GraphQL, end to end


@contextlib.contextmanager
def server_on(db: Path, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    with (
        tempfile.TemporaryDirectory(prefix="sessionhub-bench-search-server-") as folder,
        running_server(Path(folder), db, extra_env) as server,
    ):
        yield server


def _post(
    client: httpx.Client, token: str, document: str, variables: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter_ns()
    response = client.post(
        "/graphql",
        json={"query": document, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    ms = (time.perf_counter_ns() - t0) / 1e6
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise SystemExit(f"GraphQL request failed: {response.status_code} {str(body)[:400]}")
    return ms, body["data"]


def search_variables(q: Query, order: SearchOrder) -> dict[str, Any]:
    f = q.search_filter
    variables: dict[str, Any] = {"q": q.text, "order": order.value, "first": PAGE}
    if f.chat_app_ids or f.since or f.until:
        variables["filter"] = {
            "chatAppIds": list(f.chat_app_ids) or None,
            "from": f.since.isoformat() if f.since else None,
            "to": f.until.isoformat() if f.until else None,
        }
    return variables


def measure_graphql(
    db: Path, queries: dict[tuple[str, str], list[Query]], orders: list[SearchOrder], budget: float
) -> list[Result]:
    """The same queries through a real server: what a client sees, HTTP and GraphQL
    included. A trivial authenticated query first shows the fixed cost of a request."""
    results = []
    with server_on(db) as server:
        tokens: dict[str, str] = {}
        for group in queries.values():
            for q in group:
                if q.reader.user_id not in tokens:
                    tokens[q.reader.user_id] = reader_token(server, q.reader)
        with httpx.Client(base_url=server.base_url, timeout=300.0) as client:
            kinds = dict.fromkeys(kind for kind, _ in queries)
            for kind in kinds:
                reader = next(g for (k, _), g in queries.items() if k == kind)[0].reader
                samples: list[tuple[float, int, str, float | None]] = []
                for i in range(50 + WARMUP_PER_CLASS):
                    ms, _ = _post(client, tokens[reader.user_id], BASELINE_DOCUMENT, {})
                    if i >= WARMUP_PER_CLASS:
                        samples.append((ms, 0, "chatApps", None))
                results.append(_report(summarize(kind, "baseline", "-", samples, "graphql")))
            for order in orders:
                for (kind, cls), group in queries.items():
                    samples = []
                    started = time.perf_counter()
                    for i, q in enumerate(group):
                        token = tokens[q.reader.user_id]
                        ms, data = _post(client, token, SEARCH_DOCUMENT, search_variables(q, order))
                        if i >= WARMUP_PER_CLASS:
                            hits = len(data["searchSessions"]["edges"])
                            samples.append((ms, hits, q.text, None))
                            if (
                                len(samples) >= MIN_QUERIES
                                and time.perf_counter() - started > budget
                            ):
                                break
                    results.append(_report(summarize(kind, cls, order.value, samples, "graphql")))
    return results


def _report(result: Result) -> Result:
    cpu = "" if result.cpu_p99_ms is None else f"  (cpu p99 {result.cpu_p99_ms:9.2f} ms)"
    print(
        f"  {result.scope:<6} {result.query_class:<9} {result.order:<9} n={result.queries:<4}"
        f" p50 {result.p50_ms:9.2f} ms  p99 {result.p99_ms:9.2f} ms{cpu}  hits {result.mean_hits:5.1f}",
        flush=True,
    )
    return result


def reader_token(server: Server, reader: Reader) -> str:
    roles = ("--roles", "entity-admin") if reader.kind == "admin" else ()
    return token_for(server, reader.user_id, reader.entity_id, *roles)


# Report


def print_table(results: list[Result]) -> None:
    header = (
        "via",
        "scope",
        "class",
        "order",
        "queries",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cpu p50",
        "cpu p99",
        "hits",
        "target",
    )
    rows = [
        (
            r.via, r.scope, r.query_class, r.order, str(r.queries), f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
            f"{r.max_ms:.2f}", "-" if r.cpu_p50_ms is None else f"{r.cpu_p50_ms:.2f}",
            "-" if r.cpu_p99_ms is None else f"{r.cpu_p99_ms:.2f}", f"{r.mean_hits:.1f}",
            "ok" if r.p99_ms < TARGET_P99_MS else "OVER",
        )
        for r in results
    ]  # fmt: skip
    print_aligned(header, rows, left=(0, 1, 2, 3))


def add_corpus_options(parser: argparse.ArgumentParser, default_turns: str) -> None:
    """The corpus's size and seed and where it is kept, as `ensure_corpus` reads them; and
    whether to stop once it is there, and to read it into the page cache before measuring."""
    parser.add_argument(
        "--turns",
        type=parse_size,
        default=parse_size(default_turns),
        help=f"corpus size: 100k, 1M, 10M or a number [{default_turns}]",
    )
    options.add_seed(parser)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"where corpora live [${DATA_DIR_ENV} or {DEFAULT_DATA_DIR}]",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(4, os.cpu_count() or 1),
        help="processes drawing the text (0: in the main process) [nproc, at most 4]",
    )
    parser.add_argument(
        "--force", action="store_true", help="generate even if the disk looks too small"
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="generate (or reuse) the corpus, then stop"
    )
    parser.add_argument(
        "--no-prewarm", action="store_true", help="do not read the file into the page cache first"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_corpus_options(parser, "100k")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a corpus generated before for the same size and seed",
    )
    parser.add_argument(
        "--queries", type=int, default=200, help="measured queries per class, scope and order [200]"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds per class, scope and order, after at least 10 queries [60]",
    )
    parser.add_argument(
        "--orders",
        nargs="+",
        choices=[o.value for o in SearchOrder],
        default=[o.value for o in SearchOrder],
    )
    parser.add_argument("--scopes", nargs="+", choices=SCOPES, default=["user", "admin"])
    parser.add_argument(
        "--graphql", action="store_true", help="also measure through a real `sessionhub serve`"
    )
    parser.add_argument(
        "--graphql-queries", type=int, default=50, help="queries per class through GraphQL [50]"
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="break down the slowest query of every class over the target",
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON results [bench/results/search-<size>.json]"
    )
    args = parser.parse_args(argv)
    if args.queries < 1 or args.graphql_queries < 1:
        parser.error("--queries and --graphql-queries must be at least 1")
    return args


async def measure(
    db: Path, args: argparse.Namespace
) -> tuple[list[Result], dict[tuple[str, str], list[Query]], dict[str, Any]]:
    store = SqliteStore(str(db))  # 4 readers, as the server opens it
    await store.open()
    try:
        rng = random.Random(args.seed + 17)
        readers: dict[str, list[Reader]] = {}
        for kind in args.scopes:
            readers[kind] = readers_for(db, kind, rng)
            for reader in readers[kind]:
                reader.scope = await scope_of(store, reader)
        readers_info = {
            kind: {
                "readers": len(group),
                "entity": group[0].entity_id,
                "sessions_owned": [r.sessions for r in group],
                "shared_in_scope": [len(r.scope.shared_session_ids) for r in group],
            }
            for kind, group in readers.items()
        }
        maker = QueryMaker(db, Vocabulary(args.seed), args.seed + 23)
        queries = make_queries(maker, readers, args.queries)
        maker.close()
        orders = [SearchOrder(o) for o in args.orders]
        # The benchmark's own objects (the vocabulary's draw table alone holds 4M entries)
        # leave the collector's view: a server holds none of them, and each full
        # collection a search triggered would otherwise walk them all.
        gc.collect()
        gc.freeze()
        print("Measuring SqliteStore.search (first: 20) ...", flush=True)
        results = await measure_store(store, queries, orders, args.budget)
        return results, queries, readers_info
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = machine_facts()
    print_machine(facts)

    load_before = os.getloadavg()
    db, corpus = ensure_corpus(args)
    if args.generate_only:
        return 0
    prewarm_s = None if args.no_prewarm else round(prewarm(db), 1)
    results, queries, readers_info = asyncio.run(measure(db, args))
    explained = []
    if args.explain:
        for r in results:
            if r.p99_ms >= TARGET_P99_MS:
                q = next(q for q in queries[(r.scope, r.query_class)] if q.text == r.slowest_query)
                report = explain(db, q, SearchOrder(r.order))
                print_explain(report)
                explained.append(report)
    graphql_results: list[Result] = []
    if args.graphql:
        print("\nMeasuring searchSessions over GraphQL (real server, real HTTP) ...", flush=True)
        trimmed = {k: v[: args.graphql_queries + WARMUP_PER_CLASS] for k, v in queries.items()}
        graphql_results = measure_graphql(
            db, trimmed, [SearchOrder(o) for o in args.orders], args.budget
        )
    print()
    print_table(results + graphql_results)
    machine = {**facts, "loadavg_at_start": load_before, "loadavg_at_end": os.getloadavg()}
    report = {
        **report_header("search", machine),
        "target_p99_ms": TARGET_P99_MS,
        "parameters": {
            "turns": args.turns,
            "seed": args.seed,
            "queries": args.queries,
            "budget_s": args.budget,
            "orders": args.orders,
            "scopes": args.scopes,
            "page": PAGE,
            "vocabulary": VOCABULARY_SIZE,
            "zipf_exponent": ZIPF_EXPONENT,
        },
        "corpus": {**corpus, "path": str(db), "prewarm_s": prewarm_s},
        "readers": readers_info,
        "results": [asdict(r) for r in results + graphql_results],
        "explained": explained,
    }
    output = args.output or RESULTS_DIR / f"search-{size_label(args.turns)}.json"
    write_report(output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
