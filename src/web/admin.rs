//! Instructor pages: authoring courses, modules and tasks, and the institution profile.
//! Every handler takes [`SignedIn`], so an anonymous visitor is sent to the login page.

use actix_multipart::Multipart;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::charts::{self, Labels, Layout, Row};
use super::multipart::{self, UploadForm};
use super::{AppState, Page, redirect, render, render_status, safe_back};
use crate::badges::art;
use crate::db::courses::{self, ArtworkChange, Course, Direction, Module, Outline, Task, TaskForm, TitledForm};
use crate::db::dashboard;
use crate::db::institution::{self, InstitutionForm};
use crate::domain::FieldErrors;
use crate::web::auth::{CsrfForm, SignedIn, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard))
        .route("/admin/courses", web::post().to(course_create))
        .route("/admin/courses/{id}", web::get().to(course_edit))
        .route("/admin/courses/{id}", web::post().to(course_update))
        .route("/admin/courses/{id}/delete", web::post().to(course_delete))
        .route("/admin/courses/{id}/move", web::post().to(course_move))
        .route("/admin/courses/{id}/modules", web::post().to(module_create))
        .route("/admin/courses/{id}/modules/attach", web::post().to(module_attach))
        .route("/admin/courses/{id}/modules/{mid}/move", web::post().to(module_move))
        .route("/admin/courses/{id}/modules/{mid}/detach", web::post().to(module_detach))
        .route("/admin/modules/{mid}", web::get().to(module_edit))
        .route("/admin/modules/{mid}", web::post().to(module_update))
        .route("/admin/modules/{mid}/delete", web::post().to(module_delete))
        .route("/admin/modules/{mid}/tasks/new", web::get().to(task_new))
        .route("/admin/modules/{mid}/tasks", web::post().to(task_create))
        .route("/admin/modules/{mid}/tasks/attach", web::post().to(task_attach))
        .route("/admin/modules/{mid}/tasks/{tid}/move", web::post().to(task_move))
        .route("/admin/modules/{mid}/tasks/{tid}/detach", web::post().to(task_detach))
        .route("/admin/tasks/{tid}", web::get().to(task_edit))
        .route("/admin/tasks/{tid}", web::post().to(task_update))
        .route("/admin/tasks/{tid}/delete", web::post().to(task_delete))
        .route("/admin/tasks/{tid}/badge-preview", web::get().to(task_badge_preview))
        .route("/admin/institution", web::get().to(institution_edit))
        .route("/admin/institution", web::post().to(institution_update))
        .route("/admin/password", web::get().to(password_edit))
        .route("/admin/password", web::post().to(password_update))
        .route("/admin/mentions", web::get().to(mentions_list))
        .route("/admin/mentions/{id}/approve", web::post().to(mention_approve))
        .route("/admin/mentions/{id}/reject", web::post().to(mention_reject));
}

/// Splits a store result into "show the form again with these errors" and other errors.
fn form_errors<T>(r: Result<T, AppError>) -> Result<Result<T, FieldErrors>, AppError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(AppError::Invalid(errors)) => Ok(Err(errors)),
        Err(e) => Err(e),
    }
}

// ---- courses ----

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    page: Page,
    courses: Vec<Course>,
    form: TitledForm,
    errors: FieldErrors,
    /// The charts of the chosen course; `None` when there is no course yet.
    view: Option<DashboardView>,
}

#[derive(Deserialize)]
struct DashboardQuery {
    course: Option<i64>,
}

async fn dashboard(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<DashboardQuery>,
) -> Result<HttpResponse, AppError> {
    let now = crate::db::now();
    let wanted = q.course;
    let (courses, figures) = state
        .db(move |c| {
            let courses = courses::list_courses(c)?;
            let chosen = wanted.or_else(|| courses.first().map(|course| course.id));
            let figures = chosen.map(|id| dashboard::figures(c, id)).transpose()?;
            Ok((courses, figures))
        })
        .await?;
    render(&DashboardPage {
        page: Page::new(&session, "Dashboard"),
        courses,
        form: TitledForm::default(),
        errors: FieldErrors::new(),
        view: figures.map(|f| DashboardView::new(f, now)),
    })
}

