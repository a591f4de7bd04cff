//! A crate that depends on `langfuse-observe` under another name
//! (`lf = { package = "langfuse-observe", .. }`): `#[lf::observe]` finds the facade through the
//! manifest, with no `crate = lf` option, and the calls nest as usual.

/// An observed function of a crate that renamed its dependency.
#[lf::observe]
pub fn outer(n: u32) -> Option<String> {
    inner(n);
    lf::trace::current_trace_id().map(|id| id.to_string())
}

#[lf::observe]
fn inner(n: u32) -> u32 {
    n + 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn observed_calls_run_and_nest() {
        let trace = super::outer(1).expect("outer runs as an observation");
        assert_eq!(trace.len(), 32);
    }
}
