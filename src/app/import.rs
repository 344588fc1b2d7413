//! Roster import: a CSV file of `name,email,blog` rows, each blog found as `/join` finds it
//! (the page's feed, or the feed itself), and added as an instructor adds a feed (active at
//! once). Rows whose feed is already followed are skipped; their learner gets the row's email
//! when they have none. Every row refused says why, by line.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use diesel::SqliteConnection;
use tokio::sync::Semaphore;

use crate::db::feeds::{self, Author, FeedStatus, NewFeed};
use crate::db::{DbPool, StoreError, StoreResult};
use crate::domain::Email;
use crate::harvest::{Harvester, Resolved};

/// Largest CSV file read, in bytes.
pub const MAX_BYTES: usize = 2 * 1024 * 1024;
/// Most rows one file may have (the header not counted).
pub const MAX_ROWS: usize = 5_000;
/// Longest name kept, in characters (as `/join` allows).
const MAX_NAME: usize = 100;
/// Longest blog address tried, in bytes.
const MAX_ADDRESS: usize = 2048;

/// How discovery is bounded: blogs fetched at once, the time one blog may take, and the time
/// the whole import may take (rows not found by then are reported, to import again).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub concurrency: usize,
    pub per_row: Duration,
    pub total: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { concurrency: 8, per_row: Duration::from_secs(45), total: Duration::from_secs(150) }
    }
}

/// The import running on a site, if any: one at a time, each fetching up to `concurrency`
/// blogs at once.
#[derive(Clone)]
pub struct Running(Arc<Semaphore>);

impl Default for Running {
    fn default() -> Self {
        Running(Arc::new(Semaphore::new(1)))
    }
}

/// A row as read, with its line in the file (1 is the first line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: u64,
    pub name: String,
    pub email: String,
    pub blog: String,
}

/// A row not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub line: u64,
    /// The blog address as written (may be empty).
    pub blog: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct RosterImport {
    /// Rows read (the header not counted, empty lines skipped).
    pub rows: usize,
    pub added: usize,
    /// Rows whose feed is already followed (or is listed earlier in the file).
    pub skipped: usize,
    /// Learners already followed who had no email and got the row's.
    pub emails_added: usize,
    pub failed: Vec<Failure>,
    /// Learners of the file's rows who still have no email: no badge can be issued to them
    /// until the instructor adds one.
    pub without_email: Vec<Author>,
}

/// Reads a roster CSV (RFC 4180: quoted fields may hold commas, quotes and line breaks). The
/// first line is a header when it names a `blog` column (columns then in any order: `name`,
/// `email`, `blog`; others ignored); otherwise every line is `name,email,blog`. A UTF-8 byte
/// order mark is skipped, and a file that is not UTF-8 is read as Windows-1252 (as a
/// spreadsheet saves it). The whole file is refused when too large or too long.
pub fn parse(bytes: &[u8]) -> Result<Vec<Row>, String> {
    if bytes.len() > MAX_BYTES {
        return Err(format!("the file is larger than {} MiB; split it into smaller files", MAX_BYTES / (1024 * 1024)));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => std::borrow::Cow::Borrowed(t),
        Err(_) => encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes).0,
    };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    // Column of name, email and blog.
    let mut columns = [0usize, 1, 2];
    let mut rows = Vec::new();
    let mut first = true;
    for record in reader.records() {
        let record = record.map_err(|e| match e.position() {
            Some(p) => format!("line {}: the file is not readable as CSV ({e})", p.line()),
            None => format!("the file is not readable as CSV ({e})"),
        })?;
        // The line the record starts on: the reader's position may stand before the line ends
        // (and empty lines) that lead to it, and its own line count is off after CRLF.
        let mut start = record.position().map_or(0, |p| p.byte() as usize).min(text.len());
        while matches!(text.as_bytes().get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let line = 1 + text.as_bytes()[..start].iter().filter(|b| **b == b'\n').count() as u64;
        if record.iter().all(str::is_empty) {
            continue;
        }
        if std::mem::take(&mut first) {
            let words: Vec<String> = record.iter().map(str::to_lowercase).collect();
            if let Some(blog) = words.iter().position(|w| w == "blog") {
                let find = |name: &str| words.iter().position(|w| w == name);
                let Some(name) = find("name") else {
                    return Err("the header row names a blog column but no name column".into());
                };
                columns = [name, find("email").unwrap_or(usize::MAX), blog];
                continue;
            }
        }
        if rows.len() == MAX_ROWS {
            return Err(format!("the file has more than {MAX_ROWS} rows; split it into smaller files"));
        }
        let field = |i: usize| record.get(i).unwrap_or("").to_string();
        rows.push(Row { line, name: field(columns[0]), email: field(columns[1]), blog: field(columns[2]) });
    }
    if rows.is_empty() {
        return Err("the file has no rows: one learner a line, as name,email,blog".into());
    }
    Ok(rows)
}

/// A row whose name, email and address passed the checks.
struct Checked {
    line: u64,
    name: String,
    email: Option<Email>,
    /// The address as typed, with a scheme.
    address: String,
    blog: String,
}

