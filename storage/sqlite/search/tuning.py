"""How SQLite's search chooses its way of answering, as one value the store is given.

The defaults are what the store runs with (measured with bench/search.py). Every path
gives the same results where it is exact, so tests shrink the bounds to run each path on a
small corpus. None of it is a setting: `time_block_shift` is part of a file's layout, and
the others trade one cost for another at sizes that only the benchmark shows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SearchTuning:
    broad_matches: int = 10_000
    """Newest first: up to this many matching rows in scope, the page comes from all of
    them; beyond, from walking the newest readable sessions."""

    walk_steps: tuple[int, ...] = (64, 256, 1024)
    """Sessions checked per step when walking the newest sessions (the last size repeats)."""

    walk_max_steps: int = 6
    """After this many steps (about 4,400 sessions at the default sizes) the walk hands
    over to the exact path."""

    since_rows_max: int = 2_000
    """A walk step reads the index rows written since its sessions' first turns when
    there are at most this many (and names the tokens of the sessions begun before such a
    stretch)."""

    since_split_resolution: int = 16
    """The split between that stretch and the named sessions is found to within 1/this of
    the walked sessions (a count per halving: 4 or 5 of them rather than 10 at 1,024
    sessions)."""

    ranked_rows: int = 200
    """By relevance: up to this many matching rows are all scored; beyond, the newest
    this many."""

    listed_max: int = 1_000
    """Up to this many matches of a broad ranked query are listed to place its window;
    beyond, the window is found by counting (listing costs per row, wasted when there are
    more)."""

    window_probes: int = 12
    """At most this many counts to place the window, in each of its two phases."""

    phrase_index: bool = True
    """Whether a query of phrases only is answered through the phrase index (search_pairs)
    rather than through the positions of the main index; both find the same rows."""

    time_block_shift: int = 12
    """Turn rowids per block of turn_time_blocks, as a power of two (4,096). Part of the
    file's layout: migration 0008 fills the table with blocks of this size and every turn
    written adds to one, so a file is always read with the size it was written with; only
    a new file (in tests) may use another."""
