//! The course graph: Courses hold ordered Modules, Modules hold ordered Tasks. A Module
//! may sit in several Courses and a Task in several Modules, as in gRSShopper's graph.
//! Deletion never cascades: a Course or Module must be emptied first, and a Task that
//! other records point to (awards) cannot be deleted.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::schema::{course_modules, courses, module_tasks, modules, tasks};
use super::{OptionalExt, StoreError, StoreResult};
use crate::domain::slugify;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = courses)]
pub struct Course {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    pub position: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = modules)]
pub struct Module {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The day the module starts, `YYYY-MM-DD` in the course's time zone; optional.
    pub starts_on: Option<String>,
}

/// A Task without its artwork bytes (see [`task_artwork`]).
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = tasks)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub criteria: String,
    pub hashtag: String,
    /// MIME type of uploaded artwork; `None` means the generated default badge.
    pub badge_image_type: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Awards of this Task's badge expire this many days after issue.
    pub expires_days: Option<i64>,
}

impl Task {
    /// The hashtag without `#`, as used in the Task's public URL.
    pub fn slug(&self) -> &str {
        self.hashtag.trim_start_matches('#')
    }
}

/// A Task's checked fields, as the store writes them (`app::courses` checks a form into one).
#[derive(Debug, Clone)]
pub struct NewTask {
    pub title: String,
    pub description: String,
    pub criteria: String,
    pub hashtag: String,
    pub expires_days: Option<i64>,
}

/// A badge image as stored: its bytes and MIME type.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub bytes: Vec<u8>,
    pub mime: String,
}

/// What to do with a Task's stored badge image on save.
#[derive(Debug)]
pub enum ImageChange {
    Keep,
    Replace(StoredImage),
    UseDefault,
}

/// Direction for reordering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

/// A Course with its Modules and their Tasks, in order.
#[derive(Debug, Clone)]
pub struct Outline {
    pub course: Course,
    /// The module the instructor named as the course's current one (`courses.current_module_id`);
    /// `None`: chosen by start dates (`app::courses::current_module`). Cleared when that module
    /// leaves the course.
    pub current_module_id: Option<i64>,
    pub modules: Vec<ModuleOutline>,
}

#[derive(Debug, Clone)]
pub struct ModuleOutline {
    pub module: Module,
    pub tasks: Vec<Task>,
}

// ---- courses ----

pub fn list_courses(conn: &mut SqliteConnection) -> StoreResult<Vec<Course>> {
    courses::table.order((courses::position, courses::id)).select(Course::as_select()).load(conn).map_err(Into::into)
}

pub fn get_course(conn: &mut SqliteConnection, id: i64) -> StoreResult<Course> {
    courses::table.find(id).select(Course::as_select()).first(conn).found("course")
}

pub fn get_course_by_slug(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Course> {
    courses::table.filter(courses::slug.eq(slug)).select(Course::as_select()).first(conn).found("course")
}

/// Creates a course at the end of the list, its slug made from its title.
pub fn create_course(conn: &mut SqliteConnection, title: &str, description: &str, now: i64) -> StoreResult<Course> {
    crate::db::write_tx(conn, |conn| {
        let base = slugify(title);
        let mut slug = base.clone();
        let mut n = 1;
        while courses::table.filter(courses::slug.eq(&slug)).count().get_result::<i64>(conn)? > 0 {
            n += 1;
            slug = format!("{base}-{n}");
        }
        let position: Option<i64> = courses::table.select(diesel::dsl::max(courses::position)).first(conn)?;
        let t = now;
        diesel::insert_into(courses::table)
            .values((
                courses::slug.eq(&slug),
                courses::title.eq(title),
                courses::description.eq(description),
                courses::position.eq(position.map_or(0, |p| p + 1)),
                courses::created_at.eq(t),
                courses::updated_at.eq(t),
            ))
            .returning(Course::as_returning())
            .get_result(conn)
            .map_err(Into::into)
    })
}

pub fn update_course(
    conn: &mut SqliteConnection,
    id: i64,
    title: &str,
    description: &str,
    now: i64,
) -> StoreResult<()> {
    let n = diesel::update(courses::table.find(id))
        .set((courses::title.eq(title), courses::description.eq(description), courses::updated_at.eq(now)))
        .execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("course")) } else { Ok(()) }
}

pub fn delete_course(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    let course = get_course(conn, id)?;
    let n: i64 = course_modules::table.filter(course_modules::course_id.eq(id)).count().get_result(conn)?;
    if n > 0 {
        return Err(StoreError::Conflict(format!(
            "The course \u{201c}{}\u{201d} still has {n} module(s). Remove or delete them first; \
             nothing was deleted.",
            course.title
        )));
    }
    diesel::delete(courses::table.find(id)).execute(conn)?;
    Ok(())
}

