//! The per-container monitor (placeholder).
