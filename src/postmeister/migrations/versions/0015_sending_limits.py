"""sending limits: per mailbox and per domain, counted where every mail node sees them (issue 14)

Revision ID: 0015
Revises: 0014

A package gains eight limits: messages and recipients per hour and per day of each mailbox,
and of each domain's mailboxes together (NULL: no limit). Existing packages get the mailbox
defaults that new packages get (`models.Package`): 200 messages and 500 recipients an
hour, 1,000 messages and 2,500 recipients a day, so that an upgrade closes the hole of a
compromised mailbox sending without end; the domain limits stay NULL. A mailbox may have
its own limits (`sending_limit_overrides`).

The sender milter of every node counts into `sending_counters` and records a deferral in
`sending_limit_hits`; it reads the limits through the new view `dataplane_v1_sending_limits`
(`postmeister.dataplane.contract.SENDING_LIMITS`). No other view changes; `VIEWS` is the
literal snapshot of the whole contract at this revision, as in 0010.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LIMITS = (
    "mailbox_messages_per_hour",
    "mailbox_messages_per_day",
    "mailbox_recipients_per_hour",
    "mailbox_recipients_per_day",
    "domain_messages_per_hour",
    "domain_messages_per_day",
    "domain_recipients_per_hour",
    "domain_recipients_per_day",
)
EXISTING_PACKAGES = {
    "mailbox_messages_per_hour": 200,
    "mailbox_messages_per_day": 1000,
    "mailbox_recipients_per_hour": 500,
    "mailbox_recipients_per_day": 2500,
}

ADDED = ("dataplane_v1_sending_limits",)

# view name -> dialect -> SELECT (the whole contract at this revision)
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
    "dataplane_v1_sending_limits": {
        "sqlite": """
SELECT a.address AS username,
       d.name AS domain,
       COALESCE(o.messages_per_hour, p.mailbox_messages_per_hour) AS messages_per_hour,
       COALESCE(o.messages_per_day, p.mailbox_messages_per_day) AS messages_per_day,
       COALESCE(o.recipients_per_hour, p.mailbox_recipients_per_hour) AS recipients_per_hour,
       COALESCE(o.recipients_per_day, p.mailbox_recipients_per_day) AS recipients_per_day,
       p.domain_messages_per_hour AS domain_messages_per_hour,
       p.domain_messages_per_day AS domain_messages_per_day,
       p.domain_recipients_per_hour AS domain_recipients_per_hour,
       p.domain_recipients_per_day AS domain_recipients_per_day
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN packages p ON p.id = d.package_id
LEFT JOIN sending_limit_overrides o ON o.address_id = a.id
WHERE a.kind = 'mailbox'
""",
        "postgresql": """
SELECT a.address AS username,
       d.name AS domain,
       COALESCE(o.messages_per_hour, p.mailbox_messages_per_hour) AS messages_per_hour,
       COALESCE(o.messages_per_day, p.mailbox_messages_per_day) AS messages_per_day,
       COALESCE(o.recipients_per_hour, p.mailbox_recipients_per_hour) AS recipients_per_hour,
       COALESCE(o.recipients_per_day, p.mailbox_recipients_per_day) AS recipients_per_day,
       p.domain_messages_per_hour AS domain_messages_per_hour,
       p.domain_messages_per_day AS domain_messages_per_day,
       p.domain_recipients_per_hour AS domain_recipients_per_hour,
       p.domain_recipients_per_day AS domain_recipients_per_day
FROM addresses a
JOIN domains d ON d.id = a.domain_id
JOIN packages p ON p.id = d.package_id
LEFT JOIN sending_limit_overrides o ON o.address_id = a.id
WHERE a.kind = 'mailbox'
""",
    },
}


def upgrade() -> None:
    for name in LIMITS:
        op.add_column("packages", sa.Column(name, sa.Integer(), nullable=True))
    packages = sa.table("packages", *(sa.column(name, sa.Integer()) for name in EXISTING_PACKAGES))
    op.execute(packages.update().values(**EXISTING_PACKAGES))
    op.create_table(
        "sending_limit_overrides",
        sa.Column("address_id", sa.Integer(), nullable=False),
        sa.Column("messages_per_hour", sa.Integer(), nullable=True),
        sa.Column("messages_per_day", sa.Integer(), nullable=True),
        sa.Column("recipients_per_hour", sa.Integer(), nullable=True),
        sa.Column("recipients_per_day", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["address_id"],
            ["addresses.id"],
            name=op.f("fk_sending_limit_overrides_address_id_addresses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("address_id", name=op.f("pk_sending_limit_overrides")),
    )
    op.create_table(
        "sending_counters",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("period", sa.String(length=13), nullable=False),
        sa.Column("messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("recipients", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("subject", "period", name=op.f("pk_sending_counters")),
    )
    op.create_table(
        "sending_limit_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=254), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("period", sa.String(length=13), nullable=False),
        sa.Column("limit_name", sa.String(length=32), nullable=False),
        sa.Column("limit_value", sa.Integer(), nullable=False),
        sa.Column(
            "hit_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sending_limit_hits")),
        sa.UniqueConstraint(
            "subject", "period", "limit_name", name=op.f("uq_sending_limit_hits_once")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_sending_limit_hits_reported_at"), "sending_limit_hits", ["reported_at"]
    )
    dialect = op.get_bind().dialect.name
    for name in ADDED:
        op.execute(f"CREATE VIEW {name} AS\n{VIEWS[name][dialect].strip()}")


def downgrade() -> None:
    for name in ADDED:
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index(op.f("ix_sending_limit_hits_reported_at"), table_name="sending_limit_hits")
    op.drop_table("sending_limit_hits")
    op.drop_table("sending_counters")
    op.drop_table("sending_limit_overrides")
    with op.batch_alter_table("packages") as batch:
        for name in reversed(LIMITS):
            batch.drop_column(name)
