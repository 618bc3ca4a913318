"""customers.suspended_at, api_tokens.revoked_at and last_used_at; contract v1: suspension

Revision ID: 0009
Revises: 0008

A customer can be suspended (issue 12): its mailboxes can no longer log in (IMAP, POP3,
SMTP AUTH) and therefore cannot send, while mail for them is still accepted and delivered.
`dataplane_v1_logins` and `dataplane_v1_app_passwords` drop the rows of a suspended
customer's mailboxes; every column keeps its meaning, and "no row" already meant "may not
log in", so the contract stays v1. API tokens are revoked by setting `revoked_at` (kept for
the record) and remember when they were last used (`last_used_at`, written at most once a
minute per token).

The SQL is a literal snapshot of `postmeister.dataplane.contract` at this revision, not an
import of it (see 0002): every view is recreated, so this snapshot alone says what the
contract is. Downgrading restores the two views as 0007 defined them, then drops the columns
(SQLite 3.35+ drops a column in place: no table rebuild, so no cascade can fire).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

CHANGED = ("dataplane_v1_logins", "dataplane_v1_app_passwords")
COLUMNS = (
    ("customers", "suspended_at"),
    ("api_tokens", "revoked_at"),
    ("api_tokens", "last_used_at"),
)

# view name -> dialect -> SELECT
VIEWS: dict[str, dict[str, str]] = {
    "dataplane_v1_domains": {
        "sqlite": """
SELECT d.name AS domain, d.customer_id AS customer_id FROM domains d
""",
        "postgresql": """
SELECT d.name AS domain, d.customer_id AS customer_id FROM domains d
""",
    },
    "dataplane_v1_mailboxes": {
        "sqlite": """
