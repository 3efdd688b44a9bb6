"""Exceptions raised by retain for problems the user can fix."""


class RetainError(ValueError):
    """A user error with a message that says what is wrong and how to fix it."""


class DataNotFoundError(RetainError, FileNotFoundError):
    """Data files are missing; the message says how to get them."""


class RetainWarning(UserWarning):
    """Settings that run but will likely give a bad result; the message says what to change."""
