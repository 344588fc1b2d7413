//! A real HTTP server on 127.0.0.1 that serves feed fixtures and misbehaves on purpose:
//! 304s, redirects and loops, 410, 429 with Retry-After, slow trickles and endless bodies.
//! It counts the requests each path saw and how many were in flight at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with the body; 304 when the request's If-None-Match equals `etag`.
    Feed {
        body: Vec<u8>,
        content_type: String,
        etag: Option<String>,
    },
    Redirect {
        status: u16,
        to: String,
    },
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Sends the body one byte at a time with a pause between bytes.
    Trickle {
        body: Vec<u8>,
        pause: Duration,
    },
    /// Sends data forever (until the client gives up).
    Endless,
    /// Waits, then replies.
    Delayed {
        wait: Duration,
        then: Box<Reply>,
    },
}

impl Reply {
    pub fn xml(body: impl Into<Vec<u8>>) -> Reply {
        Reply::Feed { body: body.into(), content_type: "application/rss+xml".into(), etag: None }
    }
    pub fn typed(body: impl Into<Vec<u8>>, content_type: &str) -> Reply {
        Reply::Feed { body: body.into(), content_type: content_type.into(), etag: None }
    }
}

#[derive(Default)]
struct State {
    routes: Mutex<HashMap<String, Reply>>,
    hits: Mutex<HashMap<String, usize>>,
    headers: Mutex<HashMap<String, Vec<(String, String)>>>,
    bodies: Mutex<HashMap<String, Vec<u8>>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[derive(Clone)]
pub struct FeedServer {
    pub port: u16,
    state: Arc<State>,
}

/// The fixture file `tests/fixtures/feeds/NAME`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), serve(stream, s)).await;
                });
            }
        });
        FeedServer { port, state }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin())
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.state.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.state.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn total_hits(&self) -> usize {
        self.state.hits.lock().unwrap().values().sum()
    }

    /// A request header of the last request to `path`.
    pub fn last_header(&self, path: &str, name: &str) -> Option<String> {
        let h = self.state.headers.lock().unwrap();
        h.get(path)?.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// The body of the last request to `path` (as text).
    pub fn last_body(&self, path: &str) -> Option<String> {
        self.state.bodies.lock().unwrap().get(path).map(|b| String::from_utf8_lossy(b).to_string())
    }

    pub fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn serve(mut stream: TcpStream, state: Arc<State>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            return;
        }
    }
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").map_or(buf.len(), |p| p + 4);
    let mut body = buf[split..].to_vec();
    buf.truncate(split);
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // A request body (POST), up to its Content-Length (bounded).
    let length: usize =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0).min(1 << 20);
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    state.bodies.lock().unwrap().insert(path.clone(), body);
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    state.headers.lock().unwrap().insert(path.clone(), headers.clone());
    let reply = state.routes.lock().unwrap().get(&path).cloned();
    let reply = reply.unwrap_or(Reply::Status { status: 404, headers: vec![], body: b"not found".to_vec() });
    respond(&mut stream, reply, &headers).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        308 => "Permanent Redirect",
        404 => "Not Found",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

async fn write_head(stream: &mut TcpStream, status: u16, headers: &[(String, String)]) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\nConnection: close\r\n", reason(status));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await
}

fn respond<'a>(
    stream: &'a mut TcpStream,
    reply: Reply,
    req: &'a [(String, String)],
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        let _ = match reply {
            Reply::Feed { body, content_type, etag } => {
                let matches = etag.as_deref().is_some_and(|e| req.iter().any(|(k, v)| k == "if-none-match" && v == e));
                if matches {
                    write_head(stream, 304, &[("ETag".into(), etag.unwrap_or_default())]).await
                } else {
                    let mut h = vec![
                        ("Content-Type".to_string(), content_type),
                        ("Content-Length".into(), body.len().to_string()),
                    ];
                    if let Some(e) = etag {
                        h.push(("ETag".into(), e));
                    }
                    match write_head(stream, 200, &h).await {
                        Ok(()) => stream.write_all(&body).await,
                        Err(e) => Err(e),
                    }
                }
            }
            Reply::Redirect { status, to } => {
                write_head(stream, status, &[("Location".into(), to), ("Content-Length".into(), "0".into())]).await
            }
            Reply::Status { status, mut headers, body } => {
                headers.push(("Content-Length".into(), body.len().to_string()));
                match write_head(stream, status, &headers).await {
                    Ok(()) => stream.write_all(&body).await,
                    Err(e) => Err(e),
                }
            }
            Reply::Trickle { body, pause } => {
                let h = [
                    ("Content-Type".to_string(), "application/rss+xml".to_string()),
                    ("Content-Length".into(), body.len().to_string()),
                ];
                let mut r = write_head(stream, 200, &h).await;
                for b in body {
                    if r.is_err() {
                        break;
                    }
                    tokio::time::sleep(pause).await;
                    r = stream.write_all(&[b]).await;
                }
                r
            }
            Reply::Endless => {
                let mut r =
                    write_head(stream, 200, &[("Content-Type".to_string(), "application/rss+xml".to_string())]).await;
                let block = vec![b' '; 64 * 1024];
                let _ = stream.write_all(b"<rss version=\"2.0\"><channel><title>").await;
                for _ in 0..100_000 {
                    if r.is_err() {
                        break;
                    }
                    r = stream.write_all(&block).await;
                }
                r
            }
            Reply::Delayed { wait, then } => {
                tokio::time::sleep(wait).await;
                respond(stream, *then, req).await;
                Ok(())
            }
        };
        let _ = stream.shutdown().await;
    })
}
