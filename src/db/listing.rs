//! What the long instructor lists share: a page of rows with the count of every match, LIKE
//! patterns taken literally, the tasks a course, module or task filter selects, and the
//! learners "in" those tasks (the roster's rule: a post tied to one of them, or one of their
//! badges held). Filters are written as SQL with positional binds, so that the database does
//! the filtering, counting and paging whatever the number of rows.

use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Text};
use diesel::sqlite::Sqlite;

/// Rows per page of the Feeds and Posts pages.
pub const PER_PAGE: i64 = 50;
/// Longest search text taken (characters).
pub const MAX_SEARCH: usize = 200;
/// Highest page number taken.
pub const MAX_PAGE: i64 = 1_000_000;

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub rows: Vec<T>,
    /// Rows matching the filters, on every page.
    pub total: i64,
    /// The page shown (1-based).
    pub page: i64,
    pub per_page: i64,
}

impl<T> Listed<T> {
    pub fn pages(&self) -> i64 {
        ((self.total + self.per_page - 1) / self.per_page).max(1)
    }

    /// The 1-based positions of the first and last row shown ((0, 0) when none is).
    pub fn span(&self) -> (i64, i64) {
        let first = (self.page - 1) * self.per_page;
        if self.rows.is_empty() { (0, 0) } else { (first + 1, first + self.rows.len() as i64) }
    }

    /// Offset of the page's first row.
    pub fn offset(page: i64, per_page: i64) -> i64 {
        (page.clamp(1, MAX_PAGE) - 1).saturating_mul(per_page)
    }
}

/// A matching row's id and the count of all matches (`COUNT(*) OVER ()`).
#[derive(Debug, Clone, Copy, diesel::QueryableByName)]
pub struct IdTotal {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

/// `text` as a LIKE pattern matching it anywhere, its own `%`, `_` and `\` taken literally
/// (with `ESCAPE '\'`); `None` for blank text.
pub fn like_pattern(text: &str) -> Option<String> {
    let t: String = text.trim().chars().take(MAX_SEARCH).collect();
    if t.is_empty() {
        return None;
    }
    let mut p = String::with_capacity(t.len() + 2);
    p.push('%');
    for c in t.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    Some(p)
}

/// A value bound to a `?` of a filter.
#[derive(Debug, Clone)]
pub enum Bind {
    Int(i64),
    Text(String),
}

/// A `WHERE` clause built of conditions joined by `AND`, with its binds in order.
#[derive(Debug, Clone, Default)]
pub struct Where {
    parts: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    /// Adds a condition (its `?`s are bound to `binds`, in order).
    pub fn and(&mut self, sql: impl Into<String>, binds: impl IntoIterator<Item = Bind>) {
        self.parts.push(sql.into());
        self.binds.extend(binds);
    }

    /// `WHERE …`, or nothing.
    pub fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.parts.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" AND "))
        }
    }

    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }
}

/// `query` with `binds` bound in order.
pub fn bind_all(query: SqlQuery, binds: &[Bind]) -> BoxedSqlQuery<'static, Sqlite, SqlQuery> {
    let mut q = query.into_boxed::<Sqlite>();
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind::<BigInt, _>(*i),
            Bind::Text(t) => q.bind::<Text, _>(t.clone()),
        };
    }
    q
}

/// Which tasks a list is narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Task(i64),
    Module(i64),
    Course(i64),
}

impl Scope {
    /// The most precise of the filters given: a task before a module before a course.
    pub fn of(course: Option<i64>, module: Option<i64>, task: Option<i64>) -> Option<Scope> {
        task.map(Scope::Task).or(module.map(Scope::Module)).or(course.map(Scope::Course))
    }

