"""Salesforce organization ids, compared exactly.

A 15-character Salesforce id is case-sensitive: ``00Do0000000e0vQ`` and ``00DO0000000E0VQ`` are
different ids. The 18-character form appends three characters that encode the letter case of
the first fifteen (per 5-character chunk, a bitmap of its upper-case letters indexes
``A-Z0-5``), so that tools comparing case-insensitively still tell ids apart. Here both forms
are accepted, but the first fifteen characters must match exactly and the suffix must be the
checksum of their case: an id with any letter's case changed is another id, or no id at all.
"""

from __future__ import annotations

import re
import string

__all__ = ["case_safe_suffix", "org_id_problem", "same_org"]

_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
#: The key prefix of the Organization object.
ORG_PREFIX = "00D"


def case_safe_suffix(id15: str) -> str:
    """The three characters the 18-character form of the 15-character ``id15`` ends with."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def org_id_problem(value: str) -> str | None:
    """Why ``value`` is not a Salesforce organization id (15 or 18 characters), or None."""
    if not _ID.fullmatch(value):
        return "must be the 15- or 18-character organization id (letters and digits)"
    if not value.startswith(ORG_PREFIX):
        return f"an organization id starts with {ORG_PREFIX}"
    if len(value) == 18 and value[15:] != case_safe_suffix(value[:15]):
        return (
            f"its last three characters must be {case_safe_suffix(value[:15])}, the checksum of "
            "the letter case of the first fifteen (copy the id from Setup > Company Information)"
        )
    return None


def same_org(given: str, expected: str) -> bool:
    """True when ``given`` (from a message) names the organization ``expected`` (configured):
    both valid ids whose first fifteen characters are identical, case included."""
    if org_id_problem(given) is not None or org_id_problem(expected) is not None:
        return False
    return given[:15] == expected[:15]
