"""What a catalog query may be: one reading statement, checked with DuckDB's own parser.

``EXPLAIN ANALYZE`` runs the statement it explains, so an EXPLAIN is only as harmless as the
statement inside it: that one is cut out with DuckDB's tokenizer and checked the same way.
"""

from __future__ import annotations

import duckdb

# DESCRIBE / SHOW / SUMMARIZE parse as SELECT
READ_ONLY_STATEMENTS = {"SELECT", "EXPLAIN"}
# words between EXPLAIN and the statement it explains (EXPLAIN ANALYZE, EXPLAIN (FORMAT json) ...)
_EXPLAIN_WORDS = {"explain", "analyze", "analyse", "verbose"}


class ReadOnlyQueryError(ValueError):
    """A catalog query tried to do more than read the pipeline's tables."""


def _refuse(kind: str) -> ReadOnlyQueryError:
    return ReadOnlyQueryError(
        f"{kind} statements are not allowed: the catalog is read-only (SELECT, DESCRIBE, SHOW, SUMMARIZE, "
        f"EXPLAIN); write results with --out FILE")


def explained_statement(sql: str) -> str:
    """The statement an EXPLAIN explains: what follows EXPLAIN, its ANALYZE / VERBOSE words and
    a parenthesized option list, found with DuckDB's tokenizer (comments and case handled)."""
    tokens = duckdb.tokenize(sql)
    ends = [offset for offset, _ in tokens[1:]] + [len(sql)]
    depth = 0
    for (offset, kind), end in zip(tokens, ends):
        text = sql[offset:end].strip().lower()
        if kind == duckdb.token_type.comment:
            continue
        if depth or (kind == duckdb.token_type.operator and text == "("):
            depth += {"(": 1, ")": -1}.get(text, 0)
            continue
        if kind == duckdb.token_type.keyword and text in _EXPLAIN_WORDS:
            continue
        return sql[offset:]
    return ""


def check_statement(con: duckdb.DuckDBPyConnection, statement, nesting: int = 0) -> None:
    kind = statement.type.name
    if kind not in READ_ONLY_STATEMENTS:
        raise _refuse(kind)
    if kind == "EXPLAIN":
        inner_sql = explained_statement(statement.query)
        try:
            inner = con.extract_statements(inner_sql)
        except duckdb.Error as exc:
            raise ReadOnlyQueryError(f"cannot parse the statement inside EXPLAIN: {exc}") from exc
        if len(inner) != 1 or nesting > 2:
            raise ReadOnlyQueryError(f"cannot tell which statement EXPLAIN explains in {statement.query!r}")
        check_statement(con, inner[0], nesting + 1)


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse every statement that is not a read (COPY, ATTACH, CREATE, SET, INSTALL, LOAD...),
    directly or inside EXPLAIN: even inside the allowed folders, ``COPY ... TO`` could overwrite a
    pipeline table. One statement per query, so no result is silently left unprinted."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlyQueryError(f"cannot parse the query: {exc}") from exc
    if not statements:
        raise ReadOnlyQueryError("empty query")
    for st in statements:  # a write anywhere is named first: that is the refusal that matters
        check_statement(con, st)
    if len(statements) > 1:
        raise ReadOnlyQueryError(f"{len(statements)} statements given; ptok sql runs one at a time (run each on its own)")
