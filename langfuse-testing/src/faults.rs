//! The fault plan: what the server should do wrong, and to which requests.
//!
//! A plan is a list of rules consumed in order by matching requests, plus a standing body size
//! limit. Rules describe infrastructure misbehaviour (a proxy answering 503, a rate limiter, a
//! dropped socket) or the ingestion endpoint's per-event errors.

use std::time::Duration;

/// An endpoint of the test server, for aiming a fault at one of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Route {
    /// `POST /api/public/otel/v1/traces`.
    Otlp,
    /// `POST /api/public/ingestion`.
    Ingestion,
    /// `GET /api/public/projects`.
    Projects,
    /// `GET /api/public/health`.
    Health,
    /// `GET /api/public/v2/prompts/{name}`.
    Prompts,
}

impl Route {
    /// Faults without an explicit route hit only the routes that carry data, so a stray project
    /// lookup never eats a fault meant for an export.
    fn carries_data(self) -> bool {
        matches!(self, Route::Otlp | Route::Ingestion)
    }
}

/// Which events of an ingestion batch answer with an error inside the 207 response.
///
/// An event is selected when its position (0-based, in batch order) is listed, when its type is
/// listed, or when [`EventErrors::all`] was used. Selected events are not applied to the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventErrors {
    positions: Vec<usize>,
    event_types: Vec<String>,
    all: bool,
    status: u16,
    message: String,
}

impl EventErrors {
    fn empty() -> Self {
        EventErrors {
            positions: Vec::new(),
            event_types: Vec::new(),
            all: false,
            status: 500,
            message: "injected event error".to_owned(),
        }
    }

    /// Fails the events at these batch positions (0-based).
    pub fn at_positions(positions: impl IntoIterator<Item = usize>) -> Self {
        EventErrors {
            positions: positions.into_iter().collect(),
            ..EventErrors::empty()
        }
    }

    /// Fails every event of this type, e.g. `"score-create"`.
    pub fn of_type(event_type: impl Into<String>) -> Self {
        EventErrors {
            event_types: vec![event_type.into()],
            ..EventErrors::empty()
        }
    }

    /// Fails every event of the batch.
    pub fn all() -> Self {
        EventErrors {
            all: true,
            ..EventErrors::empty()
        }
    }

    /// Also fails events of this type.
    pub fn or_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_types.push(event_type.into());
        self
    }

    /// Also fails the events at these positions.
    pub fn or_positions(mut self, positions: impl IntoIterator<Item = usize>) -> Self {
        self.positions.extend(positions);
        self
    }

    /// The status reported for each failed event (default 500).
    ///
    /// # Panics
    ///
    /// If `status` is not an HTTP status code (100..=999).
    pub fn with_status(mut self, status: u16) -> Self {
        assert_status(status);
        self.status = status;
        self
    }

    /// The message reported for each failed event (default `"injected event error"`).
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub(crate) fn selects(&self, position: usize, event_type: Option<&str>) -> bool {
        self.all
            || self.positions.contains(&position)
            || event_type.is_some_and(|t| self.event_types.iter().any(|listed| listed == t))
    }

    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Status(u16),
    RateLimited { retry_after_secs: u64 },
    Delay(Duration),
    DropConnection,
    EventErrors(EventErrors),
    HtmlSignIn { status: u16 },
    Redirect { status: u16, location: String },
    HugeBody { status: u16, bytes: usize },
    EchoHeaders { status: u16 },
    NotFound,
}

/// The requests a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// The routes that carry data (OTLP and ingestion).
    Data,
    Only(Route),
    Every,
}

/// One rule of a fault plan: an action, the requests it applies to, and how many times.
///
/// A fault fires once unless [`Fault::times`] or [`Fault::always`] says otherwise. Without
/// [`Fault::on`] it applies to the data routes (OTLP and ingestion) but not to the project lookup
/// or the health check; [`Fault::not_found`] applies to every route unless narrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    action: Action,
    target: Target,
    remaining: Option<usize>,
}

impl Fault {
    fn new(action: Action) -> Self {
        Fault {
            action,
            target: Target::Data,
            remaining: Some(1),
        }
    }

    /// Answers with this status and the body the real server gives for it on the route, without
    /// applying anything: 401 and 403 with the §1.1 texts (`Invalid credentials. …`, `Ingestion
    /// suspended: …`), 429 as [`Fault::rate_limited`] with one second, 500 with
    /// `{"message":"Internal Server Error","error":…}` on OTLP and
    /// `{"message":"Invalid request data","errors":[…]}` on ingestion, 413 with the ingestion
    /// route's plain text; other statuses with a JSON body naming the status.
    ///
    /// # Panics
    ///
    /// If `status` is not an HTTP status code (100..=999).
    pub fn status(status: u16) -> Self {
        assert_status(status);
        Fault::new(Action::Status(status))
    }

