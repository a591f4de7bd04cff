//! The exact bytes the exporter sends, for checks the Langfuse-shaped model of the test server
//! cannot make (it parses JSON strings, so `"42"` and `42`, or `"text"` and `text`, look alike).
//!
//! [`Capture`] is a plain HTTP/1.1 server on 127.0.0.1 that answers 200 to everything and keeps
//! each request body; [`decode_export`] reads an OTLP `ExportTraceServiceRequest` from protobuf
//! bytes with a small wire-format walker (the test crate has no protobuf dependency).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as it arrived.
#[derive(Clone, Debug)]
pub(crate) struct CapturedRequest {
    pub(crate) path: String,
    /// Header names lowercased.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl CapturedRequest {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A server that answers `200 OK` with an empty body and records every request.
pub(crate) struct Capture {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<CapturedRequest>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    pub(crate) fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let requests = Arc::clone(&requests);
                    std::thread::spawn(move || serve(stream, &requests));
                }
            })
        };
        Self {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<CapturedRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, requests: &Mutex<Vec<CapturedRequest>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .and_then(|(_, value)| value.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(CapturedRequest {
                path,
                headers,
                body,
            });
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                      content-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// An OTLP `AnyValue`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Any {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Vec<Any>),
    Other,
}

/// The parts of an OTLP span the tests look at.
#[derive(Clone, Debug, Default)]
pub(crate) struct Span {
    pub(crate) trace_id: Vec<u8>,
    pub(crate) span_id: Vec<u8>,
    pub(crate) parent_span_id: Vec<u8>,
    pub(crate) name: String,
    pub(crate) start_time_unix_nano: u64,
    pub(crate) end_time_unix_nano: u64,
    pub(crate) attributes: Vec<(String, Any)>,
    /// `(code, message)` when the span has a status.
    pub(crate) status: Option<(u64, String)>,
}

impl Span {
    /// The first attribute with this key.
    pub(crate) fn attr(&self, key: &str) -> Option<&Any> {
        attr(&self.attributes, key)
    }
}

/// An `ExportTraceServiceRequest`: resource attributes and spans, flattened.
#[derive(Clone, Debug, Default)]
pub(crate) struct Export {
    pub(crate) resource: Vec<(String, Any)>,
    pub(crate) spans: Vec<Span>,
}

impl Export {
    pub(crate) fn resource_attr(&self, key: &str) -> Option<&Any> {
        attr(&self.resource, key)
    }

    pub(crate) fn span(&self, name: &str) -> &Span {
        self.spans
            .iter()
            .find(|span| span.name == name)
            .unwrap_or_else(|| panic!("no span named {name} in {:?}", self.spans))
    }
}

fn attr<'a>(list: &'a [(String, Any)], key: &str) -> Option<&'a Any> {
    list.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

fn varint(buf: &mut &[u8]) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let (&byte, rest) = buf.split_first().expect("truncated varint");
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn fields(mut buf: &[u8]) -> Vec<(u64, Field<'_>)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut buf)),
            1 => {
                let (bytes, rest) = buf.split_at(8);
                buf = rest;
                Field::Fixed64(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)).expect("length fits");
                let (bytes, rest) = buf.split_at(len);
                buf = rest;
                Field::Bytes(bytes)
            }
            5 => {
                buf = &buf[4..];
                Field::Fixed32
            }
            other => panic!("unexpected protobuf wire type {other}"),
        };
        out.push((key >> 3, field));
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("protobuf strings are UTF-8")
}

fn any_value(bytes: &[u8]) -> Any {
    let mut value = Any::Other;
    for (number, field) in fields(bytes) {
        value = match (number, field) {
            (1, Field::Bytes(b)) => Any::Str(text(b)),
            (2, Field::Varint(v)) => Any::Bool(v != 0),
            // Two's complement, as protobuf encodes negative int64.
            (3, Field::Varint(v)) => Any::Int(v as i64),
            (4, Field::Fixed64(bits)) => Any::Double(f64::from_bits(bits)),
            (5, Field::Bytes(array)) => Any::Array(
                fields(array)
                    .into_iter()
                    .filter_map(|(n, f)| match (n, f) {
                        (1, Field::Bytes(item)) => Some(any_value(item)),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => Any::Other,
        };
    }
    value
}

fn key_value(bytes: &[u8]) -> (String, Any) {
    let mut key = String::new();
    let mut value = Any::Other;
    for (number, field) in fields(bytes) {
        match (number, field) {
            (1, Field::Bytes(b)) => key = text(b),
            (2, Field::Bytes(b)) => value = any_value(b),
            _ => {}
        }
    }
    (key, value)
}

fn span(bytes: &[u8]) -> Span {
    let mut span = Span::default();
    for (number, field) in fields(bytes) {
        match (number, field) {
            (1, Field::Bytes(b)) => span.trace_id = b.to_vec(),
            (2, Field::Bytes(b)) => span.span_id = b.to_vec(),
            (4, Field::Bytes(b)) => span.parent_span_id = b.to_vec(),
            (5, Field::Bytes(b)) => span.name = text(b),
            (7, Field::Fixed64(t)) => span.start_time_unix_nano = t,
            (8, Field::Fixed64(t)) => span.end_time_unix_nano = t,
            (9, Field::Bytes(b)) => span.attributes.push(key_value(b)),
            (15, Field::Bytes(b)) => {
                let mut code = 0;
                let mut message = String::new();
                for (n, f) in fields(b) {
                    match (n, f) {
                        (2, Field::Bytes(m)) => message = text(m),
                        (3, Field::Varint(c)) => code = c,
                        _ => {}
                    }
                }
                span.status = Some((code, message));
            }
            _ => {}
        }
    }
    span
}

/// Decodes an uncompressed OTLP protobuf export.
pub(crate) fn decode_export(body: &[u8]) -> Export {
    let mut export = Export::default();
    for (number, field) in fields(body) {
        let (1, Field::Bytes(resource_spans)) = (number, field) else {
            continue;
        };
        for (number, field) in fields(resource_spans) {
            match (number, field) {
                (1, Field::Bytes(resource)) => {
                    for (n, f) in fields(resource) {
                        if let (1, Field::Bytes(kv)) = (n, f) {
                            export.resource.push(key_value(kv));
                        }
                    }
                }
                (2, Field::Bytes(scope_spans)) => {
                    for (n, f) in fields(scope_spans) {
                        if let (2, Field::Bytes(s)) = (n, f) {
                            export.spans.push(span(s));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    export
}
