//! The instructor dashboard's figures for one course: participation, feed health, awards and
//! their place in the chain, notification delivery.
//!
//! Posts are counted from `dashboard_task_days` and `dashboard_task_authors`, totals that
//! triggers keep as posts are tied, untied, moved or deleted; awards from
//! `dashboard_task_awards`, kept as awards are made or withdrawn and as their records enter or
//! leave the main chain; notifications from `dashboard_task_delivery`, kept as their state
//! changes (see the migrations). A page view reads a few rows per task and day rather than
//! every post, award and notification of the course.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::StoreResult;
use super::courses::{self, Course};
use super::peers;

/// The course's tasks, as a subquery on the course id bound first.
const COURSE_TASKS: &str = "SELECT mt.task_id FROM course_modules cm JOIN module_tasks mt ON mt.module_id = cm.module_id WHERE cm.course_id = ?";

/// How many erroring feeds the dashboard names.
pub const ERRORING_LISTED: i64 = 20;

/// A module of the course with its learners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleFigures {
    pub id: i64,
    pub title: String,
    /// Learners with at least one post tied to a task of the module.
    pub posted: i64,
    /// Learners holding an unrevoked award for a task of the module (by author, or by
    /// recipient email when the award names no author).
    pub badged: i64,
}

/// A task of the course with its awards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFigures {
    pub id: i64,
    pub title: String,
    pub hashtag: String,
    /// Awards (not withdrawn) whose record is in a block of the main chain.
    pub recorded: i64,
    /// Awards (not withdrawn) whose record is not in a block yet.
    pub pending: i64,
}

/// Tied posts of one task on one UTC day (days since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, QueryableByName)]
pub struct TaskDay {
    #[diesel(sql_type = BigInt)]
    pub task_id: i64,
    #[diesel(sql_type = BigInt)]
    pub day: i64,
    #[diesel(sql_type = BigInt)]
    pub posts: i64,
}

/// A feed that failed its last polls.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct ErroringFeed {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = BigInt)]
    pub error_count: i64,
}

/// The institution's feeds (feeds belong to learners, not to one course).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedHealth {
    /// Active, and the last poll succeeded.
    pub ok: i64,
    /// Active, and the last poll or more failed.
    pub erroring: i64,
    /// The server said 410 Gone.
    pub gone: i64,
    /// The most failing of the erroring feeds, at most [`ERRORING_LISTED`].
    pub erroring_feeds: Vec<ErroringFeed>,
}

/// Notifications (emails and Webmentions) of the course's awards, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    pub sent: i64,
    /// Queued again after a failed attempt.
    pub retrying: i64,
    /// Queued, not tried yet.
    pub queued: i64,
    /// Refused for good, or still failing when the retry period ran out.
    pub failed: i64,
    /// The post advertises no Webmention endpoint.
    pub no_endpoint: i64,
}

/// A trusted peer's last reported chain height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHeight {
    pub name: String,
    pub url: String,
    pub height: Option<i64>,
}

/// This institution's chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainFigures {
    /// Height of the main chain's top block; `None` before the first block.
    pub height: Option<i64>,
    /// The top block's timestamp (Unix seconds).
    pub last_block_at: Option<i64>,
    /// Records waiting for a block.
    pub pending: i64,
    pub peers: Vec<PeerHeight>,
}

/// Everything the dashboard shows of a course.
#[derive(Debug, Clone)]
pub struct Figures {
    pub course: Course,
    pub modules: Vec<ModuleFigures>,
    /// The course's tasks in outline order, each once.
    pub tasks: Vec<TaskFigures>,
    /// Posts per task and day, oldest day first.
    pub days: Vec<TaskDay>,
    pub feeds: FeedHealth,
    pub delivery: Delivery,
    pub chain: ChainFigures,
}

#[derive(QueryableByName)]
struct OutlineRow {
    #[diesel(sql_type = BigInt)]
    module_id: i64,
    #[diesel(sql_type = Text)]
    module_title: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    task_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    task_title: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    hashtag: Option<String>,
}

#[derive(QueryableByName)]
struct Keyed {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    a: i64,
    #[diesel(sql_type = BigInt)]
    b: i64,
}

