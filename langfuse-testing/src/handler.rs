//! One HTTP request from arrival to answer: routing, faults, authentication, decoding, applying
//! to the model and recording.
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
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::faults::{Faults, Outcome, Route};
use super::ingestion::{self, Batch, Effect};
use super::model::{RecordedRequest, Store};
use super::otlp;

pub(crate) const OTLP_PATH: &str = "/api/public/otel/v1/traces";
pub(crate) const INGESTION_PATH: &str = "/api/public/ingestion";
pub(crate) const PROJECTS_PATH: &str = "/api/public/projects";

/// State shared by the server thread and the test thread.
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// Bumped under the store lock on every change, so waiters cannot miss one.
    generation: AtomicU64,
    changed: Condvar,
    faults: Mutex<Faults>,
    expected_authorization: String,
    project_id: String,
    project_name: String,
    in_flight: AtomicUsize,
    idle: Notify,
    /// See [`TestServerBuilder::build_model`](super::TestServerBuilder::build_model).
    pub(crate) build_model: bool,
}

impl Shared {
    pub(crate) fn new(
        public_key: &str,
        secret_key: &str,
        project_id: String,
        project_name: String,
        faults: Faults,
    ) -> Self {
        Shared {
            store: Mutex::new(Store::default()),
            generation: AtomicU64::new(0),
            changed: Condvar::new(),
            faults: Mutex::new(faults),
            expected_authorization: basic_authorization(public_key, secret_key),
            project_id,
            project_name,
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            build_model: true,
        }
    }

    /// A panicking test thread must not make the server unusable for the rest of the test, so
    /// poisoning is ignored: every critical section leaves the data consistent.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
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

    pub(crate) fn authorization_header(&self) -> &str {
        &self.expected_authorization
    }
}

pub(crate) fn basic_authorization(public_key: &str, secret_key: &str) -> String {
    format!(
        "Basic {}",
        BASE64.encode(format!("{public_key}:{secret_key}"))
    )
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

/// A request body decoded far enough to be recorded and, later, applied.
enum Payload {
    Otlp {
        request: ExportTraceServiceRequest,
        json: bool,
    },
    Ingestion(Batch),
    Empty,
}

/// Why a payload cannot be processed, as the status and message to answer with.
struct Rejection {
    status: u16,
    message: String,
}

impl Rejection {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
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

    let Some(route) = route_of(&parts.method, parts.uri.path()) else {
        let message = format!("no route for {} {}", parts.method, parts.uri.path());
        return Ok(finish(shared, record, error_response(404, &message)));
    };

    let payload = decode_payload(route, &parts.headers, &body);
    if let Ok(payload) = &payload {
        describe_payload(&mut record, payload, shared.build_model);
    }

    let decision = shared.faults().decide(route, body.len());
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    match decision.outcome {
        Some(Outcome::Drop) => {
            record.status = None;
            shared.update(|store| store.record_request(record));
            return Err(DropConnection);
        }
        Some(Outcome::Status(status)) => {
            let response = error_response(status, "injected by the test server fault plan");
            return Ok(finish(shared, record, response));
        }
        Some(Outcome::RateLimited { retry_after_secs }) => {
            let mut response = error_response(429, "rate limit exceeded (injected)");
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return Ok(finish(shared, record, response));
        }
        Some(Outcome::TooLarge { limit }) => {
            let message = format!("body of {} bytes exceeds {limit} bytes", body.len());
            return Ok(finish(shared, record, error_response(413, &message)));
        }
        None => {}
    }

    if !authorized(shared, &parts.headers) {
        let message = "Invalid credentials. Confirm that you've configured the correct host.";
        return Ok(finish(shared, record, error_response(401, message)));
    }

    match payload {
        Err(rejection) => {
            let response = error_response(rejection.status, &rejection.message);
            Ok(finish(shared, record, response))
        }
        Ok(Payload::Empty) => {
            let body = json!({"data": [{"id": shared.project_id, "name": shared.project_name}]});
            Ok(finish(shared, record, json_response(200, &body)))
        }
        Ok(Payload::Otlp { request, json }) => Ok(apply_otlp(shared, record, request, json)),
        Ok(Payload::Ingestion(batch)) => Ok(apply_ingestion(shared, record, &batch)),
    }
}

fn route_of(method: &Method, path: &str) -> Option<Route> {
    match (method, path) {
        (&Method::POST, OTLP_PATH) => Some(Route::Otlp),
        (&Method::POST, INGESTION_PATH) => Some(Route::Ingestion),
        (&Method::GET, PROJECTS_PATH) => Some(Route::Projects),
        _ => None,
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
    }
}

fn describe_payload(record: &mut RecordedRequest, payload: &Payload, build_model: bool) {
    match payload {
        Payload::Otlp { .. } if !build_model => {}
        Payload::Otlp { request, .. } => record.span_ids = otlp::span_ids(request),
        Payload::Ingestion(batch) => {
            record.envelope_ids = batch.events.iter().filter_map(|e| e.id.clone()).collect();
            record.event_types = batch
                .events
                .iter()
                .map(|e| e.event_type.clone().unwrap_or_default())
                .collect();
            record.batch_metadata = batch.metadata.clone();
        }
        Payload::Empty => {}
    }
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let expected = shared.authorization_header();
    // The scheme name is case-insensitive (RFC 9110 §11.1); the credentials are not.
    match (value.split_once(' '), expected.split_once(' ')) {
        (Some((scheme, credentials)), Some((_, expected_credentials))) => {
            scheme.eq_ignore_ascii_case("basic") && credentials.trim() == expected_credentials
        }
        _ => false,
    }
}

fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next().unwrap_or_default();
    Some(essence.trim().to_ascii_lowercase())
}

