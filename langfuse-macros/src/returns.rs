//! Recognising, from how the return type is written, functions that hand back a future, a
//! stream or an iterator: their observation lasts until that value is done, not until the
//! call returns.

use syn::{GenericArgument, PathArguments, Type, TypeParamBound};

/// How a function hands back its future.
pub(crate) struct ReturnedFuture<'a> {
    pub(crate) boxed: bool,
    pub(crate) output: Option<&'a Type>,
}

/// Recognises `impl Future<Output = T>`, `Pin<Box<dyn Future<Output = T> + …>>`, and the
/// `futures` crate's aliases of the latter, `BoxFuture<'a, T>` and `LocalBoxFuture<'a, T>`.
pub(crate) fn returned_future(ty: &Type) -> Option<ReturnedFuture<'_>> {
    match ty {
        Type::ImplTrait(bounds) if wrappable(&bounds.bounds, &["Future"]) => {
            associated(&bounds.bounds, &["Future"], "Output")
                .map(|(_, ty)| ty)
                .map(|output| ReturnedFuture {
                    boxed: false,
                    output,
                })
        }
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            if last.ident == "BoxFuture" || last.ident == "LocalBoxFuture" {
                return Some(ReturnedFuture {
                    boxed: true,
                    output: only_type_argument(&last.arguments),
                });
            }
            let pin = Some(last).filter(|s| s.ident == "Pin")?;
            let boxed = only_type_argument(&pin.arguments)?;
            let Type::Path(boxed) = boxed else {
                return None;
            };
            let boxed = boxed.path.segments.last().filter(|s| s.ident == "Box")?;
            let Type::TraitObject(object) = only_type_argument(&boxed.arguments)? else {
                return None;
            };
            associated(&object.bounds, &["Future"], "Output")
                .map(|(_, ty)| ty)
                .map(|output| ReturnedFuture {
                    boxed: true,
                    output,
                })
        }
        Type::Paren(inner) => returned_future(&inner.elem),
        Type::Group(inner) => returned_future(&inner.elem),
        _ => None,
    }
}

/// Whether the function returns a closure, `impl Fn(..)` (or `FnMut`, `FnOnce`).
pub(crate) fn returns_closure(ty: &Type) -> bool {
    let Type::ImplTrait(bounds) = ty else {
        return false;
    };
    bounds.bounds.iter().any(|bound| {
        matches!(bound, TypeParamBound::Trait(bound) if bound.path.segments.last().is_some_and(|s| {
            s.ident == "Fn" || s.ident == "FnMut" || s.ident == "FnOnce"
        }))
    })
}

fn only_type_argument(arguments: &syn::PathArguments) -> Option<&Type> {
    let syn::PathArguments::AngleBracketed(arguments) = arguments else {
        return None;
    };
    arguments.args.iter().find_map(|argument| match argument {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    })
}

/// What a stream or iterator function's observation follows.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceKind {
    Stream,
    Iterator,
}

/// How the observed sequence goes back into the declared return type.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wrap {
    /// `impl Stream` / `impl Iterator`: the wrapper itself.
    Opaque,
    /// `Pin<Box<dyn Stream>>` and aliases of it: `Box::pin(wrapper)`.
    BoxPin,
    /// `Box<dyn Iterator>` and aliases of it: `Box::new(wrapper)`.
    Box,
}

/// What a "connect, then stream" function returns the sequence in.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Within {
    /// `Result<impl Iterator, E>`: `Err` is the call's error.
    Result,
    /// `Option<impl Iterator>`: `None` ends the call with no sequence.
    Option,
}

pub(crate) struct Sequence {
    pub(crate) kind: SequenceKind,
    pub(crate) wrap: Wrap,
    /// The item type, when written in the return type.
    pub(crate) item: Option<Type>,
    /// The `Result` or `Option` the sequence comes in, if any.
    pub(crate) within: Option<Within>,
}

