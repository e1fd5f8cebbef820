//! Human-readable and JSON reports of an analysis.