#[derive(QueryableByName)]
struct StateCount {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    flag: i64,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Top {
    #[diesel(sql_type = Nullable<BigInt>)]
    height: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    at: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pending: i64,
}

/// The dashboard's figures for course `course_id`, read in one transaction so that they agree
/// with each other.
pub fn figures(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<Figures> {
    conn.transaction(|conn| {
        let course = courses::get_course(conn, course_id)?;
        let outline: Vec<OutlineRow> = diesel::sql_query(
            "SELECT m.id AS module_id, m.title AS module_title, t.id AS task_id, t.title AS task_title, t.hashtag \
             FROM course_modules cm JOIN modules m ON m.id = cm.module_id \
             LEFT JOIN module_tasks mt ON mt.module_id = m.id LEFT JOIN tasks t ON t.id = mt.task_id \
             WHERE cm.course_id = ? ORDER BY cm.position, cm.module_id, mt.position, mt.task_id",
        )
        .bind::<BigInt, _>(course_id)
        .load(conn)?;
        // dashboard_task_authors holds a learner once per task, so a module of one task (the
        // usual shape) counts its rows; only a learner across several tasks needs DISTINCT.
        let learners: Vec<Keyed> = diesel::sql_query(
            "SELECT cm.module_id AS id, \
             (SELECT CASE WHEN count(*) = 1 \
               THEN (SELECT count(*) FROM dashboard_task_authors d WHERE d.task_id = min(mt.task_id)) \
               ELSE (SELECT count(DISTINCT d.author_id) FROM module_tasks m2 JOIN dashboard_task_authors d \
                     ON d.task_id = m2.task_id WHERE m2.module_id = cm.module_id) END \
              FROM module_tasks mt WHERE mt.module_id = cm.module_id) AS a, \
             (SELECT count(DISTINCT coalesce('a' || aw.author_id, 'e' || aw.recipient_email)) \
              FROM module_tasks mt JOIN awards aw ON aw.task_id = mt.task_id \
              WHERE mt.module_id = cm.module_id AND aw.revoked_at IS NULL AND aw.withdrawn_at IS NULL) AS b \
             FROM course_modules cm WHERE cm.course_id = ?",
        )
        .bind::<BigInt, _>(course_id)
        .load(conn)?;
        let awards: Vec<Keyed> = diesel::sql_query(format!(
            "SELECT task_id AS id, recorded AS a, awards - recorded AS b FROM dashboard_task_awards \
             WHERE task_id IN ({COURSE_TASKS})"
        ))
        .bind::<BigInt, _>(course_id)
        .load(conn)?;
        let days: Vec<TaskDay> = diesel::sql_query(format!(
            "SELECT task_id, day, posts FROM dashboard_task_days WHERE task_id IN ({COURSE_TASKS}) ORDER BY day, task_id"
        ))
        .bind::<BigInt, _>(course_id)
        .load(conn)?;
        let delivery: Vec<StateCount> = diesel::sql_query(format!(
            "SELECT status, tried AS flag, sum(n) AS n FROM dashboard_task_delivery \
             WHERE task_id IN ({COURSE_TASKS}) GROUP BY 1, 2"
        ))
        .bind::<BigInt, _>(course_id)
        .load(conn)?;
        let feeds: Vec<StateCount> = diesel::sql_query(
            "SELECT status, error_count > 0 AS flag, count(*) AS n FROM feeds \
             WHERE status IN ('active', 'gone') GROUP BY 1, 2",
        )
        .load(conn)?;
        let erroring_feeds: Vec<ErroringFeed> = diesel::sql_query(
            "SELECT id, title, url, error_count FROM feeds WHERE status = 'active' AND error_count > 0 \
             ORDER BY error_count DESC, id LIMIT ?",
        )
        .bind::<BigInt, _>(ERRORING_LISTED)
        .load(conn)?;
        let top: Top = diesel::sql_query(
            "SELECT (SELECT height FROM blocks WHERE on_main = 1 ORDER BY height DESC LIMIT 1) AS height, \
             (SELECT timestamp FROM blocks WHERE on_main = 1 ORDER BY height DESC LIMIT 1) AS at, \
             (SELECT count(*) FROM chain_records WHERE block_hash IS NULL) AS pending",
        )
        .get_result(conn)?;
        let peers = peers::list(conn)?
            .into_iter()
            .map(|p| PeerHeight { name: p.name, url: p.url, height: p.last_height })
            .collect();
        Ok(assemble(course, outline, &learners, &awards, days, &delivery, &feeds, erroring_feeds, top, peers))
    })
}

#[allow(clippy::too_many_arguments)] // the rows of one transaction, put together in one place
fn assemble(
    course: Course,
    outline: Vec<OutlineRow>,
    learners: &[Keyed],
    awards: &[Keyed],
    days: Vec<TaskDay>,
    delivery: &[StateCount],
    feeds: &[StateCount],
    erroring_feeds: Vec<ErroringFeed>,
    top: Top,
    peers: Vec<PeerHeight>,
) -> Figures {
    let mut modules: Vec<ModuleFigures> = Vec::new();
    let mut tasks: Vec<TaskFigures> = Vec::new();
    for row in outline {
        if !modules.iter().any(|m| m.id == row.module_id) {
            let (posted, badged) = learners.iter().find(|l| l.id == row.module_id).map_or((0, 0), |l| (l.a, l.b));
            modules.push(ModuleFigures { id: row.module_id, title: row.module_title, posted, badged });
        }
        if let (Some(id), Some(title), Some(hashtag)) = (row.task_id, row.task_title, row.hashtag)
            && !tasks.iter().any(|t| t.id == id)
        {
            let (recorded, pending) = awards.iter().find(|a| a.id == id).map_or((0, 0), |a| (a.a, a.b));
            tasks.push(TaskFigures { id, title, hashtag, recorded, pending });
        }
    }
    let mut d = Delivery::default();
    for s in delivery {
        let slot = match (s.status.as_str(), s.flag != 0) {
            ("sent", _) => &mut d.sent,
            ("queued", true) => &mut d.retrying,
            ("queued", false) => &mut d.queued,
            ("no_endpoint", _) => &mut d.no_endpoint,
            _ => &mut d.failed,
        };
        *slot += s.n;
    }
    let mut health = FeedHealth { erroring_feeds, ..FeedHealth::default() };
    for s in feeds {
        let slot = match (s.status.as_str(), s.flag != 0) {
            ("gone", _) => &mut health.gone,
            (_, true) => &mut health.erroring,
            (_, false) => &mut health.ok,
        };
        *slot += s.n;
    }
    Figures {
        course,
        modules,
        tasks,
        days,
        feeds: health,
        delivery: d,
        chain: ChainFigures { height: top.height, last_block_at: top.at, pending: top.pending, peers },
    }
}
