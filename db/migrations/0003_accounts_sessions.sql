-- People and their tokens, managed while the service runs. A token is stored only as its
-- SHA-256 hash; the service looks an account up by that hash on every request.
CREATE TABLE accounts (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('handlaggare', 'policy', 'analytiker', 'admin')),
    -- 'test': a token used for test checks, which the audit can leave out.
    purpose      TEXT NOT NULL DEFAULT 'normal' CHECK (purpose IN ('normal', 'test')),
    token_sha256 BLOB NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    revoked_by   TEXT
) STRICT;
-- One active account per name, so the access log's actor names one person.
CREATE UNIQUE INDEX accounts_active_name ON accounts (name) WHERE revoked_at IS NULL;

-- Web sign-ins. The cookie holds a random session id; only its SHA-256 hash is stored.
-- Signing out, revoking the account's token or staying idle too long ends a session.
CREATE TABLE sessions (
    id_sha256  BLOB PRIMARY KEY CHECK (length(id_sha256) = 32),
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- Unix seconds of the last request, for the idle timeout.
    last_seen  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_by_account ON sessions (account_id);

-- The account an administrative action (create, revoke, sign-in) was about.
ALTER TABLE access_log ADD COLUMN account_id INTEGER;