/// Names the course's current module (`None`: chosen by start dates); the module must be in
/// the course.
pub fn set_current_module(
    conn: &mut SqliteConnection,
    course_id: i64,
    module_id: Option<i64>,
    now: i64,
) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        get_course(conn, course_id)?;
        if let Some(m) = module_id {
            let n: i64 = course_modules::table.find((course_id, m)).count().get_result(conn)?;
            if n == 0 {
                return Err(StoreError::NotFound("module in this course"));
            }
        }
        diesel::update(courses::table.find(course_id))
            .set((courses::current_module_id.eq(module_id), courses::updated_at.eq(now)))
            .execute(conn)?;
        Ok(())
    })
}

pub fn move_course(conn: &mut SqliteConnection, id: i64, dir: Direction) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        let ids: Vec<i64> = courses::table.order((courses::position, courses::id)).select(courses::id).load(conn)?;
        let ids = reorder(ids, id, dir).ok_or(StoreError::NotFound("course"))?;
        for (pos, cid) in ids.iter().enumerate() {
            diesel::update(courses::table.find(cid)).set(courses::position.eq(pos as i64)).execute(conn)?;
        }
        Ok(())
    })
}

/// Moves `id` one place in `ids`; `None` when `id` is absent. At either end it stays put.
fn reorder(mut ids: Vec<i64>, id: i64, dir: Direction) -> Option<Vec<i64>> {
    let i = ids.iter().position(|x| *x == id)?;
    match dir {
        Direction::Up if i > 0 => ids.swap(i, i - 1),
        Direction::Down if i + 1 < ids.len() => ids.swap(i, i + 1),
        _ => {}
    }
    Some(ids)
}

pub fn outline(conn: &mut SqliteConnection, course_id: i64) -> StoreResult<Outline> {
    let course = get_course(conn, course_id)?;
    let current_module_id: Option<i64> =
        courses::table.find(course_id).select(courses::current_module_id).first(conn).found("course")?;
    let mods: Vec<Module> = course_modules::table
        .inner_join(modules::table)
        .filter(course_modules::course_id.eq(course_id))
        .order((course_modules::position, modules::id))
        .select(Module::as_select())
        .load(conn)?;
    let ids: Vec<i64> = mods.iter().map(|m| m.id).collect();
    let rows: Vec<(i64, Task)> = module_tasks::table
        .inner_join(tasks::table)
        .filter(module_tasks::module_id.eq_any(&ids))
        .order((module_tasks::module_id, module_tasks::position, tasks::id))
        .select((module_tasks::module_id, Task::as_select()))
        .load(conn)?;
    let modules = mods
        .into_iter()
        .map(|module| {
            let tasks = rows.iter().filter(|(m, _)| *m == module.id).map(|(_, t)| t.clone()).collect();
            ModuleOutline { module, tasks }
        })
        .collect();
    Ok(Outline { course, current_module_id, modules })
}

// ---- modules ----

pub fn get_module(conn: &mut SqliteConnection, id: i64) -> StoreResult<Module> {
    modules::table.find(id).select(Module::as_select()).first(conn).found("module")
}

pub fn list_modules(conn: &mut SqliteConnection) -> StoreResult<Vec<Module>> {
    modules::table.order(modules::title).select(Module::as_select()).load(conn).map_err(Into::into)
}

/// The courses a module belongs to.
pub fn courses_of_module(conn: &mut SqliteConnection, module_id: i64) -> StoreResult<Vec<Course>> {
    course_modules::table
        .inner_join(courses::table)
        .filter(course_modules::module_id.eq(module_id))
        .order((courses::position, courses::id))
        .select(Course::as_select())
        .load(conn)
        .map_err(Into::into)
}

/// Creates a module at the end of `course_id`.
pub fn create_module(
    conn: &mut SqliteConnection,
    course_id: i64,
    title: &str,
    description: &str,
    now: i64,
) -> StoreResult<Module> {
    crate::db::write_tx(conn, |conn| {
        get_course(conn, course_id)?;
        let t = now;
        let module: Module = diesel::insert_into(modules::table)
            .values((
                modules::title.eq(title),
                modules::description.eq(description),
                modules::created_at.eq(t),
                modules::updated_at.eq(t),
            ))
            .returning(Module::as_returning())
            .get_result(conn)?;
        attach_module(conn, course_id, module.id)?;
        Ok(module)
    })
}

