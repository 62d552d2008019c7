"""structlog set up once, as the settings say: readable lines, or JSON for machines."""

from __future__ import annotations

import logging

import structlog


def configure_logging(level: str, json: bool) -> None:
    numeric = logging.getLevelNamesMapping()[level.upper()]
    logging.basicConfig(level=numeric, format="%(message)s")
    # The PDF renderer's font subsetter narrates every glyph at INFO.
    for chatty in ("fontTools", "fpdf"):
        logging.getLogger(chatty).setLevel(max(numeric, logging.WARNING))
    renderer = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
