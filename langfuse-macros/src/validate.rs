//! Checking the options against each other and against the function, producing the plan that
//! expansion follows. Every problem becomes an error spanned on the token that causes it.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{FnArg, Ident, ItemFn, Pat, Path, ReturnType, Type};

use crate::options::{Options, TYPES};
use crate::returns::{self, Sequence, SequenceKind, Wrap};

/// What to generate, decided and checked.
pub(crate) struct Plan {
    pub(crate) name: String,
    /// The `ObservationType` variant, e.g. `Generation`.
    pub(crate) kind: Ident,
    pub(crate) flush: bool,
    pub(crate) capture_output: bool,
    /// The parameter bindings recorded as input, in order; `None` when input is not captured.
    pub(crate) inputs: Option<Vec<Ident>>,
    /// The stream or iterator the observation stays open over, if the function returns one.
    pub(crate) sequence: Option<Sequence>,
    pub(crate) transform: Option<Path>,
    pub(crate) krate: Path,
}

pub(crate) fn validate(mut options: Options, function: &ItemFn) -> Result<Plan, syn::Error> {
    let mut errors = std::mem::take(&mut options.errors);
    let signature = &function.sig;

    if let Some(constness) = &signature.constness {
        errors.push(syn::Error::new(
            constness.span,
            "#[observe] cannot be used on a `const fn`: recording a call needs the clock and the \
             exporter at run time, which compile-time evaluation cannot reach; remove `const` or \
             the attribute",
        ));
    }

    let kind = match &options.as_type {
        None => Ident::new("Span", Span::call_site()),
        Some(as_type) if TYPES.contains(&as_type.value.as_str()) => {
            Ident::new(&variant_name(&as_type.value), Span::call_site())
        }
        Some(as_type) => {
            let lowercase = as_type.value.to_lowercase();
            let hint = if lowercase == "event" {
                "; an event marks a point in time, not a call that takes time: observe the \
                 function as a \"span\", or record an `Observation` of type \
                 `ObservationType::Event`"
                    .to_owned()
            } else if TYPES.contains(&lowercase.as_str()) {
                format!("; write it in lowercase: \"{lowercase}\"")
            } else {
                String::new()
            };
            errors.push(syn::Error::new(
                as_type.span,
                format!(
                    "unknown observation type {:?}; expected one of: {}{hint}",
                    as_type.value,
                    TYPES.join(", ")
                ),
            ));
            Ident::new("Span", Span::call_site())
        }
    };

    let name = match &options.name {
        Some(name) if name.value.trim().is_empty() => {
            errors.push(syn::Error::new(
                name.span,
                "`name` must not be empty; leave `name` out to use the function's name",
            ));
            String::new()
        }
        Some(name) => name.value.clone(),
        None => signature.ident.to_string(),
    };

    let bindings = parameter_bindings(function);
    let capture_input = options.capture_input.as_ref().is_none_or(|c| c.value);
    if let (Some(skip_all), Some(skip)) = (options.skip_all, &options.skip) {
        let mut error = syn::Error::new(skip.span, "`skip(...)` conflicts with `skip_all`");
        error.combine(syn::Error::new(
            skip_all,
            "`skip_all` already skips every argument",
        ));
        errors.push(error);
    }
    if let (Some(off), false) = (&options.capture_input, capture_input) {
        let skips = options.skip.as_ref().map(|skip| (skip.span, "skip(...)"));
        for (span, key) in skips
            .into_iter()
            .chain(options.skip_all.map(|s| (s, "skip_all")))
        {
            let mut error = syn::Error::new(
                span,
                format!(
                    "`{key}` has no effect with `capture_input = false`, which records no \
                     argument; remove one of them"
                ),
            );
            error.combine(syn::Error::new(
                off.span,
                "input capture is turned off here",
            ));
            errors.push(error);
        }
    }
    let skipped = options
        .skip
        .as_ref()
        .map_or(&[][..], |skip| &skip.value[..]);
    for name in skipped {
        if name == "self" {
            errors.push(syn::Error::new(
                name.span(),
                "the receiver `self` is never recorded, so it needs no `skip`; remove it",
            ));
        } else if !bindings.iter().any(|binding| same_name(binding, name)) {
            let known: Vec<String> = bindings.iter().map(Ident::to_string).collect();
            errors.push(syn::Error::new(
                name.span(),
                format!(
                    "`skip({name})` names no parameter of `{}`; its parameters are: {}",
                    signature.ident,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }

    let inputs = (capture_input && options.skip_all.is_none()).then(|| {
        bindings
            .into_iter()
            .filter(|binding| !skipped.iter().any(|name| same_name(binding, name)))
            .collect()
    });

    let sequence = sequence_plan(&options, function, &mut errors);
    if let Some(transform) = &options.transform {
        if sequence.is_none() {
            errors.push(syn::Error::new(
                transform.span,
                "`transform` turns the items of a stream or iterator into the output, but this \
                 function returns neither; remove it, or add `stream`/`iterator` if its return \
                 type is an alias of one",
            ));
        }
        if let Some(off) = options.capture_output.as_ref().filter(|c| !c.value) {
            let mut error = syn::Error::new(
                transform.span,
                "`transform` has no effect with `capture_output = false`, which records no output",
            );
            error.combine(syn::Error::new(
                off.span,
                "output capture is turned off here",
            ));
            errors.push(error);
        }
    }

    let mut errors = errors.into_iter();
    if let Some(mut first) = errors.next() {
        first.extend(errors);
        return Err(first);
    }
    Ok(Plan {
        name,
        kind,
        flush: options.flush.is_none_or(|f| f.value),
        // A function returning `!` has no value to record, and a capture of one would not
        // compile: the binding's type is only inferred, too late for the capture's dispatch.
        capture_output: options.capture_output.is_none_or(|c| c.value) && !returns_never(function),
        inputs,
        sequence,
        transform: options.transform.map(|t| t.value),
        krate: options.krate.unwrap_or_else(facade),
    })
}

/// The stream or iterator the function returns: as its return type says, or as the `stream` or
/// `iterator` option says for a type that does not show it (an alias of a boxed trait object).
fn sequence_plan(
    options: &Options,
    function: &ItemFn,
    errors: &mut Vec<syn::Error>,
) -> Option<Sequence> {
    let declared = match &function.sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => None,
    };
    let detected = declared.and_then(returns::sequence);
    let forced = match (options.stream, options.iterator) {
        (Some(stream), Some(iterator)) => {
            let mut error = syn::Error::new(iterator, "`iterator` conflicts with `stream`");
            error.combine(syn::Error::new(
                stream,
                "a function returns a stream or an iterator, not both",
            ));
            errors.push(error);
            return detected;
        }
        (Some(span), None) => Some((span, SequenceKind::Stream)),
        (None, Some(span)) => Some((span, SequenceKind::Iterator)),
        (None, None) => None,
    };
    let Some((span, kind)) = forced else {
        return detected;
    };
    match detected {
        Some(found) if found.kind != kind => {
            let (wrong, right) = match found.kind {
                SequenceKind::Stream => ("iterator", "stream"),
                SequenceKind::Iterator => ("stream", "iterator"),
            };
            errors.push(syn::Error::new(
                span,
                format!("the return type is {right}-like, not {wrong}-like: use `{right}`, or leave the option out since the type already says it"),
            ));
            Some(found)
        }
        Some(found) => Some(found),
        None if declared.is_none() => {
            errors.push(syn::Error::new(
                span,
                "this function returns nothing to observe as a stream or iterator",
            ));
            None
        }
        None => Some(Sequence {
            kind,
            wrap: match (declared, kind) {
                (Some(Type::ImplTrait(_)), _) => Wrap::Opaque,
                (_, SequenceKind::Stream) => Wrap::BoxPin,
                (_, SequenceKind::Iterator) => Wrap::Box,
            },
            item: None,
            within: None,
        }),
    }
}

fn returns_never(function: &ItemFn) -> bool {
    matches!(&function.sig.output, ReturnType::Type(_, ty) if matches!(**ty, Type::Never(_)))
}

fn variant_name(as_type: &str) -> String {
    let mut chars = as_type.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// Whether two identifiers name the same binding: `r#type` is `type`.
fn same_name(a: &Ident, b: &Ident) -> bool {
    a.unraw() == b.unraw()
}

/// The names a function's parameters bind, `self` excluded by construction: a receiver is not
/// a typed parameter. Patterns contribute each name they bind.
fn parameter_bindings(function: &ItemFn) -> Vec<Ident> {
    let mut names = Vec::new();
    for input in &function.sig.inputs {
        if let FnArg::Typed(typed) = input {
            collect(&typed.pat, &mut names);
        }
    }
    names
}

fn collect(pattern: &Pat, names: &mut Vec<Ident>) {
    match pattern {
        Pat::Ident(binding) => {
            if binding.ident != "self" {
                names.push(binding.ident.clone());
            }
            if let Some((_, sub)) = &binding.subpat {
                collect(sub, names);
            }
        }
        Pat::Tuple(tuple) => tuple.elems.iter().for_each(|p| collect(p, names)),
        Pat::TupleStruct(tuple) => tuple.elems.iter().for_each(|p| collect(p, names)),
        Pat::Struct(structure) => structure.fields.iter().for_each(|f| collect(&f.pat, names)),
        Pat::Slice(slice) => slice.elems.iter().for_each(|p| collect(p, names)),
        Pat::Reference(reference) => collect(&reference.pat, names),
        Pat::Paren(paren) => collect(&paren.pat, names),
        Pat::Type(typed) => collect(&typed.pat, names),
        _ => {}
    }
}

/// The path of the `langfuse-observe` crate as the user's `Cargo.toml` names it, so that a
/// renamed dependency (`lf = { package = "langfuse-observe", .. }`) works without `crate = ..`.
/// Where the manifest does not say (a re-export, or the facade's own tests), the usual name.
fn facade() -> syn::Path {
    match proc_macro_crate::crate_name("langfuse-observe") {
        Ok(proc_macro_crate::FoundCrate::Name(name)) if name != "langfuse_observe" => {
            let name = syn::Ident::new(&name, proc_macro2::Span::call_site());
            syn::parse_quote!(::#name)
        }
        _ => syn::parse_quote!(::langfuse_observe),
    }
}
