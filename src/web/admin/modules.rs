//! Authoring modules: create in a course, include in another, edit, reorder, take out, delete.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{MoveForm, form_errors};
use crate::app::courses::{self as authoring, Edit, ModuleForm};
use crate::db::courses::{self, Course, Module, Task};
use crate::domain::FieldErrors;
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;
use crate::web::{AppState, Page, redirect, render, render_status};

pub(super) async fn module_create(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<ModuleForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let f = form.clone();
    match form_errors(
        state
            .db(move |c| {
                let now = crate::clock::system_now();
                authoring::edit_as(c, &who.0, Edit::CourseModules(id), "module.create", &f.title.clone(), now, |c| {
                    authoring::create_dated_module(c, id, &f, now)
                })
            })
            .await,
    )? {
        Ok(module) => {
            flash(&session, format!("Added the module \u{201c}{}\u{201d}.", module.title));
            Ok(redirect(&format!("/admin/courses/{id}#modules")))
        }
        Err(errors) => {
            let mut page = super::courses::CourseEditPage::load(&state, &session, id).await?;
            page.module_form = form;
            page.module_errors = errors;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct AttachModuleForm {
    module_id: i64,
}

pub(super) async fn module_attach(
    who: Acting,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<AttachModuleForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    state
        .db(move |c| {
            let now = crate::clock::system_now();
            authoring::edit_as(
                c,
                &who.0,
                Edit::CourseModules(id),
                "module.attach",
                &form.module_id.to_string(),
                now,
                |c| authoring::attach_module(c, id, form.module_id),
            )
        })
        .await?;
    Ok(redirect(&format!("/admin/courses/{id}#modules")))
}

pub(super) async fn module_move(
    who: Acting,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let (id, mid) = path.into_inner();
    state
        .db(move |c| {
            authoring::may_edit(c, &who.0, Edit::CourseModules(id))?;
            authoring::move_module(c, id, mid, form.dir)
        })
        .await?;
    Ok(redirect(&format!("/admin/courses/{id}#modules")))
}

pub(super) async fn module_detach(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let (id, mid) = path.into_inner();
    state
        .db(move |c| {
            let now = crate::clock::system_now();
            authoring::edit_as(c, &who.0, Edit::CourseModules(id), "module.detach", &mid.to_string(), now, |c| {
                authoring::detach_module(c, id, mid)
            })
        })
        .await?;
    flash(
        &session,
        "Module taken out of the course. It still exists and can be included again or deleted from its own page.",
    );
    Ok(redirect(&format!("/admin/courses/{id}#modules")))
}

#[derive(Template)]
#[template(path = "admin/module.html")]
pub(super) struct ModuleEditPage {
    page: Page,
    module: Module,
    courses: Vec<Course>,
    outline_tasks: Vec<Task>,
    other_tasks: Vec<Task>,
    back: String,
    form: ModuleForm,
    errors: FieldErrors,
}

impl ModuleEditPage {
    pub(super) async fn load(state: &AppState, session: &Session, mid: i64) -> Result<ModuleEditPage, AppError> {
        let (module, courses, tasks, all) = state
            .db(move |c| {
                let module = courses::get_module(c, mid)?;
                let cs = courses::courses_of_module(c, mid)?;
                let tasks = courses::tasks_of_module(c, mid)?;
                Ok((module, cs, tasks, courses::list_tasks(c)?))
            })
            .await?;
        let other_tasks = all.into_iter().filter(|t| !tasks.iter().any(|o| o.id == t.id)).collect();
        let form = ModuleForm::of(&module);
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

pub(super) async fn module_edit(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (mid, actor) = (*mid, who.0);
    state.db(move |c| authoring::may_edit(c, &actor, Edit::Module(mid))).await?;
    render(&ModuleEditPage::load(&state, &session, mid).await?)
}

pub(super) async fn module_update(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
    CsrfForm(form): CsrfForm<ModuleForm>,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    let f = form.clone();
    match form_errors(
        state
            .db(move |c| {
                let now = crate::clock::system_now();
                authoring::edit_as(c, &who.0, Edit::Module(mid), "module.update", &f.title.clone(), now, |c| {
                    authoring::update_module(c, mid, &f, now)
                })
            })
            .await,
    )? {
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

pub(super) async fn module_delete(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    mid: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let mid = *mid;
    state
        .db(move |c| {
            let now = crate::clock::system_now();
            authoring::edit_as(c, &who.0, Edit::Module(mid), "module.delete", &mid.to_string(), now, |c| {
                authoring::delete_module(c, mid)
            })
        })
        .await?;
    flash(&session, "Module deleted.");
    Ok(redirect("/admin"))
}
