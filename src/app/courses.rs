//! Authoring the course graph: Courses, Modules and Tasks as an instructor types them. Every
//! rule a write carries is here — the bounds of each field, a Task's hashtag being its own,
//! an expiry within range, the badge image checked — and the store (`db::courses`) writes
//! the checked values. Deleting a Course or Module that still holds others, and a Task that
//! awards point to, is refused by the store, which alone sees those rows.

use diesel::SqliteConnection;

use crate::badges::art::Artwork;
use crate::db::courses::{self, Course, ImageChange, Module, NewTask, StoredImage, Task};
use crate::db::{StoreError, StoreResult, write_tx};
use crate::domain::{FieldErrors, Hashtag, Text};

pub use crate::db::courses::Direction;

/// Title and description, as typed into a Course or Module form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TitledForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
}

/// A Task as typed into its form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct TaskForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub criteria: String,
    #[serde(default)]
    pub hashtag: String,
    /// Days an award stays valid; empty for no expiry.
    #[serde(default)]
    pub expires_days: String,
}

/// What to do with a Task's badge artwork on save.
#[derive(Debug)]
pub enum ArtworkChange {
    Keep,
    Replace(Artwork),
    UseDefault,
}

fn stored(art: Artwork) -> StoredImage {
    StoredImage { bytes: art.bytes, mime: art.kind.mime().to_string() }
}

fn parse_titled(form: &TitledForm) -> StoreResult<(String, String)> {
    let mut errors = FieldErrors::new();
    let title = errors.check("title", Text::TITLE.parse(&form.title));
    let description = errors.check("description", Text::DESCRIPTION.parse(&form.description));
    match (title, description) {
        (Some(t), Some(d)) => Ok((t, d)),
        _ => Err(StoreError::Invalid(errors)),
    }
}

fn parse_expiry(raw: &str) -> Result<Option<i64>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(d) if (1..=36_500).contains(&d) => Ok(Some(d)),
        _ => Err(format!("'{raw}' is not a number of days between 1 and 36500 (leave empty for no expiry)")),
    }
}

/// Checks a task form; `except` is the task being edited, whose own hashtag is not taken.
/// Reports every problem at once.
fn parse_task(conn: &mut SqliteConnection, form: &TaskForm, except: Option<i64>) -> StoreResult<NewTask> {
    let mut errors = FieldErrors::new();
    let expires_days = errors.check("expires_days", parse_expiry(&form.expires_days));
    let title = errors.check("title", Text::TITLE.parse(&form.title));
    let description = errors.check("description", Text::DESCRIPTION.parse(&form.description));
    let criteria = errors.check("criteria", Text::CRITERIA.parse(&form.criteria));
    let hashtag = errors.check("hashtag", Hashtag::parse(&form.hashtag));
    if let Some(tag) = &hashtag
        && let Some(other) = courses::task_by_hashtag(conn, tag.as_str())?.filter(|t| Some(t.id) != except)
    {
        errors.add("hashtag", format!("{tag} is already used by the task \u{201c}{}\u{201d}", other.title));
    }
    match (title, description, criteria, hashtag) {
        (Some(title), Some(description), Some(criteria), Some(hashtag)) if errors.is_empty() => Ok(NewTask {
            title,
            description,
            criteria,
            hashtag: hashtag.as_str().to_string(),
            expires_days: expires_days.flatten(),
        }),
        _ => Err(StoreError::Invalid(errors)),
    }
}

// ---- courses ----

pub fn create_course(conn: &mut SqliteConnection, form: &TitledForm, now: i64) -> StoreResult<Course> {
    let (title, description) = parse_titled(form)?;
    courses::create_course(conn, &title, &description, now)
}

pub fn update_course(conn: &mut SqliteConnection, id: i64, form: &TitledForm, now: i64) -> StoreResult<()> {
    let (title, description) = parse_titled(form)?;
    courses::update_course(conn, id, &title, &description, now)
}

/// Deletes a course that holds no modules.
pub fn delete_course(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    courses::delete_course(conn, id)
}

pub fn move_course(conn: &mut SqliteConnection, id: i64, dir: Direction) -> StoreResult<()> {
    courses::move_course(conn, id, dir)
}

// ---- modules ----

/// Creates a module at the end of `course_id`.
pub fn create_module(conn: &mut SqliteConnection, course_id: i64, form: &TitledForm, now: i64) -> StoreResult<Module> {
    let (title, description) = parse_titled(form)?;
    courses::create_module(conn, course_id, &title, &description, now)
}

pub fn update_module(conn: &mut SqliteConnection, id: i64, form: &TitledForm, now: i64) -> StoreResult<()> {
    let (title, description) = parse_titled(form)?;
    courses::update_module(conn, id, &title, &description, now)
}

