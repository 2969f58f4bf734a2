"""The errors a user can cause and fix (bad sources, a busy or damaged store): shown as one message, no traceback."""
from __future__ import annotations


class UserError(Exception):
    """Base of every error whose message alone tells the user what went wrong and what to do."""
