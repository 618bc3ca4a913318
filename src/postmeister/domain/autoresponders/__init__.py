"""Autoresponders (vacation replies): the date logic and the job that settles due switches."""
