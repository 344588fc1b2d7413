//! Instructor pages: authoring courses, modules and tasks, and the institution profile.
//! Every handler takes [`SignedIn`], so an anonymous visitor is sent to the login page.

mod courses;
mod dashboard;
mod institution;
mod mentions;
mod modules;
mod password;
mod staff;
mod tasks;

use actix_web::web;
use serde::Deserialize;

use crate::app::courses::Direction;
use crate::domain::FieldErrors;
use crate::web::error::AppError;
use dashboard::DashboardPage;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(dashboard::dashboard))
        .route("/admin/staff", web::get().to(staff::staff_get))
        .route("/admin/staff/invite", web::post().to(staff::staff_invite))
        .route("/admin/staff/role", web::post().to(staff::staff_role))
        .route("/admin/audit", web::get().to(staff::audit_get))
        .route("/invitations/{token}", web::get().to(staff::invitation_get))
        .route("/invitations/{token}", web::post().to(staff::invitation_post))
        .route("/admin/courses", web::post().to(courses::course_create))
        .route("/admin/courses/{id}", web::get().to(courses::course_edit))
        .route("/admin/courses/{id}", web::post().to(courses::course_update))
        .route("/admin/courses/{id}/delete", web::post().to(courses::course_delete))
        .route("/admin/courses/{id}/move", web::post().to(courses::course_move))
        .route("/admin/courses/{id}/current-module", web::post().to(courses::course_current_module))
        .route("/admin/courses/{id}/modules", web::post().to(modules::module_create))
        .route("/admin/courses/{id}/modules/attach", web::post().to(modules::module_attach))
        .route("/admin/courses/{id}/modules/{mid}/move", web::post().to(modules::module_move))
        .route("/admin/courses/{id}/modules/{mid}/detach", web::post().to(modules::module_detach))
        .route("/admin/modules/{mid}", web::get().to(modules::module_edit))
        .route("/admin/modules/{mid}", web::post().to(modules::module_update))
        .route("/admin/modules/{mid}/delete", web::post().to(modules::module_delete))
        .route("/admin/modules/{mid}/tasks/new", web::get().to(tasks::task_new))
        .route("/admin/modules/{mid}/tasks", web::post().to(tasks::task_create))
        .route("/admin/modules/{mid}/tasks/attach", web::post().to(tasks::task_attach))
        .route("/admin/modules/{mid}/tasks/{tid}/move", web::post().to(tasks::task_move))
        .route("/admin/modules/{mid}/tasks/{tid}/detach", web::post().to(tasks::task_detach))
        .route("/admin/tasks/{tid}", web::get().to(tasks::task_edit))
        .route("/admin/tasks/{tid}", web::post().to(tasks::task_update))
        .route("/admin/tasks/{tid}/delete", web::post().to(tasks::task_delete))
        .route("/admin/tasks/{tid}/badge-preview", web::get().to(tasks::task_badge_preview))
        .route("/admin/institution", web::get().to(institution::institution_edit))
        .route("/admin/institution", web::post().to(institution::institution_update))
        .route("/admin/password", web::get().to(password::password_edit))
        .route("/admin/password", web::post().to(password::password_update))
        .route("/admin/mentions", web::get().to(mentions::mentions_list))
        .route("/admin/mentions/{id}/approve", web::post().to(mentions::mention_approve))
        .route("/admin/mentions/{id}/reject", web::post().to(mentions::mention_reject));
}

/// Splits a store result into "show the form again with these errors" and other errors.
fn form_errors<T>(r: Result<T, AppError>) -> Result<Result<T, FieldErrors>, AppError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(AppError::Invalid(errors)) => Ok(Err(errors)),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct MoveForm {
    dir: Direction,
    #[serde(default)]
    back: String,
}

#[derive(Deserialize)]
struct BackForm {
    #[serde(default)]
    back: String,
}

/// Checks the uploaded artwork, if any; its problem is reported under `field`.
fn artwork_of(
    file: Option<Vec<u8>>,
    field: &'static str,
    errors: &mut FieldErrors,
) -> Option<crate::badges::art::Artwork> {
    file.and_then(|bytes| errors.check(field, crate::badges::art::check(bytes)))
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