/// Checks a row before anything is fetched.
fn check(row: &Row) -> Result<Checked, String> {
    let name: String = row.name.chars().filter(|c| !c.is_control()).collect();
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.chars().count() > MAX_NAME {
        return Err(format!("the name is longer than {MAX_NAME} characters"));
    }
    let email = match row.email.as_str() {
        "" => None,
        raw => Some(Email::parse(raw)?),
    };
    if row.blog.is_empty() {
        return Err("the blog address is empty".into());
    }
    if row.blog.len() > MAX_ADDRESS {
        return Err(format!("the blog address is longer than {MAX_ADDRESS} characters"));
    }
    let address = super::subscribe::normalise_address(&row.blog);
    Ok(Checked { line: row.line, name, email, address, blog: row.blog.clone() })
}

/// Imports the rows of a roster file at `now`: checks each row, skips the feeds already
/// followed, finds the others' feeds (`limits.concurrency` at once, each within
/// `limits.per_row`, all within `limits.total`) refusing Cairn's own pages and feeds (under
/// `base_url`), then stores the feeds found, in the file's order. `StoreError::Busy` when
/// another import is running (`running`).
pub async fn import_csv(
    running: &Running,
    pool: &DbPool,
    harvester: &Harvester,
    base_url: &str,
    rows: Vec<Row>,
    limits: Limits,
    now: i64,
) -> StoreResult<RosterImport> {
    let _running = running
        .0
        .try_acquire()
        .map_err(|_| StoreError::Busy("another roster import is running; try again when it is done".into()))?;
    let mut out = RosterImport { rows: rows.len(), ..RosterImport::default() };
    let mut checked = Vec::new();
    let mut seen = HashSet::new();
    for row in &rows {
        match check(row) {
            Ok(c) if !seen.insert(c.address.clone()) => {
                out.skipped += 1;
                out.failed.push(Failure {
                    line: c.line,
                    blog: c.blog,
                    reason: "skipped: the same blog is on an earlier line".into(),
                });
            }
            Ok(c) => checked.push(c),
            Err(reason) => out.failed.push(Failure { line: row.line, blog: row.blog.clone(), reason }),
        }
    }
    // Blogs already followed (by the address given) are not fetched again.
    let addresses: Vec<String> = checked.iter().map(|c| c.address.clone()).collect();
    let known = crate::db::run(pool, move |c| {
        let mut known = HashMap::new();
        for a in addresses {
            if let Some(f) = feeds::find_by_address(c, &a)? {
                known.insert(a, f.id);
            }
        }
        Ok(known)
    })
    .await?;
    let found = discover(harvester, base_url, &checked, &known, limits).await;
    let results: Vec<(Checked, Option<Result<Resolved, String>>)> = checked.into_iter().zip(found).collect();
    crate::db::run(pool, move |c| crate::db::write_tx(c, |c| store(c, results, &known, &mut out, now).map(|()| out)))
        .await
}

/// Finds the feed of each row not already known, in the rows' order (`None` for known rows).
async fn discover(
    harvester: &Harvester,
    base_url: &str,
    rows: &[Checked],
    known: &HashMap<String, i64>,
    limits: Limits,
) -> Vec<Option<Result<Resolved, String>>> {
    let deadline = tokio::time::Instant::now() + limits.total;
    let permits = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, row) in rows.iter().enumerate() {
        if known.contains_key(&row.address) {
            continue;
        }
        let (h, base, address, permits) =
            (harvester.clone(), base_url.to_string(), row.address.clone(), permits.clone());
        set.spawn(async move {
            let found = tokio::time::timeout_at(deadline, async {
                let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
                match tokio::time::timeout(limits.per_row, super::feeds::resolve_learner_feed(&h, &base, &address))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(format!("the blog did not answer within {} s", limits.per_row.as_secs_f32())),
                }
            })
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "not done: the import stops after {} s; import the file again to add the rest (rows already \
                     added are skipped)",
                    limits.total.as_secs_f32()
                ))
            });
            (i, found)
        });
    }
    let mut out: Vec<Option<Result<Resolved, String>>> = rows.iter().map(|_| None).collect();
    while let Some(done) = set.join_next().await {
        if let Ok((i, found)) = done {
            out[i] = Some(found);
        }
    }
    // A task that panicked leaves its row without an answer: said as such.
    for (i, row) in rows.iter().enumerate() {
        if out[i].is_none() && !known.contains_key(&row.address) {
            out[i] = Some(Err("the blog could not be read".into()));
        }
    }
    out
}

