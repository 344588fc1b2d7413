//! Hostile documents: how long `cairn feed check` takes on the worst inputs that fit under
//! the default body cap (5 MiB), served over HTTP on 127.0.0.1.
//!
//! - a page of `<` behind `<html>` (quadratic for a naive tag scanner);
//! - an entity bomb: an internal DTD entity referenced as often as the cap allows;
//! - a feed of items whose summaries are tag soup with thousands of attributes each
//!   (quadratic for the sanitiser's tree builder without the tokenizer pass in front).
//!
//! Each is timed twice: through the library function the command calls
//! (`cairn::harvest::resolve`, the same one the Join page uses), and as the real `cairn`
//! binary, process start included. Both must stay under one second.
//!
//! Run: `bash scripts/bench.sh hostile`, or `cargo bench --bench hostile`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests and benchmarks fail loudly by design

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};

/// The default `[harvest] max_bytes`.
const BODY_CAP: usize = 5 * 1024 * 1024;
const RUNS: usize = 7;
const LIMIT: Duration = Duration::from_secs(1);

fn page_of_lt() -> Vec<u8> {
    let mut page = b"<html>".to_vec();
    page.resize(BODY_CAP, b'<');
    page
}

fn entity_bomb() -> Vec<u8> {
    let head = format!(
        "<?xml version=\"1.0\"?>\n<!DOCTYPE rss [<!ENTITY lol \"{}\">]>\n<rss version=\"2.0\"><channel><title>Bomb</title>\
         <item><title>Boom</title><link>https://x.example/</link><description>",
        "lol".repeat(30)
    );
    let tail = "</description></item></channel></rss>";
    let refs = (BODY_CAP - head.len() - tail.len()) / 5;
    format!("{head}{}{tail}", "&lol;".repeat(refs)).into_bytes()
}

fn attribute_soup_feed() -> Vec<u8> {
    let mut s = String::from("<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Soup</title>");
    let soup: String = (0..30_000).map(|i| format!(" a{i}=x")).collect();
    let item = format!(
        "<item><title>Soup</title><link>https://x.example/</link><description><![CDATA[<p{soup}>{}]]></description></item>",
        "<div>".repeat(20_000)
    );
    while s.len() + item.len() + 30 < BODY_CAP {
        s.push_str(&item);
    }
    s.push_str("</channel></rss>");
    s.into_bytes()
}

fn summary(name: &str, mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let (median, max) = (common::percentile(&samples, 0.5), samples[samples.len() - 1]);
    println!("  {name:<44} median {median:>7.1} ms   max {max:>7.1} ms");
    max
}

fn main() -> anyhow::Result<()> {
    cairn::net::install_crypto_provider();
    let docs: Vec<(&str, &str, Vec<u8>)> = vec![
        ("lt", "text/html", page_of_lt()),
        ("bomb", "application/rss+xml", entity_bomb()),
        ("soup", "application/rss+xml", attribute_soup_feed()),
    ];
    let served: Vec<(String, &'static str, Vec<u8>)> = docs
        .iter()
        .map(|(n, t, b)| {
            (n.to_string(), if *t == "text/html" { "text/html" } else { "application/rss+xml" }, b.clone())
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let docs = web::Data::new(served);
            let server = HttpServer::new(move || {
                App::new().app_data(docs.clone()).route(
                    "/{name}",
                    web::get().to(
                        |docs: web::Data<Vec<(String, &'static str, Vec<u8>)>>, name: web::Path<String>| async move {
                            match docs.iter().find(|(n, _, _)| *n == *name) {
                                Some((_, t, b)) => HttpResponse::Ok().content_type(*t).body(b.clone()),
                                None => HttpResponse::NotFound().finish(),
                            }
                        },
                    ),
                )
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .map_err(|e| e.to_string())?;
            tx.send(server.addrs()[0]).map_err(|e| e.to_string())?;
            server.run().await.map_err(|e| e.to_string())
        })
    });
    let addr = rx.recv_timeout(Duration::from_secs(10))?;
    let origin = format!("http://{addr}");

    let settings = cairn::config::HarvestSettings::default();
    println!(
        "hostile documents: cap {} bytes, {} runs each, {} cores",
        settings.max_bytes,
        RUNS,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let fetcher = cairn::harvest::fetcher(&settings, std::slice::from_ref(&origin), "http://127.0.0.1")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let mut worst = Vec::new();
    for (name, _, body) in &docs {
        let url = format!("{origin}/{name}");
        let what = match *name {
            "lt" => "a page of '<'",
            "bomb" => "an entity bomb",
            _ => "a feed of attribute soup",
        };
        println!("{what} ({} bytes):", body.len());
        let mut lib = Vec::new();
        let mut outcome = String::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let r = rt.block_on(cairn::harvest::resolve(&fetcher, &url));
            lib.push(started.elapsed().as_secs_f64() * 1e3);
            outcome = match r {
                Ok(r) => format!("read: {} item(s)", r.feed.items.len()),
                Err(e) => format!("refused: {e}"),
            };
        }
        println!("  {outcome}");
        worst.push((format!("{name} (library)"), summary("cairn::harvest::resolve", lib)));
        let mut bin = Vec::new();
        for _ in 0..RUNS {
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_cairn"))
                .current_dir(dir.path())
                .env_remove("CAIRN_CONFIG")
                .env_remove("CAIRN_DATA_DIR")
                .env("CAIRN_ALLOW_ORIGINS", &origin)
                .args(["feed", "check", "--json", &url])
                .output()?;
            bin.push(started.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(
                !out.stdout.is_empty(),
                "feed check printed nothing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        worst.push((format!("{name} (binary)"), summary("cairn feed check (process included)", bin)));
    }
    let over: Vec<_> = worst.iter().filter(|(_, ms)| *ms > LIMIT.as_secs_f64() * 1e3).collect();
    if over.is_empty() {
        println!("all under {} ms", LIMIT.as_millis());
        Ok(())
    } else {
        anyhow::bail!("over {} ms: {over:?}", LIMIT.as_millis())
    }
}
