"""Application passwords: extra, revocable, random passwords for one mailbox."""
