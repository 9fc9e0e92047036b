"""`[portal]` settings: defaults, and mistakes named by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jasiyo.config import EXAMPLE, parse
from jasiyo.errors import ConfigError


def test_the_example_config_has_the_portal_defaults(tmp_path: Path) -> None:
    cfg = parse(EXAMPLE.read_text(), tmp_path)
    assert cfg.portal.enabled and cfg.portal.stk_per_phone == 5 and cfg.portal.login_hosts == []


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('url = "ftp://x"', "[portal] url"),
        ("stk_per_phone = 0", "[portal] stk_per_phone"),
        ("page_rate = -1.0", "[portal] page_rate"),
        ('login_hosts = "a"', "[portal] login_hosts"),
    ],
)
def test_bad_portal_settings_are_refused_by_name(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse(f"[portal]\n{text}\n", tmp_path)
