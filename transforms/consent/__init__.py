"""Consent, licence and takedown: machine-readable reservations, licences and blocklists."""
