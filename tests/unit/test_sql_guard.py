"""The read-only SQL guard: one SELECT passes, anything that writes or escapes is refused with a reason."""

from __future__ import annotations

import pytest

from telewatch.sources.sql_guard import (
    QueryRefusedError,
    check_read_only,
    parameters,
    quote_identifier,
    tokenize,
)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ts, value FROM m WHERE ts >= %(start)s AND ts < %(end)s",
        "select 1;",
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "SELECT 'DROP TABLE t; DELETE' AS s",  # keywords inside a literal
        'SELECT "update", "set" FROM t',  # quoted identifiers
        "SELECT 1 -- ; DROP TABLE t\n",
        "SELECT /* ; INSERT */ 1",
        "SELECT $$ ; drop $$ AS body",
        "SELECT replace(name, 'a', 'b') AS start FROM t",  # replace() is a function; start an alias
        "SELECT t.comment, t.set FROM t",
        "SELECT ts, metric, value FROM m FORMAT JSON",
    ],
)
def test_read_only_selects_pass(sql: str) -> None:
    assert check_read_only(sql).rstrip(";") == check_read_only(sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT 1; SELECT 2", "only one statement"),
        ("SELECT 1; DROP TABLE t", "only one statement"),
        ("DROP TABLE t", "only SELECT"),
        ("DELETE FROM t", "only SELECT"),
        ("INSERT INTO t VALUES (1)", "only SELECT"),
        ("UPDATE t SET a = 1", "only SELECT"),
        ("CREATE TABLE x AS SELECT 1", "only SELECT"),
        ("TRUNCATE t", "only SELECT"),
        ("SET readonly = 0", "only SELECT"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "DELETE"),
        ("SELECT * INTO new_table FROM t", "INTO"),
        ("SELECT * FROM t INTO OUTFILE 'x'", "INTO"),
        ("SELECT * FROM t SETTINGS max_threads = 1", "SETTINGS"),
        ("SELECT * FROM t FOR UPDATE", "UPDATE"),
        ("SELECT pg_sleep(100)", "pg_sleep"),
        ("SELECT set_config('x', 'y', false)", "set_config"),
        ("SELECT * FROM url('http://evil/', CSV, 'a String')", "url"),
        ("SELECT 'unterminated", "unterminated string"),
        ("SELECT 1 /* open", "unterminated"),
        ("", "empty"),
        (";", "empty"),
    ],
)
def test_anything_else_is_refused_with_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(QueryRefusedError, match=reason):
        check_read_only(sql, dialect="clickhouse" if "url(" in sql or "SETTINGS" in sql else "postgres")


def test_clickhouse_hash_comments_and_backslash_escapes() -> None:
    assert [t.text for t in tokenize("SELECT 'a\\';b' # ; DROP", dialect="clickhouse")] == [
        "SELECT",
        "'a\\';b'",
    ]
    check_read_only("SELECT 'it\\'s; fine' AS s # ; DROP TABLE t", dialect="clickhouse")


def test_bind_parameters_and_identifiers() -> None:
    assert parameters("SELECT %(start)s, %(end)s, '%(not)s'") == {"start", "end"}
    assert quote_identifier("db.tbl") == '"db"."tbl"'
    assert quote_identifier("a`b", dialect="clickhouse") == "`a\\`b`"
    with pytest.raises(QueryRefusedError):
        quote_identifier(" ")
