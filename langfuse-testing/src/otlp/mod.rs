//! OTLP trace exports: decoding (§2), what the server reads from a span (§4) and the two write
//! paths, legacy events merged into the v3 tables and `events_full` rows (§4.1, §5).

pub(crate) mod decode;
pub(crate) mod direct_path;
pub(crate) mod legacy_path;
pub(crate) mod mapping;

pub(crate) use decode::Export;