fn decompress(headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, Rejection> {
    let encoding = header(headers, "content-encoding")
        .map(|e| e.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match encoding.as_str() {
        "" | "identity" => Ok(body.to_vec()),
        "gzip" | "x-gzip" => {
            let mut out = Vec::new();
            GzDecoder::new(body)
                .read_to_end(&mut out)
                .map_err(|e| Rejection::new(400, format!("invalid gzip body: {e}")))?;
            Ok(out)
        }
        other => Err(Rejection::new(
            415,
            format!("unsupported content-encoding `{other}`"),
        )),
    }
}

fn decode_payload(route: Route, headers: &HeaderMap, body: &[u8]) -> Result<Payload, Rejection> {
    match route {
        Route::Projects => Ok(Payload::Empty),
        Route::Otlp => {
            let media = media_type(headers);
            let json = match media.as_deref() {
                Some("application/x-protobuf") => false,
                Some("application/json") => true,
                other => {
                    let message = format!(
                        "content-type must be application/x-protobuf or application/json, not {}",
                        other.unwrap_or("missing")
                    );
                    return Err(Rejection::new(415, message));
                }
            };
            let body = decompress(headers, body)?;
            let request = if json {
                otlp::decode_json(&body)
            } else {
                otlp::decode_protobuf(&body)
            }
            .map_err(|message| Rejection::new(400, message))?;
            Ok(Payload::Otlp { request, json })
        }
        Route::Ingestion => {
            if media_type(headers).as_deref() != Some("application/json") {
                return Err(Rejection::new(415, "content-type must be application/json"));
            }
            let body = decompress(headers, body)?;
            ingestion::parse_batch(&body)
                .map(Payload::Ingestion)
                .map_err(|message| Rejection::new(400, message))
        }
    }
}

fn apply_otlp(
    shared: &Shared,
    mut record: RecordedRequest,
    request: ExportTraceServiceRequest,
    json: bool,
) -> HttpResponse {
    // Without the model the decoded request is not kept either, so load tests stay cheap.
    let (patches, kept) = if shared.build_model {
        (otlp::to_patches(&request), Some(request))
    } else {
        (Vec::new(), None)
    };
    let response = if json {
        json_response(200, &json!({}))
    } else {
        let mut response = Response::new(Full::new(Bytes::from(
            ExportTraceServiceResponse::default().encode_to_vec(),
        )));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        response
    };
    record.status = Some(response.status().as_u16());
    shared.update(|store| {
        for (trace, observation) in patches {
            store.apply_trace(trace);
            // Every OTLP patch carries its trace id, so this cannot fail.
            let _ = store.apply_observation(observation);
        }
        if let Some(request) = kept {
            store.push_otlp_request(request);
        }
        store.record_request(record);
    });
    response
}

fn apply_ingestion(shared: &Shared, mut record: RecordedRequest, batch: &Batch) -> HttpResponse {
    let injected = shared.faults().take_event_errors(Route::Ingestion);
    let mut successes = Vec::new();
    let mut errors = Vec::new();
    record.status = Some(207);
    shared.update(|store| {
        for (position, envelope) in batch.events.iter().enumerate() {
            let id = envelope.id.clone().unwrap_or_default();
            if let Some(injected) = injected
                .as_ref()
                .filter(|e| e.selects(position, envelope.event_type.as_deref()))
            {
                errors.push(event_error(&id, injected.status(), injected.message()));
                continue;
            }
            if !id.is_empty() && store.is_accepted(&id) {
                successes.push(json!({"id": id, "status": 201}));
                continue;
            }
            let applied = ingestion::decode_event(envelope).and_then(|effect| match effect {
                Effect::StoredTrace(patch) => {
                    store.apply_trace(patch);
                    Ok(())
                }
                Effect::StoredObservation(patch) => {
                    store.apply_observation(patch).map_err(|e| e.to_string())
                }
                Effect::StoredScore(score) => {
                    store.apply_score(score);
                    Ok(())
                }
                Effect::SdkLog(log) => {
                    store.push_sdk_log(log);
                    Ok(())
                }
            });
            match applied {
                Ok(()) => {
                    store.mark_accepted(id.clone());
                    successes.push(json!({"id": id, "status": 201}));
                }
                Err(message) => errors.push(event_error(&id, 400, &message)),
            }
        }
        store.record_request(record);
    });
    json_response(207, &json!({"successes": successes, "errors": errors}))
}

fn event_error(id: &str, status: u16, message: &str) -> Value {
    json!({"id": id, "status": status, "message": message, "error": reason(status)})
}

fn reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn error_response(status: u16, message: &str) -> HttpResponse {
    json_response(
        status,
        &json!({"message": message, "error": reason(status)}),
    )
}

fn finish(shared: &Shared, mut record: RecordedRequest, response: HttpResponse) -> HttpResponse {
    record.status = Some(response.status().as_u16());
    shared.update(|store| store.record_request(record));
    response
}
