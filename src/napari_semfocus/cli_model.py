"""``semfocus`` subcommands about models: make-dataset, train, evaluate (added as they land)."""

from __future__ import annotations


def register(sub) -> None:
    """Add this module's subcommands to the ``semfocus`` parser."""
