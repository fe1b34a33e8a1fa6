"""Hypothesis strategies for records and field paths, shared by the records-preprocessor tests.

Keys include ones that contain the delimiter (``a.b``), so collisions and nested paths are
both generated.
"""

from __future__ import annotations

from hypothesis import strategies as st

KEYS = st.sampled_from(["a", "b", "c", "a.b", "b.c"])
LEAVES = st.one_of(st.none(), st.integers(-5, 5), st.text("xy", max_size=2))
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(st.dictionaries(KEYS, inner, max_size=3), st.lists(inner, max_size=2)),
    max_leaves=8,
)
RECORDS = st.lists(st.dictionaries(KEYS, VALUES, max_size=4), max_size=4)
PATHS = st.sampled_from(["a", "b", "c", "a.b", "a.c", "b.c", "a.b.c", "c.a", "a.a"])
