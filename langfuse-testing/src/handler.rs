//! One HTTP request from arrival to answer: routing, faults, the route's own checks in the
//! server's order, applying to the model and recording.
//!
//! Every request is recorded exactly once, with the status it got, in the same critical section
//! that applies its data, so a test that sees the request also sees its effect.

use std::io::Read;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::auth::{self, Access};
use crate::faults::{Faults, Outcome, Route};
use crate::js::{self, Ordered};
use crate::model::{Catalog, RecordedRequest, ServerMode, Store};
use crate::otlp::decode::{self, JsonError};
use crate::otlp::Export;
use crate::prompts;
use crate::schema;
use crate::time;

pub(crate) const OTLP_PATH: &str = "/api/public/otel/v1/traces";
pub(crate) const INGESTION_PATH: &str = "/api/public/ingestion";
pub(crate) const PROJECTS_PATH: &str = "/api/public/projects";
pub(crate) const HEALTH_PATH: &str = "/api/public/health";
/// Followed by one path segment, the percent-encoded prompt name.
pub(crate) const PROMPTS_PATH: &str = "/api/public/v2/prompts/";

/// Next.js's `sizeLimit: "4.5mb"` on the ingestion route, in bytes as sent (§3.1).
const INGESTION_BODY_LIMIT: usize = 4_718_592;

/// How much of each answer's body [`RecordedRequest::response_body`] keeps.
const RECORDED_BODY_LIMIT: usize = 64 * 1024;

/// State shared by the server thread and the test thread.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// Bumped under the store lock on every change, so waiters cannot miss one.
    generation: AtomicU64,
    changed: Condvar,
    faults: Mutex<Faults>,
    public_key: String,
    secret_key: String,
    project_id: String,
    project_name: String,
    /// Locked alone, or after nothing but this: [`finish`] takes it before the store.
    catalog: Mutex<Catalog>,
    in_flight: AtomicUsize,
    idle: Notify,
    /// See [`TestServerBuilder::build_model`](super::TestServerBuilder::build_model).
    build_model: bool,
}

/// The settings a [`Shared`] is built from.
pub(crate) struct Settings {
    pub(crate) public_key: String,
    pub(crate) secret_key: String,
    pub(crate) project_id: String,
    pub(crate) project_name: String,
    pub(crate) faults: Faults,
    pub(crate) mode: ServerMode,
    pub(crate) catalog: Catalog,
    pub(crate) build_model: bool,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> Self {
        Shared {
            store: Mutex::new(Store::new(settings.mode)),
            generation: AtomicU64::new(0),
            changed: Condvar::new(),
            faults: Mutex::new(settings.faults),
            public_key: settings.public_key,
            secret_key: settings.secret_key,
            project_id: settings.project_id,
            project_name: settings.project_name,
            catalog: Mutex::new(settings.catalog),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            build_model: settings.build_model,
        }
    }

