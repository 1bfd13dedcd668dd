//! Where periods go: the terminal view, NDJSON recordings (and reading
//! them back), the Prometheus exposition and SVG plots.
pub(crate) mod ndjson;
pub(crate) mod plot;
pub(crate) mod prometheus;
pub(crate) mod recording;
pub(crate) mod tui;
pub(crate) mod view;

#[cfg(test)]
mod reach;
