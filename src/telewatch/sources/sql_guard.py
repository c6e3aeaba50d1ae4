"""Refuse any SQL that is not one read-only SELECT, before it reaches the server.

This is the first of two locks: the sources also open the server side read-only (PostgreSQL
``default_transaction_read_only`` and a READ ONLY transaction, ClickHouse ``readonly=1``), so a
statement that slipped past this tokeniser would still be refused by the server.

The tokeniser understands string literals ('..', E'..', $tag$..$tag$), quoted identifiers ("..",
`..`) and comments (``--``, ``#`` for ClickHouse, ``/* */``), so keywords inside them do not count
and a ``;`` inside a literal is not a statement separator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telewatch.core.errors import TelewatchError


class SourceError(TelewatchError):
    """A source could not be read (server down, query refused, timeout). The message is redacted."""


class QueryRefusedError(SourceError, ValueError):
    """A query was refused before it was sent: not a single read-only statement."""


# Statements and clauses that write, change settings or the schema, or reach outside the database.
FORBIDDEN_KEYWORDS = frozenset(
    {
        "insert", "update", "delete", "merge", "upsert", "truncate", "drop", "create", "alter", "rename",
        "attach", "detach", "optimize", "grant", "revoke", "set", "reset", "settings", "system", "kill",
        "copy", "call", "execute", "prepare", "deallocate", "listen", "notify", "lock", "vacuum", "reindex",
        "into", "outfile", "commit", "rollback", "savepoint",
    }
)  # fmt: skip

# Functions that write, sleep the server, read its files or reach other servers.
FORBIDDEN_FUNCTIONS = frozenset(
    {
        # PostgreSQL
        "set_config", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile",
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "lo_import", "lo_export",
        "lo_create", "lo_unlink", "lo_put", "lo_from_bytea", "dblink", "dblink_exec", "dblink_connect",
        "nextval", "setval", "pg_advisory_lock", "pg_advisory_xact_lock", "pg_sleep", "pg_sleep_for",
        "pg_sleep_until", "txid_current", "pg_switch_wal", "pg_create_restore_point", "query_to_xml",
        "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml", "dblink_send_query",
        "dblink_open", "pg_notify", "lo_open", "lowrite", "lo_truncate", "lo_import_with_oid", "pg_file_write",
        "pg_logical_emit_message", "pg_create_logical_replication_slot", "pg_create_physical_replication_slot",
        "pg_drop_replication_slot", "pg_promote", "pg_stat_reset", "pg_backup_start", "pg_start_backup",
        "pg_ls_logdir", "pg_ls_waldir", "pg_ls_tmpdir", "pg_current_logfile",
        # ClickHouse table functions that read files or other servers
        "file", "url", "remote", "remotesecure", "cluster", "clusterallreplicas", "mysql", "postgresql",
        "jdbc", "odbc", "hdfs", "s3", "s3cluster", "input", "executable", "azureblobstorage", "sqlite",
        "mongodb", "redis", "dictionary", "sleep", "sleepeachrow", "urlcluster", "gcs", "hdfscluster",
        "azureblobstoragecluster", "deltalake", "iceberg", "hudi", "mariadb",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str  # word, string, ident, number, punct, param
    text: str
    pos: int


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_PYFORMAT = re.compile(r"%\((\w+)\)s|%s|%%")


def tokenize(sql: str, *, dialect: str = "postgres") -> list[Token]:
    """Split ``sql`` into tokens; comments vanish, literals and quoted identifiers stay whole.

    >>> [t.text for t in tokenize("SELECT 'a;b' -- x; DROP\\nFROM t /* ; */;")]
    ['SELECT', "'a;b'", 'FROM', 't', ';']
    """
    tokens: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i) or (c == "#" and dialect == "clickhouse"):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
        elif sql.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:  # PostgreSQL nests block comments
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise QueryRefusedError(f"unterminated /* comment at character {i + 1}")
            i = j
        elif c in "'\"`" or (c in "eE" and i + 1 < n and sql[i + 1] == "'"):
            start = i
            if c in "eE":
                i += 1
            quote = sql[i]
            j = i + 1
            while True:
                if j >= n:
                    what = "string" if quote == "'" else "quoted identifier"
                    raise QueryRefusedError(f"unterminated {what} at character {start + 1}")
                if sql[j] == "\\" and (dialect == "clickhouse" or c in "eE"):
                    j += 2
                    continue
                if sql[j] == quote:
                    if j + 1 < n and sql[j + 1] == quote:  # doubled quote
                        j += 2
                        continue
                    break
                j += 1
            tokens.append(Token("string" if quote == "'" else "ident", sql[start : j + 1], start))
            i = j + 1
        elif c == "$" and dialect == "postgres" and (m := _DOLLAR_TAG.match(sql, i)):
            tag = m.group(0)
            j = sql.find(tag, m.end())
            if j < 0:
                raise QueryRefusedError(f"unterminated dollar-quoted string at character {i + 1}")
            tokens.append(Token("string", sql[i : j + len(tag)], i))
            i = j + len(tag)
        elif c == "%" and (m := _PYFORMAT.match(sql, i)):
            tokens.append(Token("param", m.group(0), i))
            i = m.end()
        elif m := _WORD.match(sql, i):
            tokens.append(Token("word", m.group(0), i))
            i = m.end()
        elif c.isdigit() or (c == "." and i + 1 < n and sql[i + 1].isdigit()):
            m2 = _NUMBER.match(sql, i)
            end = m2.end() if m2 else i + 1
            tokens.append(Token("number", sql[i:end], i))
            i = end
        else:
            tokens.append(Token("punct", c, i))
            i += 1
    return tokens


def check_read_only(sql: str, *, dialect: str = "postgres") -> str:
    """Return ``sql`` without a trailing ``;`` if it is one read-only SELECT; else raise.

    Raises :class:`~telewatch.sources.base.QueryRefusedError` saying why and where.

    >>> check_read_only("SELECT ts, value FROM m WHERE ts >= %(start)s;")
    'SELECT ts, value FROM m WHERE ts >= %(start)s'
    >>> check_read_only("SELECT 1; DROP TABLE m")
    Traceback (most recent call last):
    ...
    telewatch.sources.sql_guard.QueryRefusedError: only one statement is allowed; a second one starts at character 11 ('DROP')
    """
    if dialect not in {"postgres", "clickhouse"}:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    tokens = tokenize(sql, dialect=dialect)
    # a trailing ; (or several) is harmless; any other ; separates statements
    end = len(tokens)
    while end and tokens[end - 1].text == ";":
        end -= 1
    body = tokens[:end]
    if not body:
        raise QueryRefusedError("the query is empty")
    for k, tok in enumerate(body):
        if tok.text == ";":
            nxt = body[k + 1]
            raise QueryRefusedError(
                f"only one statement is allowed; a second one starts at character {nxt.pos + 1} ({nxt.text!r})"
            )
    first = body[0].text.lower()
    if body[0].kind != "word" or first not in {"select", "with"}:
        raise QueryRefusedError(f"only SELECT queries are allowed, this one starts with {body[0].text!r}")
    _check_parentheses(body)
    for k, tok in enumerate(body):
        following = body[k + 1].text if k + 1 < len(body) else ""
        if tok.kind == "ident" and following == "(":
            # a quoted name called as a function ("pg_sleep"(5), `file`(...)) is still that function
            name = tok.text[1:-1].lower()
            if name in FORBIDDEN_FUNCTIONS:
                raise QueryRefusedError(f"function {tok.text}() is not allowed (character {tok.pos + 1})")
            continue
        if tok.kind != "word":
            continue
        word = tok.text.lower()
        if word == "u" and following == "&":  # U&"p\0067_sleep": escapes would hide any name
            raise QueryRefusedError(
                f"U& (Unicode-escaped) names and strings are not allowed (character {tok.pos + 1})"
            )
        if word in FORBIDDEN_FUNCTIONS and following == "(":
            # checked for qualified names too: pg_catalog.pg_sleep(5) is pg_sleep(5)
            raise QueryRefusedError(f"function {tok.text}() is not allowed (character {tok.pos + 1})")
        prev = body[k - 1].text if k else ""
        if prev == ".":  # a column qualified by a table/schema: t.set, s.comment
            continue
        if word in FORBIDDEN_KEYWORDS and following != "(" and not _is_alias_position(body, k):
            raise QueryRefusedError(
                f"{tok.text.upper()} is not allowed in a read-only query (character {tok.pos + 1}); "
                "quote the identifier if it is a column name"
            )
    return sql[: body[-1].pos + len(body[-1].text)].strip()


def _check_parentheses(tokens: list[Token]) -> None:
    """Refuse unbalanced parentheses: the query is wrapped as ``(query) AS __q``, and ``SELECT 1) UNION
    (SELECT 2`` would step out of that wrapper (and out of its time-range filter)."""
    depth = 0
    for tok in tokens:
        if tok.kind != "punct":
            continue
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
            if depth < 0:
                raise QueryRefusedError(f"unbalanced ')' at character {tok.pos + 1}")
    if depth:
        raise QueryRefusedError(f"{depth} unclosed '(' in the query")


def _is_alias_position(tokens: list[Token], k: int) -> bool:
    """``AS start`` or ``AS comment``: a word right after AS is an alias, not a keyword."""
    return k > 0 and tokens[k - 1].text.lower() == "as"


def parameters(sql: str, *, dialect: str = "postgres") -> set[str]:
    """Names of the ``%(name)s`` bind parameters the query uses.

    >>> sorted(parameters("SELECT * FROM t WHERE ts >= %(start)s AND ts < %(end)s"))
    ['end', 'start']
    """
    return {
        t.text[2:-2] for t in tokenize(sql, dialect=dialect) if t.kind == "param" and t.text.startswith("%(")
    }


def quote_identifier(name: str, *, dialect: str = "postgres") -> str:
    """Quote a table or column name (``schema.table`` is split on dots).

    >>> quote_identifier("web.telemetry", dialect="clickhouse")
    '`web`.`telemetry`'
    >>> quote_identifier('we"ird')
    '"we""ird"'
    """
    if not name or not name.strip():
        raise QueryRefusedError("an identifier cannot be empty")
    if "\x00" in name or "%" in name:
        # % would be read as a bind parameter marker by the drivers; NUL ends strings in the servers
        raise QueryRefusedError(f"the identifier {name[:80]!r} contains '%' or a NUL character")
    parts = name.split(".") if re.fullmatch(r"[\w.]+", name) else [name]
    if dialect == "clickhouse":
        return ".".join("`" + p.replace("\\", "\\\\").replace("`", "\\`") + "`" for p in parts)
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)
