//! The course structure, read-only: courses, modules and tasks.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Caller, Problem, db, store};
use crate::db::courses::{self, Course, Module, Task};
use crate::db::tokens::Scope;
use crate::web::AppState;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CourseView {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub description: String,
    /// The course's public page.
    #[schema(format = "uri")]
    pub url: String,
}

impl CourseView {
    fn new(base: &str, c: &Course) -> CourseView {
        CourseView {
            id: c.id,
            slug: c.slug.clone(),
            title: c.title.clone(),
            description: c.description.clone(),
            url: format!("{base}/courses/{}", c.slug),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    pub id: i64,
    pub title: String,
    /// Such as `#el30-data`: what posts carry and what awards name.
    pub hashtag: String,
    pub description: String,
    /// Markdown.
    pub criteria: String,
    /// Days an award of this Task stays valid; null for ever.
    pub expires_days: Option<i64>,
    /// The Task's public page (the BadgeClass criteria).
    #[schema(format = "uri")]
    pub url: String,
    /// The Open Badges BadgeClass.
    #[schema(format = "uri")]
    pub badge_class: String,
}

impl TaskView {
    fn new(base: &str, t: &Task) -> TaskView {
        TaskView {
            id: t.id,
            title: t.title.clone(),
            hashtag: t.hashtag.clone(),
            description: t.description.clone(),
            criteria: t.criteria.clone(),
            expires_days: t.expires_days,
            url: format!("{base}/tasks/{}", t.slug()),
            badge_class: crate::badges::ob::badge_class_url(base, t),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModuleView {
    pub id: i64,
    pub title: String,
    pub description: String,
}

impl ModuleView {
    fn new(m: &Module) -> ModuleView {
        ModuleView { id: m.id, title: m.title.clone(), description: m.description.clone() }
    }
}

/// A module of a course with its tasks, in course order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModuleOutlineView {
    pub module: ModuleView,
    pub tasks: Vec<TaskView>,
}

/// A course with its modules and their tasks.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CourseOutline {
    pub course: CourseView,
    pub modules: Vec<ModuleOutlineView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CourseList {
    pub courses: Vec<CourseView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ModuleList {
    pub modules: Vec<ModuleView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskList {
    pub tasks: Vec<TaskView>,
}

#[utoipa::path(get, path = "/api/v1/courses", tag = "courses", operation_id = "listCourses",
    responses((status = 200, description = "Every course, in the order of the home page.", body = CourseList)),
    security(("bearer" = ["read"])))]
/// List courses.
pub async fn courses(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let base = state.base_url.clone();
    let list = db(&state, move |c| store(courses::list_courses(c))).await?;
    Ok(HttpResponse::Ok().json(CourseList { courses: list.iter().map(|c| CourseView::new(&base, c)).collect() }))
}

#[utoipa::path(get, path = "/api/v1/courses/{id}", tag = "courses", operation_id = "getCourse",
    params(("id" = i64, Path, description = "The course's id")),
    responses((status = 200, description = "The course with its modules and tasks.", body = CourseOutline)),
    security(("bearer" = ["read"])))]
/// Get a course with its modules and their tasks.
pub async fn course(caller: Caller, state: web::Data<AppState>, id: web::Path<i64>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let (id, base) = (id.into_inner(), state.base_url.clone());
    let o = db(&state, move |c| store(courses::outline(c, id))).await?;
    Ok(HttpResponse::Ok().json(CourseOutline {
        course: CourseView::new(&base, &o.course),
        modules: o
            .modules
            .iter()
            .map(|m| ModuleOutlineView {
                module: ModuleView::new(&m.module),
                tasks: m.tasks.iter().map(|t| TaskView::new(&base, t)).collect(),
            })
            .collect(),
    }))
}

#[utoipa::path(get, path = "/api/v1/modules", tag = "courses", operation_id = "listModules",
    responses((status = 200, description = "Every module.", body = ModuleList)),
    security(("bearer" = ["read"])))]
/// List modules.
pub async fn modules(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let list = db(&state, move |c| store(courses::list_modules(c))).await?;
    Ok(HttpResponse::Ok().json(ModuleList { modules: list.iter().map(ModuleView::new).collect() }))
}

#[utoipa::path(get, path = "/api/v1/tasks", tag = "courses", operation_id = "listTasks",
    responses((status = 200, description = "Every task.", body = TaskList)),
    security(("bearer" = ["read"])))]
/// List tasks.
pub async fn tasks(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    caller.require(Scope::Read)?;
    let base = state.base_url.clone();
    let list = db(&state, move |c| store(courses::list_tasks(c))).await?;
    Ok(HttpResponse::Ok().json(TaskList { tasks: list.iter().map(|t| TaskView::new(&base, t)).collect() }))
}
