//! Exact-match cache in front of the megaflow cache.