    /// Answers 429 like Langfuse Cloud (§1.4): `Retry-After` (this many seconds),
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` headers, and the
    /// `{"message":"Rate limit exceeded","code":"rate_limited","details":{…}}` body.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Fault::new(Action::RateLimited { retry_after_secs })
    }

    /// Waits this long before answering; the request is otherwise handled normally (or by the
    /// other faults that match it).
    pub fn delay(delay: Duration) -> Self {
        Fault::new(Action::Delay(delay))
    }

    /// Reads the whole request, then closes the connection without answering, so the client sees
    /// a connection error rather than a status.
    pub fn drop_connection() -> Self {
        Fault::new(Action::DropConnection)
    }

    /// Answers an ingestion batch with 207 where the selected events carry errors.
    ///
    /// Applies to the ingestion route only, and counts only batches that get as far as per-event
    /// processing (authenticated, decodable).
    pub fn event_errors(errors: EventErrors) -> Self {
        Fault::new(Action::EventErrors(errors)).on(Route::Ingestion)
    }

    /// Answers with this (typically 2xx) status, `content-type: text/html` and an HTML sign-in
    /// page, as a login proxy in front of Langfuse would. Nothing is applied.
    ///
    /// # Panics
    ///
    /// If `status` is not an HTTP status code (100..=999).
    pub fn html_sign_in_page(status: u16) -> Self {
        assert_status(status);
        Fault::new(Action::HtmlSignIn { status })
    }

    /// Answers with this status and a plain-text body that repeats every request header,
    /// `Authorization` included, as a misconfigured server or a debugging proxy might. Nothing
    /// is applied. For testing that a client never prints what such an answer echoes.
    ///
    /// # Panics
    ///
    /// If `status` is not an HTTP status code (100..=999).
    pub fn echo_headers(status: u16) -> Self {
        assert_status(status);
        Fault::new(Action::EchoHeaders { status })
    }

    /// Answers with a redirect status (301, 302, 303, 307 or 308) and a `Location` header with
    /// `location`: an absolute URL, or a path such as `/moved/api/public/ingestion` that a client
    /// resolves against this server. Nothing is applied.
    ///
    /// # Panics
    ///
    /// If `status` is not one of the five redirect statuses.
    pub fn redirect(status: u16, location: impl Into<String>) -> Self {
        assert!(
            matches!(status, 301 | 302 | 303 | 307 | 308),
            "{status} is not a redirect status"
        );
        Fault::new(Action::Redirect {
            status,
            location: location.into(),
        })
    }

    /// Answers with this status and a body of exactly `bytes` bytes (`content-type:
    /// text/plain`), for checking that a client reads only a bounded part of an answer. Nothing
    /// is applied.
    ///
    /// # Panics
    ///
    /// If `status` is not an HTTP status code (100..=999).
    pub fn huge_body(status: u16, bytes: usize) -> Self {
        assert_status(status);
        Fault::new(Action::HugeBody { status, bytes })
    }

    /// Answers 404 with the not-found page on **every** route, as a Langfuse mounted under
    /// another path (or a wrong base URL) would. Nothing is applied. Use [`Fault::on`] to narrow
    /// it to one route.
    pub fn not_found() -> Self {
        Fault {
            target: Target::Every,
            ..Fault::new(Action::NotFound)
        }
    }

    /// Applies to the next `n` matching requests (default 1).
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Applies to every matching request until the plan is changed.
    pub fn always(mut self) -> Self {
        self.remaining = None;
        self
    }

    /// Applies only to requests on this route.
    pub fn on(mut self, route: Route) -> Self {
        self.target = Target::Only(route);
        self
    }

    /// Applies to requests on every route, the project lookup and health check included.
    pub fn on_every_route(mut self) -> Self {
        self.target = Target::Every;
        self
    }

    /// How many more requests this fault applies to; `None` means every request.
    pub fn remaining(&self) -> Option<usize> {
        self.remaining
    }

    fn matches(&self, route: Route) -> bool {
        self.remaining != Some(0)
            && match self.target {
                Target::Only(only) => only == route,
                Target::Data => route.carries_data(),
                Target::Every => true,
            }
    }

    fn consume(&mut self) {
        if let Some(n) = &mut self.remaining {
            *n = n.saturating_sub(1);
        }
    }
}

