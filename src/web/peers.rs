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
    confirm: Option<Confirm>,
}

/// What the confirmation step shows and posts back.
#[derive(Deserialize)]
struct Confirm {
    url: String,
    public_key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    base_url: String,
}

impl Confirm {
    fn fingerprint(&self) -> String {
        peers::fingerprint(&self.public_key)
    }
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

/// First step of trusting a peer: fetch its identity and show its fingerprint for the
/// instructor to compare with the one the other institution gives; nothing is trusted yet.
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
        if cairn_chain::from_hex(&id.public_key).is_none_or(|k| k.len() != 32) {
            return Err(format!("{url} presents a malformed public key"));
        }
        let base_url = if id.base_url.is_empty() { url.clone() } else { id.base_url };
        Ok(Confirm { url, public_key: id.public_key.to_ascii_lowercase(), name: id.name, base_url })
    }
    .await;
    match result {
        Ok(confirm) => {
            let mut page = load(&state, &session, form.url, String::new()).await?;
            page.confirm = Some(confirm);
            render(&page)
        }
        Err(e) => render_status(&load(&state, &session, form.url, e).await?, StatusCode::UNPROCESSABLE_ENTITY),
    }
}

/// Second step: the instructor confirmed the fingerprint shown; exactly that key is trusted.
async fn peer_confirm(
    _: SignedIn,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<Confirm>,
) -> Result<HttpResponse, AppError> {
    let fingerprint = form.fingerprint();
    let Confirm { url, public_key, name, base_url } = form;
    let (u, k, n, b) = (url.clone(), public_key, name.clone(), base_url);
    state.db(move |c| peers::add(c, &u, &k, &n, &b)).await?;
    if let Err(e) = state.ledger.refresh_trust() {
        tracing::error!(error = %e, "cannot reload the trust list");
    }
    state.peers.wake.notify_one();
    flash(&session, format!("Now trusting {url} ({name}), fingerprint {fingerprint}."));
    Ok(redirect("/admin/peers"))
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