    /// A panicking test thread must not make the server unusable for the rest of the test, so
    /// poisoning is ignored: every critical section leaves the data consistent.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the store and wakes every waiter.
    pub(crate) fn update<R>(&self, change: impl FnOnce(&mut Store) -> R) -> R {
        let mut store = self.store();
        let result = change(&mut store);
        self.generation.fetch_add(1, Ordering::SeqCst);
        drop(store);
        self.changed.notify_all();
        result
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Blocks until the store changes or `timeout` passes; `seen` is a value of
    /// [`Shared::generation`] read before the caller last looked at the store.
    pub(crate) fn wait_for_change(&self, seen: u64, timeout: std::time::Duration) {
        let mut store = self.store();
        let deadline = std::time::Instant::now() + timeout;
        while self.generation() == seen {
            let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) else {
                return;
            };
            store = self
                .changed
                .wait_timeout(store, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until no request is being handled, or `timeout` passes.
    pub(crate) async fn drained(&self, timeout: std::time::Duration) {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if self.in_flight.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
    }

    pub(crate) fn authorization_header(&self) -> String {
        format!(
            "Basic {}",
            BASE64.encode(format!("{}:{}", self.public_key, self.secret_key))
        )
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Access, String> {
        auth::authenticate(headers, &self.public_key, &self.secret_key)
    }
}

/// Counts a request as in flight for the graceful part of shutdown.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Returned to hyper to make it close the connection without writing a response.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl std::fmt::Display for DropConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the test server")
    }
}

impl std::error::Error for DropConnection {}

type HttpResponse = Response<Full<Bytes>>;

/// An answer before it becomes a hyper response, so its body can also be recorded.
struct Answer {
    status: u16,
    content_type: &'static str,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Vec<u8>,
}

/// What an accepted request changes in the model, applied together with its record.
enum Change {
    Nothing,
    Otlp(Box<DecodedOtlp>),
    Events {
        logs: Vec<Value>,
        events: Vec<schema::ValidEvent>,
    },
}

pub(crate) async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
) -> Result<HttpResponse, DropConnection> {
    let _in_flight = InFlight::enter(shared);
    let (parts, body) = request.into_parts();
    // A body that cannot be read means the client is gone; nobody is left to answer.
    let body = body.collect().await.map_err(|_| DropConnection)?.to_bytes();
    let mut record = new_record(&parts, body.len());

    let Some(route) = route_of(parts.uri.path()) else {
        return Ok(finish(shared, record, not_found(), Change::Nothing));
    };
    let allowed = match route {
        Route::Otlp | Route::Ingestion => Method::POST,
        _ => Method::GET,
    };
    if parts.method != allowed {
        return Ok(finish(
            shared,
            record,
            method_not_allowed(route),
            Change::Nothing,
        ));
    }

    // Decoded up front (answered later, in the server's order) so that a request a fault fails
    // is still recorded with its envelope and span ids.
    let otlp =
        (route == Route::Otlp).then(|| decode_otlp(&parts.headers, &body, shared.build_model));
    let ingestion =
        (route == Route::Ingestion).then(|| parse_ingestion_body(&parts.headers, &body));
    if let Some(Ok(Some(DecodedOtlp {
        export: Some(export),
        ..
    }))) = &otlp
    {
        record.span_ids = export.spans().map(|(_, _, s)| s.span_id.clone()).collect();
    }
    if let Some(Ok(root)) = &ingestion {
        describe_batch(&mut record, root);
    }

    let decision = shared.faults().decide(route, body.len());
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let Some(outcome) = decision.outcome {
        let response = match (route, outcome) {
            // A 404 on the prompt route is the route's own, naming what was asked for.
            (Route::Prompts, Outcome::Status(404)) => {
                Some(prompt_not_found(&PromptAsk::of(&parts)))
            }
            (route, outcome) => fault_response(route, outcome, &parts.headers),
        };
        let response = match response {
            Some(response) => response,
            None => {
                record.status = None;
                shared.update(|store| store.record_request(record));
                return Err(DropConnection);
            }
        };
        return Ok(finish(shared, record, response, Change::Nothing));
    }

    let (answer, change) = match (route, otlp, ingestion) {
        (Route::Otlp, Some(decoded), _) => handle_otlp(shared, &parts.headers, decoded),
        (Route::Ingestion, _, Some(parsed)) => handle_ingestion(shared, &parts.headers, parsed),
        (Route::Projects, _, _) => (handle_projects(shared, &parts.headers), Change::Nothing),
        (Route::Prompts, _, _) => (handle_prompt(shared, &parts), Change::Nothing),
        _ => (health(shared), Change::Nothing),
    };
    Ok(finish(shared, record, answer, change))
}

fn route_of(path: &str) -> Option<Route> {
    match path {
        OTLP_PATH => Some(Route::Otlp),
        INGESTION_PATH => Some(Route::Ingestion),
        PROJECTS_PATH => Some(Route::Projects),
        HEALTH_PATH => Some(Route::Health),
        // `[promptName]` is one segment: a raw `/` in a name leads to another route (§7.1).
        _ => path
            .strip_prefix(PROMPTS_PATH)
            .filter(|name| !name.is_empty() && !name.contains('/'))
            .map(|_| Route::Prompts),
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn new_record(parts: &Parts, body_bytes: usize) -> RecordedRequest {
    let headers = &parts.headers;
    RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        status: None,
        body_bytes,
        sdk_name: header(headers, "x-langfuse-sdk-name"),
        sdk_version: header(headers, "x-langfuse-sdk-version"),
        public_key: header(headers, "x-langfuse-public-key"),
        ingestion_version: header(headers, "x-langfuse-ingestion-version"),
        content_type: header(headers, "content-type"),
        content_encoding: header(headers, "content-encoding"),
        headers: headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        envelope_ids: Vec::new(),
        event_types: Vec::new(),
        batch_metadata: None,
        span_ids: Vec::new(),
        response_body: String::new(),
    }
}

fn describe_batch(record: &mut RecordedRequest, root: &Value) {
    if let Some(Value::Array(events)) = root.get("batch") {
        record.envelope_ids = events
            .iter()
            .filter_map(|e| e.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        record.event_types = events
            .iter()
            .map(|e| schema::event_type_of(e).unwrap_or_default().to_owned())
            .collect();
    }
    record.batch_metadata = root.get("metadata").cloned();
}

// ---------------------------------------------------------------------------------------------
// OTLP (§2.1)

struct DecodedOtlp {
    /// The export in the official types, when it can be expressed in them (protobuf always;
    /// OTLP/JSON when its ids are hex and its values typed the canonical way).
    proto: Option<ExportTraceServiceRequest>,
    /// The spans as the mapping reads them; a protobuf export is converted only when the model
    /// is built, so that load tests measure the client rather than this conversion.
    export: Option<Export>,
}

/// Steps 5–9 of §2.1; `Ok(None)` is an empty export, `Err` the `error` text of a 400.
fn decode_otlp(
    headers: &HeaderMap,
    body: &[u8],
    build_model: bool,
) -> Result<Option<DecodedOtlp>, String> {
    let gzip = header(headers, "content-encoding").is_some_and(|e| e.contains("gzip"));
    let body = if gzip {
        let mut out = Vec::new();
        GzDecoder::new(body)
            .read_to_end(&mut out)
            .map_err(|_| "Failed to decompress request body".to_owned())?;
        out
    } else {
        body.to_vec()
    };
    let content_type = header(headers, "content-type")
        .unwrap_or_default()
        .to_lowercase();
    if content_type.contains("application/x-protobuf") {
        let proto = decode::decode_protobuf(&body)
            .ok_or("Failed to parse OTel Protobuf Trace".to_owned())?;
        if proto.resource_spans.is_empty() {
            return Ok(None);
        }
        let export = build_model.then(|| decode::from_protobuf(&proto));
        Ok(Some(DecodedOtlp {
            proto: Some(proto),
            export,
        }))
    } else if content_type.contains("application/json") {
        match decode::decode_json(&body) {
            Err(JsonError::Parse) => Err("Failed to parse OTel JSON Trace".to_owned()),
            Err(JsonError::Structure(text)) => Err(format!("Invalid OTLP trace export: {text}")),
            Ok(None) => Ok(None),
            Ok(Some(export)) => Ok(Some(DecodedOtlp {
                proto: serde_json::from_slice(&body).ok(),
                export: Some(export),
            })),
        }
    } else {
        Err("Invalid content type".to_owned())
    }
}

fn handle_otlp(
    shared: &Shared,
    headers: &HeaderMap,
    decoded: Result<Option<DecodedOtlp>, String>,
) -> (Answer, Change) {
    let refuse = |answer| (answer, Change::Nothing);
    match shared.authenticate(headers) {
        Err(message) => return refuse(json(401, Ordered::new().field("message", message))),
        Ok(Access::Scores) => {
            let body = Ordered::new().field(
                "message",
                "Access denied - insufficient permissions for this endpoint",
            );
            return refuse(json(403, body));
        }
        Ok(Access::Project) => {}
    }
    let decoded = match decoded {
        Err(error) => return refuse(json(400, Ordered::new().field("error", error))),
        Ok(None) => return refuse(json(200, Ordered::new())),
        Ok(Some(decoded)) => decoded,
    };
    if let Some(version) = header(headers, "x-langfuse-ingestion-version").filter(|v| !v.is_empty())
    {
        if js::parse_int(&version).is_none_or(|v| v > 4) {
            let error = format!(
                "Unsupported x-langfuse-ingestion-version: \"{version}\". Maximum supported: \"4\"."
            );
            return refuse(json(400, Ordered::new().field("error", error)));
        }
    }
    let spans = match (&decoded.export, &decoded.proto) {
        (Some(export), _) => export.span_count(),
        (None, Some(proto)) => proto
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len())
            .sum(),
        (None, None) => 0,
    };
    // The content describes the queued job and is not a contract (§2.1 step 14).
    let answer = json(
        200,
        Ordered::new()
            .field("status", "queued")
            .field("spans", spans),
    );
    (answer, Change::Otlp(Box::new(decoded)))
}

// ---------------------------------------------------------------------------------------------
// Ingestion (§3)

/// Next.js's body parser (§3.1): `Err` is the answer it gives before the route runs.
fn parse_ingestion_body(headers: &HeaderMap, body: &[u8]) -> Result<Value, Answer> {
    if body.len() > INGESTION_BODY_LIMIT {
        return Err(plain(413, "Body exceeded 4.5mb limit"));
    }
    let media_type = header(headers, "content-type")
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_lowercase()
        })
        .unwrap_or_default();
    if media_type == "application/json" || media_type == "application/ld+json" {
        if body.is_empty() {
            return Ok(json!({}));
        }
        let text = std::str::from_utf8(body).map_err(|_| plain(400, "Invalid JSON"))?;
        serde_json::from_str(text).map_err(|_| plain(400, "Invalid JSON"))
    } else {
        // Any other media type leaves the body a string, which fails the batch schema.
        Ok(Value::String(String::from_utf8_lossy(body).into_owned()))
    }
}

