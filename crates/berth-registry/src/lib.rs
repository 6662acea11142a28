//! OCI distribution client (placeholder).
