//! Parsing the attribute's options: `#[observe(name = "…", as_type = "…", skip(a), …)]`.
//!
//! Parsing only reads what was written; whether the options make sense together, and for this
//! function, is decided in `validate`. Every problem is collected so all are reported at once.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, LitBool, LitStr, Path, Token};

/// The observation types a function can be, as written in `as_type`.
pub(crate) const TYPES: [&str; 9] = [
    "span",
    "generation",
    "agent",
    "tool",
    "chain",
    "retriever",
    "evaluator",
    "guardrail",
    "embedding",
];

/// The options, as written.
const KEYS: [&str; 11] = [
    "name",
    "as_type",
    "capture_input",
    "capture_output",
    "skip",
    "skip_all",
    "flush",
    "stream",
    "iterator",
    "transform",
    "crate",
];

/// An option's value and where it was written, for error messages.
#[derive(Clone)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

#[derive(Default)]
pub(crate) struct Options {
    pub(crate) name: Option<Spanned<String>>,
    pub(crate) as_type: Option<Spanned<String>>,
    pub(crate) capture_input: Option<Spanned<bool>>,
    pub(crate) capture_output: Option<Spanned<bool>>,
    pub(crate) skip: Option<Spanned<Vec<Ident>>>,
    pub(crate) skip_all: Option<Span>,
    pub(crate) flush: Option<Spanned<bool>>,
    /// The return value is a stream, though its type does not say so.
    pub(crate) stream: Option<Span>,
    /// The return value is an iterator, though its type does not say so.
    pub(crate) iterator: Option<Span>,
    pub(crate) transform: Option<Spanned<Path>>,
    pub(crate) krate: Option<Path>,
    /// Problems found while parsing; parsing goes on after each.
    pub(crate) errors: Vec<syn::Error>,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            let parsed = options.parse_one(input).and_then(|()| {
                if input.is_empty() || input.peek(Token![,]) {
                    Ok(())
                } else {
                    Err(input.error("expected `,` between options"))
                }
            });
            if let Err(error) = parsed {
                options.errors.push(error);
                // Resynchronise at the next comma so later options are still checked.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<proc_macro2::TokenTree>()?;
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(options)
    }
}

impl Options {
    fn parse_one(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        if input.peek(Token![crate]) {
            let keyword = input.parse::<Token![crate]>()?;
            equals(
                input,
                "crate",
                keyword.span,
                "`crate = my_crate::langfuse_observe`",
            )?;
            let path = input.parse::<Path>().map_err(|error| {
                syn::Error::new(
                    error.span(),
                    "`crate` takes the path of the `langfuse_observe` crate as re-exported, e.g. \
                     `crate = my_crate::langfuse_observe`",
                )
            })?;
            return set(&mut self.krate, path, keyword.span, "crate");
        }
        // `parse_any` so that `skip(self)`-style keywords get a message of their own instead of
        // "expected identifier".
        let key = Ident::parse_any(input)?;
        let span = key.span();
        match key.to_string().as_str() {
            "name" => {
                let value = string_value(input, "name", span, "`name = \"answer question\"`")?;
                set(&mut self.name, value, span, "name")
            }
            "as_type" => {
                let value = string_value(input, "as_type", span, "`as_type = \"generation\"`")?;
                set(&mut self.as_type, value, span, "as_type")
            }
            "capture_input" => {
                let value = bool_value(input, "capture_input", span)?;
                set(&mut self.capture_input, value, span, "capture_input")
            }
            "capture_output" => {
                let value = bool_value(input, "capture_output", span)?;
                set(&mut self.capture_output, value, span, "capture_output")
            }
            "flush" => {
                let value = bool_value(input, "flush", span)?;
                set(&mut self.flush, value, span, "flush")
            }
            "skip" => {
                if !input.peek(syn::token::Paren) {
                    return Err(syn::Error::new(
                        span,
                        "`skip` takes the names of parameters to leave out: `skip(api_key, client)`",
                    ));
                }
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated_with(
                    &content,
                    Ident::parse_any,
                )?;
                let value = Spanned {
                    value: names.into_iter().collect(),
                    span,
                };
                set(&mut self.skip, value, span, "skip")
            }
            "skip_all" => {
                no_value(input, "skip_all")?;
                set(&mut self.skip_all, span, span, "skip_all")
            }
            "stream" => {
                no_value(input, "stream")?;
                set(&mut self.stream, span, span, "stream")
            }
            "iterator" => {
                no_value(input, "iterator")?;
                set(&mut self.iterator, span, span, "iterator")
            }
            "transform" => {
                equals(input, "transform", span, "`transform = path::to::function`")?;
                let path: Path = input.parse().map_err(|error| {
                    syn::Error::new(
                        error.span(),
                        "`transform` takes the path of a function \
                         `fn(&[serde_json::Value]) -> impl Serialize`",
                    )
                })?;
                let value = Spanned { value: path, span };
                set(&mut self.transform, value, span, "transform")
            }
            other => {
                let hint = KEYS
                    .iter()
                    .map(|known| (edit_distance(other, known), known))
                    .min()
                    .filter(|(distance, _)| *distance <= 2)
                    .map(|(_, known)| format!(" (did you mean `{known}`?)"))
                    .unwrap_or_default();
                Err(syn::Error::new(
                    span,
                    format!(
                        "unknown option `{other}`{hint}; expected one of: {}",
                        KEYS.join(", ")
                    ),
                ))
            }
        }
    }
}

/// A flag option stands alone.
fn no_value(input: ParseStream<'_>, key: &str) -> syn::Result<()> {
    if input.peek(Token![=]) || input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            input.span(),
            format!("`{key}` takes no value: write `{key}` alone"),
        ));
    }
    Ok(())
}

fn set<T>(slot: &mut Option<T>, value: T, span: Span, key: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("`{key}` is given more than once; keep one"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

/// The `=` after an option that takes a value; when missing, the error is on the option's key
/// and shows the expected `form`.
fn equals(input: ParseStream<'_>, key: &str, span: Span, form: &str) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        return Ok(());
    }
    Err(syn::Error::new(
        span,
        format!("`{key}` takes a value: {form}"),
    ))
}

fn string_value(
    input: ParseStream<'_>,
    key: &str,
    span: Span,
    form: &str,
) -> syn::Result<Spanned<String>> {
    equals(input, key, span, form)?;
    let literal = input.parse::<LitStr>().map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("`{key}` takes a string literal: {form}"),
        )
    })?;
    Ok(Spanned {
        value: literal.value(),
        span: literal.span(),
    })
}

fn bool_value(input: ParseStream<'_>, key: &str, span: Span) -> syn::Result<Spanned<bool>> {
    let form = format!("`{key} = true` or `{key} = false`");
    equals(input, key, span, &form)?;
    let literal = input.parse::<LitBool>().map_err(|error| {
        syn::Error::new(error.span(), format!("`{key}` takes `true` or `false`"))
    })?;
    Ok(Spanned {
        value: literal.value,
        span: literal.span,
    })
}

/// The Levenshtein distance between two short words, to suggest the option that was meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, b) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a != *b);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}
