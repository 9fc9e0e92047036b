from __future__ import annotations

from pathlib import Path

import pytest

from jasiyo import config
from jasiyo.errors import ConfigError


def test_example_config_loads_and_documents_every_key() -> None:
    cfg = config.load(config.EXAMPLE)
    assert cfg.radius.auth_port == 1812 and cfg.radius.acct_port == 1813
    text = config.EXAMPLE.read_text()
    # every setting of every section appears, commented, in the example
    from dataclasses import fields

    for section in ("agent", "radius", "billing", "routers", "sync"):
        assert f"[{section}]" in text
        for f in fields(getattr(cfg, section)):
            assert f"\n{f.name} = " in text, f"[{section}] {f.name} missing from example"


def test_relative_data_dir_resolves_against_config_folder(tmp_path: Path) -> None:
    p = tmp_path / "etc" / "j.toml"
    p.parent.mkdir()
    p.write_text('[agent]\ndata_dir = "../var/jasiyo"\n')
    assert config.load(p).data_dir == (tmp_path / "var" / "jasiyo").resolve()


def test_env_var_selects_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "x.toml"
    p.write_text("[radius]\nauth_port = 11812\n")
    monkeypatch.setenv("JASIYO_CONFIG", str(p))
    assert config.load().radius.auth_port == 11812


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[radius]\nauth_port = 'x'\n", "[radius] auth_port: expected a whole number"),
        ("[radius]\nauth_port = 70000\n", "[radius] auth_port: 70000 is not a UDP port"),
        ("[radius]\nauth_prot = 1\n", "[radius] auth_prot: unknown setting"),
        ("[radius]\nsuspended_action = 'drop'\n", "[radius] suspended_action"),
        ("[radius]\nwalled_garden_rate = 'fast'\n", "[radius] walled_garden_rate: bad rate"),
        ("[radios]\n", "[radios]: unknown section"),
        ("[radius\n", "is not valid TOML"),
        ("[agent]\nlog_level = 'loud'\n", "[agent] log_level"),
        ("[sync]\ncloud_url = 'http://10.0.0.1:8600'\n", "[sync] cloud_url: cloud URL"),
        ("[radius]\nstale_after_missed_interims = 0\n", "stale_after_missed_interims"),
        ("[radius]\naccounting_retention_days = 7\n", "accounting_retention_days"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(p)
    assert expected in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[billing]\nenforce_interval = nan\n", "[billing] enforce_interval: expected a finite"),
        ("[billing]\nenforce_interval = inf\n", "[billing] enforce_interval"),
        ("[radius]\ncoa_timeout = -inf\n", "[radius] coa_timeout"),
        ("[routers]\ntimeout = nan\n", "[routers] timeout"),
        ("[radius]\ninterim_interval = 1099511627776\n", "[radius] interim_interval"),
        ("[radius]\ninterim_interval = 100000\n", "[radius] interim_interval: 100000 is out"),
        ("[billing]\ngrace_days = 1000000000\n", "[billing] grace_days"),
        ("[billing]\nterminate_after_days = 99999999999999\n", "[billing] terminate_after_days"),
        ("[billing]\nreminder_days = [3, 100000]\n", "[billing] reminder_days"),
        ("[radius]\naccounting_retention_days = 10000000\n", "accounting_retention_days"),
        ("[billing]\nreminder_days = " + "[" * 100_000 + "]" * 100_000 + "\n", "nested too deeply"),
        (
            "[billing]\nreminder_days = " + "[" * 40 + "1" + "]" * 40 + "\n",
            "[billing] reminder_days: expected a whole number, got a list",
        ),
        ("[agent]\nname = " + "[" * 40 + "]" * 40 + "\n", "[agent] name: expected a string"),
        ("[sync]\ncloud_url = 'http://127.0.0.1.nip.io'\n", "[sync] cloud_url"),
        ("[sync]\ncloud_url = 'http://127.evil.example'\n", "[sync] cloud_url"),
        ("[sync]\ncloud_url = 'http://[::1'\n", "[sync] cloud_url"),
    ],
)
def test_hostile_config_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(p)
    assert expected in str(err.value) and len(str(err.value)) < 300


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8600", "http://localhost:8600", "http://[::1]:8600", "http://127.1.2.3"]
)
def test_loopback_cloud_urls_still_pass(url: str) -> None:
    assert config.check_cloud_url(url) == url


def test_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "missing.toml")
    d = tmp_path / "dir.toml"
    d.mkdir()
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(d)


def test_there_is_one_example_config() -> None:
    """The packaged example (what `jasiyo init` copies) is the only copy: the one at the top
    of the repository, which the README and scripts/agent name, is a link to it."""
    top = Path(__file__).resolve().parents[2] / "config.example.toml"
    assert top.is_symlink(), "config.example.toml must stay a link to jasiyo/config.example.toml"
    assert top.resolve() == config.EXAMPLE.resolve()
