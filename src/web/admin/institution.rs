//! The institution profile, the issuer every badge names.

use actix_multipart::Multipart;
use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{artwork_of, merge};
use crate::app::institution::{self as authoring_institution, InstitutionForm};
use crate::db::institution;
use crate::domain::FieldErrors;
use crate::web::auth::{Acting, flash};
use crate::web::error::AppError;
use crate::web::multipart::{self};
use crate::web::{AppState, Page, redirect, render, render_status};

#[derive(Template)]
#[template(path = "admin/institution.html")]
pub(super) struct InstitutionEditPage {
    page: Page,
    form: InstitutionForm,
    errors: FieldErrors,
}

pub(super) async fn institution_edit(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    who.0.require_admin("edit the institution profile")?;
    let i = state.db(institution::get).await?;
    render(&InstitutionEditPage {
        page: Page::new(&session, "Institution profile"),
        form: InstitutionForm { name: i.name, url: i.url, email: i.email, description: i.description },
        errors: FieldErrors::new(),
    })
}

pub(super) async fn institution_update(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    payload: Multipart,
) -> Result<HttpResponse, AppError> {
    who.0.require_admin("edit the institution profile")?;
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
        let actor = who.0.clone();
        state
            .db(move |c| {
                let now = crate::clock::system_now();
                authoring_institution::update(c, &f, image, now)?;
                crate::app::audit::record(c, &actor, "institution.update", None, "profile", "", now)
            })
            .await
    } else {
        state.db(move |_| authoring_institution::validate(&f).map(|_| ())).await
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
