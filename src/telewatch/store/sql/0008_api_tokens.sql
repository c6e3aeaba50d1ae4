-- API tokens: name, scope and the SHA-256 hash of the token (never the token itself)
CREATE SEQUENCE api_token_id_seq START 1;
CREATE TABLE api_tokens (
    id            INTEGER PRIMARY KEY DEFAULT nextval('api_token_id_seq'),
    name          VARCHAR NOT NULL UNIQUE,
    scope         VARCHAR NOT NULL,            -- read | admin
    token_sha256  VARCHAR NOT NULL UNIQUE,     -- hex SHA-256 of the token
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    last_used_at  TIMESTAMP,
    expires_at    TIMESTAMP,                   -- NULL: never expires
    revoked_at    TIMESTAMP                    -- NULL: active
);
