"""Exceptions raised by retain for problems the user can fix, and warnings for settings that
run but will likely give a bad result."""

import os
import sys
import warnings


class RetainError(ValueError):
    """A user error with a message that says what is wrong and how to fix it."""


class DataNotFoundError(RetainError, FileNotFoundError):
    """Data files are missing; the message says how to get them."""


class RetainWarning(UserWarning):
    """Settings that run but will likely give a bad result; the message says what to change."""


def warn(message: str, category: type[Warning] = RetainWarning) -> None:
    """Warn at the first line outside retain on the call stack, the user's call, however deep
    in retain it is raised (``learn``, ``run`` and its recorder, a strategy's hook), where a
    fixed ``stacklevel`` would point at retain's own code on some of those paths."""
    root = os.path.dirname(__file__) + os.sep
    frame, level = sys._getframe(1), 2  # level 2: warn()'s caller
    while frame.f_back is not None and frame.f_code.co_filename.startswith(root):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
