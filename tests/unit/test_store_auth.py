"""The tokens-and-sessions repository (store/auth.py) on a real store: what each read finds and skips."""

from __future__ import annotations

from datetime import datetime, timedelta

from telewatch.store import auth
from telewatch.store.db import Store

T0 = datetime(2026, 1, 5, 12, 0, 0)


def _token(store: Store, name: str, *, scope: str = "admin", expires_at: datetime | None = None) -> int:
    with store.transaction() as con:
        return auth.insert_token(
            con, name=name, scope=scope, token_sha256="h-" + name, created_at=T0, expires_at=expires_at
        ).id


def test_tokens_by_name_and_hash_and_their_state(store: Store) -> None:
    con = store.cursor()
    first = _token(store, "ci")
    _token(store, "old", scope="read", expires_at=T0 + timedelta(days=1))
    assert auth.token_name_taken(con, "ci")
    assert not auth.token_name_taken(con, "nobody")
    assert [t.name for t in auth.list_tokens(con)] == ["ci", "old"]
    match = auth.token_with_hash(con, "h-ci")
    assert match is not None
    assert match.token.id == first
    assert match.token_sha256 == "h-ci"
    assert auth.token_with_hash(con, "h-unknown") is None
    # "old" expires a day after T0: active before, not after
    assert auth.count_active_tokens(con, now=T0) == 2
    assert auth.count_active_tokens(con, now=T0 + timedelta(days=2)) == 1
    auth.touch_token(con, first, at=T0 + timedelta(minutes=5))
    found = auth.token_named(con, "ci")
    assert found is not None
    assert found.last_used_at == T0 + timedelta(minutes=5)
    with store.transaction() as tx:
        revoked = auth.mark_revoked(tx, first, at=T0 + timedelta(hours=1))
    assert revoked.revoked_at == T0 + timedelta(hours=1)
    assert revoked.state == "revoked"
    assert auth.count_active_tokens(con, now=T0) == 1
    assert auth.token_named(con, "nobody") is None


def test_bootstrap_hash_only_while_it_is_the_one_unused_admin_token(store: Store) -> None:
    con = store.cursor()
    boot = _token(store, "admin-20260105-1200")
    assert auth.unused_bootstrap_token_hash(con, name_prefix="admin-", now=T0) == "h-admin-20260105-1200"
    _token(store, "second", scope="read")
    assert auth.unused_bootstrap_token_hash(con, name_prefix="admin-", now=T0) is None  # not alone
    with store.transaction() as tx:
        auth.mark_revoked(tx, auth.list_tokens(tx)[1].id, at=T0)
    assert auth.unused_bootstrap_token_hash(con, name_prefix="admin-", now=T0) is not None
    auth.touch_token(con, boot, at=T0)
    assert auth.unused_bootstrap_token_hash(con, name_prefix="admin-", now=T0) is None  # used


def test_sessions_live_until_they_expire_and_go_when_deleted(store: Store) -> None:
    con = store.cursor()
    with store.transaction() as tx:
        auth.save_session(
            tx, session_sha256="s1", token_sha256="t1", created_at=T0, expires_at=T0 + timedelta(hours=1)
        )
        auth.save_session(tx, session_sha256="s2", token_sha256="t2", created_at=T0, expires_at=T0)
    found = auth.live_session(con, "s1", now=T0)
    assert found is not None
    assert found[0] == "t1"
    assert found[1] == (T0 + timedelta(hours=1) - datetime(1970, 1, 1)).total_seconds()
    assert auth.live_session(con, "s1", now=T0 + timedelta(hours=1)) is None  # expired at its expiry
    assert auth.live_session(con, "s2", now=T0) is None
    with store.transaction() as tx:
        auth.delete_expired_sessions(tx, now=T0)
    rows = con.execute("SELECT session_sha256 FROM ui_sessions ORDER BY 1").fetchall()
    assert rows == [("s1",)]
    with store.transaction() as tx:
        auth.delete_session(tx, "s1")
    assert auth.live_session(con, "s1", now=T0) is None
