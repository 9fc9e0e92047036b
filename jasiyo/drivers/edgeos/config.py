"""EdgeOS configuration as text: ``set`` lines in, a tree out, and back.

``show configuration commands`` prints one ``set a b c value`` line per leaf value; values
holding spaces or shell-special characters are single-quoted. :func:`parse_commands` turns
that into a :data:`Tree` where every word is a node, so a leaf's value is its only child
(``{"system": {"host-name": {"gw1": {}}}}``) and a multi-valued leaf has several children.
The driver and the simulator share this module so both sides quote and split the same way.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence

from jasiyo.errors import ValidationError

#: Nested dict: word -> subtree; a leaf value is a key whose subtree is empty.
Tree = dict[str, "Tree"]

#: The value :func:`leaves` gives a valueless node (``disable``), so "" can mean "absent".
FLAG = "(set)"

_PLAIN = re.compile(r"^[A-Za-z0-9_.:/@+,=-]+$")


def quote(word: str) -> str:
    """``word`` as EdgeOS prints it: bare when plain, else in single quotes.

    Raises ``ValidationError`` for a value EdgeOS cannot hold (a quote or a line break),
    so a subscriber's odd plan name fails loudly instead of breaking the batch script.
    """
    if "'" in word or "\n" in word or "\r" in word:
        raise ValidationError(f"value {word!r} cannot be written to EdgeOS (quote or newline)")
    return word if _PLAIN.match(word) else f"'{word}'"


def join(words: Sequence[str]) -> str:
    """A command line from words, quoting each as needed."""
    return " ".join(quote(w) for w in words)


def split(line: str) -> list[str]:
    """The words of one command line (shell quoting rules); ``ValidationError`` if unbalanced."""
    if not any(c in line for c in "'\"\\"):
        return line.split()  # the common case, and shlex is slow on 20,000-line configs
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise ValidationError(f"cannot split {line!r}: {exc}") from None


def parse_commands(text: str) -> Tree:
    """The tree of a ``show configuration commands`` listing; other lines are ignored."""
    tree: Tree = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("set "):
            continue
        node = tree
        for word in split(line)[1:]:
            node = node.setdefault(word, {})
    return tree


def walk(tree: Tree, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every full path (root to a node without children), depth first, in insertion order."""
    for word, sub in tree.items():
        path = (*prefix, word)
        if sub:
            yield from walk(sub, path)
        else:
            yield path


def format_commands(tree: Tree) -> str:
    """The tree as ``set`` lines, the way ``show configuration commands`` prints it."""
    return "".join(f"set {join(path)}\n" for path in walk(tree))


def get(tree: Tree, *path: str) -> Tree:
    """The subtree at ``path``, or an empty dict when any step is missing."""
    node = tree
    for word in path:
        node = node.get(word, {})
        if not node:
            return {}
    return node


def value(tree: Tree, *path: str) -> str:
    """The single value of the leaf at ``path`` ("" when absent; the first if several)."""
    return next(iter(get(tree, *path)), "")


def leaves(tree: Tree, prefix: tuple[str, ...] = ()) -> dict[str, str]:
    """``{"a b": "value"}`` for every single-valued leaf below ``tree``, keyed by its path.

    A node's last word is taken as the value, so ``{"bandwidth": {"10mbit": {}}}`` gives
    ``{"bandwidth": "10mbit"}``. A valueless node (``disable``) gets the value :data:`FLAG`.
    """
    out: dict[str, str] = {}
    for path in walk(tree, prefix):
        if len(path) > len(prefix) + 1:
            out[" ".join(path[len(prefix) : -1])] = path[-1]
        else:
            out[" ".join(path[len(prefix) :])] = FLAG
    return out
