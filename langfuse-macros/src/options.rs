//! Parsing the attribute's options: `#[observe(name = "…", as_type = "…", skip(a), …)]`.
//!
//! Parsing only reads what was written; whether the options make sense together, and for this
//! function, is decided in `validate`. Every problem is collected so all are reported at once.

use proc_macro2::Span;
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
    pub(crate) krate: Option<Path>,
    /// Problems found while parsing; parsing goes on after each.
    pub(crate) errors: Vec<syn::Error>,
}

impl Parse for Options {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            if let Err(error) = options.parse_one(input) {
                options.errors.push(error);
                // Resynchronise at the next comma so later options are still checked.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<proc_macro2::TokenTree>()?;
                }
            }
            if input.is_empty() {
                break;
            }
            input.parse::<Token![,]>()?;
        }
        Ok(options)
    }
}

impl Options {
    fn parse_one(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        if input.peek(Token![crate]) {
            let keyword = input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            let path: Path = input.parse()?;
            return set(&mut self.krate, path, keyword.span, "crate");
        }
        let key: Ident = input.parse()?;
        let span = key.span();
        match key.to_string().as_str() {
            "name" => {
                let value = string_value(input)?;
                set(&mut self.name, value, span, "name")
            }
            "as_type" => {
                let value = string_value(input)?;
                set(&mut self.as_type, value, span, "as_type")
            }
            "capture_input" => {
                let value = bool_value(input)?;
                set(&mut self.capture_input, value, span, "capture_input")
            }
            "capture_output" => {
                let value = bool_value(input)?;
                set(&mut self.capture_output, value, span, "capture_output")
            }
            "flush" => {
                let value = bool_value(input)?;
                set(&mut self.flush, value, span, "flush")
            }
            "skip" => {
                let content;
                syn::parenthesized!(content in input);
                let names = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
                let value = Spanned {
                    value: names.into_iter().collect(),
                    span,
                };
                set(&mut self.skip, value, span, "skip")
            }
            "skip_all" => set(&mut self.skip_all, span, span, "skip_all"),
            other => Err(syn::Error::new(
                span,
                format!(
                    "unknown option `{other}`; expected one of: name, as_type, capture_input, \
                     capture_output, skip, skip_all, flush, crate"
                ),
            )),
        }
    }
}

fn set<T>(slot: &mut Option<T>, value: T, span: Span, key: &str) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            span,
            format!("`{key}` is given more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn string_value(input: ParseStream<'_>) -> syn::Result<Spanned<String>> {
    input.parse::<Token![=]>()?;
    let literal: LitStr = input.parse()?;
    Ok(Spanned {
        value: literal.value(),
        span: literal.span(),
    })
}

fn bool_value(input: ParseStream<'_>) -> syn::Result<Spanned<bool>> {
    input.parse::<Token![=]>()?;
    let literal: LitBool = input.parse()?;
    Ok(Spanned {
        value: literal.value,
        span: literal.span,
    })
}