/// A fault plan for [`TestServer::set_faults`](super::TestServer::set_faults).
///
/// Rules are checked in the order they were added. For each request on a known route and method
/// the server first waits for every matching delay, then applies the first matching rule that
/// replaces the answer (drop, status, 429, HTML page, redirect, huge body, 404), then the body
/// size limit (413); only then does the route's own processing start (body parsing,
/// authentication, validation), and last come the ingestion per-event errors. Each rule that
/// takes effect uses up one of its counts; rules whose count reaches zero disappear.
///
/// ```
/// use std::time::Duration;
/// use langfuse_observe_testing::{EventErrors, Fault, Faults, Route};
///
/// let plan = Faults::new()
///     .fail_next(2, 503)
///     .rate_limit_next(1, 3)
///     .with(Fault::delay(Duration::from_millis(50)).always().on(Route::Otlp))
///     .event_errors_next(1, EventErrors::of_type("score-create").with_status(400))
///     .max_body_bytes(1_000_000);
/// assert_eq!(plan.rules().len(), 4);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    rules: Vec<Fault>,
    max_body_bytes: Option<usize>,
}

impl Faults {
    /// An empty plan: every request is answered normally.
    pub fn new() -> Self {
        Faults::default()
    }

    /// Adds a rule.
    pub fn with(mut self, fault: Fault) -> Self {
        self.rules.push(fault);
        self
    }

    /// Fails the next `n` data requests with `status`.
    pub fn fail_next(self, n: usize, status: u16) -> Self {
        self.with(Fault::status(status).times(n))
    }

    /// Fails the next `n` requests on `route` with `status`.
    pub fn fail_next_on(self, route: Route, n: usize, status: u16) -> Self {
        self.with(Fault::status(status).times(n).on(route))
    }

    /// Answers the next `n` data requests with 429 and `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(self, n: usize, retry_after_secs: u64) -> Self {
        self.with(Fault::rate_limited(retry_after_secs).times(n))
    }

    /// Delays the next `n` data requests.
    pub fn delay_next(self, n: usize, delay: Duration) -> Self {
        self.with(Fault::delay(delay).times(n))
    }

    /// Delays every data request.
    pub fn delay_all(self, delay: Duration) -> Self {
        self.with(Fault::delay(delay).always())
    }

    /// Drops the connection of the next `n` data requests without answering.
    pub fn drop_next(self, n: usize) -> Self {
        self.with(Fault::drop_connection().times(n))
    }

    /// Reports per-event errors in the next `n` ingestion batches.
    pub fn event_errors_next(self, n: usize, errors: EventErrors) -> Self {
        self.with(Fault::event_errors(errors).times(n))
    }

    /// Answers 413 to every data request whose body, as received (compressed if it was sent
    /// compressed), is larger than `limit` bytes: on ingestion with the plain text of the real
    /// limit (`Body exceeded 4.5mb limit`), on OTLP (which has no limit of its own) with a proxy's
    /// plain `Payload Too Large`.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = Some(limit);
        self
    }

    /// The rules not used up yet.
    pub fn rules(&self) -> &[Fault] {
        &self.rules
    }

    /// The body size limit, if any.
    pub fn body_limit(&self) -> Option<usize> {
        self.max_body_bytes
    }

    /// Takes the decision for a request that just arrived, using up the rules that fire.
    pub(crate) fn decide(&mut self, route: Route, body_bytes: usize) -> Decision {
        let mut delay = Duration::ZERO;
        for rule in &mut self.rules {
            if let Action::Delay(d) = rule.action {
                if rule.matches(route) {
                    delay += d;
                    rule.consume();
                }
            }
        }
        let mut outcome = None;
        for rule in &mut self.rules {
            if !rule.matches(route) {
                continue;
            }
            let fired = match &rule.action {
                Action::Status(429) => Some(Outcome::RateLimited {
                    retry_after_secs: 1,
                }),
                Action::Status(status) => Some(Outcome::Status(*status)),
                Action::RateLimited { retry_after_secs } => Some(Outcome::RateLimited {
                    retry_after_secs: *retry_after_secs,
                }),
                Action::DropConnection => Some(Outcome::Drop),
                Action::HtmlSignIn { status } => Some(Outcome::HtmlSignIn { status: *status }),
                Action::EchoHeaders { status } => Some(Outcome::EchoHeaders { status: *status }),
                Action::Redirect { status, location } => Some(Outcome::Redirect {
                    status: *status,
                    location: location.clone(),
                }),
                Action::HugeBody { status, bytes } => Some(Outcome::HugeBody {
                    status: *status,
                    bytes: *bytes,
                }),
                Action::NotFound => Some(Outcome::NotFound),
                Action::Delay(_) | Action::EventErrors(_) => None,
            };
            if fired.is_some() {
                rule.consume();
                outcome = fired;
                break;
            }
        }
        if outcome.is_none() && route.carries_data() {
            if let Some(limit) = self.max_body_bytes {
                if body_bytes > limit {
                    outcome = Some(Outcome::TooLarge { limit });
                }
            }
        }
        self.prune();
        Decision { delay, outcome }
    }

    /// The per-event errors for an ingestion batch about to be processed, using up the rule.
    pub(crate) fn take_event_errors(&mut self, route: Route) -> Option<EventErrors> {
        let rule = self
            .rules
            .iter_mut()
            .find(|rule| matches!(rule.action, Action::EventErrors(_)) && rule.matches(route))?;
        rule.consume();
        let errors = match &rule.action {
            Action::EventErrors(errors) => Some(errors.clone()),
            _ => None,
        };
        self.prune();
        errors
    }

    fn prune(&mut self) {
        self.rules.retain(|rule| rule.remaining != Some(0));
    }
}