/// Adds an existing module at the end of a course; a no-op when it is already there.
pub fn attach_module(conn: &mut SqliteConnection, course_id: i64, module_id: i64) -> StoreResult<()> {
    get_course(conn, course_id)?;
    get_module(conn, module_id)?;
    let pos: Option<i64> = course_modules::table
        .filter(course_modules::course_id.eq(course_id))
        .select(diesel::dsl::max(course_modules::position))
        .first(conn)?;
    diesel::insert_or_ignore_into(course_modules::table)
        .values((
            course_modules::course_id.eq(course_id),
            course_modules::module_id.eq(module_id),
            course_modules::position.eq(pos.map_or(0, |p| p + 1)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes a module out of one course; the module itself stays. When it was the course's
/// named current module, the course goes back to choosing by start dates.
pub fn detach_module(conn: &mut SqliteConnection, course_id: i64, module_id: i64) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        let n = diesel::delete(
            course_modules::table
                .filter(course_modules::course_id.eq(course_id).and(course_modules::module_id.eq(module_id))),
        )
        .execute(conn)?;
        if n == 0 {
            return Err(StoreError::NotFound("module in this course"));
        }
        diesel::update(courses::table.filter(courses::id.eq(course_id).and(courses::current_module_id.eq(module_id))))
            .set(courses::current_module_id.eq(None::<i64>))
            .execute(conn)?;
        Ok(())
    })
}

/// Saves a module's checked fields; `starts_on` is a checked `YYYY-MM-DD` date or none.
pub fn update_module(
    conn: &mut SqliteConnection,
    id: i64,
    title: &str,
    description: &str,
    starts_on: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let n = diesel::update(modules::table.find(id))
        .set((
            modules::title.eq(title),
            modules::description.eq(description),
            modules::starts_on.eq(starts_on),
            modules::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("module")) } else { Ok(()) }
}

/// Deletes a module that holds no tasks, taking it out of every course.
pub fn delete_module(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        let module = get_module(conn, id)?;
        let n: i64 = module_tasks::table.filter(module_tasks::module_id.eq(id)).count().get_result(conn)?;
        if n > 0 {
            return Err(StoreError::Conflict(format!(
                "The module \u{201c}{}\u{201d} still has {n} task(s). Remove or delete them first; \
                 nothing was deleted.",
                module.title
            )));
        }
        diesel::update(courses::table.filter(courses::current_module_id.eq(id)))
            .set(courses::current_module_id.eq(None::<i64>))
            .execute(conn)?;
        diesel::delete(course_modules::table.filter(course_modules::module_id.eq(id))).execute(conn)?;
        diesel::delete(modules::table.find(id)).execute(conn)?;
        Ok(())
    })
}

pub fn move_module(conn: &mut SqliteConnection, course_id: i64, module_id: i64, dir: Direction) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        let ids: Vec<i64> = course_modules::table
            .filter(course_modules::course_id.eq(course_id))
            .order((course_modules::position, course_modules::module_id))
            .select(course_modules::module_id)
            .load(conn)?;
        let ids = reorder(ids, module_id, dir).ok_or(StoreError::NotFound("module in this course"))?;
        for (pos, mid) in ids.iter().enumerate() {
            diesel::update(course_modules::table.find((course_id, mid)))
                .set(course_modules::position.eq(pos as i64))
                .execute(conn)?;
        }
        Ok(())
    })
}

// ---- tasks ----

pub fn get_task(conn: &mut SqliteConnection, id: i64) -> StoreResult<Task> {
    tasks::table.find(id).select(Task::as_select()).first(conn).found("task")
}

