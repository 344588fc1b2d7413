//! A real SMTP listener on 127.0.0.1 that accepts every message and keeps it. It can also be
//! told to stop answering after a number of messages (`hold_after`), so that a test can kill
//! a sender while messages are in flight: a held message is never acknowledged, and is
//! dropped, as a real server drops a transaction whose client went away.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the listener has received, and a signal raised on each new message.
#[derive(Default)]
struct Inbox {
    messages: Mutex<Vec<String>>,
    arrived: tokio::sync::Notify,
    /// Past this many messages, DATA is not answered (`usize::MAX`: never).
    hold_after: std::sync::atomic::AtomicUsize,
    /// Messages waiting, unanswered, for the hold to end.
    held: std::sync::atomic::AtomicUsize,
    released: tokio::sync::Notify,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    inbox: Arc<Inbox>,
}

impl SmtpSink {
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let inbox: Arc<Inbox> = Arc::default();
        inbox.hold_after.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        let store = inbox.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(30), session(stream, store)).await;
                });
            }
        });
        SmtpSink { port, inbox }
    }

    /// From now on, a message that arrives after `n` have been accepted gets no answer
    /// until [`SmtpSink::release`], and is then dropped unacknowledged.
    pub fn hold_after(&self, n: usize) {
        self.inbox.hold_after.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Messages currently held unanswered.
    pub fn held(&self) -> usize {
        self.inbox.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Ends the hold: held messages are dropped, later ones accepted.
    pub fn release(&self) {
        self.inbox.hold_after.store(usize::MAX, std::sync::atomic::Ordering::SeqCst);
        self.inbox.released.notify_waiters();
    }

    pub fn messages(&self) -> Vec<String> {
        self.inbox.messages.lock().unwrap().clone()
    }

    /// Waits, at most ten seconds, until at least `n` messages have arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let arrived = self.inbox.arrived.notified();
                if self.messages().len() >= n {
                    return;
                }
                arrived.await;
            }
        })
        .await;
        self.messages()
    }
}

impl SmtpSink {
    /// Waits, at most ten seconds, for a message that `pred` accepts; returns it, or panics
    /// naming `what`. Other mail arriving meanwhile (an award mail sent by the outbox) is
    /// passed over.
    pub async fn wait_for_one(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let arrived = self.inbox.arrived.notified();
                if let Some(m) = self.messages().into_iter().find(|m| pred(m)) {
                    return m;
                }
                arrived.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no mail {what} arrived in 10 s; got {:?}", self.messages()))
    }
}

async fn session(stream: tokio::net::TcpStream, store: Arc<Inbox>) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            w.write_all(b"250-sink.test\r\n250 8BITMIME\r\n").await?;
        } else if cmd.starts_with("HELO")
            || cmd.starts_with("MAIL")
            || cmd.starts_with("RCPT")
            || cmd.starts_with("RSET")
            || cmd.starts_with("NOOP")
        {
            w.write_all(b"250 OK\r\n").await?;
        } else if cmd == "DATA" {
            w.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            if store.messages.lock().unwrap().len() >= store.hold_after.load(std::sync::atomic::Ordering::SeqCst) {
                let released = store.released.notified();
                store.held.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                store.arrived.notify_waiters();
                released.await;
                store.held.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                return Ok(());
            }
            store.messages.lock().unwrap().push(data);
            store.arrived.notify_waiters();
            w.write_all(b"250 queued\r\n").await?;
        } else if cmd == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"502 not implemented\r\n").await?;
        }
    }
}
