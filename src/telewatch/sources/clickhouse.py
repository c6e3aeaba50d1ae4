"""ClickHouse as a source, read over the native protocol with clickhouse-driver.

Works with old servers (Debian's 18.16, used in the tests) and current ones: timestamps come back as
``toUInt32`` epoch seconds, per-minute buckets use ``toStartOfMinute`` and other steps integer
arithmetic (no ``DateTime64`` or ``toStartOfInterval``). Every query is sent with the settings
``max_execution_time`` then ``readonly=1`` (the server refuses writes, DDL and settings changes),
after :func:`~telewatch.sources.sql_guard.check_read_only` accepted it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from telewatch.sources.base import SqlSource


class ClickHouseSource(SqlSource):
    """Read metrics from ClickHouse.

    >>> import pandas as pd
    >>> src = ClickHouseSource(host="127.0.0.1", table="web.telemetry", value_columns=["rps"],
    ...                        resample=pd.Timedelta("1min"))
    >>> print(src.build_sql()[0])
    SELECT toUInt32(toStartOfMinute(`ts`)) AS __ts, avg(`rps`) AS __v0 FROM `web`.`telemetry` WHERE `ts` >= %(start)s AND `ts` < %(end)s GROUP BY __ts ORDER BY __ts
    """

    kind: ClassVar[str] = "clickhouse"
    dialect: ClassVar[str] = "clickhouse"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 9000,
        user: str = "default",
        password: str | None = None,
        database: str = "default",
        secure: bool = False,
        connect_timeout: float = 10.0,
        log_queries: bool = False,
        **query: Any,
    ) -> None:
        super().__init__(**query)
        #: send ``log_queries=1`` so each query lands in ``system.query_log`` (rows read and returned)
        self.log_queries = log_queries
        #: the ``query_id`` of the last query sent (find it in ``system.query_log``)
        self.last_query_id: str | None = None
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.secure = secure
        self.connect_timeout = connect_timeout

    def secrets(self) -> list[str]:
        return [self.password] if self.password else []

    def describe(self) -> str:
        return f"clickhouse {self.host}:{self.port}/{self.database}"

    def _epoch(self, column: str) -> str:
        return f"toUInt32({column})"

    def _bucket(self, column: str, seconds: int) -> str:
        if seconds == 60:
            return f"toUInt32(toStartOfMinute({column}))"
        return f"intDiv(toUInt32({column}), {int(seconds)}) * {int(seconds)}"

    def _aggregate(self, value: str, ts: str) -> str:
        kind = self.aggregation.kind
        if kind == "first":
            return f"argMin({value}, {ts})"
        if kind == "last":
            return f"argMax({value}, {ts})"
        if kind == "quantile":
            # reservoir sampling over 8192 values, interpolated linearly: exact (as pandas) for
            # buckets of up to 8192 raw rows; the level is a bound parameter
            return f"quantile(%(agg_q)s)({value})"
        return super()._aggregate(value, ts)

    def _in_list(self, column: str, param: str) -> str:
        return f"{column} IN %({param})s"

    def _list_param(self, values: list[str]) -> Any:
        return tuple(values)

    def _execute(self, sql: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        import uuid

        from clickhouse_driver import Client, errors

        settings: dict[str, Any] = {"max_execution_time": int(max(1, self.timeout))}
        if self.log_queries:
            settings["log_queries"] = 1
        # order matters: once readonly=1 is applied the server refuses further settings changes
        settings["readonly"] = 1
        client = Client(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or "",
            database=self.database,
            secure=self.secure,
            connect_timeout=self.connect_timeout,
            send_receive_timeout=self.timeout + 5,
            settings=settings,
        )
        self.last_query_id = f"telewatch-{uuid.uuid4()}"
        try:
            rows, types = client.execute(sql, params, with_column_types=True, query_id=self.last_query_id)
        except errors.NetworkError as exc:
            raise self.error("cannot connect", exc) from None
        except errors.SocketTimeoutError as exc:
            raise self.error(f"no answer within the timeout ({self.timeout:g} s)", exc) from None
        except errors.ServerException as exc:
            if exc.code == 159:  # TIMEOUT_EXCEEDED
                raise self.error(f"the query ran longer than the timeout ({self.timeout:g} s)", exc) from None
            raise self.error("the query failed", exc) from None
        except (errors.Error, OSError, EOFError) as exc:
            raise self.error("the query failed", exc) from None
        finally:
            client.disconnect()
        return [name for name, _ in types], [tuple(r) for r in rows]
