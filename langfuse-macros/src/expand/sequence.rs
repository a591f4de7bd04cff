//! Functions returning a stream or an iterator: the value is wrapped so that the observation
//! stays open until it is exhausted or dropped, each item passing by a closure that captures it
//! where its type is known.

use proc_macro2::TokenStream;
use quote::quote;

use super::capture;
use crate::returns::{Sequence, SequenceKind, Wrap};
use crate::validate::Plan;

/// Wraps `__lf_value`, the function's stream or iterator, in its observed form, put back into
/// the declared return type.
pub(super) fn observed(plan: &Plan, private: &TokenStream, sequence: &Sequence) -> TokenStream {
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
    match sequence.wrap {
        Wrap::Opaque => observed,
        Wrap::BoxPin => quote!(::std::boxed::Box::pin(#observed)),
        Wrap::Box => quote!(::std::boxed::Box::new(#observed)),
    }
}

/// The closure that turns an item into what the observation records: the value (when output
/// is captured), or, for an `Err` item, the error's message. Whether an item is a `Result` is
/// decided by its type where the closure is checked, so it works for items behind an alias.
fn record_item(plan: &Plan, private: &TokenStream, sequence: &Sequence) -> TokenStream {
    let item = sequence.item.as_ref().filter(|ty| capture::nameable(ty));
    let annotation = item.map(|ty| quote!(: &#ty));
    let value = |reference: TokenStream| {
        if !plan.capture_output {
            return quote!(#private::Item::Nothing);
        }
        let captured = capture::item(private, reference);
        quote! {
            if __lf_capture {
                #captured
            } else {
                #private::Item::Nothing
            }
        }
    };
    let ok = value(quote!(__lf_value));
    let whole = value(quote!(__lf_item));
    let message = capture::error_message(private, quote!(__lf_error));
    quote! {
        #[allow(unused_variables)]
        |__lf_item #annotation, __lf_capture: bool| -> #private::Item {
            #[allow(unused_imports)]
            use #private::{NotResult as _, SplitResult as _};
            match (&&#private::Capture(__lf_item)).__lf_split() {
                ::core::option::Option::Some(::core::result::Result::Ok(__lf_value)) => #ok,
                ::core::option::Option::Some(::core::result::Result::Err(__lf_error)) => {
                    #private::Item::Error(#message)
                }
                ::core::option::Option::None => #whole,
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
    let observed = observed(plan, private, sequence);
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
    let observed = observed(plan, private, sequence);
    quote! {
        let __lf_entered = __lf_scope.as_ref().map(#private::Scope::enter);
        let __lf_value = #build;
        ::core::mem::drop(__lf_entered);
        #observed
    }
}
