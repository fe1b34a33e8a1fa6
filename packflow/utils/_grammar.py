"""Wording helpers for error messages."""

from __future__ import annotations

__all__ = ["with_article"]


def with_article(noun: str) -> str:
    """``noun`` with its indefinite article, by its first letter: "an int", "a str"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
