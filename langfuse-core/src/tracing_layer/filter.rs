//! Which spans become observations.

use tracing::level_filters::LevelFilter;
use tracing::Metadata;

use super::mapping::is_langfuse_field;

/// The rule deciding which spans become observations; see [`TracingLayer`](super::TracingLayer).
#[derive(Debug, Clone)]
pub(crate) struct Filter {
    /// How verbose a span under an observation may be and still be kept.
    nested: LevelFilter,
    /// Targets (by prefix) kept at these levels wherever their spans are.
    kept: Vec<(String, LevelFilter)>,
    /// Targets (by prefix) never kept.
    dropped: Vec<String>,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            nested: LevelFilter::INFO,
            kept: Vec::new(),
            dropped: Vec::new(),
        }
    }
}

impl Filter {
    pub(crate) fn keep_target(&mut self, target: String, level: LevelFilter) {
        self.kept.push((target, level));
    }

    pub(crate) fn drop_target(&mut self, target: String) {
        self.dropped.push(target);
    }

    pub(crate) fn nested_level(&mut self, level: LevelFilter) {
        self.nested = level;
    }

    /// Whether a span with this metadata becomes an observation; `nested` says whether it
    /// would have a parent observation.
    pub(crate) fn keeps(&self, metadata: &Metadata<'_>, nested: bool) -> bool {
        let target = metadata.target();
        if self
            .dropped
            .iter()
            .any(|prefix| target_matches(target, prefix))
        {
            return false;
        }
        if metadata
            .fields()
            .iter()
            .any(|field| is_langfuse_field(field.name()))
        {
            return true;
        }
        let level = metadata.level();
        if self
            .kept
            .iter()
            .any(|(prefix, filter)| target_matches(target, prefix) && filter >= level)
        {
            return true;
        }
        nested && self.nested >= *level
    }
}

/// A target matches a prefix at a module boundary: `hyper` matches `hyper::client` but not
/// `hyperlocal`.
fn target_matches(target: &str, prefix: &str) -> bool {
    target
        .strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_at_module_boundaries() {
        assert!(target_matches("hyper", "hyper"));
        assert!(target_matches("hyper::client::pool", "hyper"));
        assert!(!target_matches("hyperlocal", "hyper"));
    }
}
