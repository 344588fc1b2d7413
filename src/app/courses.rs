//! Authoring the course graph: Courses, Modules and Tasks as an instructor types them. Every
//! rule a write carries is here — the bounds of each field, a Task's hashtag being its own,
//! an expiry within range, the badge image checked — and the store (`db::courses`) writes
//! the checked values. Deleting a Course or Module that still holds others, and a Task that
//! awards point to, is refused by the store, which alone sees those rows. Here too the course's
//! timing: modules' start dates and the rule that picks the current module
//! ([`current_module`]), which the course page and the newsletter share.

use diesel::SqliteConnection;

use crate::app::access::{Actor, Role};
use crate::badges::art::Artwork;
use crate::db::courses::{self, Course, ImageChange, Module, NewTask, Outline, StoredImage, Task};
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

/// A Module as typed into its edit form.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ModuleForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    /// The day it starts, `YYYY-MM-DD`; empty for none.
    #[serde(default)]
    pub starts_on: String,
}

impl ModuleForm {
    /// The form filled with a module's stored fields.
    pub fn of(module: &Module) -> ModuleForm {
        ModuleForm {
            title: module.title.clone(),
            description: module.description.clone(),
            starts_on: module.starts_on.clone().unwrap_or_default(),
        }
    }
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

/// A module's start date as typed: empty for none, else a real calendar date `YYYY-MM-DD`
/// (what a date input sends) between 1990 and 2199.
pub fn parse_start_date(raw: &str) -> Result<Option<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let shown: String = raw.chars().take(40).collect();
    let bad = || format!("'{shown}' is not a date like 2026-09-07 (year-month-day); leave it empty for no start date");
    if raw.len() != 10 {
        return Err(bad());
    }
    let date = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| bad())?;
    use chrono::Datelike as _;
    if !(1990..=2199).contains(&date.year()) {
        return Err(format!("{raw} is not between 1990 and 2199; check the year"));
    }
    Ok(Some(date.format("%Y-%m-%d").to_string()))
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

/// A module form's checked fields: title, description, start date.
type CheckedModule = (String, String, Option<String>);

fn parse_module(form: &ModuleForm) -> StoreResult<CheckedModule> {
    let mut errors = FieldErrors::new();
    let title = errors.check("title", Text::TITLE.parse(&form.title));
    let description = errors.check("description", Text::DESCRIPTION.parse(&form.description));
    let starts_on = errors.check("starts_on", parse_start_date(&form.starts_on));
    match (title, description, starts_on) {
        (Some(t), Some(d), Some(s)) => Ok((t, d, s)),
        _ => Err(StoreError::Invalid(errors)),
    }
}

/// Creates a module, with its optional start date, at the end of `course_id`; every problem
/// of the form at once.
pub fn create_dated_module(
    conn: &mut SqliteConnection,
    course_id: i64,
    form: &ModuleForm,
    now: i64,
) -> StoreResult<Module> {
    let (title, description, starts_on) = parse_module(form)?;
    write_tx(conn, |c| {
        let module = courses::create_module(c, course_id, &title, &description, now)?;
        courses::update_module(c, module.id, &title, &description, starts_on.as_deref(), now)?;
        Ok(Module { starts_on, ..module })
    })
}

/// Checks and saves a module's edit form; every problem at once.
pub fn update_module(conn: &mut SqliteConnection, id: i64, form: &ModuleForm, now: i64) -> StoreResult<()> {
    let (title, description, starts_on) = parse_module(form)?;
    courses::update_module(conn, id, &title, &description, starts_on.as_deref(), now)
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

// ---- course timing ----

/// How a course's current module was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrentBy {
    /// The instructor named it on the course's page.
    Named,
    /// The latest module whose start date has come.
    StartDate,
    /// No module has started (or none has a date): the first one.
    First,
}

impl CurrentBy {
    /// Words for the instructor's page.
    pub fn describe(&self) -> &'static str {
        match self {
            CurrentBy::Named => "chosen by you",
            CurrentBy::StartDate => "by start dates",
            CurrentBy::First => "the first module: none has started yet",
        }
    }
}

/// The current module of a course on its local date `today` (`YYYY-MM-DD`): the module the
/// instructor named, else the latest module whose start date is on or before `today` (of two
/// starting the same day, the later in course order), else the first module. Its index in
/// `outline.modules`; `None` for a course without modules.
pub fn current_module(outline: &Outline, today: &str) -> Option<(usize, CurrentBy)> {
    let modules = &outline.modules;
    if let Some(named) = outline.current_module_id
        && let Some(i) = modules.iter().position(|m| m.module.id == named)
    {
        return Some((i, CurrentBy::Named));
    }
    let started = modules
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.module.starts_on.as_deref().filter(|d| *d <= today).map(|d| (d, i)))
        .max();
    match started {
        Some((_, i)) => Some((i, CurrentBy::StartDate)),
        None if modules.is_empty() => None,
        None => Some((0, CurrentBy::First)),
    }
}