/// Most days the posts chart shows, ending today.
const CHART_DAYS: i64 = 91;

/// Posts of one day, per task in outline order, for the data table.
struct DayRow {
    day: String,
    posts: Vec<i64>,
    total: i64,
}

/// The dashboard's charts (SVG) and the figures their tables show.
struct DashboardView {
    figures: dashboard::Figures,
    posts_svg: String,
    learners_svg: String,
    feeds_svg: String,
    awards_svg: String,
    delivery_svg: String,
    peers_svg: String,
    /// Days with posts in the chart's range, oldest first.
    day_rows: Vec<DayRow>,
    first_day: String,
    last_day: String,
    /// When the last block was made: (RFC 3339, in words).
    last_block: Option<(String, String)>,
}

impl DashboardView {
    fn new(f: dashboard::Figures, now: i64) -> DashboardView {
        let today = now.div_euclid(86_400);
        let first = f.days.first().map_or(today, |d| d.day).clamp(today - CHART_DAYS + 1, today);
        let span = usize::try_from(today - first + 1).unwrap_or(1);
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        let mut per_task: Vec<Vec<u64>> = vec![vec![0; span]; f.tasks.len()];
        let mut day_rows: Vec<DayRow> = Vec::new();
        for d in f.days.iter().filter(|d| d.day >= first && d.day <= today) {
            let Some(t) = f.tasks.iter().position(|t| t.id == d.task_id) else { continue };
            let i = usize::try_from(d.day - first).unwrap_or(0);
            if let Some(slot) = per_task.get_mut(t).and_then(|r| r.get_mut(i)) {
                *slot += count(d.posts);
            }
            let label = super::day(d.day * 86_400);
            if day_rows.last().is_none_or(|r| r.day != label) {
                day_rows.push(DayRow { day: label, posts: vec![0; f.tasks.len()], total: 0 });
            }
            if let Some(row) = day_rows.last_mut() {
                if let Some(p) = row.posts.get_mut(t) {
                    *p += d.posts;
                }
                row.total += d.posts;
            }
        }
        let (first_day, last_day) = (super::day(first * 86_400), super::day(today * 86_400));
        let title = &f.course.title;
        let posts_svg = charts::daily(
            &Labels {
                id: "chart-posts",
                title: &format!("Posts per day per task, {title}"),
                desc: &format!(
                    "One strip per task, one column per day from {first_day} to {last_day};                      taller columns are days with more posts. The table below lists the figures."
                ),
            },
            &f.tasks
                .iter()
                .zip(per_task)
                .map(|(t, values)| Row { label: format!("{} {}", t.hashtag, t.title), values })
                .collect::<Vec<_>>(),
            &first_day,
            &last_day,
        );
        let learners_svg = charts::bars(
            &Labels {
                id: "chart-learners",
                title: &format!("Learners per module, {title}"),
                desc: "For each module, learners with at least one post and learners with at least one badge.",
            },
            &["With a post", "With a badge"],
            &f.modules
                .iter()
                .map(|m| Row { label: m.title.clone(), values: vec![count(m.posted), count(m.badged)] })
                .collect::<Vec<_>>(),
            Layout::Grouped,
        );
        let h = &f.feeds;
        let feeds_svg = charts::bars(
            &Labels {
                id: "chart-feeds",
                title: "Feed health",
                desc: &format!(
                    "Learners' feeds of the institution: {} polled without error, {} failing, {} gone.",
                    h.ok, h.erroring, h.gone
                ),
            },
            &["Feeds"],
            &[("OK", h.ok), ("Erroring", h.erroring), ("Gone", h.gone)]
                .map(|(label, n)| Row { label: label.into(), values: vec![count(n)] }),
            Layout::Grouped,
        );
        let awards_svg = charts::bars(
            &Labels {
                id: "chart-awards",
                title: &format!("Awards per task, {title}"),
                desc: "For each task, awards recorded in a block of the chain and awards still pending.",
            },
            &["Recorded in a block", "Pending"],
            &f.tasks
                .iter()
                .map(|t| Row { label: t.hashtag.clone(), values: vec![count(t.recorded), count(t.pending)] })
                .collect::<Vec<_>>(),
            Layout::Stacked,
        );
        let d = f.delivery;
        let delivery_svg = charts::bars(
            &Labels {
                id: "chart-delivery",
                title: &format!("Notification delivery, {title}"),
                desc: "Emails and Webmentions telling learners of their awards, by where their delivery stands.",
            },
            &["Notifications"],
            &[
                ("Sent", d.sent),
                ("Retrying", d.retrying),
                ("Not tried yet", d.queued),
                ("Failed", d.failed),
                ("No endpoint", d.no_endpoint),
            ]
            .map(|(label, n)| Row { label: label.into(), values: vec![count(n)] }),
            Layout::Grouped,
        );
        let c = &f.chain;
        let peers_svg = charts::bars(
            &Labels {
                id: "chart-chain",
                title: "Chain heights",
                desc: "The height of this institution's chain and the last height each trusted peer reported.",
            },
            &["Height"],
            &std::iter::once(Row { label: "This institution".into(), values: vec![count(c.height.unwrap_or(0))] })
                .chain(
                    c.peers.iter().map(|p| Row { label: p.name.clone(), values: vec![count(p.height.unwrap_or(0))] }),
                )
                .collect::<Vec<_>>(),
            Layout::Grouped,
        );
        DashboardView {
            last_block: c.last_block_at.map(|t| (super::rfc3339(t), super::feeds::relative(t, now))),
            figures: f,
            posts_svg,
            learners_svg,
            feeds_svg,
            awards_svg,
            delivery_svg,
            peers_svg,
            day_rows,
            first_day,
            last_day,
        }
    }
}

