"""SQL string literals: the project's only quoting (standard library only).

Here, in the domain, so that the feature spec (which writes event type names into its SQL) and
the adapters (paths in ``COPY ... TO``, ``SET``) quote the one same way without the spec
importing an engine.
"""

from __future__ import annotations


def sql_string(value) -> str:
    """``value`` (a path, a name, any text) as one SQL string literal: the project's only quoting.

    Use it wherever a value cannot be a bound parameter (``COPY ... TO``, ``SET``); anywhere
    else, pass the value as a parameter.
    """
    return "'" + str(value).replace("'", "''") + "'"