/// Stores the rows found, in order, counting into `out`.
fn store(
    c: &mut SqliteConnection,
    results: Vec<(Checked, Option<Result<Resolved, String>>)>,
    known: &HashMap<String, i64>,
    out: &mut RosterImport,
    now: i64,
) -> StoreResult<()> {
    let mut learners: Vec<i64> = Vec::new();
    for (row, found) in results {
        let existing = match (&found, known.get(&row.address)) {
            (_, Some(id)) => Some(feeds::get_feed(c, *id)?),
            (Some(Ok(r)), None) => feeds::find_by_url(c, &r.feed_url)?,
            _ => None,
        };
        if let Some(f) = existing.as_ref().filter(|f| f.status == FeedStatus::Removed) {
            // Removed by its learner or an instructor: not followed again behind their back.
            out.failed.push(Failure {
                line: row.line,
                blog: row.blog.clone(),
                reason: format!(
                    "not imported: {} was removed; it is followed again when its learner joins with it",
                    f.url
                ),
            });
            continue;
        }
        if let Some(f) = existing {
            out.skipped += 1;
            let author = feeds::get_author(c, f.author_id)?;
            if let (None, Some(email)) = (&author.email, &row.email) {
                match crate::db::roster::set_email(c, author.id, email.as_str()) {
                    Ok(()) => out.emails_added += 1,
                    Err(StoreError::Invalid(_)) => out.failed.push(Failure {
                        line: row.line,
                        blog: row.blog.clone(),
                        reason: format!(
                            "skipped: the feed is already followed, for {}, and another learner already has {email}",
                            author.name
                        ),
                    }),
                    Err(e) => return Err(e),
                }
            }
            learners.push(author.id);
            continue;
        }
        let r = match found {
            Some(Ok(r)) => r,
            Some(Err(reason)) => {
                out.failed.push(Failure { line: row.line, blog: row.blog, reason });
                continue;
            }
            None => continue,
        };
        // A learner already known by the address keeps their name; anyone else is new.
        let email = row.email.as_ref().map(Email::as_str);
        let author = match email.map(|e| feeds::author_by_email(c, e)).transpose()?.flatten() {
            Some(a) => a,
            None => feeds::find_or_create_author(c, &row.name, email, now)?,
        };
        let feed = feeds::create_feed(
            c,
            NewFeed {
                author_id: author.id,
                url: &r.feed_url,
                title: &r.feed.title,
                site_url: r.feed.site_url.as_deref(),
                status: FeedStatus::Active,
                confirm_token_hash: None,
                manage_token_hash: None,
            },
            now,
        )?;
        feeds::set_joined_url(c, feed.id, &row.address)?;
        out.added += 1;
        learners.push(author.id);
    }
    let mut seen = HashSet::new();
    for id in learners {
        if seen.insert(id) {
            let a = feeds::get_author(c, id)?;
            if a.email.is_none() {
                out.without_email.push(a);
            }
        }
    }
    out.failed.sort_by_key(|f| f.line);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(line: u64, name: &str, email: &str, blog: &str) -> Row {
        Row { line, name: name.into(), email: email.into(), blog: blog.into() }
    }

    #[test]
    fn a_header_names_the_columns_in_any_order_and_quoted_fields_keep_their_commas() {
        let file = "\u{feff}Blog,Name,Email,Cohort\r\n\
                    https://ada.example/,\"Lovelace, Ada\", ada@example.edu ,1\r\n\
                    \r\n\
                    grace.example,\"Grace \"\"Amazing\"\" Hopper\",,2\n\
                    eve.example,Eve\n";
        let rows = parse(file.as_bytes()).unwrap();
        assert_eq!(
            rows,
            vec![
                row(2, "Lovelace, Ada", "ada@example.edu", "https://ada.example/"),
                row(4, "Grace \"Amazing\" Hopper", "", "grace.example"),
                row(5, "Eve", "", "eve.example"),
            ]
        );
    }

    #[test]
    fn without_a_header_rows_are_name_email_blog_and_other_encodings_are_read() {
        let rows = parse(b"Jos\xe9,jose@example.edu,jose.example\n").unwrap();
        assert_eq!(rows, vec![row(1, "Jos\u{e9}", "jose@example.edu", "jose.example")]);
    }

    #[test]
    fn too_large_too_long_or_empty_files_are_refused_whole() {
        let long: String = (0..=MAX_ROWS).map(|i| format!("L{i},,b{i}.example\n")).collect();
        assert!(parse(long.as_bytes()).unwrap_err().contains("more than 5000 rows"));
        let big = vec![b'a'; MAX_BYTES + 1];
        assert!(parse(&big).unwrap_err().contains("larger than 2 MiB"));
        assert!(parse(b"name,email,blog\n\n").unwrap_err().contains("no rows"));
        assert!(parse(b"blog,email\nx.example,a@example.edu\n").unwrap_err().contains("no name column"));
    }

    #[test]
    fn rows_are_checked_before_anything_is_fetched() {
        assert_eq!(check(&row(3, "", "", "x.example")).err().unwrap(), "the name is empty");
        assert!(check(&row(3, "Ada", "not-an-email", "x.example")).err().unwrap().contains("is not an email address"));
        assert_eq!(check(&row(3, "Ada", "", "")).err().unwrap(), "the blog address is empty");
        let long = format!("https://x.example/{}", "a".repeat(2048));
        assert!(check(&row(3, "Ada", "", &long)).err().unwrap().contains("longer than 2048"));
        let ok = check(&row(3, "Ada", "Ada@Example.edu", "x.example")).unwrap();
        assert_eq!(ok.address, "https://x.example");
    }
}