/// The course's local date at `now` (`YYYY-MM-DD`), in the time zone set on its newsletter
/// page (UTC until one is set), with that zone's name.
pub fn course_today(conn: &mut SqliteConnection, course_id: i64, now: i64) -> StoreResult<(String, String)> {
    let zone = crate::db::newsletter::settings(conn, course_id)?.time_zone;
    Ok((crate::app::newsletter::local_day(&zone, now).0, zone))
}

/// A course's outline as of a local date, with its current module.
#[derive(Debug, Clone)]
pub struct TimedOutline {
    pub outline: Outline,
    /// The course's local date, `YYYY-MM-DD`.
    pub today: String,
    /// The course's time zone (IANA name).
    pub time_zone: String,
    /// The current module's id and how it was chosen.
    pub current: Option<(i64, CurrentBy)>,
}

impl TimedOutline {
    /// Whether `module_id` is the current module.
    pub fn is_current(&self, module_id: &i64) -> bool {
        self.current.is_some_and(|(id, _)| id == *module_id)
    }
}

/// The course's outline with its current module at `now` (see [`current_module`]).
pub fn timed_outline(conn: &mut SqliteConnection, course_id: i64, now: i64) -> StoreResult<TimedOutline> {
    let outline = courses::outline(conn, course_id)?;
    let (today, time_zone) = course_today(conn, course_id, now)?;
    let current =
        current_module(&outline, &today).and_then(|(i, by)| outline.modules.get(i).map(|m| (m.module.id, by)));
    Ok(TimedOutline { outline, today, time_zone, current })
}

