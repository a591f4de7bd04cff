//! The `Layer`: a kept span's life as an observation, from its creation to its close.

use std::borrow::Cow;
use std::cell::RefCell;
use std::time::SystemTime;

use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::mapping::{self, Fields};
use super::TracingLayer;
use crate::context::ContextGuard;
use crate::observation::{Level, ObservationType};
use crate::scope::{Behaviour, Current, Parent, Scope};

/// A kept span's observation and the fields recorded on it so far; the mapping runs on all of
/// them when the span closes, as the server reads all of a span's attributes at once.
struct Bridged {
    scope: Scope,
    fields: Fields,
    name: &'static str,
    /// When a streamed completion first reported a response field.
    first_response: Option<SystemTime>,
}

/// The observation the children of a span that is not kept hang under: its nearest kept
/// ancestor's, or the observation current where it started. A kept span's children hang under
/// its own.
struct Anchor(Current);

/// A span started on the export thread, and so are its descendants: the exporter's own HTTP
/// stack must never be recorded, or exporting would feed itself.
struct Suppressed;

thread_local! {
    /// The bridged spans entered on this thread, innermost last, each with the guard that made
    /// its observation current.
    static ENTERED: RefCell<Vec<(Id, ContextGuard)>> = const { RefCell::new(Vec::new()) };
}

/// How a bridged observation behaves: it records what its fields say, and its end never
/// flushes, since spans close wherever their last handle drops, often inside a runtime's poll.
const BEHAVIOUR: Behaviour = Behaviour {
    capture_output: true,
    flush: false,
};

impl<S> Layer<S> for TracingLayer
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    #[cfg(feature = "tracing-opentelemetry")]
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.otel.register(subscriber);
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent = span.parent();
        let suppressed = crate::export::on_export_thread()
            || parent
                .as_ref()
                .is_some_and(|parent| parent.extensions().get::<Suppressed>().is_some());
        if suppressed {
            span.extensions_mut().insert(Suppressed);
            return;
        }
        if !crate::client::any_enabled() {
            return;
        }
        // An explicit parent (rig names `Span::current()` explicitly) hangs the span under that
        // span's anchor; without one, or when that parent anchors nothing, the current
        // observation already reflects entered spans and `#[observe]` calls.
        let anchor = if attrs.is_contextual() {
            None
        } else {
            parent.as_ref().and_then(|parent| {
                let extensions = parent.extensions();
                match extensions.get::<Bridged>() {
                    Some(bridged) => Some(bridged.scope.as_parent()),
                    None => extensions.get::<Anchor>().map(|anchor| anchor.0.clone()),
                }
            })
        }
        .or_else(crate::context::current);
        let metadata = attrs.metadata();
        if !self.filter.keeps(metadata, anchor.is_some()) {
            if let Some(anchor) = anchor {
                span.extensions_mut().insert(Anchor(anchor));
            }
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let name = metadata.name();
        let Some(scope) = crate::scope::begin_under(
            || anchor.as_ref().map(Parent::of),
            || self.new_trace_id(id),
            Cow::Borrowed(name),
            ObservationType::Span,
            BEHAVIOUR,
            |_| {},
        ) else {
            return;
        };
        span.extensions_mut().insert(Bridged {
            scope,
            fields,
            name,
            first_response: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        let Some(bridged) = extensions.get_mut::<Bridged>() else {
            return;
        };
        let mut recorder = mapping::Recorder {
            fields: &mut bridged.fields,
            response: false,
        };
        values.record(&mut recorder);
        if recorder.response
            && bridged.first_response.is_none()
            && mapping::is_streaming(bridged.name, &bridged.fields)
        {
            bridged.first_response = Some(SystemTime::now());
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::ERROR {
            return;
        }
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let extensions = span.extensions();
        let Some(bridged) = extensions.get::<Bridged>() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = error_message(&fields, event);
        bridged.scope.active().update(|record| {
            record.level = Level::Error;
            record.status_message = Some(message);
        });
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let extensions = span.extensions();
        let Some(bridged) = extensions.get::<Bridged>() else {
            return;
        };
        let guard = bridged.scope.enter();
        // The slot is gone only while the thread itself shuts down.
        let _ = ENTERED.try_with(|entered| entered.borrow_mut().push((id.clone(), guard)));
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        // Guards restore what was current before them, so they are dropped innermost first:
        // an exit out of order also leaves the spans entered after this one.
        let _ = ENTERED.try_with(|entered| {
            let position = entered
                .borrow()
                .iter()
                .rposition(|(entered, _)| entered == id);
            let Some(position) = position else {
                return;
            };
            loop {
                // Popped before it is dropped, outside the borrow.
                let popped = entered.borrow_mut().pop();
                drop(popped);
                if entered.borrow().len() <= position {
                    break;
                }
            }
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(bridged) = span.extensions_mut().remove::<Bridged>() else {
            return;
        };
        let Bridged {
            scope,
            fields,
            name,
            first_response,
        } = bridged;
        let active = scope.active();
        if let Some(change) = mapping::trace_update(&fields) {
            active.trace().update(change);
        }
        active.update(|record| mapping::apply(&fields, name, first_response, record));
        scope.end_quietly();
    }
}

/// An ERROR event's text: its message, else its fields, else where it was emitted.
fn error_message(fields: &Fields, event: &Event<'_>) -> String {
    if let Some(message) = fields.get("message") {
        return message.text();
    }
    let summary = fields.summary();
    if summary.is_empty() {
        format!("error event at {}", event.metadata().target())
    } else {
        summary
    }
}
