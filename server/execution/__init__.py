"""The one GraphQL execution seam: parse, validation with the full rule set and the limits,
the document cache, and execution (the fast path inside it), for every transport.

- seam.py: `Seam`, what the transports call (HTTP, operations over the WebSocket,
  subscriptions and their events);
- config.py: its one configuration, from the settings;
- documents.py: documents bounded, parsed, measured, validated and cached;
- query_limits.py, list_sizes.py: what an operation may cost, measured before it runs;
- executor.py: the executor class, counting a response's objects against its budget;
- fast_path.py: the fast path for plain fields, and the count of its fallbacks;
- private.py: the names of Strawberry and graphql-core it relies on (the canary's list).
"""

from .config import SeamConfig, seam_config
from .seam import EventRenderer, Operation, Result, Seam, Subscription

__all__ = [
    "EventRenderer",
    "Operation",
    "Result",
    "Seam",
    "SeamConfig",
    "Subscription",
    "seam_config",
]
