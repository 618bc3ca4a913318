"""The audit trail: who changed what, when, written in the transaction of the change."""
