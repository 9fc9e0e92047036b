"""Bringing subscribers in from a CSV file or a router, all or nothing, every change named.

Rules:

- **Validate everything first.** Every problem of a file is reported at once, each with its
  line: bad values, repeated usernames, unknown plans, IP addresses used twice in the file
  or by another subscriber already. Nothing is imported while any remain.
- **Name every change.** The result lists each subscriber created and each field changed
  (``alice: plan home -> fast``), so nobody is changed without being named.
- **Credentials are kept.** An existing subscriber's password is replaced only when asked
  (``update_passwords``); otherwise a differing password is reported and kept.
- **Dry run.** ``dry_run`` does the whole import in a transaction that is rolled back: the
  result is exactly what a real run would do.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jasiyo.agent import accounts
from jasiyo.agent import plans as plans_mod
from jasiyo.agent import subscribers as subs
from jasiyo.agent.store import Store
from jasiyo.config import Config
from jasiyo.errors import ValidationError

REQUIRED_COLUMNS = ("username", "password", "plan")
OPTIONAL_COLUMNS = ("service", "ip", "phone", "name", "sms_consent", "tax_pin", "router")
#: Problems listed in one error message at most (the count of the rest is given).
MAX_LISTED = 100
_TRUE = {"1", "yes", "y", "true", "t"}
_FALSE = {"", "0", "no", "n", "false", "f"}


@dataclass(frozen=True, slots=True)
class CsvRows:
    rows: list[subs.NewSubscriber]
    columns: frozenset[str]
    #: username -> line of the file it came from (for errors found later)
    lines: dict[str, int] = field(default_factory=dict)
    #: username -> home router, from the ``router`` column (an empty cell: left alone)
    homes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int
    #: One line per subscriber created or changed, and per password kept.
    changes: tuple[str, ...] = ()
    dry_run: bool = False


def _problems(path: Path | str, errors: Sequence[str]) -> ValidationError:
    more = f"; and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
    return ValidationError(f"{path}: nothing imported, {len(errors)} problem(s): "
                           + "; ".join(errors[:MAX_LISTED]) + more)


def _consent(text: str) -> bool:
    v = text.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValidationError(f"bad sms_consent {text!r}: use yes or no")


def read_csv(path: Path, store: Store | None = None) -> CsvRows:
    """Parse and validate every row; raise one error listing every problem with its line.

    With ``store``, what only the store can tell (unknown plans, addresses in use) is
    checked too and reported in the same error. Returns the rows, the columns the file has
    (an import changes only those) and the line of each username.
    """
    errors: list[str] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [(h or "").strip().lower() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                errors.append(f"line 1: missing column(s) {', '.join(missing)}")
            unknown = [c or "(empty)" for c in header
                       if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
            if unknown:
                errors.append(f"line 1: unknown column(s) {', '.join(unknown)} (known: "
                              f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})")
            repeated = sorted({c for c in header if header.count(c) > 1})
            if repeated:
                errors.append(f"line 1: repeated column(s) {', '.join(repeated)}")
            if errors:
                raise _problems(path, errors)
            reader.fieldnames = header
            for row in reader:
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # a blank line
                if None in row:
                    errors.append(f"line {reader.line_num}: more fields than the header")
                    continue
                rows.append((reader.line_num, row))
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"{path}: cannot read: {exc}") from None
    out: list[subs.NewSubscriber] = []
    seen: dict[str, int] = {}
    homes: dict[str, str] = {}
    known_routers = ({r[0] for r in store.execute("SELECT name FROM routers")}
                     if store is not None else None)
    for lineno, row in rows:
        clean = {k: (v or "").strip() for k, v in row.items() if k}
        try:
            sub = subs.NewSubscriber.build(
                clean["username"], password=clean["password"], plan=clean["plan"],
                service=clean.get("service") or "pppoe", ip=clean.get("ip") or None,
                phone=clean.get("phone") or None, name=clean.get("name") or None,
                sms_consent=_consent(clean.get("sms_consent", "")),
                tax_pin=clean.get("tax_pin") or None,
                country=store.country if store is not None else "KE",
            )
        except ValidationError as exc:
            errors.append(f"line {lineno}: {exc}")
            continue
        if sub.username in seen:
            errors.append(f"line {lineno}: username {sub.username!r} repeats line "
                          f"{seen[sub.username]}")
            continue
        seen[sub.username] = lineno
        out.append(sub)
        router = clean.get("router") or ""
        if router:
            if known_routers is not None and router not in known_routers:
                errors.append(f"line {lineno}: no router named {router!r} (see `jasiyo router "
                              "list`)")
                continue
            homes[sub.username] = router
    if store is not None:
        errors += store_problems(store, out, seen)
    if errors:
        raise _problems(path, sorted(errors, key=_line_of))
    return CsvRows(out, frozenset(header), seen, homes)


def _line_of(error: str) -> int:
    head = error.split(":", 1)[0]
    return int(head[5:]) if head.startswith("line ") and head[5:].isdigit() else 0


def check_rows(store: Store, rows: Sequence[subs.NewSubscriber], lines: dict[str, int],
               source: str) -> None:
    """Raise one error with every problem only the store can show."""
    errors = store_problems(store, rows, lines)
    if errors:
        raise _problems(source, errors)


def store_problems(store: Store, rows: Sequence[subs.NewSubscriber],
                   lines: dict[str, int]) -> list[str]:
    """Unknown plans and IP addresses in use, one line each."""
    known = {p.name for p in plans_mod.list_(store)}
    errors: list[str] = []

    def at(username: str) -> str:
        return f"line {lines[username]}" if username in lines else username

    ips: dict[str, str] = {}
    for r in rows:
        if r.plan not in known:
            errors.append(f"{at(r.username)}: no plan named {r.plan!r}")
        if r.ip:
            first = ips.setdefault(r.ip, r.username)
            if first != r.username:
                errors.append(f"{at(r.username)}: IP {r.ip} is also given to {first!r} "
                              f"({at(first)})")
                continue
            other = store.scalar("SELECT username FROM subscribers WHERE ip = ? "
                                 "AND username != ?", (r.ip, r.username))
            if other and other not in ips.values():
                errors.append(f"{at(r.username)}: IP {r.ip} is already assigned to {other!r}")
    return errors


class _DryRun(Exception):
    """Raised to roll a dry run back."""


def import_rows(
    store: Store, rows: Iterable[subs.NewSubscriber], actor: str,
    progress: Callable[[int], None] | None = None, *,
    cfg: Config, columns: frozenset[str] | None = None, update_passwords: bool = False,
    dry_run: bool = False, lines: dict[str, int] | None = None, source: str = "import",
    homes: dict[str, str] | None = None,
) -> ImportResult:
    """Create or update every row in one transaction; rows already identical are skipped.

    For an existing subscriber only ``columns`` (default: all) are compared and changed, so
    a file without a phone column leaves phones alone. A plan change goes through billing
    (prorated, :func:`accounts.update`), exactly as ``subscriber update --plan`` does.
    ``homes`` (the ``router`` column) sets home routers, as ``subscriber update --router``
    does.
    """
    from jasiyo.agent import pops

    compared = set(columns) if columns is not None else set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    rows = list(rows)
    changes: list[str] = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    try:
        with store.transaction():
            check_rows(store, rows, lines or {}, source)
            for i, r in enumerate(rows):
                _one(store, r, actor, compared, update_passwords, cfg, changes, counts)
                home = (homes or {}).get(r.username)
                if home is not None:
                    moved = pops.set_home(store, r.username, home, actor, how="csv")
                    if moved["changed"]:
                        changes.append(f"{r.username}: home router "
                                       f"{moved.get('from_router') or '-'} -> {home}")
                if progress:
                    progress(i + 1)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return ImportResult(counts["created"], counts["updated"], counts["unchanged"],
                        tuple(changes), dry_run)


def _one(store: Store, r: subs.NewSubscriber, actor: str, compared: set[str],
         update_passwords: bool, cfg: Config, changes: list[str],
         counts: dict[str, int]) -> None:
    existing = store.one("SELECT s.*, p.name AS plan FROM subscribers s JOIN plans p "
                         "ON p.id = s.plan_id WHERE s.username = ?", (r.username,))
    if existing is None:
        plan_id = plans_mod.get(store, r.plan).id
        subs._insert(store, r, plan_id, actor, how="csv")
        changes.append(f"{r.username}: created on plan {r.plan}")
        counts["created"] += 1
        return
    current = subs.get(store, r.username)
    wanted = r.public()
    have = {k: getattr(current, k) for k in wanted}
    diff = {k: v for k, v in wanted.items() if k in compared and have[k] != v}
    for k, v in diff.items():
        changes.append(f"{r.username}: {k} {have[k] if have[k] is not None else '-'} -> "
                       f"{v if v is not None else '-'}")
    if "password" in compared:
        pw = store.unseal(existing["password_enc"], subs.password_context(r.username))
        if pw != r.password:
            if update_passwords:
                diff["password"] = r.password
                changes.append(f"{r.username}: password replaced")
            else:
                changes.append(f"{r.username}: password differs, kept "
                               "(--update-passwords replaces it)")
    if not diff:
        counts["unchanged"] += 1
        return
    accounts.update(store, cfg, r.username, actor, plan=diff.pop("plan", None), how="csv",
                    **diff)
    counts["updated"] += 1
