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
use base64::Engine as _;

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
    /// The badge as a learner will receive it, when "Preview" was pressed.
    preview: Option<BadgePreview>,
}

/// A previewed design: the baked PNG as a `data:` URI, what it lost, and the upload carried
/// back in the form so that "Save" needs no second upload.
pub(super) struct BadgePreview {
    image: String,
    warning: Option<String>,
    draft: String,
}

/// The artwork the form carries: a chosen file, else the one previewed before.
fn artwork_in(upload: &mut UploadForm, errors: &mut FieldErrors) -> Option<art::Artwork> {
    if let Some(bytes) = upload.file.take() {
        return artwork_of(Some(bytes), "badge", errors);
    }
    let draft = upload.text(&format!("badge{}", multipart::DRAFT_SUFFIX));
    if draft.is_empty() {
        return None;
    }
    match base64::engine::general_purpose::STANDARD.decode(draft.trim()) {
        Ok(bytes) => artwork_of(Some(bytes), "badge", errors),
        Err(_) => {
            errors.add("badge", "the previewed image could not be read back; choose the file again".to_string());
            None
        }
    }
}

/// Draws `art` as an award bakes it; a drawing error is reported on the badge field.
fn preview_of(art: &art::Artwork, carry: bool, errors: &mut FieldErrors) -> Option<BadgePreview> {
    let png = errors.check("badge", art::preview_png(art))?;
    Some(BadgePreview {
        image: format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png)),
        warning: art.warning.clone(),
        draft: if carry { base64::engine::general_purpose::STANDARD.encode(&art.bytes) } else { String::new() },
    })
}

/// The generated design for a task with this form's title and hashtag.
fn default_artwork(form: &TaskForm, course: &str) -> art::Artwork {
    let svg = art::default_svg(&form.title, course, &form.hashtag);
    art::Artwork { bytes: svg.into_bytes(), kind: art::ArtKind::Svg, warning: None }
}

fn wants_preview(upload: &UploadForm) -> bool {
    !upload.text("preview").is_empty()
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
        preview: None,
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
    let mut upload = multipart::read(payload, &session, "badge").await?;
    let form = task_form_of(&upload);
    let mut errors = FieldErrors::new();
    let artwork = artwork_in(&mut upload, &mut errors);
    if wants_preview(&upload) {
        let (module, courses) =
            state.db(move |c| Ok((courses::get_module(c, mid)?, courses::courses_of_module(c, mid)?))).await?;
        let course = courses.first().map(|c| c.title.clone()).unwrap_or_default();
        let preview = match &artwork {
            Some(a) => preview_of(a, true, &mut errors),
            None if errors.is_empty() => preview_of(&default_artwork(&form, &course), false, &mut errors),
            None => None,
        };
        return render(&TaskFormPage {
            page: Page::new(&session, "New task"),
            heading: format!("New task in {}", module.title),
            action: format!("/admin/modules/{mid}/tasks"),
            submit: "Create task",
            module: Some(module),
            task_id: None,
            has_custom: false,
            form,
            errors,
            preview,
        });
    }
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
            preview: None,
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
        preview: None,
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
    let mut upload = multipart::read(payload, &session, "badge").await?;
    let form = task_form_of(&upload);
    let use_default = !upload.text("use_default_badge").is_empty();
    let mut errors = FieldErrors::new();
    let artwork = artwork_in(&mut upload, &mut errors);
    if wants_preview(&upload) {
        let (stored, places) =
            state.db(move |c| Ok((courses::task_artwork(c, tid)?, courses::places_of_task(c, tid)?))).await?;
        let course = places.first().map(|(c, _)| c.title.clone()).unwrap_or_default();
        let preview = match (&artwork, stored) {
            (Some(a), _) => preview_of(a, true, &mut errors),
            (None, _) if !errors.is_empty() => None,
            (None, Some((bytes, mime))) if !use_default => match art::ArtKind::from_mime(&mime) {
                Some(kind) => preview_of(&art::Artwork { bytes, kind, warning: None }, false, &mut errors),
                None => None,
            },
            (None, _) => preview_of(&default_artwork(&form, &course), false, &mut errors),
        };
        let mut page = task_edit_page(&state, &session, tid).await?;
        page.form = form;
        page.errors = errors;
        page.preview = preview;
        return render(&page);
    }
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
