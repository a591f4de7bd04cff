//! Keeping a `#[track_caller]` body in place: wrapping it in a closure would make the closure,
//! not the caller, the location its `Location::caller()` and panics report. Instead the body
//! becomes a labelled block whose early exits are rewritten into breaks, so the return value
//! still passes by the code that records it.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, Lifetime};

/// How the function's `?` exits can be rewritten.
#[derive(Clone, Copy)]
pub(crate) enum Question {
    /// The function returns a `Result`: `e?` breaks with `Err(From::from(error))`.
    Result,
    /// The function returns an `Option`: `e?` breaks with `None`.
    Option,
    /// Anything else: `?` keeps returning directly, and the observation records no output.
    Keep,
}

pub(crate) fn label() -> Lifetime {
    Lifetime::new("'__lf_body", Span::call_site())
}

/// Rewrites `return e` into `break '__lf_body e` and `?` per `question`, leaving closures,
/// async blocks and nested items alone: their `return` and `?` are their own.
pub(crate) fn early_exits(block: &mut Block, question: Question) {
    Rewriter { question }.visit_block_mut(block);
}

struct Rewriter {
    question: Question,
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) => {}
            Expr::Return(ret) => {
                if let Some(value) = &mut ret.expr {
                    self.visit_expr_mut(value);
                }
                let label = label();
                let value = ret.expr.take().map(|value| quote!(#value));
                *expr = syn::parse_quote!(break #label #value);
            }
            Expr::Try(try_expr) => {
                self.visit_expr_mut(&mut try_expr.expr);
                let label = label();
                let inner = &try_expr.expr;
                let replacement: Option<TokenStream> = match self.question {
                    Question::Result => Some(quote! {
                        match #inner {
                            ::core::result::Result::Ok(__lf_value) => __lf_value,
                            ::core::result::Result::Err(__lf_error) => break #label
                                ::core::result::Result::Err(::core::convert::From::from(__lf_error)),
                        }
                    }),
                    Question::Option => Some(quote! {
                        match #inner {
                            ::core::option::Option::Some(__lf_value) => __lf_value,
                            ::core::option::Option::None => break #label ::core::option::Option::None,
                        }
                    }),
                    Question::Keep => None,
                };
                if let Some(replacement) = replacement {
                    *expr = syn::parse_quote!(#replacement);
                }
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
