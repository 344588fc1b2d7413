//! Public pages: home, course home, task pages (the future BadgeClass criteria URL),
//! badge images and the institution profile.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{AppState, Page, image_response, render};
use crate::badges::art;
use crate::db::courses::{self, Course, Module, Outline, Task};
use crate::db::institution::{self, Institution};
use crate::markdown;
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/courses/{slug}", web::get().to(course_page))
        .route("/tasks/{tag}", web::get().to(task_page))
        .route("/tasks/{tag}/badge", web::get().to(task_badge))
        .route("/institution", web::get().to(institution_page))
        .route("/institution/image", web::get().to(institution_image));
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    page: Page,
    institution: Institution,
    courses: Vec<Course>,
}

async fn home(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (institution, courses) = state.db(|c| Ok((institution::get(c)?, courses::list_courses(c)?))).await?;
    render(&HomePage { page: Page::new(&session, institution.name.clone()), institution, courses })
}

#[derive(Template)]
#[template(path = "course.html")]
struct CoursePage {
    page: Page,
    outline: Outline,
    /// The current module (`app::courses::current_module`).
    current: Option<i64>,
}

impl CoursePage {
    fn is_current(&self, module_id: &i64) -> bool {
        self.current == Some(*module_id)
    }
}

async fn course_page(
    session: Session,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    let now = crate::clock::system_now();
    let timed = state
        .db(move |c| {
            let course = courses::get_course_by_slug(c, &slug)?;
            crate::app::courses::timed_outline(c, course.id, now)
        })
        .await?;
    let (outline, current) = (timed.outline, timed.current.map(|(id, _)| id));
    // The page holds the newsletter's subscribe form.
    let page = Page::with_form(&session, outline.course.title.clone());
    let mut res = render(&CoursePage { page, outline, current })?;
    let (k, v) = super::webmention_link(&state.base_url);
    res.headers_mut().insert(k, v);
    Ok(res)
}

#[derive(Template)]
#[template(path = "task.html")]
struct TaskPage {
    page: Page,
    task: Task,
    places: Vec<(Course, Module)>,
    criteria_html: String,
}

async fn task_page(
    session: Session,
    state: web::Data<AppState>,
    tag: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let tag = tag.into_inner();
    let (task, places) = state
        .db(move |c| {
            let task = courses::get_task_by_slug(c, &tag)?;
            let places = courses::places_of_task(c, task.id)?;
            Ok((task, places))
        })
        .await?;
    let criteria_html = markdown::render(&task.criteria);
    render(&TaskPage { page: Page::new(&session, task.title.clone()), task, places, criteria_html })
}

/// The badge image of a task: its uploaded artwork or the generated default.
pub async fn badge_for(state: &AppState, task_id: i64) -> Result<HttpResponse, AppError> {
    let (art_row, task, places) = state
        .db(move |c| {
            Ok((
                courses::task_artwork(c, task_id)?,
                courses::get_task(c, task_id)?,
                courses::places_of_task(c, task_id)?,
            ))
        })
        .await?;
    Ok(match art_row {
        Some((bytes, mime)) => image_response(bytes, &mime),
        None => {
            let course = places.first().map(|(c, _)| c.title.as_str()).unwrap_or("");
            image_response(art::default_svg(&task.title, course, &task.hashtag).into_bytes(), art::ArtKind::Svg.mime())
        }
    })
}

async fn task_badge(state: web::Data<AppState>, tag: web::Path<String>) -> Result<HttpResponse, AppError> {
    let tag = tag.into_inner();
    let task = state.db(move |c| courses::get_task_by_slug(c, &tag)).await?;
    badge_for(&state, task.id).await
}

#[derive(Template)]
#[template(path = "institution.html")]
struct InstitutionPage {
    page: Page,
    institution: Institution,
    /// Each course with the badges its modules offer, in course order.
    courses: Vec<courses::Outline>,
}

async fn institution_page(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (institution, courses) = state
        .db(|c| {
            let outlines = courses::list_courses(c)?
                .into_iter()
                .map(|course| courses::outline(c, course.id))
                .collect::<crate::db::StoreResult<Vec<_>>>()?;
            Ok((institution::get(c)?, outlines))
        })
        .await?;
    render(&InstitutionPage { page: Page::new(&session, institution.name.clone()), institution, courses })
}

async fn institution_image(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let inst = state.db(institution::get).await?;
    match (inst.image, inst.image_type) {
        (Some(bytes), Some(mime)) => Ok(image_response(bytes, &mime)),
        _ => Err(AppError::NotFound("institution image")),
    }
}
