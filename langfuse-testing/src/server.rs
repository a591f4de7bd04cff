//! The server's lifecycle (its own thread, runtime and listener) and the query API tests use.

use std::collections::BTreeMap;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{mpsc, Arc};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::faults::{Fault, Faults};
use super::handler::{self, Settings, Shared};
use super::model::{
    Catalog, RecordedRequest, ScoreConfig, ServerMode, Store, StoredObservation, StoredScore,
    StoredTrace,
};
use super::prompts::NewPrompt;

/// How long dropping the server waits for requests that are still being answered.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// A Langfuse imitation listening on `127.0.0.1`, recording what it receives.
///
/// It runs on its own OS thread with its own Tokio runtime, so it serves requests whatever
/// runtime (if any) the test uses, and outlives that runtime. Dropping it stops the accept loop,
/// lets requests in progress finish (up to one second) and joins the thread.
///
/// All query methods return copies, so assertions never hold a lock the server needs.
pub struct TestServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    public_key: String,
    secret_key: String,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Settings for a [`TestServer`], from [`TestServer::builder`].
#[derive(Clone, Debug)]
pub struct TestServerBuilder {
    public_key: String,
    secret_key: String,
    project_id: String,
    project_name: String,
    faults: Faults,
    build_model: bool,
    mode: ServerMode,
    catalog: Catalog,
}

impl Default for TestServerBuilder {
    fn default() -> Self {
        TestServerBuilder {
            public_key: TestServer::DEFAULT_PUBLIC_KEY.to_owned(),
            secret_key: TestServer::DEFAULT_SECRET_KEY.to_owned(),
            project_id: "test-project".to_owned(),
            project_name: "test".to_owned(),
            faults: Faults::new(),
            build_model: true,
            mode: ServerMode::default(),
            catalog: Catalog::default(),
        }
    }
}

impl TestServerBuilder {
    /// The public key the server accepts (default [`TestServer::DEFAULT_PUBLIC_KEY`]).
    pub fn public_key(mut self, key: impl Into<String>) -> Self {
        self.public_key = key.into();
        self
    }

    /// The secret key the server accepts (default [`TestServer::DEFAULT_SECRET_KEY`]).
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_key = key.into();
        self
    }

    /// The project `GET /api/public/projects` reports (default `test-project` named `test`).
    pub fn project(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.project_id = id.into();
        self.project_name = name.into();
        self
    }

    /// Which deployment to imitate (default [`ServerMode::LangfuseV4`]).
    pub fn mode(mut self, mode: ServerMode) -> Self {
        self.mode = mode;
        self
    }

    /// Imitates a Langfuse v3 server (legacy write mode): ingestion accepts every event type and
    /// OTLP spans are merged into the legacy tables. Same as
    /// `mode(ServerMode::LangfuseV3)`.
    pub fn langfuse_v3(self) -> Self {
        self.mode(ServerMode::LangfuseV3)
    }

    /// Imitates Langfuse 4.16 as it ships (`events_only`), the default. Same as
    /// `mode(ServerMode::LangfuseV4)`.
    pub fn langfuse_v4(self) -> Self {
        self.mode(ServerMode::LangfuseV4)
    }

    /// A prompt version the project has. On the legacy path a generation's prompt link is kept
    /// only when the prompt exists (§4.13); v4 rows keep the link as sent either way and get this
    /// prompt's id.
    pub fn prompt(mut self, name: impl Into<String>, version: i64) -> Self {
        self.catalog.prompts.register(name.into(), version);
        self
    }

    /// A score configuration the project has. Scores sent with a `configId` the project does not
    /// have are dropped silently, as Langfuse does (§6.2).
    pub fn score_config(mut self, config: ScoreConfig) -> Self {
        self.catalog.score_configs.push(config);
        self
    }

    /// A fault plan in force from the first request.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Starts the server.
    ///
    /// # Panics
    ///
    /// If the server cannot start (no loopback port, no thread); see
    /// [`TestServerBuilder::try_start`] to handle that instead.
    pub fn start(self) -> TestServer {
        self.try_start()
            .expect("the Langfuse test server could not start on 127.0.0.1")
    }

    /// Whether OTLP spans are mapped into the Langfuse model (default true). Load tests and
    /// benchmarks turn it off so the server only decodes and acknowledges each request: the
    /// figures then measure the client, not the bookkeeping of this server. Requests are still
    /// recorded, without their span ids, and [`TestServer::otlp_requests`] stays empty.
    pub fn build_model(mut self, build: bool) -> Self {
        self.build_model = build;
        self
    }

    /// Starts the server, reporting why it could not.
    pub fn try_start(self) -> io::Result<TestServer> {
        let shared = Arc::new(Shared::new(Settings {
            public_key: self.public_key.clone(),
            secret_key: self.secret_key.clone(),
            project_id: self.project_id,
            project_name: self.project_name,
            faults: self.faults,
            mode: self.mode,
            catalog: self.catalog,
            build_model: self.build_model,
        }));
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("langfuse-test-server-{}", addr.port()))
            .spawn(move || serve(listener, thread_shared, shutdown_rx, ready_tx))?;
        // The runtime is built on the server thread (dropping one inside the caller's runtime
        // would panic), so its errors come back over a channel.
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("the test server thread exited early")),
        }
        Ok(TestServer {
            shared,
            addr,
            public_key: self.public_key,
            secret_key: self.secret_key,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        })
    }
}

fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: oneshot::Receiver<()>,
    ready: mpsc::Sender<io::Result<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        accept_until_shutdown(&listener, &shared, shutdown).await;
        drop(listener);
        shared.drained(DRAIN_TIMEOUT).await;
    });
    // Dropping the runtime here ends idle keep-alive connections still parked on it.
}

async fn accept_until_shutdown(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        // A dropped sender also means shutdown: the TestServer is gone either way.
        let accepted = poll_fn(|cx| {
            if Pin::new(&mut shutdown).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            listener.poll_accept(cx).map(Some)
        })
        .await;
        match accepted {
            None => return,
            Some(Ok((stream, _))) => {
                // Small request/response pairs; Nagle would only add latency.
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { handler::handle(&shared, request).await }
                    });
                    // Connection errors include the injected drops; nothing to report.
                    // No header timeout: it would close idle keep-alive connections of a slow
                    // test under the client, which is not a fault anyone asked for.
                    let _ = http1::Builder::new()
                        .header_read_timeout(None)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Typically out of file descriptors; back off instead of spinning.
            Some(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

impl TestServer {
    /// The public key a server accepts unless configured otherwise.
    pub const DEFAULT_PUBLIC_KEY: &'static str = "pk-lf-test";
    /// The secret key a server accepts unless configured otherwise.
    pub const DEFAULT_SECRET_KEY: &'static str = "sk-lf-test";

    /// Starts a server accepting [`DEFAULT_PUBLIC_KEY`](Self::DEFAULT_PUBLIC_KEY) and
    /// [`DEFAULT_SECRET_KEY`](Self::DEFAULT_SECRET_KEY).
    ///
    /// # Panics
    ///
    /// If the server cannot start; see [`TestServerBuilder::try_start`].
    pub fn start() -> TestServer {
        TestServer::builder().start()
    }

    /// Starts a server accepting these credentials.
    ///
    /// # Panics
    ///
    /// If the server cannot start; see [`TestServerBuilder::try_start`].
    pub fn start_with(public_key: impl Into<String>, secret_key: impl Into<String>) -> TestServer {
        TestServer::builder()
            .public_key(public_key)
            .secret_key(secret_key)
            .start()
    }

    /// Settings for a server.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// Base URL to configure the SDK with, like `http://127.0.0.1:40123` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The public key the server accepts.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The secret key the server accepts.
    pub fn secret_key(&self) -> &str {
        &self.secret_key
    }

    /// The `Authorization` header value the server accepts, for tests that send raw requests.
    pub fn authorization_header(&self) -> String {
        self.shared.authorization_header()
    }

    /// The deployment this server imitates.
    pub fn mode(&self) -> ServerMode {
        self.store().mode()
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.shared.store()
    }

    /// Every trace, in the order their ids first arrived. v3: the legacy `traces` rows (made by
    /// `trace-create` events and by spans, §4.14; an ingestion observation alone makes none);
    /// v4: one derived view per trace id that has rows (§5.2).
    pub fn traces(&self) -> Vec<StoredTrace> {
        self.store().traces().to_vec()
    }

    /// One trace by id.
    pub fn trace(&self, id: &str) -> Option<StoredTrace> {
        self.store().trace(id).cloned()
    }

    /// Every observation, in the order they first arrived. In v4 a re-exported span replaces its
    /// row in place; a re-export with another start time is a second row (inferred).
    pub fn observations(&self) -> Vec<StoredObservation> {
        self.store().observations().to_vec()
    }

    /// One observation by id (in v4, the row last written with that id).
    pub fn observation(&self, id: &str) -> Option<StoredObservation> {
        self.store().observation(id).cloned()
    }

    /// Every score, in the order they first arrived (an update keeps the original position).
    pub fn scores(&self) -> Vec<StoredScore> {
        self.store().scores().to_vec()
    }

    /// The bodies (`{"log": …}`) of every valid `sdk-log` event: the server only logs them (they
    /// are never stored and never listed in the 207), so this is that log.
    pub fn sdk_logs(&self) -> Vec<Value> {
        self.store().sdk_logs().to_vec()
    }

    /// Every OTLP export the server accepted (answered 200), decoded into the official
    /// `opentelemetry-proto` types, in the order they were applied: the exact attribute values,
    /// their types (a plain string versus a JSON-encoded one, integers, booleans, arrays), span
    /// statuses and resource attributes, which the Langfuse-shaped model cannot show.
    ///
    /// Requests that a fault failed, that were unauthorized or that could not be decoded are not
    /// included (they are in [`requests`](Self::requests)). Nothing is kept when the server was
    /// built with [`build_model(false)`](TestServerBuilder::build_model). Cleared by
    /// [`reset`](Self::reset).
    pub fn otlp_requests(&self) -> Vec<ExportTraceServiceRequest> {
        self.store().otlp_requests().to_vec()
    }

    /// Every request received, answered or not, in the order they were finished.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.store().requests().to_vec()
    }

    /// How many times an ingestion envelope id arrived, counting every request that carried it
    /// (also those that failed), so a retry shows as 2 while the model changed once.
    pub fn envelope_receipts(&self, envelope_id: &str) -> usize {
        self.store().envelope_receipts(envelope_id)
    }

    /// [`envelope_receipts`](Self::envelope_receipts) for every envelope id seen.
    pub fn envelope_receipt_counts(&self) -> BTreeMap<String, usize> {
        self.store().envelope_receipt_counts()
    }

    /// Waits until `condition` holds or `timeout` passes, and says whether it held.
    ///
    /// The condition is re-checked whenever the server records something, not in a busy loop.
    /// It receives the server, so it can use any query method.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&TestServer) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.shared.generation();
            if condition(self) {
                return true;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            if left.is_zero() {
                return false;
            }
            self.shared.wait_for_change(seen, left);
        }
    }

    /// Waits until at least `n` observations exist.
    pub fn wait_for_observations(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.store().observations().len() >= n)
    }

    /// Waits until at least `n` traces exist.
    pub fn wait_for_traces(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.store().traces().len() >= n)
    }

    /// Waits until at least `n` requests were recorded (of any route and status).
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.store().requests().len() >= n)
    }

    /// Waits until at least `n` scores exist.
    pub fn wait_for_scores(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.store().scores().len() >= n)
    }

    /// Forgets everything received (model, requests, decoded OTLP exports, receipts,
    /// deduplication memory); the fault plan and the mode stay.
    pub fn reset(&self) {
        self.shared
            .update(|store| *store = Store::new(store.mode()));
    }

    /// Creates the next version of a prompt (version 1 for a new name), as publishing it in
    /// Langfuse does: it gets the `latest` label and the labels it was given, which leave the
    /// other versions. Returns its version. `GET /api/public/v2/prompts/{name}` serves it from
    /// the next request, and generations may link to it.
    ///
    /// ```
    /// use langfuse_observe_testing::{NewPrompt, TestServer};
    ///
    /// let server = TestServer::start();
    /// let first = server.create_prompt(NewPrompt::text("qa", "Answer {{q}}").label("production"));
    /// let second = server.create_prompt(NewPrompt::text("qa", "Answer briefly: {{q}}"));
    /// assert_eq!((first, second), (1, 2));
    /// // `production` still serves version 1 until the label moves.
    /// assert!(server.label_prompt("qa", second, ["production"]));
    /// ```
    pub fn create_prompt(&self, prompt: NewPrompt) -> i64 {
        self.shared.catalog().prompts.create(prompt)
    }

    /// Moves `labels` to version `version` of the prompt `name`, taking them from its other
    /// versions, as relabelling in Langfuse does. False when there is no such version.
    pub fn label_prompt(
        &self,
        name: &str,
        version: i64,
        labels: impl IntoIterator<Item = impl Into<String>>,
    ) -> bool {
        let labels: Vec<String> = labels.into_iter().map(Into::into).collect();
        self.shared
            .catalog()
            .prompts
            .move_labels(name, version, &labels)
    }

    /// Replaces the fault plan; takes effect from the next request.
    pub fn set_faults(&self, faults: Faults) {
        *self.shared.faults() = faults;
    }

    /// Adds one rule to the end of the fault plan.
    pub fn add_fault(&self, fault: Fault) {
        let mut faults = self.shared.faults();
        *faults = std::mem::take(&mut *faults).with(fault);
    }

    /// Removes every fault, including the body size limit.
    pub fn clear_faults(&self) {
        self.set_faults(Faults::new());
    }

    /// The fault plan as it stands: rules already used up are gone.
    pub fn faults(&self) -> Faults {
        self.shared.faults().clone()
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("url", &self.url())
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been printed; re-raising it from a
            // destructor could abort the test process.
            let _ = thread.join();
        }
    }
}
