"""The connection to the store's database: the client, the collections, whether the server
has transactions (asked with `hello`), and the unit of work that writes atomically.

Atomic writes across collections
--------------------------------
SESSIONHUB_MONGO_TRANSACTIONS says whether to use multi-document transactions: `on`,
`off`, or `detect` (the default), where the store asks the server `hello` at `open`: a
replica set member or a mongos has them. With them, every write that touches several
collections (create a session with its first turn, append a turn, delete a session with
its turns, pins, shares and link visits, create or revoke a share with its audit event,
record a link visit, the expiry sweep, erasing a person's turns in one session) runs in
one transaction (driver.in_transaction), which runs the whole unit again on transient
errors (write conflicts, elections) and commits again on unknown commit results, a
bounded number of times.

A standalone server has no transactions. The same code then runs step by step, ordered so
that an interruption at any point leaves nothing half-done that a reader can see, and so
that running it again (a retry, or the recovery sweep) finishes it:

- Audit events travel in an *outbox*: the write that changes a session, share, link visit
  or template pushes its event into that document's `outbox` array in the same
  single-document update, then copies it into `audit` (an upsert keyed by the event's
  domain id, so a second copy is a no-op) and pulls it from the outbox. A crash in between
  leaves the event in the outbox, where recovery finds it (audit.py, recovery.py).
- Deleting a session first marks it `state: "deleting"` (with its audit event in the
  outbox); sessions.py says what follows.
- A session created with its first turn is inserted hidden (`state: "creating"`); the
  same update that counts the turn reveals it. If the turn fails, the hidden session is
  removed; if the process dies, recovery removes hidden sessions older than an hour.
- Recovery runs at `open` and before every expiry sweep (`expire_due_shares`, which the
  server calls every SESSIONHUB_SHARE_EXPIRY_SWEEP_SECONDS).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ...domain.languages import NO_CONFIGURED_LANGUAGES, Languages
from . import driver, indexes

T = TypeVar("T")

# The driver's session of the transaction a unit of work runs in; None when it runs step
# by step. Every operation of the unit passes it on (`session=`).
DriverSession = Any

# Replica-set members answer `hello` with a setName; mongos with msg "isdbgrid".
MONGOS = "isdbgrid"


class Connection:
    """One database of a Motor client (or of a test double with the same surface), with a
    handle on each collection of the store. `transactions` None means: ask the server
    (`learn_transactions`, at `open`)."""

    def __init__(
        self,
        client: Any,
        database: str,
        *,
        transactions: bool | None = None,
        languages: Languages = NO_CONFIGURED_LANGUAGES,
    ) -> None:
        self.client = client
        self.languages = languages
        """What each chat app's turns and titles are stemmed in (the rest: detected)."""
        self.database = client[database]
        self.sessions = self.database[indexes.SESSIONS]
        self.turns = self.database[indexes.TURNS]
        self.pins = self.database[indexes.PINS]
        self.shares = self.database[indexes.SHARES]
        self.visits = self.database[indexes.LINK_VISITS]
        self.audit = self.database[indexes.AUDIT]
        self.templates = self.database[indexes.TEMPLATES]
        self._transactions = transactions

    @property
    def transactions(self) -> bool:
        """Whether multi-document writes run in transactions (known after `open`)."""
        return bool(self._transactions)

    async def learn_transactions(self) -> None:
        if self._transactions is None:
            self._transactions = await server_has_transactions(self.client)

    async def atomic(self, work: Callable[[DriverSession], Awaitable[T]]) -> T:
        """Run `work(session)` in a transaction when the server has them, else directly
        with session None (work is then written to be safe step by step)."""
        if self._transactions:
            return await driver.in_transaction(self.client, work)
        return await work(None)

    async def ping(self) -> None:
        """A command to the primary, where writes go."""
        await self.database.command("ping")

    def close(self) -> None:
        driver.close(self.client)


async def server_has_transactions(client: Any) -> bool:
    """Whether the server `client` reaches is a replica set member or a mongos."""
    hello = await client.admin.command("hello")
    return bool(hello.get("setName")) or hello.get("msg") == MONGOS
