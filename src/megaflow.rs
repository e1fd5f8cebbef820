//! Megaflow cache: masked subtables of flow keys, ranked by hits.
