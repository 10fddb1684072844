"""Operation input errors that pyinfra reports as one line: `OperationInputError` that is also pyinfra's
`OperationValueError`, so a bad argument stops the run with "Operation error in <deploy> line N: <field>:
<cause>" in prepare and at execute alike, instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pyinfra.api.exceptions import OperationValueError

from roles.errors import OperationInputError


class InputError(OperationInputError, OperationValueError):
    """A bad operation or fact argument (field + cause), reported by pyinfra without a traceback."""


@contextmanager
def one_line_input_errors() -> Iterator[None]:
    """Re-raise `OperationInputError`s from shared validators (e.g. roles.dns.records) as `InputError`."""
    try:
        yield
    except InputError:
        raise
    except OperationInputError as e:
        raise InputError(e.cause, **e.fields) from e
