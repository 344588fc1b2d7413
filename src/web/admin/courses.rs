//! Authoring courses: create, edit, delete, reorder.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{DashboardPage, MoveForm, form_errors};
use crate::app::courses::{self as authoring, CurrentBy, Edit, TitledForm};
use crate::db::courses::{self, Module, Outline};
use crate::domain::FieldErrors;
use crate::web::auth::{Acting, CsrfForm, flash};
use crate::web::error::AppError;
use crate::web::{AppState, Page, redirect, render, render_status};

pub(super) async fn course_create(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<TitledForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.clone();
    match form_errors(
        state
            .db(move |c| {
                let now = crate::clock::system_now();
                authoring::edit_as(c, &who.0, Edit::Courses, "course.create", &f.title.clone(), now, |c| {
                    authoring::create_course(c, &f, now)
                })
            })
            .await,
    )? {
        Ok(course) => {
            flash(&session, format!("Created the course \u{201c}{}\u{201d}.", course.title));
            Ok(redirect(&format!("/admin/courses/{}", course.id)))
        }
        Err(errors) => {
            let courses = state.db(courses::list_courses).await?;
            render_status(
                &DashboardPage {
                    page: Page::new(&session, "Dashboard"),
                    courses,
                    manage: true,
                    editable: None,
                    form,
                    errors,
                    view: None,
                },
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

#[derive(Template)]
#[template(path = "admin/course.html")]
pub(super) struct CourseEditPage {
    pub(super) page: Page,
    pub(super) outline: Outline,
    pub(super) other_modules: Vec<Module>,
    pub(super) back: String,
    pub(super) form: TitledForm,
    pub(super) errors: FieldErrors,
    pub(super) module_form: authoring::ModuleForm,
    pub(super) module_errors: FieldErrors,
    /// The course's local date and time zone, and its current module with how it was chosen.
    pub(super) today: String,
    pub(super) time_zone: String,
    pub(super) current: Option<(i64, CurrentBy)>,
    pub(super) current_errors: FieldErrors,
}

impl CourseEditPage {
    fn is_current(&self, module_id: &i64) -> bool {
        self.current.is_some_and(|(id, _)| id == *module_id)
    }

    /// Whether the instructor named `module_id` as the current module.
    fn is_named(&self, module_id: &i64) -> bool {
        self.outline.current_module_id == Some(*module_id)
    }

    /// The current module's title and how it was chosen, for the page.
    fn current_line(&self) -> Option<(String, &'static str)> {
        let (id, by) = self.current?;
        let module = self.outline.modules.iter().find(|m| m.module.id == id)?;
        Some((module.module.title.clone(), by.describe()))
    }
}

impl CourseEditPage {
    pub(super) async fn load(state: &AppState, session: &Session, id: i64) -> Result<CourseEditPage, AppError> {
        let now = crate::clock::system_now();
        let (timed, all) =
            state.db(move |c| Ok((authoring::timed_outline(c, id, now)?, courses::list_modules(c)?))).await?;
        let authoring::TimedOutline { outline, today, time_zone, current } = timed;
        let other_modules = all.into_iter().filter(|m| !outline.modules.iter().any(|o| o.module.id == m.id)).collect();
        let form = TitledForm { title: outline.course.title.clone(), description: outline.course.description.clone() };
        Ok(CourseEditPage {
            page: Page::new(session, format!("Edit {}", outline.course.title)),
            back: format!("/admin/courses/{id}"),
            outline,
            other_modules,
            form,
            errors: FieldErrors::new(),
            module_form: authoring::ModuleForm::default(),
            module_errors: FieldErrors::new(),
            today,
            time_zone,
            current,
            current_errors: FieldErrors::new(),
        })
    }
}

pub(super) async fn course_edit(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let (id, actor) = (*id, who.0);
    state.db(move |c| authoring::may_edit(c, &actor, Edit::CourseModules(id))).await?;
    render(&CourseEditPage::load(&state, &session, id).await?)
}

pub(super) async fn course_update(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<TitledForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let f = form.clone();
    match form_errors(
        state
            .db(move |c| {
                let now = crate::clock::system_now();
                authoring::edit_as(c, &who.0, Edit::Course(id), "course.update", &f.title.clone(), now, |c| {
                    authoring::update_course(c, id, &f, now)
                })
            })
            .await,
    )? {
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

pub(super) async fn course_delete(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    state
        .db(move |c| {
            let now = crate::clock::system_now();
            authoring::edit_as(c, &who.0, Edit::Courses, "course.delete", &id.to_string(), now, |c| {
                authoring::delete_course(c, id)
            })
        })
        .await?;
    flash(&session, "Course deleted.");
    Ok(redirect("/admin"))
}

pub(super) async fn course_move(
    who: Acting,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    state
        .db(move |c| {
            authoring::may_edit(c, &who.0, Edit::Courses)?;
            authoring::move_course(c, id, form.dir)
        })
        .await?;
    Ok(redirect("/admin"))
}

#[derive(serde::Deserialize)]
pub(super) struct CurrentModuleForm {
    /// A module id of the course, or `auto` for "by start dates".
    #[serde(default)]
    current_module: String,
}

/// Names the course's current module, or goes back to start dates.
pub(super) async fn course_current_module(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<i64>,
    CsrfForm(form): CsrfForm<CurrentModuleForm>,
) -> Result<HttpResponse, AppError> {
    let id = *id;
    let choice = form.current_module.clone();
    let now = crate::clock::system_now();
    match form_errors(
        state
            .db(move |c| {
                authoring::edit_as(c, &who.0, Edit::Course(id), "course.update", "current module", now, |c| {
                    authoring::choose_current_module(c, id, &choice, now)
                })
            })
            .await,
    )? {
        Ok(()) => {
            flash(
                &session,
                if matches!(form.current_module.trim(), "" | "auto") {
                    "The current module now follows the modules' start dates."
                } else {
                    "Current module saved."
                },
            );
            Ok(redirect(&format!("/admin/courses/{id}#current-module")))
        }
        Err(errors) => {
            let mut page = CourseEditPage::load(&state, &session, id).await?;
            page.current_errors = errors;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}