async fn course_create(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<TitledForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.clone();
    match form_errors(state.db(move |c| courses::create_course(c, &f)).await)? {
        Ok(course) => {
            flash(&session, format!("Created the course \u{201c}{}\u{201d}.", course.title));
            Ok(redirect(&format!("/admin/courses/{}", course.id)))
        }
        Err(errors) => {
            let courses = state.db(courses::list_courses).await?;
            render_status(
                &DashboardPage { page: Page::new(&session, "Dashboard"), courses, form, errors, view: None },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

#[derive(Template)]
#[template(path = "admin/course.html")]
struct CourseEditPage {
    page: Page,
    outline: Outline,
    other_modules: Vec<Module>,
    back: String,
    form: TitledForm,
    errors: FieldErrors,
    module_form: TitledForm,
    module_errors: FieldErrors,
}

impl CourseEditPage {
    async fn load(state: &AppState, session: &Session, id: i64) -> Result<CourseEditPage, AppError> {
        let (outline, all) = state.db(move |c| Ok((courses::outline(c, id)?, courses::list_modules(c)?))).await?;
        let other_modules = all.into_iter().filter(|m| !outline.modules.iter().any(|o| o.module.id == m.id)).collect();
        let form = TitledForm { title: outline.course.title.clone(), description: outline.course.description.clone() };
        Ok(CourseEditPage {
            page: Page::new(session, format!("Edit {}", outline.course.title)),
            back: format!("/admin/courses/{id}"),
            outline,
            other_modules,
            form,
            errors: FieldErrors::new(),
            module_form: TitledForm::default(),
            module_errors: FieldErrors::new(),
        })
    }
}

async fn course_edit(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    render(&CourseEditPage::load(&state, &session, *id).await?)
}

async fn course_update(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<TitledForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let f = form.clone();
    match form_errors(state.db(move |c| courses::update_course(c, id, &f)).await)? {
        Ok(()) => {
            flash(&session, "Course saved.");
            Ok(redirect(&format!("/admin/courses/{id}")))
        }
        Err(errors) => {
            let mut page = CourseEditPage::load(&state, &session, id).await?;
            page.form = form;
            page.errors = errors;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

async fn course_delete(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    state.db(move |c| courses::delete_course(c, id)).await?;
    flash(&session, "Course deleted.");
    Ok(redirect("/admin"))
}

#[derive(Deserialize)]
struct MoveForm {
    dir: Direction,
    #[serde(default)]
    back: String,
}

async fn course_move(
    _: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    state.db(move |c| courses::move_course(c, id, form.dir)).await?;
    Ok(redirect("/admin"))
}

// ---- modules ----

async fn module_create(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<TitledForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let f = form.clone();
    match form_errors(state.db(move |c| courses::create_module(c, id, &f)).await)? {
        Ok(module) => {
            flash(&session, format!("Added the module \u{201c}{}\u{201d}.", module.title));
            Ok(redirect(&format!("/admin/courses/{id}#modules")))
        }
        Err(errors) => {
            let mut page = CourseEditPage::load(&state, &session, id).await?;
            page.module_form = form;
            page.module_errors = errors;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

#[derive(Deserialize)]
struct AttachModuleForm {
    module_id: i64,
}

async fn module_attach(
    _: SignedIn,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<AttachModuleForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    state.db(move |c| courses::attach_module(c, id, form.module_id)).await?;
    Ok(redirect(&format!("/admin/courses/{id}#modules")))
}

async fn module_move(
    _: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let (id, mid) = path.into_inner();
    state.db(move |c| courses::move_module(c, id, mid, form.dir)).await?;
    Ok(redirect(&format!("/admin/courses/{id}#modules")))
}

async fn module_detach(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let (id, mid) = path.into_inner();
    state.db(move |c| courses::detach_module(c, id, mid)).await?;
    flash(
        &session,
        "Module taken out of the course. It still exists and can be included again or deleted from its own page.",
    );
    Ok(redirect(&format!("/admin/courses/{id}#modules")))
}

#[derive(Template)]
#[template(path = "admin/module.html")]
struct ModuleEditPage {
    page: Page,
    module: Module,
    courses: Vec<Course>,
    outline_tasks: Vec<Task>,
    other_tasks: Vec<Task>,
    back: String,
    form: TitledForm,
    errors: FieldErrors,
}

impl ModuleEditPage {
    async fn load(state: &AppState, session: &Session, mid: i64) -> Result<ModuleEditPage, AppError> {
        let (module, courses, tasks, all) = state
            .db(move |c| {
                let module = courses::get_module(c, mid)?;
                let cs = courses::courses_of_module(c, mid)?;
                let tasks = courses::tasks_of_module(c, mid)?;
                Ok((module, cs, tasks, courses::list_tasks(c)?))
            })
            .await?;
        let other_tasks = all.into_iter().filter(|t| !tasks.iter().any(|o| o.id == t.id)).collect();
        let form = TitledForm { title: module.title.clone(), description: module.description.clone() };
        Ok(ModuleEditPage {
            page: Page::new(session, format!("Edit {}", module.title)),
            back: format!("/admin/modules/{mid}"),
            module,
            courses,
            outline_tasks: tasks,
            other_tasks,
            form,
            errors: FieldErrors::new(),
        })
    }
}

async fn module_edit(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    render(&ModuleEditPage::load(&state, &session, *mid).await?)
}

async fn module_update(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
    CsrfForm(form): CsrfForm<TitledForm>,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    let f = form.clone();
    match form_errors(state.db(move |c| courses::update_module(c, mid, &f)).await)? {
        Ok(()) => {
            flash(&session, "Module saved.");
            Ok(redirect(&format!("/admin/modules/{mid}")))
        }
        Err(errors) => {
            let mut page = ModuleEditPage::load(&state, &session, mid).await?;
            page.form = form;
            page.errors = errors;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

async fn module_delete(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    state.db(move |c| courses::delete_module(c, mid)).await?;
    flash(&session, "Module deleted.");
    Ok(redirect("/admin"))
}

// ---- tasks ----

#[derive(Template)]
#[template(path = "admin/task_form.html")]
struct TaskFormPage {
    page: Page,
    heading: String,
    action: String,
    submit: &'static str,
    module: Option<Module>,
    task_id: Option<i64>,
    has_custom: bool,
    form: TaskForm,
    errors: FieldErrors,
}

async fn task_new(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    let module = state.db(move |c| courses::get_module(c, mid)).await?;
    render(&TaskFormPage {
        page: Page::new(&session, "New task"),
        heading: format!("New task in {}", module.title),
        action: format!("/admin/modules/{mid}/tasks"),
        submit: "Create task",
        module: Some(module),
        task_id: None,
        has_custom: false,
        form: TaskForm::default(),
        errors: FieldErrors::new(),
    })
}

fn task_form_of(u: &UploadForm) -> TaskForm {
    TaskForm {
        title: u.text("title"),
        description: u.text("description"),
        criteria: u.text("criteria"),
        hashtag: u.text("hashtag"),
        expires_days: u.text("expires_days"),
    }
}

/// Checks the uploaded artwork, if any; its problem is reported under `field`.
fn artwork_of(file: Option<Vec<u8>>, field: &'static str, errors: &mut FieldErrors) -> Option<art::Artwork> {
    file.and_then(|bytes| errors.check(field, art::check(bytes)))
}

/// What the saved artwork lost, as a sentence to add to the confirmation ("" when nothing).
fn artwork_warning(artwork: &Option<art::Artwork>) -> String {
    match artwork.as_ref().and_then(|a| a.warning.as_deref()) {
        Some(w) => format!(" Note about the badge image: {w}."),
        None => String::new(),
    }
}

/// Merges artwork errors with the store's field errors, so every problem shows at once.
fn merge(mut errors: FieldErrors, other: Result<(), AppError>) -> Result<FieldErrors, AppError> {
    match other {
        Ok(()) => Ok(errors),
        Err(AppError::Invalid(more)) => {
            for (k, v) in more.iter() {
                errors.add(k, v.clone());
            }
            Ok(errors)
        }
        Err(e) => Err(e),
    }
}

async fn task_create(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    let upload = multipart::read(payload, &session, "badge").await?;
    let form = task_form_of(&upload);
    let mut errors = FieldErrors::new();
    let artwork = artwork_of(upload.file, "badge", &mut errors);
    let warning = artwork_warning(&artwork);
    let result = if errors.is_empty() {
        let f = form.clone();
        match state.db(move |c| courses::create_task(c, mid, &f, artwork)).await {
            Ok(task) => {
                flash(
                    &session,
                    format!("Created the task \u{201c}{}\u{201d} ({}).{warning}", task.title, task.hashtag),
                );
                return Ok(redirect(&format!("/admin/modules/{mid}")));
            }
            Err(e) => Err(e),
        }
    } else {
        // Check the other fields too, so that every problem is reported at once.
        let f = form.clone();
        state.db(move |c| courses::validate_task(c, &f, None)).await
    };
    let errors = merge(errors, result)?;
    let module = state.db(move |c| courses::get_module(c, mid)).await?;
    render_status(
        &TaskFormPage {
            page: Page::new(&session, "New task"),
            heading: format!("New task in {}", module.title),
            action: format!("/admin/modules/{mid}/tasks"),
            submit: "Create task",
            module: Some(module),
            task_id: None,
            has_custom: false,
            form,
            errors,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

async fn task_edit_page(state: &AppState, session: &Session, tid: i64) -> Result<TaskFormPage, AppError> {
    let (task, places) = state.db(move |c| Ok((courses::get_task(c, tid)?, courses::places_of_task(c, tid)?))).await?;
    Ok(TaskFormPage {
        page: Page::new(session, format!("Edit {}", task.title)),
        heading: format!("Edit task {}", task.hashtag),
        action: format!("/admin/tasks/{tid}"),
        submit: "Save task",
        module: places.into_iter().next().map(|(_, m)| m),
        task_id: Some(tid),
        has_custom: task.badge_image_type.is_some(),
        form: TaskForm {
            title: task.title,
            description: task.description,
            criteria: task.criteria,
            hashtag: task.hashtag,
            expires_days: task.expires_days.map(|d| d.to_string()).unwrap_or_default(),
        },
        errors: FieldErrors::new(),
    })
}

async fn task_edit(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    tid: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    render(&task_edit_page(&state, &session, *tid).await?)
}

async fn task_update(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    tid: web::Path<i64>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let tid = *tid;
    let upload = multipart::read(payload, &session, "badge").await?;
    let form = task_form_of(&upload);
    let use_default = !upload.text("use_default_badge").is_empty();
    let mut errors = FieldErrors::new();
    let artwork = artwork_of(upload.file, "badge", &mut errors);
    let warning = artwork_warning(&artwork);
    let result = if errors.is_empty() {
        let change = match artwork {
            Some(a) => ArtworkChange::Replace(a),
            None if use_default => ArtworkChange::UseDefault,
            None => ArtworkChange::Keep,
        };
        let f = form.clone();
        match state.db(move |c| courses::update_task(c, tid, &f, change)).await {
            Ok(()) => {
                flash(&session, format!("Task saved.{warning}"));
                return Ok(redirect(&format!("/admin/tasks/{tid}")));
            }
            Err(e) => Err(e),
        }
    } else {
        let f = form.clone();
        state.db(move |c| courses::validate_task(c, &f, Some(tid))).await
    };
    let errors = merge(errors, result)?;
    let mut page = task_edit_page(&state, &session, tid).await?;
    page.form = form;
    page.errors = errors;
    render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

async fn task_delete(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    tid: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let tid = *tid;
    state.db(move |c| courses::delete_task(c, tid)).await?;
    flash(&session, "Task deleted.");
    Ok(redirect("/admin"))
}

#[derive(Deserialize)]
struct AttachTaskForm {
    task_id: i64,
}

async fn task_attach(
    _: SignedIn,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
    CsrfForm(form): CsrfForm<AttachTaskForm>,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    state.db(move |c| courses::attach_task(c, mid, form.task_id)).await?;
    Ok(redirect(&format!("/admin/modules/{mid}")))
}

async fn task_move(
    _: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let (mid, tid) = path.into_inner();
    state.db(move |c| courses::move_task(c, mid, tid, form.dir)).await?;
    Ok(redirect(&safe_back(&form.back, &format!("/admin/modules/{mid}"))))
}

#[derive(Deserialize)]
struct BackForm {
    #[serde(default)]
    back: String,
}

async fn task_detach(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<BackForm>,
) -> Result<HttpResponse, AppError> {
    let (mid, tid) = path.into_inner();
    state.db(move |c| courses::detach_task(c, mid, tid)).await?;
    flash(
        &session,
        "Task taken out of the module. It still exists and can be included again or deleted from its own page.",
    );
    Ok(redirect(&safe_back(&form.back, &format!("/admin/modules/{mid}"))))
}

async fn task_badge_preview(
    _: SignedIn,
    state: web::Data<AppState>,
    tid: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    super::public::badge_for(&state, *tid).await
}

// ---- institution ----

#[derive(Template)]
#[template(path = "admin/institution.html")]
struct InstitutionEditPage {
    page: Page,
    form: InstitutionForm,
    errors: FieldErrors,
}

async fn institution_edit(_: SignedIn, session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let i = state.db(institution::get).await?;
    render(&InstitutionEditPage {
        page: Page::new(&session, "Institution profile"),
        form: InstitutionForm { name: i.name, url: i.url, email: i.email, description: i.description },
        errors: FieldErrors::new(),
    })
}

async fn institution_update(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    let upload = multipart::read(payload, &session, "image").await?;
    let form = InstitutionForm {
        name: upload.text("name"),
        url: upload.text("url"),
        email: upload.text("email"),
        description: upload.text("description"),
    };
    let mut errors = FieldErrors::new();
    let image = artwork_of(upload.file, "image", &mut errors);
    let f = form.clone();
    let result = if errors.is_empty() {
        state.db(move |c| institution::update(c, &f, image)).await
    } else {
        state.db(move |_| institution::validate(&f).map(|_| ())).await
    };
    let errors = merge(errors, result)?;
    if errors.is_empty() {
        flash(&session, "Institution profile saved.");
        return Ok(redirect("/admin/institution"));
    }
    render_status(
        &InstitutionEditPage { page: Page::new(&session, "Institution profile"), form, errors },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

// ---- password ----

#[derive(Template)]
#[template(path = "admin/password.html")]
struct PasswordPage {
    page: Page,
    errors: FieldErrors,
    /// What the change ended, once it is made.
    done: Option<crate::app::instructors::Ended>,
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    again: String,
}

async fn password_edit(_: SignedIn, session: Session) -> Result<HttpResponse, AppError> {
    render(&PasswordPage { page: Page::new(&session, "Change your password"), errors: FieldErrors::new(), done: None })
}

/// Changes the signed-in instructor's password and signs them out everywhere, this browser
/// included: whoever else held a session must now know the new password.
async fn password_update(
    who: SignedIn,
    req: actix_web::HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let id = who.instructor_id;
    let me = state.db(move |c| crate::db::instructors::find(c, id)).await?.ok_or(AppError::NotFound("instructor"))?;
    // A stolen session must not become a way to guess the password.
    if let Err(wait) = state.throttle.attempt(&me.email, state.client_ip(&req), std::time::Instant::now()) {
        return Err(AppError::TooManyRequests { retry_after: wait });
    }
    let mut errors = FieldErrors::new();
    if !state.verify_password(form.current.clone(), Some(me.password_hash.clone())).await? {
        errors.add("current", "that is not your current password");
    }
    if let Err(e) = crate::domain::check_password(&form.new) {
        errors.add("new", e);
    } else if form.new != form.again {
        errors.add("again", "the two new passwords differ");
    }
    if !errors.is_empty() {
        return render_status(
            &PasswordPage { page: Page::new(&session, "Change your password"), errors, done: None },
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    state.throttle.succeed(&me.email, state.client_ip(&req));
    let hash = state.hash_password(form.new).await?;
    let now = crate::db::now();
    let ended = state.db(move |c| crate::app::instructors::replace_password(c, id, &hash, now)).await?;
    tracing::info!(
        instructor = id,
        sessions = ended.sessions,
        tokens = ended.tokens,
        webhooks = ended.webhooks,
        "password changed; every session signed out, tokens revoked, webhooks disabled"
    );
    session.purge();
    let page = Page::new(&session, "Password changed");
    render(&PasswordPage { page, errors: FieldErrors::new(), done: Some(ended) })
}

// ---- received Webmentions ----

#[derive(Template)]
#[template(path = "admin/mentions.html")]
struct MentionsPage {
    page: Page,
    held: Vec<crate::db::mentions::HeldMention>,
}

/// Mentions shown at most on the moderation page at once.
const MENTIONS_LISTED: i64 = 200;

async fn mentions_list(_: SignedIn, session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let held = state.db(|c| crate::db::mentions::held_for_moderation(c, MENTIONS_LISTED)).await?;
    render(&MentionsPage { page: Page::new(&session, "Mentions to moderate"), held })
}

async fn moderate(session: &Session, state: &AppState, id: i64, approve: bool) -> Result<HttpResponse, AppError> {
    if approve {
        state.db(move |c| crate::app::mentions::approve(c, id)).await?;
    } else {
        state.db(move |c| crate::app::mentions::reject(c, id)).await?;
    }
    flash(
        session,
        if approve { "Approved: the mention is shown once verified." } else { "Rejected: the mention is never shown." },
    );
    Ok(redirect("/admin/mentions"))
}

async fn mention_approve(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    moderate(&session, &state, *id, true).await
}

async fn mention_reject(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    moderate(&session, &state, *id, false).await
}