/// Recognises `impl Stream<Item = T>` (or `FusedStream`), `impl Iterator<Item = T>` (or
/// `ExactSizeIterator`, `FusedIterator`, `DoubleEndedIterator`),
/// `Pin<Box<dyn Stream<Item = T> + …>>`, `BoxStream<'a, T>`, `LocalBoxStream<'a, T>` and
/// `Box<dyn Iterator<Item = T> + …>`, each also as the `Ok` of a `Result` (however the
/// `Result` is spelled: `io::Result`, `anyhow::Result`) or the `Some` of an `Option`.
pub(crate) fn sequence(ty: &Type) -> Option<Sequence> {
    const STREAMS: [&str; 2] = ["Stream", "FusedStream"];
    const ITERATORS: [&str; 4] = [
        "Iterator",
        "ExactSizeIterator",
        "FusedIterator",
        "DoubleEndedIterator",
    ];
    let kind_of = |name: &syn::Ident| {
        if STREAMS.iter().any(|stream| name == stream) {
            SequenceKind::Stream
        } else {
            SequenceKind::Iterator
        }
    };
    match ty {
        Type::ImplTrait(bounds) => {
            let names: Vec<&str> = STREAMS.iter().chain(&ITERATORS).copied().collect();
            if !wrappable(&bounds.bounds, &names) {
                return None;
            }
            let (name, item) = associated(&bounds.bounds, &names, "Item")?;
            Some(Sequence {
                kind: kind_of(name),
                wrap: Wrap::Opaque,
                item: item.cloned(),
                within: None,
            })
        }
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            let within = if last.ident == "Result" {
                Some(Within::Result)
            } else if last.ident == "Option" {
                Some(Within::Option)
            } else {
                None
            };
            if let Some(within) = within {
                let inner = sequence(only_type_argument(&last.arguments)?)?;
                return inner.within.is_none().then_some(Sequence {
                    within: Some(within),
                    ..inner
                });
            }
            if last.ident == "BoxStream" || last.ident == "LocalBoxStream" {
                return Some(Sequence {
                    kind: SequenceKind::Stream,
                    wrap: Wrap::BoxPin,
                    item: only_type_argument(&last.arguments).cloned(),
                    within: None,
                });
            }
            let (inner, wrap) = if last.ident == "Pin" {
                let Type::Path(boxed) = only_type_argument(&last.arguments)? else {
                    return None;
                };
                let boxed = boxed.path.segments.last().filter(|s| s.ident == "Box")?;
                (only_type_argument(&boxed.arguments)?, Wrap::BoxPin)
            } else if last.ident == "Box" {
                (only_type_argument(&last.arguments)?, Wrap::Box)
            } else {
                return None;
            };
            let Type::TraitObject(object) = inner else {
                return None;
            };
            let wanted: &[&str] = if wrap == Wrap::BoxPin {
                &STREAMS
            } else {
                &ITERATORS
            };
            let (name, item) = associated(&object.bounds, wanted, "Item")?;
            Some(Sequence {
                kind: kind_of(name),
                wrap,
                item: item.cloned(),
                within: None,
            })
        }
        Type::Paren(inner) => sequence(&inner.elem),
        Type::Group(inner) => sequence(&inner.elem),
        _ => None,
    }
}

/// Whether the wrapper that keeps an observation open can stand for a value with these
/// bounds: only the traits it implements itself (`traits`) and the auto traits it passes on.
/// A value with any other bound (`impl Iterator + Clone`) is observed like any other value,
/// only while it is built, so that the function still compiles as written.
fn wrappable<'a>(bounds: impl IntoIterator<Item = &'a TypeParamBound>, traits: &[&str]) -> bool {
    const PASSED_ON: [&str; 3] = ["Send", "Sync", "Unpin"];
    bounds.into_iter().all(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            // Lifetimes and `use<..>` captures.
            return true;
        };
        bound.path.segments.last().is_some_and(|segment| {
            traits
                .iter()
                .chain(&PASSED_ON)
                .any(|name| segment.ident == name)
        })
    })
}

/// Among `bounds`, the first trait named one of `traits`, with its associated type `assoc`
/// when written (`Future<Output = T>`, `Stream<Item = T>`).
fn associated<'a>(
    bounds: impl IntoIterator<Item = &'a TypeParamBound>,
    traits: &[&str],
    assoc: &str,
) -> Option<(&'a syn::Ident, Option<&'a Type>)> {
    bounds.into_iter().find_map(|bound| {
        let TypeParamBound::Trait(bound) = bound else {
            return None;
        };
        let segment = bound.path.segments.last()?;
        if !traits.iter().any(|name| segment.ident == name) {
            return None;
        }
        let PathArguments::AngleBracketed(arguments) = &segment.arguments else {
            return Some((&segment.ident, None));
        };
        let ty = arguments.args.iter().find_map(|argument| match argument {
            GenericArgument::AssocType(found) if found.ident == assoc => Some(&found.ty),
            _ => None,
        });
        Some((&segment.ident, ty))
    })
}
