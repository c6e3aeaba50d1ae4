"""PostgreSQL (and TimescaleDB-style tables) as a source, read with psycopg 3.

Every query runs in a READ ONLY transaction of a session opened with
``default_transaction_read_only=on`` and a ``statement_timeout``, after
:func:`~telewatch.sources.sql_guard.check_read_only` accepted it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from telewatch.sources.base import SqlSource


class PostgresSource(SqlSource):
    """Read metrics from PostgreSQL.

    >>> src = PostgresSource(host="127.0.0.1", database="tel", table="web", metric_column="metric")
    >>> print(src.build_sql()[0])
    SELECT extract(epoch from "ts")::float8 AS __ts, "metric", "value" FROM "web" WHERE "ts" >= %(start)s AND "ts" < %(end)s ORDER BY __ts
    """

    kind: ClassVar[str] = "postgres"
    dialect: ClassVar[str] = "postgres"

    def __init__(
        self,
        *,
        dsn: str | None = None,
        host: str | None = None,
        port: int = 5432,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        connect_timeout: float = 10.0,
        **query: Any,
    ) -> None:
        super().__init__(**query)
        self.dsn = dsn
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.connect_timeout = connect_timeout

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.dsn if self.dsn and "password" in self.dsn else None) if s]

    def describe(self) -> str:
        where = f"{self.host}:{self.port}/{self.database}" if self.host else "dsn"
        return f"postgres {where}"

    def _epoch(self, column: str) -> str:
        return f"extract(epoch from {column})::float8"

    def _bucket(self, column: str, seconds: int) -> str:
        if seconds == 60:
            return f"extract(epoch from date_trunc('minute', {column}))::float8"
        return f"(floor(extract(epoch from {column}) / {int(seconds)}) * {int(seconds)})::float8"

    def _aggregate(self, value: str, ts: str) -> str:
        kind = self.aggregation.kind
        if kind in {"first", "last"}:
            # the earliest / latest non-NULL value of the bucket (pandas' first/last skip NaN too):
            # min/max of [epoch, value] pairs — arrays compare element by element — costs what avg()
            # costs; array_agg(... ORDER BY ts) sorts every bucket on its own (3x slower on 15)
            pick = "min" if kind == "first" else "max"
            pair = f"ARRAY[extract(epoch from {ts})::float8, ({value})::float8]"
            return f"({pick}({pair}) FILTER (WHERE {value} IS NOT NULL))[2]"
        if kind == "quantile":
            return f"percentile_cont(%(agg_q)s::float8) WITHIN GROUP (ORDER BY ({value})::float8)"
        return super()._aggregate(value, ts)

    def _in_list(self, column: str, param: str) -> str:
        return f"{column} = ANY(%({param})s)"

    def _list_param(self, values: list[str]) -> Any:
        return list(values)

    def _connect(self) -> Any:
        import psycopg

        kwargs: dict[str, Any] = {
            "connect_timeout": max(1, int(self.connect_timeout)),
            "options": (
                "-c default_transaction_read_only=on"
                f" -c statement_timeout={int(self.timeout * 1000)}"
                " -c TimeZone=UTC"
            ),
            "application_name": "telewatch",
        }
        for key, value in (
            ("host", self.host),
            ("port", self.port if self.host else None),
            ("user", self.user),
            ("password", self.password),
            ("dbname", self.database),
        ):
            if value is not None:
                kwargs[key] = value
        return psycopg.connect(self.dsn or "", **kwargs)

    def _execute(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        import psycopg

        try:
            con = self._connect()
        except (psycopg.Error, ValueError) as exc:  # also a malformed DSN or connection parameter
            raise self.error("cannot connect", exc) from None
        try:
            con.read_only = True
            with con.cursor() as cur:
                cur.execute(sql, params)
                columns = [d.name for d in cur.description or []]
                rows = cur.fetchall()
            con.rollback()
            return columns, rows
        except psycopg.errors.QueryCanceled as exc:
            raise self.error(f"the query ran longer than the timeout ({self.timeout:g} s)", exc) from None
        except psycopg.Error as exc:
            raise self.error("the query failed", exc) from None
        finally:
            con.close()