fn ingestion_error(status: u16, error: &str, message: &str) -> Answer {
    json(
        status,
        Ordered::new()
            .field("error", error)
            .field("message", message),
    )
}

fn handle_ingestion(
    shared: &Shared,
    headers: &HeaderMap,
    parsed: Result<Value, Answer>,
) -> (Answer, Change) {
    let root = match parsed {
        Ok(root) => root,
        Err(answer) => return (answer, Change::Nothing),
    };
    let access = match shared.authenticate(headers) {
        Ok(access) => access,
        Err(message) => {
            return (
                ingestion_error(401, "UnauthorizedError", &message),
                Change::Nothing,
            )
        }
    };
    let batch = match (&root, root.get("batch")) {
        (Value::Object(_), Some(Value::Array(batch))) => batch,
        (Value::Object(_), other) => return (invalid_batch("array", other), Change::Nothing),
        (other, _) => return (invalid_batch("object", Some(other)), Change::Nothing),
    };
    let mode = shared.store().mode();
    let injected = shared.faults().take_event_errors(Route::Ingestion);
    let mut successes = Vec::new();
    let mut errors = Vec::new();
    let mut not_accepted = Vec::new();
    let mut valid = Vec::new();
    let mut logs = Vec::new();
    for (position, raw) in batch.iter().enumerate() {
        let id = schema::envelope_id_of(raw);
        let event_type = schema::event_type_of(raw);
        if let Some(injected) = injected
            .as_ref()
            .filter(|e| e.selects(position, event_type))
        {
            errors.push(event_error(
                &id,
                injected.status(),
                injected.message(),
                &reason(injected.status()),
            ));
            continue;
        }
        let is_log = event_type == Some("sdk-log");
        let is_score = event_type == Some("score-create");
        if mode == ServerMode::LangfuseV4 && !is_log && !is_score {
            not_accepted.push(event_error(
                &id,
                400,
                "Event type not accepted",
                &events_only_text(event_type.unwrap_or("unknown")),
            ));
            continue;
        }
        if access == Access::Scores && !is_score {
            // Inferred: an `sdk-log` is never listed, whatever happens to it.
            if !is_log {
                errors.push(event_error(
                    &id,
                    401,
                    "Authentication error",
                    "Access Scope Denied",
                ));
            }
            continue;
        }
        match schema::validate_event(raw) {
            Err(issues) => {
                if !is_log {
                    let issues = Value::Array(issues).to_string();
                    errors.push(event_error(&id, 400, "Invalid request data", &issues));
                }
            }
            Ok(event) => match event.content {
                schema::Content::SdkLog(log) => logs.push(json!({ "log": log })),
                schema::Content::Entity(..) => {
                    successes.push(
                        Ordered::new()
                            .field("id", event.envelope_id.clone())
                            .field("status", 201)
                            .build(),
                    );
                    valid.push(event);
                }
            },
        }
    }
    errors.extend(not_accepted);
    let body = Ordered::new()
        .raw("successes", format!("[{}]", successes.join(",")))
        .raw("errors", format!("[{}]", errors.join(",")));
    (
        json(207, body),
        Change::Events {
            logs,
            events: valid,
        },
    )
}

