"""dkim_keys, and the contract views OpenDKIM signs from (issue 14)

Revision ID: 0013
Revises: 0012

`dkim_keys` holds each domain's DKIM keys (private key PEM, public key, selector, when a
rotation retired it and until when it stays published). Two new contract views,
`dataplane_v1_dkim_rsa_keys` and `dataplane_v1_dkim_ed25519_keys`, give OpenDKIM the one
signing key per domain and algorithm (its KeyTable, keyed by domain); the other views keep
their meaning. No keys are made here (a migration has no business generating secrets): the
`dkim-keys` scheduler job gives every domain without one its keys (see
`postmeister.domain.dkim.service.ensure_keys`).

The SQL is a literal snapshot of `postmeister.dataplane.contract` at this revision, not an
import of it (see 0002). Downgrading drops the two views and the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ADDED = ("dataplane_v1_dkim_rsa_keys", "dataplane_v1_dkim_ed25519_keys")

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
    "dataplane_v1_alias_domains": {
        "sqlite": """
SELECT a.name AS alias_domain, m.name AS domain
FROM domains a JOIN domains m ON m.id = a.alias_of_id
""",
        "postgresql": """
SELECT a.name AS alias_domain, m.name AS domain
FROM domains a JOIN domains m ON m.id = a.alias_of_id
""",
    },
    "dataplane_v1_catchall": {
        "sqlite": """
SELECT d.name AS domain, c.target AS target
FROM domains d JOIN catchall_targets c ON c.domain_id = d.id
UNION ALL
SELECT a.name AS domain, c.target AS target
FROM domains a JOIN catchall_targets c ON c.domain_id = a.alias_of_id
""",
        "postgresql": """
SELECT d.name AS domain, c.target AS target
FROM domains d JOIN catchall_targets c ON c.domain_id = d.id
UNION ALL
SELECT a.name AS domain, c.target AS target
FROM domains a JOIN catchall_targets c ON c.domain_id = a.alias_of_id
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
    "dataplane_v1_dkim_rsa_keys": {
        "sqlite": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'rsa' AND k.retired_at IS NULL
""",
        "postgresql": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'rsa' AND k.retired_at IS NULL
""",
    },
    "dataplane_v1_dkim_ed25519_keys": {
        "sqlite": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'ed25519' AND k.retired_at IS NULL
""",
        "postgresql": """
SELECT d.name AS domain, k.selector AS selector, k.private_key AS private_key
FROM dkim_keys k JOIN domains d ON d.id = k.domain_id
WHERE k.algorithm = 'ed25519' AND k.retired_at IS NULL
""",
    },
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=False),
        sa.Column("selector", sa.String(length=63), nullable=False),
        sa.Column("algorithm", sa.String(length=10), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_dkim_keys_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dkim_keys")),
        sa.UniqueConstraint("domain_id", "selector", name="uq_dkim_keys_domain_selector"),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_dkim_keys_domain_id"), "dkim_keys", ["domain_id"])
    for name in ADDED:
        op.execute(f"CREATE VIEW {name} AS\n{VIEWS[name][dialect].strip()}")


def downgrade() -> None:
    for name in ADDED:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(op.f("ix_dkim_keys_domain_id"), table_name="dkim_keys")
    op.drop_table("dkim_keys")
