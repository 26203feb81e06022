//! Examples of pool: see the `[[example]]` entries.
