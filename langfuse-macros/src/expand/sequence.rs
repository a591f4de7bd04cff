//! Functions returning a stream or an iterator: the value is wrapped so that the observation
//! stays open until it is exhausted or dropped, each item passing by a closure that captures it
//! where its type is known.

use proc_macro2::TokenStream;
use quote::quote;

use super::capture;
use crate::returns::{Sequence, SequenceKind, Within, Wrap};
use crate::validate::Plan;

/// Wraps `__lf_value`, the function's stream or iterator (or the `Result` or `Option` it comes
/// in), in its observed form, put back into the declared return type.
fn observed(
    plan: &Plan,
    private: &TokenStream,
    sequence: &Sequence,
    context: Context,
) -> TokenStream {
    let observe = match sequence.kind {
        SequenceKind::Stream => quote!(#private::observe_stream),
        SequenceKind::Iterator => quote!(#private::observe_iter),
    };
    let record = record_item(plan, private, sequence);
    let transform = match &plan.transform {
        Some(path) => quote! {
            ::core::option::Option::Some(
                (|__lf_items: &[#private::JsonValue]| {
                    #private::CapturedValue::json(&#path(__lf_items))
                }) as #private::Transform,
            )
        },
        None => quote!(::core::option::Option::None),
    };
    let observed = quote!(#observe(__lf_scope, __lf_value, #record, #transform));
    let observed = match sequence.wrap {
        Wrap::Opaque => observed,
        Wrap::BoxPin => quote!(::std::boxed::Box::pin(#observed)),
        Wrap::Box => quote!(::std::boxed::Box::new(#observed)),
    };
    // "Connect, then stream": the sequence is observed only when there is one; otherwise the
    // call ends here, with the error when there is one.
    let end = match context {
        Context::Sync => quote!(__lf_scope.end();),
        Context::Async => quote! {
            if let ::core::option::Option::Some(__lf_flush) = __lf_scope.end_async() {
                __lf_flush.await;
            }
        },
    };
    match sequence.within {
        None => observed,
        Some(Within::Result) => {
            let message = capture::error_message(private, quote!(&__lf_error));
            quote! {
                match __lf_value {
                    ::core::result::Result::Ok(__lf_value) => ::core::result::Result::Ok(#observed),
                    ::core::result::Result::Err(__lf_error) => {
                        if let ::core::option::Option::Some(mut __lf_scope) = __lf_scope {
                            __lf_scope.error(#message);
                            #end
                        }
                        ::core::result::Result::Err(__lf_error)
                    }
                }
            }
        }
        Some(Within::Option) => quote! {
            match __lf_value {
                ::core::option::Option::Some(__lf_value) => ::core::option::Option::Some(#observed),
                ::core::option::Option::None => {
                    if let ::core::option::Option::Some(__lf_scope) = __lf_scope {
                        #end
                    }
                    ::core::option::Option::None
                }
            }
        },
    }
}

/// Where the observed function's body runs, which decides how a call that returns no
/// sequence ends: blocking on its flush, or awaiting it.
#[derive(Clone, Copy)]
enum Context {
    Sync,
    Async,
}

/// The closure that records an item: keeps its value among the output's items when output
/// is captured, and gives an `Err` item's message. Whether an item is a `Result` is decided by
/// its type where the closure is checked, so it works for items behind an alias.
fn record_item(plan: &Plan, private: &TokenStream, sequence: &Sequence) -> TokenStream {
    let item = sequence.item.as_ref().filter(|ty| capture::nameable(ty));
    let annotation = item.map(|ty| quote!(: &#ty));
    let keep = |reference: TokenStream| {
        if !plan.capture_output {
            return quote!();
        }
        let kept = capture::item(private, reference, quote!(__lf_items));
        quote! {
            if let ::core::option::Option::Some(__lf_items) = __lf_items {
                #kept;
            }
        }
    };
    let ok = keep(quote!(__lf_value));
    let whole = keep(quote!(__lf_item));
    let message = capture::error_message(private, quote!(__lf_error));
    quote! {
        #[allow(unused_variables)]
        |__lf_item #annotation, __lf_items: ::core::option::Option<&mut #private::Items>|
            -> ::core::option::Option<::std::string::String>
        {
            #[allow(unused_imports)]
            use #private::{NotResult as _, SplitResult as _};
            match (&&#private::Capture(__lf_item)).__lf_split() {
                ::core::option::Option::Some(::core::result::Result::Ok(__lf_value)) => {
                    #ok
                    ::core::option::Option::None
                }
                ::core::option::Option::Some(::core::result::Result::Err(__lf_error)) => {
                    ::core::option::Option::Some(#message)
                }
                ::core::option::Option::None => {
                    #whole
                    ::core::option::Option::None
                }
            }
        }
    }
}

/// The `async fn` case: the body runs to completion under the observation, which is then
/// handed to the stream it returns.
pub(super) fn async_body(
    plan: &Plan,
    private: &TokenStream,
    block: &syn::Block,
    sequence: &Sequence,
    fake_return: TokenStream,
) -> TokenStream {
    let stmts = &block.stmts;
    let observed = observed(plan, private, sequence, Context::Async);
    quote! {
        let __lf_future = async move {
            #fake_return
            #(#stmts)*
        };
        let (__lf_scope, __lf_value) = #private::Opening::new(__lf_scope, __lf_future).await;
        #observed
    }
}

/// The sync case: `build` evaluates to the stream or iterator; it runs at the call, with the
/// observation current.
pub(super) fn sync_body(
    plan: &Plan,
    private: &TokenStream,
    build: TokenStream,
    sequence: &Sequence,
) -> TokenStream {
    let observed = observed(plan, private, sequence, Context::Sync);
    quote! {
        let __lf_entered = __lf_scope.as_ref().map(#private::Scope::enter);
        let __lf_value = #build;
        ::core::mem::drop(__lf_entered);
        #observed
    }
}
