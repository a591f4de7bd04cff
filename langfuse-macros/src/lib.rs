//! The `#[observe]` attribute of `langfuse-observe`. Use it through that crate, which
//! re-exports it together with the runtime the generated code calls.
//!
//! The macro works in three steps, one module each: `options` parses what was written in the
//! attribute, `validate` checks it against itself and the function and decides a plan, and
//! `expand` generates the instrumented function from the plan.

mod expand;
mod options;
mod returns;
mod validate;

use proc_macro::TokenStream;
use quote::ToTokens;
use syn::ItemFn;

/// Records every call of the function as an observation in Langfuse, nested under the
/// observation that is current where it is called.
///
/// Works on sync and `async` functions, methods, generic functions, and functions returning
/// `impl Future`, `Pin<Box<dyn Future>>` or `BoxFuture` (so `#[async_trait]` methods too).
/// The input is a JSON object keyed by parameter name; the output is the return value, with
/// `Err(e)` recorded as level ERROR and `e`'s message; a panic records ERROR with its message;
/// a future dropped before it completes records WARNING ("cancelled").
///
/// Options, all optional:
///
/// | option | effect |
/// |---|---|
/// | `name = "…"` | the observation's name (default: the function's name) |
/// | `as_type = "…"` | `span` (default), `generation`, `agent`, `tool`, `chain`, `retriever`, `evaluator`, `guardrail`, `embedding` |
/// | `capture_input = false` | record no arguments |
/// | `capture_output = false` | record no return value (errors are still recorded) |
/// | `skip(a, b)` / `skip_all` | leave these / all arguments out |
/// | `flush = false` | do not flush when this is the outermost observation |
/// | `crate = path` | the path of `langfuse_observe`, for crates that re-export it |
///
/// ```ignore
/// use langfuse_observe::observe;
///
/// #[observe(as_type = "generation", skip(api_key))]
/// async fn complete(prompt: &str, api_key: &str) -> Result<String, std::io::Error> {
///     Ok(format!("echo: {prompt}"))
/// }
/// ```
///
/// (Not compiled here: the example needs the `langfuse-observe` crate, whose documentation
/// has it as a tested example.)
#[proc_macro_attribute]
pub fn observe(attribute: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse(item.clone()) {
        Ok(function) => function,
        // Not even an item: a syntax error, which rustc reports itself once the tokens are
        // handed back unchanged; an error of ours beside it would say the same thing twice.
        Err(_) if syn::parse::<syn::Item>(item.clone()).is_err() => return item,
        Err(error) => {
            let mut out = not_a_function(item.clone(), error).to_compile_error();
            out.extend(proc_macro2::TokenStream::from(item));
            return out.into();
        }
    };
    let planned = syn::parse::<options::Options>(attribute)
        .and_then(|options| validate::validate(options, &function));
    match planned {
        Ok(plan) => expand::expand(&plan, function).into(),
        Err(error) => {
            // The function is still emitted, unchanged, so the rest of the crate keeps
            // compiling and IDEs keep resolving it while the attribute is being fixed.
            let mut out = error.to_compile_error();
            function.to_tokens(&mut out);
            out.into()
        }
    }
}

/// The error for an item that is not a function with a body, saying what the attribute needs
/// instead of the parser's "expected `fn`"; `error` is kept for anything syn itself cannot
/// read.
fn not_a_function(item: TokenStream, error: syn::Error) -> syn::Error {
    if let Ok(declaration @ syn::TraitItemFn { default: None, .. }) = syn::parse(item.clone()) {
        return syn::Error::new_spanned(
            declaration.sig,
            "#[observe] needs the function's body to record its calls; in a trait, put it on \
             the method of each impl (or on a default method that has a body)",
        );
    }
    match syn::parse::<syn::Item>(item) {
        Ok(syn::Item::Fn(_) | syn::Item::Verbatim(_)) | Err(_) => error,
        Ok(syn::Item::Impl(_) | syn::Item::Trait(_)) => syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[observe] applies to functions and methods, not to a whole impl or trait: put it \
             on each method to observe",
        ),
        Ok(_) => syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[observe] applies to functions and methods only",
        ),
    }
}