/// Finds a task by its hashtag without `#` (the public URL form).
pub fn get_task_by_slug(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Task> {
    tasks::table.filter(tasks::hashtag.eq(format!("#{slug}"))).select(Task::as_select()).first(conn).found("task")
}

pub fn list_tasks(conn: &mut SqliteConnection) -> StoreResult<Vec<Task>> {
    tasks::table.order(tasks::hashtag).select(Task::as_select()).load(conn).map_err(Into::into)
}

/// The (course, module) places where a task appears, in course order.
pub fn places_of_task(conn: &mut SqliteConnection, task_id: i64) -> StoreResult<Vec<(Course, Module)>> {
    module_tasks::table
        .inner_join(modules::table.inner_join(course_modules::table.inner_join(courses::table)))
        .filter(module_tasks::task_id.eq(task_id))
        .order((courses::position, courses::id, course_modules::position))
        .select((Course::as_select(), Module::as_select()))
        .load(conn)
        .map_err(Into::into)
}

/// The courses that hold any of `task_ids` in one of their modules, each once, in course order.
pub fn courses_of_tasks(conn: &mut SqliteConnection, task_ids: &[i64]) -> StoreResult<Vec<Course>> {
    let mut all: Vec<Course> = module_tasks::table
        .inner_join(modules::table.inner_join(course_modules::table.inner_join(courses::table)))
        .filter(module_tasks::task_id.eq_any(task_ids))
        .order((courses::position, courses::id))
        .select(Course::as_select())
        .load(conn)?;
    all.dedup_by_key(|c| c.id);
    Ok(all)
}

/// Every (task id, course) pair where a task sits in one of the course's modules, in course
/// order: what the Reader groups its task choices by.
pub fn task_courses(conn: &mut SqliteConnection) -> StoreResult<Vec<(i64, Course)>> {
    module_tasks::table
        .inner_join(modules::table.inner_join(course_modules::table.inner_join(courses::table)))
        .order((courses::position, courses::id, course_modules::position, module_tasks::position))
        .select((module_tasks::task_id, Course::as_select()))
        .load(conn)
        .map_err(Into::into)
}

/// The uploaded artwork of a task: (bytes, MIME type), or `None` for the default badge.
pub fn task_artwork(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<(Vec<u8>, String)>> {
    let (bytes, kind): (Option<Vec<u8>>, Option<String>) =
        tasks::table.find(id).select((tasks::badge_image, tasks::badge_image_type)).first(conn).found("task")?;
    Ok(bytes.zip(kind))
}

/// The task that uses `hashtag` (with its `#`), if any.
pub fn task_by_hashtag(conn: &mut SqliteConnection, hashtag: &str) -> StoreResult<Option<Task>> {
    tasks::table.filter(tasks::hashtag.eq(hashtag)).select(Task::as_select()).first(conn).optional().map_err(Into::into)
}

/// The tasks of a module, in order.
pub fn tasks_of_module(conn: &mut SqliteConnection, module_id: i64) -> StoreResult<Vec<Task>> {
    module_tasks::table
        .inner_join(tasks::table)
        .filter(module_tasks::module_id.eq(module_id))
        .order((module_tasks::position, tasks::id))
        .select(Task::as_select())
        .load(conn)
        .map_err(Into::into)
}

fn hashtag_taken(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
            StoreError::field("hashtag", "that hashtag is already used by another task")
        }
        e => e.into(),
    }
}

/// Creates a task at the end of `module_id`.
pub fn create_task(
    conn: &mut SqliteConnection,
    module_id: i64,
    task: &NewTask,
    image: Option<StoredImage>,
    now: i64,
) -> StoreResult<Task> {
    let NewTask { title, description, criteria, hashtag, expires_days } = task;
    crate::db::write_tx(conn, |conn| {
        get_module(conn, module_id)?;
        let t = now;
        let (bytes, kind) = match image {
            Some(a) => (Some(a.bytes), Some(a.mime)),
            None => (None, None),
        };
        let task: Task = diesel::insert_into(tasks::table)
            .values((
                tasks::title.eq(title),
                tasks::description.eq(description),
                tasks::criteria.eq(criteria),
                tasks::hashtag.eq(hashtag),
                tasks::expires_days.eq(expires_days),
                tasks::badge_image.eq(bytes),
                tasks::badge_image_type.eq(kind),
                tasks::created_at.eq(t),
                tasks::updated_at.eq(t),
            ))
            .returning(Task::as_returning())
            .get_result(conn)
            .map_err(hashtag_taken)?;
        attach_task(conn, module_id, task.id)?;
        Ok(task)
    })
}

pub fn update_task(
    conn: &mut SqliteConnection,
    id: i64,
    task: &NewTask,
    image: ImageChange,
    now: i64,
) -> StoreResult<()> {
    let NewTask { title, description, criteria, hashtag, expires_days } = task;
    crate::db::write_tx(conn, |conn| {
        get_task(conn, id)?;
        diesel::update(tasks::table.find(id))
            .set((
                tasks::title.eq(title),
                tasks::description.eq(description),
                tasks::criteria.eq(criteria),
                tasks::hashtag.eq(hashtag),
                tasks::expires_days.eq(expires_days),
                tasks::updated_at.eq(now),
            ))
            .execute(conn)
            .map_err(hashtag_taken)?;
        let (bytes, kind) = match image {
            ImageChange::Keep => return Ok(()),
            ImageChange::Replace(a) => (Some(a.bytes), Some(a.mime)),
            ImageChange::UseDefault => (None, None),
        };
        diesel::update(tasks::table.find(id))
            .set((tasks::badge_image.eq(bytes), tasks::badge_image_type.eq(kind)))
            .execute(conn)?;
        Ok(())
    })
}

