//! Authoring tasks: create with a badge design, edit, include in a module, reorder, take out,
//! delete, preview the badge.

use actix_multipart::Multipart;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{BackForm, MoveForm, artwork_of, merge};
use crate::app::courses::{self as authoring, ArtworkChange, TaskForm};
use crate::badges::art;
use crate::db::courses::{self, Module};
use crate::domain::FieldErrors;
use crate::web::auth::{CsrfForm, SignedIn, flash};
use crate::web::error::AppError;
use crate::web::multipart::{self, UploadForm};
use crate::web::{AppState, Page, redirect, render, render_status, safe_back};

#[derive(Template)]
#[template(path = "admin/task_form.html")]
pub(super) struct TaskFormPage {
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

pub(super) async fn task_new(
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

/// What the saved artwork lost, as a sentence to add to the confirmation ("" when nothing).
fn artwork_warning(artwork: &Option<art::Artwork>) -> String {
    match artwork.as_ref().and_then(|a| a.warning.as_deref()) {
        Some(w) => format!(" Note about the badge image: {w}."),
        None => String::new(),
    }
}

pub(super) async fn task_create(
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
        match state.db(move |c| authoring::create_task(c, mid, &f, artwork, crate::clock::system_now())).await {
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
        state.db(move |c| authoring::validate_task(c, &f, None)).await
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

pub(super) async fn task_edit_page(state: &AppState, session: &Session, tid: i64) -> Result<TaskFormPage, AppError> {
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

pub(super) async fn task_edit(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    tid: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    render(&task_edit_page(&state, &session, *tid).await?)
}

pub(super) async fn task_update(
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
        match state.db(move |c| authoring::update_task(c, tid, &f, change, crate::clock::system_now())).await {
            Ok(()) => {
                flash(&session, format!("Task saved.{warning}"));
                return Ok(redirect(&format!("/admin/tasks/{tid}")));
            }
            Err(e) => Err(e),
        }
    } else {
        let f = form.clone();
        state.db(move |c| authoring::validate_task(c, &f, Some(tid))).await
    };
    let errors = merge(errors, result)?;
    let mut page = task_edit_page(&state, &session, tid).await?;
    page.form = form;
    page.errors = errors;
    render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
}

pub(super) async fn task_delete(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    tid: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let tid = *tid;
    state.db(move |c| authoring::delete_task(c, tid)).await?;
    flash(&session, "Task deleted.");
    Ok(redirect("/admin"))
}

#[derive(Deserialize)]
pub(super) struct AttachTaskForm {
    task_id: i64,
}

pub(super) async fn task_attach(
    _: SignedIn,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
    CsrfForm(form): CsrfForm<AttachTaskForm>,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    state.db(move |c| authoring::attach_task(c, mid, form.task_id)).await?;
    Ok(redirect(&format!("/admin/modules/{mid}")))
}

pub(super) async fn task_move(
    _: SignedIn,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let (mid, tid) = path.into_inner();
    state.db(move |c| authoring::move_task(c, mid, tid, form.dir)).await?;
    Ok(redirect(&safe_back(&form.back, &format!("/admin/modules/{mid}"))))
}

pub(super) async fn task_detach(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<BackForm>,
) -> Result<HttpResponse, AppError> {
    let (mid, tid) = path.into_inner();
    state.db(move |c| authoring::detach_task(c, mid, tid)).await?;
    flash(
        &session,
        "Task taken out of the module. It still exists and can be included again or deleted from its own page.",
    );
    Ok(redirect(&safe_back(&form.back, &format!("/admin/modules/{mid}"))))
}

pub(super) async fn task_badge_preview(
    _: SignedIn,
    state: web::Data<AppState>,
    tid: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    crate::web::public::badge_for(&state, *tid).await
}
