"""Titles: transferable electronic records — the railway bill of lading (DESIGN.md §4.5).

A bill has exactly one holder at a time. Its history is a hash chain of records, each signed with
Ed25519 by the party that acted; the heads of every chain are published periodically, so a record
rewritten in the database shows even when its hashes were recomputed and re-signed."""
