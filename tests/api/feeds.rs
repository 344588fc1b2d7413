//! `cairn feed check --json` read against Python's feedparser itself, fixture by fixture and
//! entry by entry: link, title, author and the set of hashtags (feedparser's fields under
//! Cairn's hashtag rule, by scripts/feedparser/read.py). Where Cairn departs from feedparser
//! on purpose, the case says so and why; where feedparser cannot read a format (JSON Feed in
//! the pinned release), the case gives the reading the format's specification asks for.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::feedserver::{FeedServer, Reply, fixture};
use crate::helpers::cairn_cmd;
use crate::helpers::repo;

/// A loaded debug build and a cold Python are slow, never this slow.
const WITHIN: Duration = Duration::from_secs(120);

/// One entry as read by either side.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    link: Option<String>,
    /// `None`: the feed gives no title (Cairn then makes one from the text).
    title: Option<String>,
    author: Option<String>,
    hashtags: BTreeSet<String>,
}

/// A field where Cairn reads an entry differently from feedparser, on purpose.
struct Differs {
    entry: usize,
    field: Field,
    /// What Cairn gives (hashtags: space-separated, sorted).
    cairn: Option<&'static str>,
    why: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Author,
}

enum Reference {
    /// feedparser's reading, but for the listed fields.
    Feedparser(&'static [Differs]),
    /// A page advertising a feed: Cairn discovers it and reads it; feedparser reads that feed.
    PageOf(&'static str),
    /// Not a feed Cairn can read: `feed check` reports an error and no items.
    Refused,
    /// feedparser 6.0.12 reads no JSON Feed; the entries the JSON Feed 1.0/1.1 specification
    /// gives (an item without `authors` has the feed's).
    Spec(&'static [(&'static str, Option<&'static str>, Option<&'static str>, &'static str)]),
}

struct Case {
    file: &'static str,
    content_type: &'static str,
    reference: Reference,
}

const INHERIT: &str = "RFC 4287 4.2.1: an entry without an author has the feed's; feedparser does not inherit";
const INHERIT_03: &str = "the feed's author applies to an Atom 0.3 entry without one, as in Atom 1.0; feedparser \
                          does not inherit";

const XML: &str = "application/xml";

fn cases() -> Vec<Case> {
    use Reference::*;
    let fp = |file, reference| Case { file, content_type: XML, reference };
    vec![
        fp("rss090.rdf", Feedparser(&[])),
        fp("rss091.xml", Feedparser(&[])),
        fp("rss092.xml", Feedparser(&[])),
        fp("rss-noversion.xml", Feedparser(&[])),
        fp("rss10.rdf", Feedparser(&[])),
        fp("rss10-dcsubject.rdf", Feedparser(&[])),
        fp("rss2.xml", Feedparser(&[])),
        fp("rss2-authors.xml", Feedparser(&[])),
        fp("hashtag-rules.xml", Feedparser(&[])),
        Case {
            file: "latin1.xml.txt",
            content_type: "application/rss+xml; charset=iso-8859-1",
            reference: Feedparser(&[]),
        },
        fp("atom03.xml", Feedparser(&[])),
        fp(
            "atom03-authors.xml",
            Feedparser(&[Differs { entry: 1, field: Field::Author, cairn: Some("Ed Example"), why: INHERIT_03 }]),
        ),
        fp(
            "atom10.xml",
            Feedparser(&[Differs { entry: 0, field: Field::Author, cairn: Some("Grace Hopper"), why: INHERIT }]),
        ),
        fp(
            "atom10-authors.xml",
            Feedparser(&[Differs { entry: 0, field: Field::Author, cairn: Some("Gil Example"), why: INHERIT }]),
        ),
        fp("wordpress.xml", Feedparser(&[])),
        fp("blogger.xml", Feedparser(&[])),
        fp("medium.xml", Feedparser(&[])),
        fp("mastodon.xml", Feedparser(&[])),
        fp("youtube.xml", Feedparser(&[])),
        fp("substack.xml", Feedparser(&[])),
        fp("microblog.xml", Feedparser(&[])),
        Case {
            file: "feed10.json",
            content_type: "application/json",
            reference: Spec(&[(
                "https://json10.example.org/posts/cloud",
                Some("Cloud thoughts"),
                Some("Old Json"),
                "#el30-cloud",
            )]),
        },
        Case {
            file: "feed11.json",
            content_type: "application/feed+json",
            reference: Spec(&[(
                "https://json.example.org/posts/conclusion",
                Some("Looking back"),
                Some("Jay Son"),
                "#el30-conclusion #reflection",
            )]),
        },
        Case {
            file: "microblog.json",
            content_type: "application/feed+json",
            reference: Spec(&[
                (
                    "https://pat.micro.example/2018/11/30/201500.html",
                    None,
                    Some("Pat Example"),
                    "#el30-recognition #learning",
                ),
                (
                    "https://pat.micro.example/2018/11/20/a-longer-post.html",
                    Some("A longer post on data"),
                    Some("Tess Guest"),
                    "#el30-cloud #el30-data",
                ),
            ]),
        },
        Case { file: "page.html", content_type: "text/html; charset=utf-8", reference: PageOf("rss2.xml") },
        Case { file: "page-nofeed.html", content_type: "text/html; charset=utf-8", reference: Refused },
        fp("malformed.xml", Refused),
    ]
}

/// Runs a command, killing it if it outlives `limit`; its output is read while it runs.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status,
            None if started.elapsed() > limit => {
                let _ = child.kill();
                panic!("{cmd:?} was still running after {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

/// The pinned feedparser's Python, set up by the project's own script.
fn feedparser_python() -> PathBuf {
    let mut c = Command::new("bash");
    c.arg(repo("scripts/feedparser/setup.sh"));
    let out = run_bounded(c, Duration::from_secs(900));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/feedparser/setup.sh failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(text.lines().last().expect("the python path").trim())
}

fn tags(v: &Value) -> BTreeSet<String> {
    v.as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

fn split(tags: &str) -> BTreeSet<String> {
    tags.split_whitespace().map(str::to_string).collect()
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn feed_check_reads_every_fixture_as_feedparser_does() {
    let cases = cases();
    // Every fixture is a case: a new one cannot go unchecked.
    let listed: BTreeSet<String> = cases.iter().map(|c| c.file.to_string()).collect();
    let present: BTreeSet<String> = std::fs::read_dir(repo("tests/fixtures/feeds"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(listed, present, "tests/fixtures/feeds and the cases here differ");

    let server = FeedServer::start().await;
    for c in &cases {
        server.set(&format!("/feeds/{}", c.file), Reply::typed(fixture(c.file), c.content_type));
    }

    // feedparser's reading of every fixture, from the address Cairn fetches it at.
    let (python, mut args) = (tokio::task::spawn_blocking(feedparser_python).await.unwrap(), Vec::new());
    for c in &cases {
        let file = match c.reference {
            Reference::PageOf(feed) => feed,
            _ => c.file,
        };
        let ct = if file == c.file { c.content_type } else { XML };
        args.extend([
            repo(&format!("tests/fixtures/feeds/{file}")).display().to_string(),
            server.url(&format!("/feeds/{file}")),
            ct.to_string(),
        ]);
    }
    let out = tokio::task::spawn_blocking(move || {
        let mut c = Command::new(python);
        c.arg(repo("scripts/feedparser/read.py")).args(&args);
        run_bounded(c, WITHIN)
    })
    .await
    .unwrap();
    assert!(out.status.success(), "read.py: {}", String::from_utf8_lossy(&out.stderr));
    let reference: Value = serde_json::from_slice(&out.stdout).unwrap();

    let mut compared = 0;
    for c in &cases {
        let (origin, url) = (server.origin(), server.url(&format!("/feeds/{}", c.file)));
        let data_dir = tempfile::tempdir().unwrap();
        let out = tokio::task::spawn_blocking(move || {
            let mut cmd = cairn_cmd();
            cmd.env("CAIRN_ALLOW_ORIGINS", origin)
                .env("CAIRN_DATA_DIR", data_dir.path())
                .args(["feed", "check", "--json", &url]);
            run_bounded(cmd, WITHIN)
        })
        .await
        .unwrap();
        let doc: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{}: {e}: {}", c.file, String::from_utf8_lossy(&out.stderr)));
        if let Reference::Refused = c.reference {
            assert!(!out.status.success() && doc["error"].is_string(), "{}: {doc}", c.file);
            assert_eq!(doc["items"].as_array().unwrap().len(), 0, "{}", c.file);
            continue;
        }
        assert!(out.status.success() && doc["error"].is_null(), "{}: {doc}", c.file);
        let cairn: Vec<Entry> = doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| Entry {
                link: text(&i["url"]),
                title: text(&i["title"]),
                author: text(&i["author"]),
                hashtags: tags(&i["all_hashtags"]),
            })
            .collect();
        let (expected, differs): (Vec<Entry>, &[Differs]) = match &c.reference {
            Reference::Spec(entries) => (
                entries
                    .iter()
                    .map(|(link, title, author, hashtags)| Entry {
                        link: Some(link.to_string()),
                        title: title.map(str::to_string),
                        author: author.map(str::to_string),
                        hashtags: split(hashtags),
                    })
                    .collect(),
                &[],
            ),
            Reference::Feedparser(_) | Reference::PageOf(_) => {
                let key = args_key(c);
                let read = &reference[&key];
                assert_eq!(read["bozo"], false, "feedparser found {} broken", c.file);
                let entries = read["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| Entry {
                        link: text(&e["link"]),
                        title: text(&e["title"]),
                        author: text(&e["author"]),
                        hashtags: tags(&e["hashtags"]),
                    })
                    .collect();
                (entries, if let Reference::Feedparser(d) = &c.reference { d } else { &[] })
            }
            Reference::Refused => unreachable!(),
        };
        assert_eq!(cairn.len(), expected.len(), "{}: entries\ncairn: {cairn:#?}\nreference: {expected:#?}", c.file);
        for (n, (ours, theirs)) in cairn.iter().zip(&expected).enumerate() {
            let at = format!("{} entry {n}", c.file);
            assert_eq!(ours.link, theirs.link, "{at}: link");
            match &theirs.title {
                Some(t) => assert_eq!(ours.title.as_ref(), Some(t), "{at}: title"),
                // No title in the feed: Cairn shows the start of the text instead.
                None => assert!(ours.title.as_deref().is_some_and(|t| !t.is_empty()), "{at}: a title is made"),
            }
            assert_eq!(ours.hashtags, theirs.hashtags, "{at}: hashtags");
            match differs.iter().find(|d| d.entry == n && d.field == Field::Author) {
                Some(d) => {
                    assert_eq!(ours.author.as_deref(), d.cairn, "{at}: author ({})", d.why);
                    assert_ne!(theirs.author.as_deref(), d.cairn, "{at}: feedparser now agrees; drop the exception");
                }
                None => assert_eq!(ours.author, theirs.author, "{at}: author"),
            }
            compared += 1;
        }
    }
    assert!(compared >= 40, "only {compared} entries compared");
}

/// The key read.py gives a case's reading: the fixture file it read.
fn args_key(c: &Case) -> String {
    let file = match c.reference {
        Reference::PageOf(feed) => feed,
        _ => c.file,
    };
    repo(&format!("tests/fixtures/feeds/{file}")).display().to_string()
}
