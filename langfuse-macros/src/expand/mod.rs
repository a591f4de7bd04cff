//! Generating the instrumented function from a validated plan.
//!
//! The signature, attributes and body are kept; the body runs inside an observation:
//!
//! - `async fn`: the body becomes an inner `async move` block polled with the observation
//!   current, so it nests across `.await` and inside `join!`/`select!` arms.
//! - a function returning `impl Future` or `Pin<Box<dyn Future>>` (including `#[async_trait]`
//!   methods, which arrive in that shape, and `BoxFuture`): the body runs at the call to build
//!   the future, which is then wrapped the same way, so the observation lasts until the future
//!   completes. The future is recognised by how the return type is written; one behind another
//!   alias is observed like any other value, only while it is built.
//! - a function returning a closure (`impl Fn(&str) -> usize`): the body stays in place, as
//!   only the return position gives the closure its signature; nothing is recorded of the
//!   closure, and the observation ends however the body returns.
//! - any other function: the body runs in a closure under `catch_unwind`, so the return value
//!   of every exit, `return` and `?` included, and any panic's message are recorded. The
//!   closure is `FnOnce`, so the body may return borrows of its `&mut` parameters.
//! - a `#[track_caller]` function: the body stays in place (a closure would hide the caller's
//!   location) and its early exits are rewritten to pass by the recording code.
//! - a function returning `!` has no output to record: it only ends by panicking.
//!
//! A fake return edge typed with the declared return type keeps inference exactly as it was
//! for bodies moved into a closure or async block; a returned future's declared output bounds
//! the closure that builds it, for the same reason.

mod capture;
mod rewrite;
mod sequence;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemFn, ReturnType, Type};

use crate::returns::{returned_future, returns_closure, ReturnedFuture};
use crate::validate::Plan;

