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
    /// Anything else (e.g. a `Result` behind an alias of another name): `?` keeps returning
    /// directly, past the recording code, so the dropped scope ends the observation as
    /// cancelled, without output.
    Keep,
}

pub(crate) fn label() -> Lifetime {
    Lifetime::new("'__lf_body", Span::call_site())
}

/// Rewrites `return e` into `break '__lf_body e` and `?` per `question`, leaving closures,
/// async blocks and nested items alone: their `return` and `?` are their own. Returns whether
/// anything was rewritten, that is, whether the block needs the label.
pub(crate) fn early_exits(block: &mut Block, question: Question) -> bool {
    let mut rewriter = Rewriter {
        question,
        rewritten: false,
    };
    rewriter.visit_block_mut(block);
    rewriter.rewritten
}

struct Rewriter {
    question: Question,
    rewritten: bool,
}

/// `break '__lf_body value`, built as a syntax tree rather than parsed from tokens: syn reads a
/// value that starts with `::` (`break 'label ::core::…`) as a labelled loop's colon
/// (`break 'label: loop {}`) and fails, while rustc reads the printed tokens correctly.
fn break_with(value: Option<Expr>) -> Expr {
    Expr::Break(syn::ExprBreak {
        attrs: Vec::new(),
        break_token: Default::default(),
        label: Some(label()),
        expr: value.map(Box::new),
    })
}

/// `match operand { Continue(__lf_value) => __lf_value, Break => break '__lf_body residual }`.
/// The operand and the break go in after parsing: the operand may hold breaks already, from a
/// nested `?`, and neither may be parsed back from tokens (see [`break_with`]).
fn try_match(
    operand: Expr,
    continue_pattern: TokenStream,
    break_pattern: TokenStream,
    residual: Expr,
) -> Expr {
    let mut matched: syn::ExprMatch = syn::parse_quote! {
        match () {
            #continue_pattern => __lf_value,
            #break_pattern => {}
        }
    };
    *matched.expr = operand;
    *matched.arms[1].body = break_with(Some(residual));
    Expr::Match(matched)
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Closure(_) | Expr::Async(_) => {}
            Expr::Return(ret) => {
                if let Some(value) = &mut ret.expr {
                    self.visit_expr_mut(value);
                }
                *expr = break_with(ret.expr.take().map(|value| *value));
                self.rewritten = true;
            }
            Expr::Try(try_expr) => {
                self.visit_expr_mut(&mut try_expr.expr);
                let operand = (*try_expr.expr).clone();
                let replacement = match self.question {
                    Question::Result => try_match(
                        operand,
                        quote!(::core::result::Result::Ok(__lf_value)),
                        quote!(::core::result::Result::Err(__lf_error)),
                        syn::parse_quote! {
                            ::core::result::Result::Err(::core::convert::From::from(__lf_error))
                        },
                    ),
                    Question::Option => try_match(
                        operand,
                        quote!(::core::option::Option::Some(__lf_value)),
                        quote!(::core::option::Option::None),
                        syn::parse_quote!(::core::option::Option::None),
                    ),
                    Question::Keep => return,
                };
                *expr = replacement;
                self.rewritten = true;
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
