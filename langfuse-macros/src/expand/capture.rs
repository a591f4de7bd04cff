//! The generated code that records arguments, return values and errors.
//!
//! Values are captured through autoref specialization (see `Capture` in the core crate) at the
//! expansion site, where the concrete type — or a generic parameter with its bounds — is known.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ext::IdentExt;
use syn::{Ident, Type};

/// Calls `method` on the best capture level for `reference`, an expression of type `&T`.
fn capture_call(private: &TokenStream, reference: TokenStream, method: TokenStream) -> TokenStream {
    quote! {{
        #[allow(unused_imports)]
        use #private::{
            CaptureDebug as _, CaptureSerialize as _, CaptureText as _, CaptureTypeName as _,
        };
        (&&&&#private::Capture(#reference)).#method
    }}
}

/// `reference` is an expression of type `&T`; yields its `CapturedValue`.
pub(crate) fn value(private: &TokenStream, reference: TokenStream) -> TokenStream {
    capture_call(private, reference, quote!(__lf_capture()))
}

/// `reference` is an expression of type `&T`, an item of a stream or iterator; keeps it in
/// `items`, the output's items.
pub(crate) fn item(
    private: &TokenStream,
    reference: TokenStream,
    items: TokenStream,
) -> TokenStream {
    capture_call(private, reference, quote!(__lf_item(#items)))
}

/// `reference` is an expression of type `&E`; yields the error's message.
pub(crate) fn error_message(private: &TokenStream, reference: TokenStream) -> TokenStream {
    quote! {{
        #[allow(unused_imports)]
        use #private::{ErrorDebug as _, ErrorDisplay as _, ErrorTypeName as _};
        (&&&#private::Capture(#reference)).__lf_error_message()
    }}
}

/// The closure that records the arguments when the observation starts.
pub(crate) fn inputs(private: &TokenStream, names: Option<&[Ident]>) -> TokenStream {
    let args = names.unwrap_or_default().iter().map(|name| {
        let label = name.unraw().to_string();
        let record = capture_call(
            private,
            quote!(&#name),
            quote!(__lf_arg(__lf_inputs, #label)),
        );
        quote!(#record;)
    });
    quote! {
        |__lf_inputs: &mut #private::Inputs| { #(#args)* }
    }
}

/// Statements recording the return value on `__lf_scope`: `Ok` values as output, `Err` as an
/// error, anything else as output. `ret` is a reference to the value; `ty` its declared type,
/// when it can be named. Whether the value is a `Result` is decided by its type where the
/// statements are checked, not by how the return type is spelled, so a `Result` behind an
/// alias (`type ApiResult<T> = Result<T, ApiError>`) is one too.
pub(crate) fn output(
    private: &TokenStream,
    ret: TokenStream,
    ty: Option<&Type>,
    capture: bool,
) -> TokenStream {
    let record_value = |reference: TokenStream| {
        if !capture {
            return quote!();
        }
        let captured = value(private, reference);
        quote! {
            if __lf_scope.wants_output() {
                __lf_scope.output(#captured);
            }
        }
    };
    if ty.is_some_and(is_unit) {
        return quote!();
    }
    let ok = record_value(quote!(__lf_value));
    let whole = record_value(ret.clone());
    let message = error_message(private, quote!(__lf_error));
    quote! {
        #[allow(unused_imports)]
        use #private::{NotResult as _, SplitResult as _};
        match (&&#private::Capture(#ret)).__lf_split() {
            ::core::option::Option::Some(::core::result::Result::Ok(__lf_value)) => { #ok }
            ::core::option::Option::Some(::core::result::Result::Err(__lf_error)) => {
                __lf_scope.error(#message)
            }
            ::core::option::Option::None => { #whole }
        }
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(tuple) if tuple.elems.is_empty())
}

/// Whether the type is written as `…::Name<…>`, e.g. `Result`, `io::Result` or `anyhow::Result`.
pub(crate) fn last_segment_is(ty: &Type, name: &str) -> bool {
    match ty {
        Type::Path(path) => path.path.segments.last().is_some_and(|s| s.ident == name),
        Type::Paren(inner) => last_segment_is(&inner.elem, name),
        Type::Group(inner) => last_segment_is(&inner.elem, name),
        _ => false,
    }
}

/// Whether the type can be written in a `let`: not `!`, which is unstable there (the binding is
/// then inferred from the function's return), and without `impl Trait` anywhere in it.
pub(crate) fn nameable(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    if matches!(ty, Type::Never(_)) {
        return false;
    }
    let mut finder = Finder(false);
    syn::visit::Visit::visit_type(&mut finder, ty);
    !finder.0
}

/// A type that cannot be named, with each `impl Trait` in it written as `_`: what can still be
/// said of it (`io::Result<_>` for `io::Result<impl Iterator>`) to bound a closure's result.
/// `None` when nothing would be left but `_`.
pub(crate) fn partly_named(ty: &Type) -> Option<Type> {
    struct Eraser;
    impl syn::visit_mut::VisitMut for Eraser {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(_) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: Default::default(),
                });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    if matches!(ty, Type::Never(_) | Type::ImplTrait(_)) {
        return None;
    }
    let mut erased = ty.clone();
    syn::visit_mut::VisitMut::visit_type_mut(&mut Eraser, &mut erased);
    Some(erased)
}
