"""data plane contract v1: the dataplane_v1_* views Postfix, Dovecot and the milter read

Revision ID: 0002
Revises: 0001

The SQL is a literal snapshot of `postmeister.dataplane.contract` at this revision, not an
import of it: a later contract change must come with its own migration, and replaying this one
on a fresh database must create exactly what it created the first time. A test checks that
the newest snapshot equals the contract.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# view name -> dialect -> SELECT
VIEWS: dict[str, dict[str, str]] = {
    "dataplane_v1_domains": {
        "sqlite": """
SELECT d.name AS domain FROM domains d
""",
        "postgresql": """
SELECT d.name AS domain FROM domains d
""",
    },
    "dataplane_v1_mailboxes": {
        "sqlite": """
SELECT a.address AS address,
       d.name AS domain,
       a.local_part AS local_part,
       a.quota_bytes AS quota_bytes
FROM addresses a JOIN domains d ON d.id = a.domain_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS address,
       d.name AS domain,
       a.local_part AS local_part,
       a.quota_bytes AS quota_bytes
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
    "dataplane_v1_sender_logins": {
        "sqlite": """
SELECT a.address AS sender, a.address AS login
FROM addresses a WHERE a.kind = 'mailbox'
UNION ALL
SELECT s.pattern AS sender, a.address AS login
FROM sender_permissions s JOIN addresses a ON a.id = s.address_id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS sender, a.address AS login
FROM addresses a WHERE a.kind = 'mailbox'
UNION ALL
SELECT s.pattern AS sender, a.address AS login
FROM sender_permissions s JOIN addresses a ON a.id = s.address_id
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
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, selects in VIEWS.items():
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(f"CREATE VIEW {name} AS\n{selects[dialect].strip()}")


def downgrade() -> None:
    for name in reversed(list(VIEWS)):
        op.execute(f"DROP VIEW IF EXISTS {name}")
