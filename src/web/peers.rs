//! The instructor page for peer institutions: their state and the trust list.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, render_status};
use crate::app::peers::{self as trust, Candidate};
use crate::peers::{self, Peer};
use crate::web::auth::{Acting, CsrfForm, SignedIn, flash};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/peers", web::get().to(peers_page))
        .route("/admin/peers", web::post().to(peer_add))
        .route("/admin/peers/confirm", web::post().to(peer_confirm))
        .route("/admin/peers/remove", web::post().to(peer_remove));
}

#[derive(Template)]
#[template(path = "admin/peers.html")]
struct PeersPage {
    page: Page,
    peers: Vec<Peer>,
    me: String,
    my_fingerprint: String,
    now: i64,
    form_url: String,
    error: String,
    /// A fetched identity waiting for the instructor to compare its fingerprint.
    confirm: Option<Candidate>,
}

async fn load(state: &AppState, session: &Session, form_url: String, error: String) -> Result<PeersPage, AppError> {
    let me = state.ledger.institution_id();
    Ok(PeersPage {
        page: Page::new(session, "Peers"),
        peers: state.db(|c| Ok(crate::db::peers::list(c)?)).await?,
        my_fingerprint: peers::fingerprint(&me),
        me,
        now: crate::clock::system_now(),
        form_url,
        error,
        confirm: None,
    })
}

async fn peers_page(_: SignedIn, session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    render(&load(&state, &session, String::new(), String::new()).await?)
}

#[derive(Deserialize)]
struct UrlForm {
    #[serde(default)]
    url: String,
}

/// First step of trusting a peer: its identity and fingerprint are shown for the instructor
/// to compare with the one the other institution gives; nothing is trusted yet.
async fn peer_add(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<UrlForm>,
) -> Result<HttpResponse, AppError> {
    who.0.require_admin("trust peers")?;
    let client = peers::client::Client::new()?;
    match trust::fetch_candidate(&client, &form.url, &state.ledger.params().network).await {
        Ok(candidate) => {
            let mut page = load(&state, &session, form.url, String::new()).await?;
            page.confirm = Some(candidate);
            render(&page)
        }
        Err(e) => {
            tracing::warn!(error = %e, "a peer's identity could not be offered for trust");
            let page = load(&state, &session, form.url, e.sentence()).await?;
            render_status(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// Second step: the instructor confirmed the fingerprint shown; exactly that key is trusted.
async fn peer_confirm(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(candidate): CsrfForm<Candidate>,
) -> Result<HttpResponse, AppError> {
    let fingerprint = candidate.fingerprint();
    let (live, now) = (state.peers.clone(), crate::clock::system_now());
    let actor = who.0;
    let peer = state.db(move |c| trust::trust(c, &actor, Some(&live), &candidate, now)).await?;
    flash(&session, format!("Now trusting {} ({}), fingerprint {fingerprint}.", peer.url, peer.name));
    Ok(redirect("/admin/peers"))
}

async fn peer_remove(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<UrlForm>,
) -> Result<HttpResponse, AppError> {
    let (live, url, actor, now) = (state.peers.clone(), form.url.clone(), who.0, crate::clock::system_now());
    state.db(move |c| trust::remove(c, &actor, Some(&live), &url, now)).await?;
    flash(&session, format!("No longer trusting {}.", form.url));
    Ok(redirect("/admin/peers"))
}
