"""Sidebar date groups, computed in the caller's time zone."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidInput


class DateGroup(enum.StrEnum):
    TODAY = "TODAY"
    YESTERDAY = "YESTERDAY"
    THIS_WEEK = "THIS_WEEK"
    LAST_WEEK = "LAST_WEEK"
    THIS_MONTH = "THIS_MONTH"
    OLDER = "OLDER"


def time_zone(name: str | None) -> ZoneInfo:
    if not name:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        # OSError: a name that is a folder of the zone database, or too long for a path.
        raise InvalidInput(
            f"Unknown time zone {name!r}; use an IANA name such as 'Europe/Paris'."
        ) from exc


def date_group(moment: datetime, now: datetime, zone: ZoneInfo) -> DateGroup:
    """The first group that holds `moment`, weeks starting on Monday.

    A day of last week that is also in this month counts as LAST_WEEK: the groups are
    tried in the order a sidebar shows them.
    """
    day = moment.astimezone(zone).date()
    today = now.astimezone(zone).date()
    if day >= today:
        return DateGroup.TODAY
    if day == today - timedelta(days=1):
        return DateGroup.YESTERDAY
    week_start = today - timedelta(days=today.weekday())
    if day >= week_start:
        return DateGroup.THIS_WEEK
    if day >= week_start - timedelta(days=7):
        return DateGroup.LAST_WEEK
    if day >= today.replace(day=1):
        return DateGroup.THIS_MONTH
    return DateGroup.OLDER
