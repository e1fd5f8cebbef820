//! Tuple-space-search classifier: rules grouped into subtables by mask, searched in priority order.