/// Deletes a module that holds no tasks, taking it out of every course.
pub fn delete_module(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    courses::delete_module(conn, id)
}

/// Adds an existing module at the end of a course; a no-op when it is already there.
pub fn attach_module(conn: &mut SqliteConnection, course_id: i64, module_id: i64) -> StoreResult<()> {
    courses::attach_module(conn, course_id, module_id)
}

/// Takes a module out of one course; the module itself stays.
pub fn detach_module(conn: &mut SqliteConnection, course_id: i64, module_id: i64) -> StoreResult<()> {
    courses::detach_module(conn, course_id, module_id)
}

pub fn move_module(conn: &mut SqliteConnection, course_id: i64, module_id: i64, dir: Direction) -> StoreResult<()> {
    courses::move_module(conn, course_id, module_id, dir)
}

// ---- tasks ----

/// Checks a task form without saving it (to report every problem at once).
pub fn validate_task(conn: &mut SqliteConnection, form: &TaskForm, except: Option<i64>) -> StoreResult<()> {
    parse_task(conn, form, except).map(|_| ())
}

/// Creates a task at the end of `module_id`; `art` is its badge image, or the default design.
pub fn create_task(
    conn: &mut SqliteConnection,
    module_id: i64,
    form: &TaskForm,
    art: Option<Artwork>,
    now: i64,
) -> StoreResult<Task> {
    write_tx(conn, |c| {
        let task = parse_task(c, form, None)?;
        courses::create_task(c, module_id, &task, art.map(stored), now)
    })
}

pub fn update_task(
    conn: &mut SqliteConnection,
    id: i64,
    form: &TaskForm,
    art: ArtworkChange,
    now: i64,
) -> StoreResult<()> {
    let image = match art {
        ArtworkChange::Keep => ImageChange::Keep,
        ArtworkChange::Replace(a) => ImageChange::Replace(stored(a)),
        ArtworkChange::UseDefault => ImageChange::UseDefault,
    };
    write_tx(conn, |c| {
        courses::get_task(c, id)?;
        let task = parse_task(c, form, Some(id))?;
        courses::update_task(c, id, &task, image, now)
    })
}

/// Deletes a task no award points to.
pub fn delete_task(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    courses::delete_task(conn, id)
}

/// Adds an existing task at the end of a module; a no-op when it is already there.
pub fn attach_task(conn: &mut SqliteConnection, module_id: i64, task_id: i64) -> StoreResult<()> {
    courses::attach_task(conn, module_id, task_id)
}

pub fn detach_task(conn: &mut SqliteConnection, module_id: i64, task_id: i64) -> StoreResult<()> {
    courses::detach_task(conn, module_id, task_id)
}

pub fn move_task(conn: &mut SqliteConnection, module_id: i64, task_id: i64, dir: Direction) -> StoreResult<()> {
    courses::move_task(conn, module_id, task_id, dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, crate::db::DbPool) {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::db::open(&dir.path().join("c.db")).unwrap();
        (dir, pool)
    }

    fn task(tag: &str, expiry: &str) -> TaskForm {
        TaskForm {
            title: "Read".into(),
            description: String::new(),
            criteria: "Write a post".into(),
            hashtag: tag.into(),
            expires_days: expiry.into(),
        }
    }

    #[test]
    fn a_task_form_reports_every_problem_and_a_taken_hashtag() {
        let (_dir, pool) = store();
        let mut c = pool.get().unwrap();
        let course = create_course(&mut c, &TitledForm { title: "C".into(), description: String::new() }, 10).unwrap();
        let module =
            create_module(&mut c, course.id, &TitledForm { title: "M".into(), ..Default::default() }, 10).unwrap();
        let first = create_task(&mut c, module.id, &task("#el30-data", "30"), None, 20).unwrap();
        assert_eq!((first.created_at, first.expires_days), (20, Some(30)));

        let Err(StoreError::Invalid(errors)) =
            create_task(&mut c, module.id, &TaskForm { title: String::new(), ..task("#el30-data", "0") }, None, 30)
        else {
            panic!("expected field errors");
        };
        let text = format!("{errors:?}");
        assert!(text.contains("already used by the task"), "{text}");
        assert!(text.contains("between 1 and 36500"), "{text}");
        assert!(text.contains("title"), "{text}");
        // The task keeps its own hashtag when edited.
        update_task(&mut c, first.id, &task("#el30-data", ""), ArtworkChange::Keep, 40).unwrap();
        let again = courses::get_task(&mut c, first.id).unwrap();
        assert_eq!((again.updated_at, again.expires_days), (40, None));
    }
}