pub(crate) fn expand(plan: &Plan, mut function: ItemFn) -> TokenStream {
    let krate = &plan.krate;
    let private = quote!(#krate::__private);
    let start = start(plan, &private);
    let return_type: Type = match &function.sig.output {
        ReturnType::Default => syn::parse_quote!(()),
        ReturnType::Type(_, ty) => (**ty).clone(),
    };
    let nameable = Some(&return_type).filter(|ty| capture::nameable(ty));
    let partly_named = nameable
        .is_none()
        .then(|| capture::partly_named(&return_type))
        .flatten();

    let track_caller = function
        .attrs
        .iter()
        .any(|a| a.path().is_ident("track_caller"));

    // The value a function returns to be observed until it is done (a future, a stream, an
    // iterator) is built at the call: by the body in a closure, or in place for
    // `#[track_caller]`. A future's declared output, where it can be named, bounds what the
    // closure returns, so that the body infers its types as it would in the return position.
    let build = |block: &mut syn::Block, future_output: Option<&Type>| {
        if track_caller {
            return in_place(block, rewrite::Question::Keep);
        }
        let annotation = nameable.map(|ty| quote!(-> #ty));
        let stmts = &block.stmts;
        let body = quote!(move || #annotation { #(#stmts)* });
        match future_output.filter(|ty| capture::nameable(ty)) {
            Some(output) => quote!(#private::build_future::<#output, _>(#body)),
            None => {
                let bound = partly_named.as_ref().map(|ty| quote!(::<#ty>));
                quote!(#private::build #bound(#body))
            }
        }
    };

    let body = if let Some(items) = &plan.sequence {
        if function.sig.asyncness.is_some() {
            let fake = fake_return(nameable);
            sequence::async_body(plan, &private, &function.block, items, fake)
        } else {
            let build = build(&mut function.block, None);
            sequence::sync_body(plan, &private, build, items)
        }
    } else if function.sig.asyncness.is_some() {
        let never = matches!(return_type, Type::Never(_));
        async_body(plan, &private, &function.block, nameable, never)
    } else if let Some(future) = returned_future(&return_type) {
        let build = build(&mut function.block, future.output);
        future_body(plan, &private, build, nameable, future)
    } else if returns_closure(&return_type) {
        closure_body(&private, &function.block)
    } else if track_caller {
        in_place_body(plan, &private, &mut function.block, &return_type)
    } else {
        sync_body(
            plan,
            &private,
            &function.block,
            nameable,
            partly_named.as_ref(),
        )
    };

    let ItemFn {
        attrs, vis, sig, ..
    } = &function;
    // `#![…]` written first in the body arrives among the function's attributes; it belongs
    // at the start of the body again, where it applies to all of it.
    let (inner, outer): (Vec<_>, Vec<_>) = attrs
        .iter()
        .partition(|attr| matches!(attr.style, syn::AttrStyle::Inner(_)));
    quote! {
        #(#outer)*
        #vis #sig {
            #(#inner)*
            #start
            #body
        }
    }
}

/// The static description of the function and the call that starts the observation.
fn start(plan: &Plan, private: &TokenStream) -> TokenStream {
    let Plan {
        name, kind, flush, ..
    } = plan;
    let capture_input = plan.inputs.is_some();
    let capture_output = plan.capture_output;
    let inputs = capture::inputs(private, plan.inputs.as_deref());
    quote! {
        static __LF_META: #private::Meta = #private::Meta {
            name: #name,
            kind: #private::ObservationType::#kind,
            capture_input: #capture_input,
            capture_output: #capture_output,
            flush: #flush,
        };
        let __lf_scope = #private::start(&__LF_META, #inputs);
    }
}

/// A statement that pins the inferred return type of a moved body to the declared one.
fn fake_return(ty: Option<&Type>) -> TokenStream {
    let Some(ty) = ty else {
        return quote!();
    };
    quote! {
        #[allow(
            unknown_lints,
            unreachable_code,
            clippy::diverging_sub_expression,
            clippy::empty_loop,
            clippy::let_unit_value,
            clippy::let_with_type_underscore,
            clippy::needless_return,
            clippy::unreachable
        )]
        if false {
            let __lf_fake_return: #ty = loop {};
            return __lf_fake_return;
        }
    }
}

fn sync_body(
    plan: &Plan,
    private: &TokenStream,
    block: &syn::Block,
    ty: Option<&Type>,
    partly_named: Option<&Type>,
) -> TokenStream {
    let fake = fake_return(ty);
    let stmts = &block.stmts;
    let end = end_sync(plan, private, quote!(__lf_result), ty);
    let bound = partly_named.map(|ty| quote!(::<#ty>));
    quote! {
        let __lf_entered = __lf_scope.as_ref().map(#private::Scope::enter);
        let __lf_result = #private::run_body #bound(move || {
            #fake
            #(#stmts)*
        });
        ::core::mem::drop(__lf_entered);
        #end
    }
}

/// The end of a sync call with `outcome` (a `std::thread::Result` of the return value): the
/// runtime's one sequence, given how this function's output is recorded.
fn end_sync(
    plan: &Plan,
    private: &TokenStream,
    outcome: TokenStream,
    ty: Option<&Type>,
) -> TokenStream {
    let record = capture::output(private, quote!(__lf_ret), ty, plan.capture_output);
    let annotation = ty.map(|ty| quote!(: &#ty));
    quote! {
        #private::Scope::end_sync(
            __lf_scope,
            #outcome,
            #[allow(unused_variables)]
            |__lf_scope: &mut #private::Scope, __lf_ret #annotation| { #record },
        )
    }
}

/// A function returning a closure: the body stays in place, its value in the function's
/// return position, where the declared `impl Fn(..)` gives the closure its signature; no other
/// position does. A closure has nothing to record, so the observation just ends however the
/// body returns.
fn closure_body(private: &TokenStream, block: &syn::Block) -> TokenStream {
    let stmts = &block.stmts;
    quote! {
        let __lf_scope = #private::EndOnReturn::new(__lf_scope);
        let __lf_entered = __lf_scope.enter();
        #(#stmts)*
    }
}

fn in_place_body(
    plan: &Plan,
    private: &TokenStream,
    block: &mut syn::Block,
    return_type: &Type,
) -> TokenStream {
    let enter = quote!(let __lf_entered = __lf_scope.as_ref().map(#private::Scope::enter););
    if matches!(return_type, Type::Never(_)) {
        // The body only leaves by unwinding, and then the dropped scope records the panic.
        let stmts = &block.stmts;
        return quote!(#enter #(#stmts)*);
    }
    let question = if capture::last_segment_is(return_type, "Result") {
        rewrite::Question::Result
    } else if capture::last_segment_is(return_type, "Option") {
        rewrite::Question::Option
    } else {
        rewrite::Question::Keep
    };
    let body = in_place(block, question);
    let nameable = Some(return_type).filter(|ty| capture::nameable(ty));
    let annotation = nameable.map(|ty| quote!(: #ty));
    let end = end_sync(
        plan,
        private,
        quote!(::core::result::Result::Ok(__lf_ret)),
        nameable,
    );
    // When the body always diverges (say it ends in `panic!`), what follows it is unreachable.
    // Only the first unreachable statement is reported, so allowing it there is enough, and the
    // body itself keeps the user's lints. Clippy, though, sees the body's `panic!` (in the
    // user's code) as a diverging sub-expression of the `let`.
    quote! {
        #enter
        #[allow(clippy::diverging_sub_expression)]
        let __lf_ret #annotation = #body;
        #[allow(unreachable_code)]
        ::core::mem::drop(__lf_entered);
        #end
    }
}

/// The body as a block expression evaluating to the return value, for a `#[track_caller]`
/// function: labelled when early exits were rewritten into breaks to it.
fn in_place(block: &mut syn::Block, question: rewrite::Question) -> TokenStream {
    if rewrite::early_exits(block, question) {
        let label = rewrite::label();
        quote!(#label: #block)
    } else {
        quote!(#block)
    }
}

/// `__lf_future` observed: it runs with the observation current, and its output is recorded
/// before the observation ends (unless it is `never` returned: `!` has nothing to record). One
/// future type whether tracing is on or off, so the function can return it as it is.
fn observed_future(
    plan: &Plan,
    private: &TokenStream,
    output: Option<&Type>,
    never: bool,
) -> TokenStream {
    let record = if never {
        quote!()
    } else {
        capture::output(private, quote!(__lf_ret), output, plan.capture_output)
    };
    // The output's type, where it can be named, is known before the recording code is
    // checked, which is what picks how it is captured.
    let annotation = output.map(|ty| quote!(: &#ty));
    quote! {
        #private::Observed::new(
            __lf_scope,
            __lf_future,
            #[allow(unused_variables)]
            |__lf_scope: &mut #private::Scope, __lf_ret #annotation| { #record },
        )
    }
}

fn async_body(
    plan: &Plan,
    private: &TokenStream,
    block: &syn::Block,
    output: Option<&Type>,
    never: bool,
) -> TokenStream {
    let fake = fake_return(output);
    let stmts = &block.stmts;
    let observed = observed_future(plan, private, output, never);
    quote! {
        let __lf_future = async move {
            #fake
            #(#stmts)*
        };
        #observed.await
    }
}

/// `build` evaluates to the future the body returns: the body moved into a closure, or kept in
/// place for `#[track_caller]`. It runs at the call, with the observation current.
fn future_body(
    plan: &Plan,
    private: &TokenStream,
    build: TokenStream,
    return_type: Option<&Type>,
    future: ReturnedFuture<'_>,
) -> TokenStream {
    let annotation = return_type.map(|ty| quote!(: #ty));
    let output = future.output.filter(|ty| capture::nameable(ty));
    let wrapped = observed_future(plan, private, output, false);
    let wrapped = if future.boxed {
        quote!(::std::boxed::Box::pin(#wrapped))
    } else {
        wrapped
    };
    quote! {
        let __lf_entered = __lf_scope.as_ref().map(#private::Scope::enter);
        let __lf_future #annotation = #build;
        ::core::mem::drop(__lf_entered);
        #wrapped
    }
}
