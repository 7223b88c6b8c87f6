"""Customs: declarations, agency tasks, selectivity, assessment, release."""