fn invalid_batch(expected: &str, got: Option<&Value>) -> Answer {
    let message = format!(
        "Invalid input: expected {expected}, received {}",
        js::type_name(got)
    );
    json(
        400,
        Ordered::new()
            .field("message", "Invalid request data")
            .field("errors", json!([message])),
    )
}

fn events_only_text(event_type: &str) -> String {
    format!(
        "Event type \"{event_type}\" is not accepted by /api/public/ingestion when LANGFUSE_MIGRATION_V4_WRITE_MODE is events_only. This endpoint only accepts score and log events. Upgrade the client or integration to a v4-compatible SDK or OTLP ingestion path. As a temporary migration bridge, set LANGFUSE_MIGRATION_V4_WRITE_MODE=dual on both the web and worker services and redeploy. Docs: https://langfuse.com/self-hosting/upgrade/upgrade-guides/upgrade-v3-to-v4"
    )
}

fn event_error(id: &str, status: u16, message: &str, error: &str) -> String {
    Ordered::new()
        .field("id", id)
        .field("status", status)
        .field("message", message)
        .field("error", error)
        .build()
}

fn reason(status: u16) -> String {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Projects and health (§9)

fn handle_projects(shared: &Shared, headers: &HeaderMap) -> Answer {
    match shared.authenticate(headers) {
        Err(message) => json(401, Ordered::new().field("message", message)),
        Ok(Access::Scores) => json(
            403,
            Ordered::new().field(
                "message",
                "Invalid API key. Are you using an organization key?",
            ),
        ),
        Ok(Access::Project) => {
            let project = Ordered::new()
                .field("id", shared.project_id.clone())
                .field("name", shared.project_name.clone())
                .raw(
                    "organization",
                    Ordered::new()
                        .field("id", "test-organization")
                        .field("name", "test organization")
                        .build(),
                )
                .raw("metadata", "{}".to_owned())
                .build();
            json(200, Ordered::new().raw("data", format!("[{project}]")))
        }
    }
}

fn health(shared: &Shared) -> Answer {
    let version = shared.store().mode().version();
    json(
        200,
        Ordered::new()
            .field("status", "OK")
            .field("version", version),
    )
}

// ---------------------------------------------------------------------------------------------
// Prompts (§7.1)

/// What a prompt request asks for: the name (percent-decoded, `%2F` included) and the
/// query parameters as given.
struct PromptAsk {
    name: String,
    label: Option<String>,
    version: Option<String>,
}

impl PromptAsk {
    fn of(parts: &Parts) -> Self {
        let raw = parts
            .uri
            .path()
            .strip_prefix(PROMPTS_PATH)
            .unwrap_or_default();
        let mut ask = PromptAsk {
            name: decode_component(raw),
            label: None,
            version: None,
        };
        for pair in parts.uri.query().unwrap_or_default().split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = decode_component(&value.replace('+', " "));
            match key {
                "label" => ask.label = Some(value),
                "version" => ask.version = Some(value),
                _ => {}
            }
        }
        ask
    }

    /// The label named when nothing matches: the one asked for, else `production`.
    fn selector(&self) -> Result<prompts::Selector, Answer> {
        match (&self.version, &self.label) {
            (Some(_), Some(_)) => Err(json(
                400,
                Ordered::new()
                    .field("message", "Cannot specify both version and label")
                    .field("error", "InvalidRequestError"),
            )),
            (Some(version), None) => match version.trim().parse::<i64>() {
                Ok(version) => Ok(prompts::Selector::Version(version)),
                Err(_) => Err(json(
                    400,
                    Ordered::new().field("message", "Invalid request data").field(
                        "error",
                        json!([{"code": "invalid_type", "expected": "number", "path": ["version"],
                                "message": "Expected number, received nan"}]),
                    ),
                )),
            },
            (None, label) => Ok(prompts::Selector::Label(
                label.clone().unwrap_or_else(|| prompts::PRODUCTION.to_owned()),
            )),
        }
    }
}

