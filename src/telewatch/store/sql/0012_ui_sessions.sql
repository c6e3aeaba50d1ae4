-- UI sign-ins (api/auth.py SessionStore): the SHA-256 of the session cookie's random id (never the id
-- itself, so a copy of the store cannot be used to sign in) and the hash of the token it was opened with;
-- kept so that a restart of `telewatch serve` does not sign everyone out
CREATE TABLE ui_sessions (
    session_sha256  VARCHAR PRIMARY KEY,
    token_sha256    VARCHAR NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    expires_at      TIMESTAMP NOT NULL
);
