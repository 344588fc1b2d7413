//! The instructor page for peer institutions: their state and the trust list.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, Page, redirect, render, render_status};
use crate::auth::{CsrfForm, SignedIn, flash};
use crate::error::AppError;
use crate::peers::{self, Peer};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/peers", web::get().to(peers_page))
        .route("/admin/peers", web::post().to(peer_add))
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
}

async fn load(state: &AppState, session: &Session, form_url: String, error: String) -> Result<PeersPage, AppError> {
    let me = state.ledger.institution_id();
    Ok(PeersPage {
        page: Page::new(session, "Peers"),
        peers: state.db(peers::list).await?,
        my_fingerprint: peers::fingerprint(&me),
        me,
        now: crate::db::now(),
        form_url,
        error,
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

async fn peer_add(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<UrlForm>,
) -> Result<HttpResponse, AppError> {
    let result = async {
        let url = peers::normalise(&form.url)?;
        let client = peers::client().map_err(|e| e.to_string())?;
        let id = peers::fetch_identity(&client, &url)
            .await
            .map_err(|e| format!("cannot fetch {url}/chain/identity: {e}"))?;
        if id.network != state.ledger.params().network {
            return Err(format!(
                "{url} is on the network '{}', this instance on '{}'",
                id.network,
                state.ledger.params().network
            ));
        }
        Ok((url, id))
    }
    .await;
    match result {
        Ok((url, id)) => {
            let (u, k, n) = (url.clone(), id.public_key.clone(), id.name.clone());
            state.db(move |c| peers::add(c, &u, &k, &n)).await?;
            state.peers.wake.notify_one();
            flash(
                &session,
                format!("Now trusting {url} ({}), fingerprint {}.", id.name, peers::fingerprint(&id.public_key)),
            );
            Ok(redirect("/admin/peers"))
        }
        Err(e) => render_status(&load(&state, &session, form.url, e).await?, StatusCode::UNPROCESSABLE_ENTITY),
    }
}

async fn peer_remove(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<UrlForm>,
) -> Result<HttpResponse, AppError> {
    let url = form.url.clone();
    state.db(move |c| peers::remove(c, &url)).await?;
    flash(&session, format!("No longer trusting {}.", form.url));
    Ok(redirect("/admin/peers"))
}
