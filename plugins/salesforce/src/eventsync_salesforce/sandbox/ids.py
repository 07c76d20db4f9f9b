"""Salesforce record ids: 15-character ids with the 3-character case-safe suffix.

Hand-written because the algorithm is tiny and no maintained library provides it: for each
5-character chunk of the 15-character id, a bitmap of its upper-case letters indexes the
alphabet ``A-Z0-5``.
"""

from __future__ import annotations

import itertools
import string
import threading

_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def case_safe(id15: str) -> str:
    """Return the 18-character form of a 15-character id."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if char.isupper():
                bits |= 1 << position
        suffix += _SUFFIX_ALPHABET[bits]
    return id15 + suffix


def normalise(value: str) -> str | None:
    """An 18-character id for a 15- or 18-character id, or None when it is not an id."""
    if not isinstance(value, str) or len(value) not in (15, 18) or not value.isalnum():
        return None
    full = case_safe(value[:15])
    if len(value) == 18 and value.lower() != full.lower():
        return None
    return full


def _base62(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits)).rjust(width, "0")


class IdFactory:
    """Issues unique ids with an object's key prefix (``00Q`` for Lead ...); thread-safe."""

    def __init__(self, pod: str = "5g", start: int = 1) -> None:
        self._pod = pod
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        """A fresh 18-character id starting with ``prefix``."""
        with self._lock:
            number = next(self._counter)
        return case_safe(prefix + self._pod + _base62(number, 10))

    def peek(self) -> int:
        """The next counter value (for persistence)."""
        with self._lock:
            number = next(self._counter)
            self._counter = itertools.count(number)
        return number