/// Adds an existing task at the end of a module; a no-op when it is already there.
pub fn attach_task(conn: &mut SqliteConnection, module_id: i64, task_id: i64) -> StoreResult<()> {
    get_module(conn, module_id)?;
    get_task(conn, task_id)?;
    let pos: Option<i64> = module_tasks::table
        .filter(module_tasks::module_id.eq(module_id))
        .select(diesel::dsl::max(module_tasks::position))
        .first(conn)?;
    diesel::insert_or_ignore_into(module_tasks::table)
        .values((
            module_tasks::module_id.eq(module_id),
            module_tasks::task_id.eq(task_id),
            module_tasks::position.eq(pos.map_or(0, |p| p + 1)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Takes a task out of one module; the task itself stays.
pub fn detach_task(conn: &mut SqliteConnection, module_id: i64, task_id: i64) -> StoreResult<()> {
    let n = diesel::delete(
        module_tasks::table.filter(module_tasks::module_id.eq(module_id).and(module_tasks::task_id.eq(task_id))),
    )
    .execute(conn)?;
    if n == 0 { Err(StoreError::NotFound("task in this module")) } else { Ok(()) }
}

/// Deletes a task, taking it out of its modules. Records that refer to a task (awards)
/// hold `ON DELETE RESTRICT` foreign keys, so a task that has them is refused, not cascaded.
pub fn delete_task(conn: &mut SqliteConnection, id: i64) -> StoreResult<()> {
    let task = get_task(conn, id)?;
    crate::db::write_tx(conn, |conn| {
        diesel::delete(module_tasks::table.filter(module_tasks::task_id.eq(id))).execute(conn)?;
        diesel::delete(tasks::table.find(id)).execute(conn)?;
        Ok(())
    })
    .map_err(|e: DieselError| match e {
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => StoreError::Conflict(format!(
            "The task \u{201c}{}\u{201d} ({}) has awards or other records that refer to it, so it \
             cannot be deleted; nothing was changed. Edit it instead, or take it out of its modules.",
            task.title, task.hashtag
        )),
        e => e.into(),
    })
}

pub fn move_task(conn: &mut SqliteConnection, module_id: i64, task_id: i64, dir: Direction) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        let ids: Vec<i64> = module_tasks::table
            .filter(module_tasks::module_id.eq(module_id))
            .order((module_tasks::position, module_tasks::task_id))
            .select(module_tasks::task_id)
            .load(conn)?;
        let ids = reorder(ids, task_id, dir).ok_or(StoreError::NotFound("task in this module"))?;
        for (pos, tid) in ids.iter().enumerate() {
            diesel::update(module_tasks::table.find((module_id, tid)))
                .set(module_tasks::position.eq(pos as i64))
                .execute(conn)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_moves_one_place_and_stays_at_the_ends() {
        assert_eq!(reorder(vec![1, 2, 3], 2, Direction::Up), Some(vec![2, 1, 3]));
        assert_eq!(reorder(vec![1, 2, 3], 2, Direction::Down), Some(vec![1, 3, 2]));
        assert_eq!(reorder(vec![1, 2, 3], 1, Direction::Up), Some(vec![1, 2, 3]));
        assert_eq!(reorder(vec![1, 2, 3], 3, Direction::Down), Some(vec![1, 2, 3]));
        assert_eq!(reorder(vec![1, 2, 3], 9, Direction::Down), None);
    }
}

/// The course a join came from, as the mail and the "subscribed" page name it: its title,
/// slug, and each task's hashtag and title in course order.
#[derive(Debug, Clone)]
pub struct JoinedCourse {
    pub title: String,
    pub slug: String,
    pub tasks: Vec<(String, String)>,
}

/// The course `slug` names, if any (an unknown or empty slug names none).
pub fn joined_course(conn: &mut SqliteConnection, slug: &str) -> StoreResult<Option<JoinedCourse>> {
    let slug = slug.trim();
    if slug.is_empty() {
        return Ok(None);
    }
    let course = match get_course_by_slug(conn, slug) {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let outline = outline(conn, course.id)?;
    let tasks =
        outline.modules.iter().flat_map(|m| m.tasks.iter().map(|t| (t.hashtag.clone(), t.title.clone()))).collect();
    Ok(Some(JoinedCourse { title: course.title, slug: course.slug, tasks }))
}
