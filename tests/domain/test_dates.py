from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sessionhub.domain.dates import DateGroup, date_group, time_zone
from sessionhub.domain.errors import InvalidInput

# Wednesday 2026-11-25, 10:00 UTC.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
UTC_ZONE = time_zone("UTC")


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 11, 25, 0, 1, tzinfo=UTC), DateGroup.TODAY),
        (datetime(2026, 11, 24, 23, 59, tzinfo=UTC), DateGroup.YESTERDAY),
        (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), DateGroup.THIS_WEEK),  # Monday
        (datetime(2026, 11, 22, 8, 0, tzinfo=UTC), DateGroup.LAST_WEEK),  # Sunday
        (datetime(2026, 11, 16, 0, 0, tzinfo=UTC), DateGroup.LAST_WEEK),
        (datetime(2026, 11, 15, 23, 0, tzinfo=UTC), DateGroup.THIS_MONTH),
        (datetime(2026, 11, 1, 0, 0, tzinfo=UTC), DateGroup.THIS_MONTH),
        (datetime(2026, 10, 31, 23, 0, tzinfo=UTC), DateGroup.OLDER),
    ],
)
def test_groups_in_utc(moment: datetime, expected: DateGroup) -> None:
    assert date_group(moment, NOW, UTC_ZONE) is expected


def test_the_callers_zone_decides_the_day() -> None:
    # 23:30 UTC on the 24th is already the 25th in Tokyo and still the 24th in New York.
    moment = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    assert date_group(moment, now, time_zone("Asia/Tokyo")) is DateGroup.TODAY
    assert date_group(moment, now, time_zone("America/New_York")) is DateGroup.TODAY
    assert date_group(moment, now, UTC_ZONE) is DateGroup.YESTERDAY


def test_unknown_zone_is_bad_input() -> None:
    with pytest.raises(InvalidInput):
        time_zone("Mars/Olympus_Mons")
    with pytest.raises(InvalidInput):
        time_zone("../../etc/passwd")
