//! Image references, parsed and normalised the way Docker does.
