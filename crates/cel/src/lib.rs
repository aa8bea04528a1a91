//! The CEL expression environment (in progress).