SELECT a.address AS address,
       d.name AS domain,
       a.local_part AS local_part,
       a.quota_bytes AS quota_bytes,
       CASE WHEN a.subaddress_extension THEN 1 ELSE 0 END AS subaddress_extension
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS address,
       d.name AS domain,
       a.local_part AS local_part,
       a.quota_bytes AS quota_bytes,
       CASE WHEN a.subaddress_extension THEN 1 ELSE 0 END AS subaddress_extension
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
    },
    "dataplane_v1_aliases": {
        "sqlite": """
SELECT a.address AS address, t.target AS target
FROM addresses a JOIN forward_targets t ON t.address_id = a.id
UNION ALL
SELECT a.address AS address, a.address AS target
FROM addresses a
WHERE a.kind = 'mailbox' AND EXISTS (SELECT 1 FROM forward_targets t WHERE t.address_id = a.id)
""",
        "postgresql": """
SELECT a.address AS address, t.target AS target
FROM addresses a JOIN forward_targets t ON t.address_id = a.id
UNION ALL
SELECT a.address AS address, a.address AS target
FROM addresses a
WHERE a.kind = 'mailbox' AND EXISTS (SELECT 1 FROM forward_targets t WHERE t.address_id = a.id)
""",
    },
    "dataplane_v1_logins": {
        "sqlite": """
SELECT a.address AS username,
       a.password_hash AS password_hash,
       CASE
         WHEN substr(a.password_hash, 1, 10) = '$argon2id$' THEN 'ARGON2ID'
         WHEN substr(a.password_hash, 1, 9) = '$argon2i$' THEN 'ARGON2I'
         ELSE 'CRYPT'
       END AS password_scheme,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
WHERE a.kind = 'mailbox' AND a.password_hash IS NOT NULL AND a.password_hash <> ''
  AND c.suspended_at IS NULL
""",
        "postgresql": """
SELECT a.address AS username,
       a.password_hash AS password_hash,
       CASE
         WHEN substr(a.password_hash, 1, 10) = '$argon2id$' THEN 'ARGON2ID'
         WHEN substr(a.password_hash, 1, 9) = '$argon2i$' THEN 'ARGON2I'
         ELSE 'CRYPT'
       END AS password_scheme,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
WHERE a.kind = 'mailbox' AND a.password_hash IS NOT NULL AND a.password_hash <> ''
  AND c.suspended_at IS NULL
""",
    },
    "dataplane_v1_app_passwords": {
        "sqlite": """
SELECT a.address AS username,
       p.secret_hash AS secret_sha256,
       p.id AS app_password_id,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM app_passwords p JOIN addresses a ON a.id = p.address_id
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
WHERE a.kind = 'mailbox' AND c.suspended_at IS NULL
""",
        "postgresql": """
SELECT a.address AS username,
       p.secret_hash AS secret_sha256,
       p.id AS app_password_id,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM app_passwords p JOIN addresses a ON a.id = p.address_id
JOIN domains d ON d.id = a.domain_id
JOIN customers c ON c.id = d.customer_id
WHERE a.kind = 'mailbox' AND c.suspended_at IS NULL
""",
    },
    "dataplane_v1_sender_logins": {
        "sqlite": """
SELECT a.address AS sender, a.address AS login, d.customer_id AS customer_id
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
UNION ALL
SELECT s.pattern AS sender, a.address AS login, d.customer_id AS customer_id
FROM sender_permissions s
JOIN addresses a ON a.id = s.address_id
JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS sender, a.address AS login, d.customer_id AS customer_id
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
UNION ALL
SELECT s.pattern AS sender, a.address AS login, d.customer_id AS customer_id
FROM sender_permissions s
JOIN addresses a ON a.id = s.address_id
JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
    },
    "dataplane_v1_recipient_policies": {
        "sqlite": """
SELECT a.address AS address, a.kind AS kind, a.antispam AS antispam
FROM addresses a
""",
        "postgresql": """
SELECT a.address AS address, a.kind AS kind, a.antispam AS antispam
FROM addresses a
""",
    },
    "dataplane_v1_autoresponders": {
        "sqlite": """
SELECT a.address AS username,
       a2.text AS text,
       CASE WHEN a2.active THEN 1 ELSE 0 END AS active,
       substr(a2.activates, 1, 10) AS activates,
       substr(a2.expires, 1, 10) AS expires,
       CAST(a2.address_id AS TEXT) || '-'
         || strftime('%Y%m%d%H%M%f', a2.updated_at) AS version
FROM autoresponders a2 JOIN addresses a ON a.id = a2.address_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS username,
       a2.text AS text,
       CASE WHEN a2.active THEN 1 ELSE 0 END AS active,
       to_char(a2.activates, 'YYYY-MM-DD') AS activates,
       to_char(a2.expires, 'YYYY-MM-DD') AS expires,
       CAST(a2.address_id AS TEXT) || '-'
         || to_char(a2.updated_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS') AS version
FROM autoresponders a2 JOIN addresses a ON a.id = a2.address_id
WHERE a.kind = 'mailbox'
""",
    },
    "dataplane_v1_sieve_scripts": {
        "sqlite": """
SELECT a.address AS username,
       'postmeister' AS script_name,
       a.address AS script_id,
       'require ["date", "fileinto", "mailbox", "relational", "vacation"];' || char(10)
       || CASE WHEN a.antispam = 'junk-folder' THEN
            'if header :is "X-Spam" "Yes" {' || char(10)
            || '  fileinto :create "Junk";' || char(10) || '  stop;' || char(10) || '}' || char(10)
          ELSE '' END
       || CASE WHEN r.active THEN
            'if allof(not header :is "X-Spam" "Yes"'
            || CASE WHEN r.activates IS NULL THEN ''
                 ELSE ', currentdate :value "ge" "date" "' || r.activates || '"' END
            || CASE WHEN r.expires IS NULL THEN ''
                 ELSE ', currentdate :value "lt" "date" "' || r.expires || '"' END
            || ') {' || char(10) || '  vacation :days 7 text:' || char(10)
            || r.body
            || CASE WHEN r.body = '' OR substr(r.body, -1) = char(10) THEN '' ELSE char(10) END
            || '.' || char(10) || ';' || char(10) || '}' || char(10)
          ELSE '' END AS script
FROM addresses a
LEFT JOIN (
  SELECT address_id,
         active,
         substr(activates, 1, 10) AS activates,
         substr(expires, 1, 10) AS expires,
         substr(replace(
                  char(10) || replace(replace(text, char(13) || char(10), char(10)),
                                  char(13), char(10)),
                  char(10) || '.', char(10) || '..'),
                2) AS body
  FROM autoresponders
) r ON r.address_id = a.id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS username,
       'postmeister' AS script_name,
       a.address AS script_id,
       'require ["date", "fileinto", "mailbox", "relational", "vacation"];' || chr(10)
       || CASE WHEN a.antispam = 'junk-folder' THEN
            'if header :is "X-Spam" "Yes" {' || chr(10)
            || '  fileinto :create "Junk";' || chr(10) || '  stop;' || chr(10) || '}' || chr(10)
          ELSE '' END
       || CASE WHEN r.active THEN
            'if allof(not header :is "X-Spam" "Yes"'
            || CASE WHEN r.activates IS NULL THEN ''
                 ELSE ', currentdate :value "ge" "date" "' || r.activates || '"' END
            || CASE WHEN r.expires IS NULL THEN ''
                 ELSE ', currentdate :value "lt" "date" "' || r.expires || '"' END
            || ') {' || chr(10) || '  vacation :days 7 text:' || chr(10)
            || r.body
            || CASE WHEN r.body = '' OR right(r.body, 1) = chr(10) THEN '' ELSE chr(10) END
            || '.' || chr(10) || ';' || chr(10) || '}' || chr(10)
          ELSE '' END AS script
FROM addresses a
LEFT JOIN (
  SELECT address_id,
         active,
         to_char(activates, 'YYYY-MM-DD') AS activates,
         to_char(expires, 'YYYY-MM-DD') AS expires,
         substr(replace(
                  chr(10) || replace(replace(text, chr(13) || chr(10), chr(10)),
                                  chr(13), chr(10)),
                  chr(10) || '.', chr(10) || '..'),
                2) AS body
  FROM autoresponders
) r ON r.address_id = a.id
WHERE a.kind = 'mailbox'
""",
    },
}

PREVIOUS: dict[str, dict[str, str]] = {
    "dataplane_v1_logins": {
        "sqlite": """
SELECT a.address AS username,
       a.password_hash AS password_hash,
       CASE
         WHEN substr(a.password_hash, 1, 10) = '$argon2id$' THEN 'ARGON2ID'
         WHEN substr(a.password_hash, 1, 9) = '$argon2i$' THEN 'ARGON2I'
         ELSE 'CRYPT'
       END AS password_scheme,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM addresses a
WHERE a.kind = 'mailbox' AND a.password_hash IS NOT NULL AND a.password_hash <> ''
""",
        "postgresql": """
SELECT a.address AS username,
       a.password_hash AS password_hash,
       CASE
         WHEN substr(a.password_hash, 1, 10) = '$argon2id$' THEN 'ARGON2ID'
         WHEN substr(a.password_hash, 1, 9) = '$argon2i$' THEN 'ARGON2I'
         ELSE 'CRYPT'
       END AS password_scheme,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM addresses a
WHERE a.kind = 'mailbox' AND a.password_hash IS NOT NULL AND a.password_hash <> ''
""",
    },
    "dataplane_v1_app_passwords": {
        "sqlite": """
SELECT a.address AS username,
       p.secret_hash AS secret_sha256,
       p.id AS app_password_id,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM app_passwords p JOIN addresses a ON a.id = p.address_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS username,
       p.secret_hash AS secret_sha256,
       p.id AS app_password_id,
       CASE WHEN a.submission_disabled THEN 1 ELSE 0 END AS submission_disabled
FROM app_passwords p JOIN addresses a ON a.id = p.address_id
WHERE a.kind = 'mailbox'
""",
    },
}


def _create(name: str, select: str) -> None:
    op.execute(f"DROP VIEW IF EXISTS {name}")
    # The Sieve scripts contain tags (`:is`), which text() would take for bind parameters
    # unless the colons are escaped.
    create = f"CREATE VIEW {name} AS\n{select.strip()}"
    op.execute(sa.text(create.replace(":", "\\:")))


def _drop_views() -> None:
    # SQLite checks every view when a table of theirs changes; none may name a column
    # while it is added or dropped, so all are dropped around the change.
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _drop_views()
    for table, column in COLUMNS:
        op.add_column(table, sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    for name, selects in VIEWS.items():
        _create(name, selects[dialect])


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    _drop_views()
    for table, column in reversed(COLUMNS):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    for name, selects in VIEWS.items():
        _create(name, PREVIOUS.get(name, selects)[dialect])