/// What the fault plan wants done with one request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub(crate) delay: Duration,
    pub(crate) outcome: Option<Outcome>,
}

/// A fault that replaces the normal answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Status(u16),
    RateLimited { retry_after_secs: u64 },
    Drop,
    TooLarge { limit: usize },
    HtmlSignIn { status: u16 },
    Redirect { status: u16, location: String },
    HugeBody { status: u16, bytes: usize },
    EchoHeaders { status: u16 },
    NotFound,
}

fn assert_status(status: u16) {
    assert!(
        (100..=999).contains(&status),
        "{status} is not an HTTP status code"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_fire_in_order_and_wear_out() {
        let mut plan = Faults::new().fail_next(1, 503).rate_limit_next(1, 7);
        assert_eq!(
            plan.decide(Route::Otlp, 10).outcome,
            Some(Outcome::Status(503))
        );
        assert_eq!(
            plan.decide(Route::Ingestion, 10).outcome,
            Some(Outcome::RateLimited {
                retry_after_secs: 7
            })
        );
        assert_eq!(plan.decide(Route::Otlp, 10).outcome, None);
        assert!(plan.rules().is_empty());
    }

    #[test]
    fn unrouted_faults_spare_the_project_lookup() {
        let mut plan = Faults::new()
            .fail_next(1, 500)
            .fail_next_on(Route::Projects, 1, 401);
        assert_eq!(
            plan.decide(Route::Projects, 0).outcome,
            Some(Outcome::Status(401))
        );
        assert_eq!(
            plan.decide(Route::Projects, 0).outcome,
            None,
            "the unrouted rule must not fire on the project lookup"
        );
        assert_eq!(
            plan.decide(Route::Ingestion, 0).outcome,
            Some(Outcome::Status(500))
        );
    }

    #[test]
    fn delays_add_up_and_do_not_block_other_outcomes() {
        let mut plan = Faults::new()
            .delay_next(1, Duration::from_millis(5))
            .delay_all(Duration::from_millis(1))
            .drop_next(1);
        let first = plan.decide(Route::Otlp, 0);
        assert_eq!(first.delay, Duration::from_millis(6));
        assert_eq!(first.outcome, Some(Outcome::Drop));
        let second = plan.decide(Route::Otlp, 0);
        assert_eq!(second.delay, Duration::from_millis(1));
        assert_eq!(second.outcome, None);
        assert_eq!(plan.rules().len(), 1);
    }

    #[test]
    fn body_limit_is_standing_and_compares_strictly() {
        let mut plan = Faults::new().max_body_bytes(100);
        assert_eq!(plan.decide(Route::Otlp, 100).outcome, None);
        for _ in 0..2 {
            assert_eq!(
                plan.decide(Route::Ingestion, 101).outcome,
                Some(Outcome::TooLarge { limit: 100 })
            );
        }
    }

    #[test]
    fn event_errors_are_taken_only_for_ingestion() {
        let errors = EventErrors::at_positions([1]).or_type("score-create");
        let mut plan = Faults::new().event_errors_next(1, errors.clone());
        assert_eq!(plan.decide(Route::Ingestion, 0).outcome, None);
        assert_eq!(plan.take_event_errors(Route::Otlp), None);
        let taken = plan
            .take_event_errors(Route::Ingestion)
            .expect("rule present");
        assert!(taken.selects(1, Some("span-create")));
        assert!(taken.selects(0, Some("score-create")));
        assert!(!taken.selects(0, Some("span-create")));
        assert_eq!(plan.take_event_errors(Route::Ingestion), None);
    }

    #[test]
    #[should_panic(expected = "not an HTTP status code")]
    fn rejects_impossible_status() {
        let _ = Fault::status(42);
    }
}