/// Names the course's current module from the course page's choice: `auto` (or empty) goes
/// back to start dates, else a module id of the course.
pub fn choose_current_module(conn: &mut SqliteConnection, course_id: i64, choice: &str, now: i64) -> StoreResult<()> {
    let choice = choice.trim();
    let module = match choice {
        "" | "auto" => None,
        id => match id.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => return Err(StoreError::field("current_module", "choose a module of this course, or automatic")),
        },
    };
    courses::set_current_module(conn, course_id, module, now)
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

    fn module(id: i64, starts_on: Option<&str>) -> courses::ModuleOutline {
        courses::ModuleOutline {
            module: Module {
                id,
                title: format!("M{id}"),
                description: String::new(),
                created_at: 100 - id,
                updated_at: 0,
                starts_on: starts_on.map(str::to_string),
            },
            tasks: Vec::new(),
        }
    }

    fn outline(named: Option<i64>, modules: Vec<courses::ModuleOutline>) -> Outline {
        let course = Course {
            id: 1,
            slug: "c".into(),
            title: "C".into(),
            description: String::new(),
            position: 0,
            created_at: 0,
            updated_at: 0,
        };
        Outline { course, current_module_id: named, modules }
    }

    #[test]
    fn the_current_module_is_the_named_one_else_the_latest_started_else_the_first() {
        let dated = || vec![module(1, Some("2026-09-07")), module(2, None), module(3, Some("2026-09-14"))];
        // Nothing has started: the first module, not the one added last.
        assert_eq!(current_module(&outline(None, dated()), "2026-09-01"), Some((0, CurrentBy::First)));
        assert_eq!(current_module(&outline(None, dated()), "2026-09-07"), Some((0, CurrentBy::StartDate)));
        assert_eq!(current_module(&outline(None, dated()), "2026-09-13"), Some((0, CurrentBy::StartDate)));
        assert_eq!(current_module(&outline(None, dated()), "2027-01-01"), Some((2, CurrentBy::StartDate)));
        // The latest start date wins, whatever the course order; of two on one day, the later module.
        let reordered =
            vec![module(3, Some("2026-09-14")), module(1, Some("2026-09-07")), module(4, Some("2026-09-14"))];
        assert_eq!(current_module(&outline(None, reordered), "2026-09-20"), Some((2, CurrentBy::StartDate)));
        // A named module wins; one no longer in the course is ignored.
        assert_eq!(current_module(&outline(Some(2), dated()), "2027-01-01"), Some((1, CurrentBy::Named)));
        assert_eq!(current_module(&outline(Some(9), dated()), "2026-09-01"), Some((0, CurrentBy::First)));
        // No dates at all: the first; no modules: none.
        assert_eq!(
            current_module(&outline(None, vec![module(5, None), module(6, None)]), "2026-09-01").map(|c| c.0),
            Some(0)
        );
        assert_eq!(current_module(&outline(None, Vec::new()), "2026-09-01"), None);
    }

    #[test]
    fn start_dates_are_real_calendar_days_or_nothing() {
        assert_eq!(parse_start_date("  "), Ok(None));
        assert_eq!(parse_start_date(" 2026-09-07 "), Ok(Some("2026-09-07".into())));
        for bad in ["2026-02-30", "2026-9-7", "07/09/2026", "next monday", "2026-09-07T00:00", "+2026-09-07"] {
            let e = parse_start_date(bad).unwrap_err();
            assert!(e.contains("is not a date like"), "{bad}: {e}");
        }
        assert!(parse_start_date("1066-10-14").unwrap_err().contains("between 1990 and 2199"));
    }

    #[test]
    fn a_module_keeps_its_start_date_and_leaving_a_course_clears_it_as_current() {
        let (_dir, pool) = store();
        let mut c = pool.get().unwrap();
        let course = create_course(&mut c, &TitledForm { title: "C".into(), description: String::new() }, 10).unwrap();
        let m = create_module(&mut c, course.id, &TitledForm { title: "M".into(), ..Default::default() }, 10).unwrap();
        let form = |d: &str| ModuleForm { title: "M".into(), description: String::new(), starts_on: d.into() };
        let Err(StoreError::Invalid(errors)) = update_module(&mut c, m.id, &form("2026-13-01"), 20) else {
            panic!("expected a field error");
        };
        assert!(errors.get("starts_on").contains("is not a date like"), "{errors:?}");
        update_module(&mut c, m.id, &form("2026-09-07"), 20).unwrap();
        assert_eq!(courses::get_module(&mut c, m.id).unwrap().starts_on.as_deref(), Some("2026-09-07"));
        update_module(&mut c, m.id, &form(""), 30).unwrap();
        assert_eq!(courses::get_module(&mut c, m.id).unwrap().starts_on, None);

        assert!(choose_current_module(&mut c, course.id, "x", 40).is_err());
        choose_current_module(&mut c, course.id, &m.id.to_string(), 40).unwrap();
        assert_eq!(courses::outline(&mut c, course.id).unwrap().current_module_id, Some(m.id));
        detach_module(&mut c, course.id, m.id).unwrap();
        assert_eq!(courses::outline(&mut c, course.id).unwrap().current_module_id, None);
        assert!(matches!(
            choose_current_module(&mut c, course.id, &m.id.to_string(), 50),
            Err(StoreError::NotFound(_))
        ));
        attach_module(&mut c, course.id, m.id).unwrap();
        choose_current_module(&mut c, course.id, &m.id.to_string(), 60).unwrap();
        delete_module(&mut c, m.id).unwrap();
        assert_eq!(courses::outline(&mut c, course.id).unwrap().current_module_id, None);
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

/// What an authoring change touches, and so which role it needs.
#[derive(Debug, Clone, Copy)]
pub enum Edit {
    /// Creating, deleting or reordering courses: an institution admin.
    Courses,
    /// A course's title, description and current module: its owner.
    Course(i64),
    /// A course's modules (adding, ordering, taking out): its editors.
    CourseModules(i64),
    /// A module and its tasks: an editor of a course that includes it.
    Module(i64),
    /// A task and its badge: an editor of a course that includes it.
    Task(i64),
}

/// Refuses unless `actor` may make `edit`; returns the course it counts for (for the audit
/// trail).
pub fn may_edit(conn: &mut SqliteConnection, actor: &Actor, edit: Edit) -> StoreResult<Option<i64>> {
    match edit {
        Edit::Courses => actor.require_admin("create, delete or reorder courses").map(|()| None),
        Edit::Course(id) => actor.require_course(conn, id, Role::Owner, "change the course").map(|()| Some(id)),
        Edit::CourseModules(id) => {
            actor.require_course(conn, id, Role::Editor, "change the course's modules").map(|()| Some(id))
        }
        Edit::Module(id) => {
            actor.require_module(conn, id, Role::Editor, "edit this module and its tasks")?;
            Ok(courses::courses_of_module(conn, id)?.first().map(|c| c.id))
        }
        Edit::Task(id) => actor.require_task(conn, id, Role::Editor, "edit this task and its badge"),
    }
}

/// The courses `actor` works in, in course order: every course for an admin, else those
/// where they hold a role (what the dashboard lists and charts).
pub fn visible(conn: &mut SqliteConnection, actor: &Actor) -> StoreResult<Vec<courses::Course>> {
    let all = courses::list_courses(conn)?;
    Ok(match actor.courses_with(Role::Reviewer) {
        None => all,
        Some(mine) => all.into_iter().filter(|c| mine.contains(&c.id)).collect(),
    })
}

/// Whether `actor` may create, delete and reorder courses (the dashboard offers the forms
/// only then; [`may_edit`] refuses the writes).
pub fn may_manage_courses(actor: &Actor) -> bool {
    actor.require_admin("manage courses").is_ok()
}

/// Makes an authoring change as `actor`: the role checked first, then `change` and its audit
/// event (`action`, `subject`) in one write transaction.
pub fn edit_as<T>(
    conn: &mut SqliteConnection,
    actor: &Actor,
    edit: Edit,
    action: &str,
    subject: &str,
    now: i64,
    change: impl FnOnce(&mut SqliteConnection) -> StoreResult<T>,
) -> StoreResult<T> {
    let course = may_edit(conn, actor, edit)?;
    write_tx(conn, |c| {
        let out = change(c)?;
        crate::app::audit::record(c, actor, action, course, subject, "", now)?;
        Ok(out)
    })
}
