"""Mailbox passwords: the policy, random generation, leaked-password lists and hashing."""
