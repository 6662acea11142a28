//! Container networking (placeholder).