fn decode_component(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Basic auth only: a Bearer key may not read prompts.
fn handle_prompt(shared: &Shared, parts: &Parts) -> Answer {
    match shared.authenticate(&parts.headers) {
        Err(message) => return json(401, Ordered::new().field("message", message)),
        Ok(Access::Scores) => {
            return json(
                403,
                Ordered::new()
                    .field(
                        "message",
                        "Access denied - need to use basic auth with secret key to GET prompts",
                    )
                    .field("error", "ForbiddenError"),
            )
        }
        Ok(Access::Project) => {}
    }
    let ask = PromptAsk::of(parts);
    let selector = match ask.selector() {
        Ok(selector) => selector,
        Err(answer) => return answer,
    };
    let found = shared
        .catalog()
        .prompts
        .answer(&ask.name, &selector, &shared.project_id);
    match found {
        Some(body) => respond(200, "application/json; charset=utf-8", body.into_bytes()),
        None => prompt_not_found(&ask),
    }
}

fn prompt_not_found(ask: &PromptAsk) -> Answer {
    let message = match ask.selector() {
        Ok(selector) => prompts::not_found_message(&ask.name, &selector),
        Err(_) => format!("Prompt not found: '{}'", ask.name),
    };
    json(
        404,
        Ordered::new()
            .field("message", message)
            .field("error", "LangfuseNotFoundError"),
    )
}

// ---------------------------------------------------------------------------------------------
// Answers

fn method_not_allowed(route: Route) -> Answer {
    match route {
        Route::Ingestion => ingestion_error(405, "MethodNotAllowedError", "Method not allowed"),
        _ => json(
            405,
            Ordered::new()
                .field("message", "Method not allowed")
                .field("error", "MethodNotAllowedError"),
        ),
    }
}

/// What the server answers for a path it has no route for (inferred: Next.js's not-found page).
fn not_found() -> Answer {
    html(
        404,
        "<!DOCTYPE html><html><head><title>404: This page could not be found</title></head><body><h1>404</h1><h2>This page could not be found.</h2></body></html>",
    )
}

/// The answer a fault replaces the normal one with; `None` drops the connection.
fn fault_response(route: Route, outcome: Outcome, headers: &HeaderMap) -> Option<Answer> {
    const FAULT_TEXT: &str = "Simulated failure (test server fault plan)";
    Some(match outcome {
        Outcome::Drop => return None,
        Outcome::Status(status) => match (status, route) {
            (401, Route::Ingestion) => ingestion_error(
                401,
                "UnauthorizedError",
                "Invalid credentials. Confirm that you've configured the correct host.",
            ),
            (401, _) => json(
                401,
                Ordered::new().field(
                    "message",
                    "Invalid credentials. Confirm that you've configured the correct host.",
                ),
            ),
            (403, Route::Ingestion) => ingestion_error(
                403,
                "ForbiddenError",
                "Ingestion suspended: Usage threshold exceeded. Please upgrade your plan.",
            ),
            (403, _) => json(
                403,
                Ordered::new()
                    .field(
                        "message",
                        "Ingestion suspended: Usage threshold exceeded. Please upgrade your plan.",
                    )
                    .field("error", "ForbiddenError"),
            ),
            (413, Route::Ingestion) => plain(413, "Body exceeded 4.5mb limit"),
            (500, Route::Ingestion) => json(
                500,
                Ordered::new()
                    .field("message", "Invalid request data")
                    .field("errors", json!([FAULT_TEXT])),
            ),
            (500, _) => json(
                500,
                Ordered::new()
                    .field("message", "Internal Server Error")
                    .field("error", FAULT_TEXT),
            ),
            (status, Route::Ingestion) => ingestion_error(status, &reason(status), FAULT_TEXT),
            (status, _) => json(
                status,
                Ordered::new()
                    .field("message", FAULT_TEXT)
                    .field("error", reason(status)),
            ),
        },
        Outcome::RateLimited { retry_after_secs } => rate_limited(retry_after_secs),
        Outcome::TooLarge { .. } => match route {
            Route::Ingestion => plain(413, "Body exceeded 4.5mb limit"),
            _ => plain(413, "Payload Too Large"),
        },
        Outcome::HtmlSignIn { status } => html(
            status,
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body><form method=\"post\" action=\"/oauth2/sign_in\"><h1>Sign in to continue</h1><input type=\"email\" name=\"email\"><input type=\"password\" name=\"password\"><button type=\"submit\">Sign in</button></form></body></html>",
        ),
        Outcome::Redirect { status, location } => {
            let mut answer = respond(status, "text/plain; charset=utf-8", Vec::new());
            if let Ok(value) = HeaderValue::from_str(&location) {
                answer.headers.push((LOCATION, value));
            }
            answer
        }
        Outcome::HugeBody { status, bytes } => {
            respond(status, "text/plain; charset=utf-8", vec![b'x'; bytes])
        }
        Outcome::EchoHeaders { status } => {
            let mut text = String::from("Bad request. Your request headers were:\n");
            for (name, value) in headers {
                text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
            }
            respond(status, "text/plain; charset=utf-8", text.into_bytes())
        }
        Outcome::NotFound => not_found(),
    })
}

/// §1.4: 429 with `Retry-After`, the `X-RateLimit-*` headers and the `rate_limited` body.
fn rate_limited(retry_after_secs: u64) -> Answer {
    const LIMIT: u64 = 1000;
    let reset_ms = time::now_millis()
        .saturating_add(i64::try_from(retry_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX));
    let reset_at = time::iso(reset_ms);
    let details = Ordered::new()
        .field("retryAfterSeconds", retry_after_secs)
        .field("limit", LIMIT)
        .field("remaining", 0)
        .field("resetAt", reset_at.clone())
        .build();
    let body = Ordered::new()
        .field("message", "Rate limit exceeded")
        .field("code", "rate_limited")
        .raw("details", details);
    let mut answer = json(429, body);
    answer
        .headers
        .push((RETRY_AFTER, HeaderValue::from(retry_after_secs)));
    answer.headers.push((
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(LIMIT),
    ));
    answer.headers.push((
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(0),
    ));
    // Inferred: the reset time as an ISO string, like `resetAt`.
    if let Ok(value) = HeaderValue::from_str(&reset_at) {
        answer
            .headers
            .push((HeaderName::from_static("x-ratelimit-reset"), value));
    }
    answer
}

fn respond(status: u16, content_type: &'static str, body: Vec<u8>) -> Answer {
    Answer {
        status,
        content_type,
        headers: Vec::new(),
        body,
    }
}

fn json(status: u16, body: Ordered) -> Answer {
    respond(
        status,
        "application/json; charset=utf-8",
        body.build().into_bytes(),
    )
}

fn plain(status: u16, text: &str) -> Answer {
    respond(
        status,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
    )
}

fn html(status: u16, text: &str) -> Answer {
    respond(status, "text/html; charset=utf-8", text.as_bytes().to_vec())
}

/// Applies the request's change and records it in one critical section, then builds the
/// response.
fn finish(
    shared: &Shared,
    mut record: RecordedRequest,
    answer: Answer,
    change: Change,
) -> HttpResponse {
    record.status = Some(answer.status);
    let kept = &answer.body[..answer.body.len().min(RECORDED_BODY_LIMIT)];
    record.response_body = String::from_utf8_lossy(kept).into_owned();
    let catalog = shared.catalog();
    shared.update(|store| {
        match change {
            Change::Nothing => {}
            // Without the model, OTLP exports are only decoded and acknowledged.
            Change::Otlp(_) if !shared.build_model => {}
            Change::Otlp(decoded) => {
                if let Some(export) = &decoded.export {
                    store.apply_otlp(export, &catalog);
                }
                if let Some(proto) = decoded.proto {
                    store.push_otlp_request(proto);
                }
            }
            Change::Events { logs, events } => {
                for log in logs {
                    store.push_sdk_log(log);
                }
                store.apply_events(events, &catalog);
            }
        }
        store.record_request(record);
    });
    drop(catalog);
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    for (name, value) in answer.headers {
        headers.insert(name, value);
    }
    response
}