    /// A `SELECT` of the scope's task ids, with one `?` bound to [`Scope::bind`].
    pub fn tasks_sql(self) -> &'static str {
        match self {
            Scope::Task(_) => "SELECT ?",
            Scope::Module(_) => "SELECT task_id FROM module_tasks WHERE module_id = ?",
            Scope::Course(_) => {
                "SELECT mt.task_id FROM module_tasks mt JOIN course_modules cm ON cm.module_id = mt.module_id \
                 WHERE cm.course_id = ?"
            }
        }
    }

    pub fn bind(self) -> Bind {
        match self {
            Scope::Task(id) | Scope::Module(id) | Scope::Course(id) => Bind::Int(id),
        }
    }

    /// A `SELECT` of the learners (author ids) in the scope, by the roster's rule: a post tied
    /// to one of its tasks, or an award of one neither revoked nor withdrawn (awards made by
    /// address count for the learner with that address). Binds: [`Scope::learner_binds`].
    pub fn learners_sql(self) -> String {
        learners_of_tasks_sql(self.tasks_sql())
    }

    pub fn learner_binds(self) -> [Bind; 3] {
        [self.bind(), self.bind(), self.bind()]
    }
}

/// A `SELECT` of the task ids of the courses bound to `n` placeholders (`n` ≥ 1).
pub fn tasks_of_courses_sql(n: usize) -> String {
    format!(
        "SELECT mt.task_id FROM module_tasks mt JOIN course_modules cm ON cm.module_id = mt.module_id \
         WHERE cm.course_id IN ({})",
        vec!["?"; n.max(1)].join(",")
    )
}

/// The roster's rule over the tasks that `tasks` selects (used three times, so its binds are
/// given three times): a learner with a post tied to one of them, or an award of one neither
/// revoked nor withdrawn (awards made by address count for the learner with that address).
pub fn learners_of_tasks_sql(tasks: &str) -> String {
    format!(
        "SELECT ls.author_id FROM link_tasks lts JOIN links ls ON ls.id = lts.link_id
         WHERE lts.tied AND lts.task_id IN ({tasks})
         UNION SELECT aws.author_id FROM awards aws
         WHERE aws.author_id IS NOT NULL AND aws.revoked_at IS NULL AND aws.withdrawn_at IS NULL
           AND aws.task_id IN ({tasks})
         UNION SELECT aus.id FROM awards aws JOIN authors aus ON aus.email = aws.recipient_email
         WHERE aws.author_id IS NULL AND aws.revoked_at IS NULL AND aws.withdrawn_at IS NULL
           AND aws.task_id IN ({tasks})"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_taken_literally() {
        assert_eq!(like_pattern("  "), None);
        assert_eq!(like_pattern("a%b_c\\").as_deref(), Some("%a\\%b\\_c\\\\%"));
        assert_eq!(like_pattern(&"x".repeat(500)).map(|p| p.len()), Some(MAX_SEARCH + 2));
    }

    #[test]
    fn a_page_says_which_rows_it_shows() {
        let l = Listed { rows: vec![1; 50], total: 209, page: 2, per_page: 50 };
        assert_eq!((l.span(), l.pages()), ((51, 100), 5));
        let past = Listed::<i64> { rows: vec![], total: 209, page: 9, per_page: 50 };
        assert_eq!((past.span(), past.pages()), ((0, 0), 5));
        assert_eq!(Listed::<i64>::offset(0, 50), 0);
        assert_eq!(Listed::<i64>::offset(3, 50), 100);
    }

    #[test]
    fn the_most_precise_scope_wins_and_a_where_joins_its_parts() {
        assert_eq!(Scope::of(Some(1), Some(2), Some(3)), Some(Scope::Task(3)));
        assert_eq!(Scope::of(Some(1), Some(2), None), Some(Scope::Module(2)));
        assert_eq!(Scope::of(None, None, None), None);
        let mut w = Where::default();
        assert_eq!(w.sql(), "");
        w.and("a = ?", [Bind::Int(1)]);
        w.and("b LIKE ? OR c LIKE ?", [Bind::Text("%x%".into()), Bind::Text("%x%".into())]);
        assert_eq!(w.sql(), "WHERE (a = ?) AND (b LIKE ? OR c LIKE ?)");
        assert_eq!(w.binds().len(), 3);
    }
}
