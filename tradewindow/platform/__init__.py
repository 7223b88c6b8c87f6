"""The floor every context stands on: settings, database, ids, money, calendar, errors, auth
primitives, audit log, outbox events and the job queue."""
