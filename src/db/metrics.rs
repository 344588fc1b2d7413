//! What the metrics listener reads from the store at scrape time: each queue's depth and the
//! age of its oldest item, the chain's pending pool and newest block, and each peer's last
//! contact. Every statement walks an index and reads at most [`SCAN_CAP`] rows, so a scrape
//! stays cheap however long a queue grows.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};

/// Most rows one queue statement reads; a deeper queue is reported at this depth.
pub const SCAN_CAP: i64 = 100_000;

/// One queue: its name as a label, how many items wait, and when the oldest was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub name: &'static str,
    pub depth: i64,
    pub oldest_at: Option<i64>,
}

#[derive(QueryableByName)]
struct Depth {
    #[diesel(sql_type = BigInt)]
    depth: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    oldest_at: Option<i64>,
}

/// The queues with their waiting items: the outbox (Webmentions and mails), webhook
/// deliveries, newsletter copies and received Webmentions waiting to be verified. Each reads
/// the rows of its waiting status through the index that starts with it.
pub fn queues(conn: &mut SqliteConnection) -> QueryResult<Vec<Queue>> {
    const QUEUES: [(&str, &str); 4] = [
        ("outbox", "SELECT created_at AS t FROM outbox WHERE status = 'queued'"),
        ("webhooks", "SELECT created_at AS t FROM webhook_deliveries WHERE status = 'queued'"),
        ("newsletter", "SELECT created_at AS t FROM newsletter_deliveries WHERE status = 'queued'"),
        ("mentions", "SELECT received_at AS t FROM mentions WHERE status = 'pending'"),
    ];
    QUEUES
        .into_iter()
        .map(|(name, rows)| {
            let d: Depth = diesel::sql_query(format!(
                "SELECT count(*) AS depth, min(t) AS oldest_at FROM ({rows} LIMIT {SCAN_CAP})"
            ))
            .get_result(conn)?;
            Ok(Queue { name, depth: d.depth, oldest_at: d.oldest_at })
        })
        .collect()
}

/// The chain as the store holds it: the main chain's newest block, and the pending pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, QueryableByName)]
pub struct Chain {
    /// The height of the newest block on the main chain (0 with none stored).
    #[diesel(sql_type = BigInt)]
    pub height: i64,
    /// When that block was mined (its timestamp), if there is one.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub last_block_at: Option<i64>,
    /// Records waiting for a block (counted up to [`SCAN_CAP`]).
    #[diesel(sql_type = BigInt)]
    pub pending: i64,
    /// When the oldest pending record was pooled.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub oldest_pending_at: Option<i64>,
}

/// The chain's figures in one statement: the newest block by the height index, the pending
/// records by the pending pool's partial index.
pub fn chain(conn: &mut SqliteConnection) -> QueryResult<Chain> {
    diesel::sql_query(format!(
        "SELECT coalesce((SELECT height FROM blocks WHERE on_main ORDER BY height DESC LIMIT 1), 0) AS height, \
         (SELECT timestamp FROM blocks WHERE on_main ORDER BY height DESC LIMIT 1) AS last_block_at, \
         (SELECT count(*) FROM (SELECT 1 FROM chain_records WHERE block_hash IS NULL LIMIT {SCAN_CAP})) AS pending, \
         (SELECT created_at FROM chain_records WHERE block_hash IS NULL ORDER BY id LIMIT 1) AS oldest_pending_at"
    ))
    .get_result(conn)
}

/// One trusted peer: its label (its name, or its row id when it has none), when it last
/// answered, and the height it last reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub label: String,
    pub last_contact_at: Option<i64>,
    pub last_height: Option<i64>,
}

/// The trusted peers (the trust list bounds how many), by id.
pub fn peers(conn: &mut SqliteConnection) -> QueryResult<Vec<Peer>> {
    use super::schema::peers::dsl as p;
    let rows: Vec<(i64, String, Option<i64>, Option<i64>)> =
        p::peers.order(p::id).select((p::id, p::name, p::last_contact_at, p::last_height)).load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, last_contact_at, last_height)| Peer {
            label: if name.trim().is_empty() { id.to_string() } else { name },
            last_contact_at,
            last_height,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_store_has_empty_queues_and_no_block() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("cairn.db")).unwrap();
        let mut c = pool.get().unwrap();
        let q = queues(&mut c).unwrap();
        assert_eq!(q.iter().map(|q| q.name).collect::<Vec<_>>(), ["outbox", "webhooks", "newsletter", "mentions"]);
        assert!(q.iter().all(|q| q.depth == 0 && q.oldest_at.is_none()));
        assert_eq!(chain(&mut c).unwrap(), Chain::default());
        assert!(peers(&mut c).unwrap().is_empty());
    }
}
