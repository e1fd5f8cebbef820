//! MAC learning table for the `normal` action.
