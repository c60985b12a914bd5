"""Free text (titles, contents) as PostgreSQL can hold it.

PostgreSQL's `text` cannot hold NUL, which JSON and SQLite allow; a message
must come back exactly as it was pushed, whichever store holds it. So a
string with a NUL (or one starting with the marker) is stored as the marker
followed by its JSON encoding; every other string is stored as it is, so the
hot paths pay one `startswith` per field.
"""

from __future__ import annotations

import json

_MARK = "\x01"


def to_db(value: str) -> str:
    if "\x00" in value or value.startswith(_MARK):
        return _MARK + json.dumps(value)
    return value


def from_db(value: str) -> str:
    if value.startswith(_MARK):
        decoded: str = json.loads(value[1:])
        return decoded
    return value
