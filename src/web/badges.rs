//! Public Open Badges endpoints: Issuer, BadgeClasses, Assertions (JSON-LD for machines,
//! a verification page for browsers), baked images and the revocation list; and for Open
//! Badges 3.0, each award's signed credential (alone and baked), the status lists and the
//! DID document.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use diesel::SqliteConnection;
use serde::Deserialize;

use super::cache::{self, Doc, DocKey, Policy};
use super::{AppState, Page, day, render, webmention_link};
use crate::app::verification;
use crate::badges::award::assertion_document;
use crate::badges::ob;
use crate::db::StoreResult;
use crate::db::awards::{self, Award};
use crate::db::courses::{self, Task};
use crate::db::institution::{self, Institution};
use crate::db::portfolios::{self, Portfolio};
use crate::web::auth::{self, CsrfForm};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/issuer", web::get().to(issuer))
        .route("/issuer/revocations", web::get().to(revocations))
        .route("/badges/{slug}", web::get().to(badge_class))
        .route("/assertions/{id}", web::get().to(assertion))
        .route("/assertions/{id}/badge.svg", web::get().to(baked_svg))
        .route("/assertions/{id}/badge.png", web::get().to(baked_png))
        .route("/assertions/{id}/check", web::post().to(check_recipient))
        .route("/assertions/{id}/credential", web::get().to(credential))
        .route("/assertions/{id}/credential.svg", web::get().to(credential_svg))
        .route("/assertions/{id}/credential.png", web::get().to(credential_png))
        .route("/credentials/status/{list}", web::get().to(status_list))
        .route("/.well-known/did.json", web::get().to(did_document))
        .route("/did.json", web::get().to(did_document))
        .route("/webmention", web::post().to(receive_webmention));
}

/// Machines get JSON-LD; browsers (Accept: text/html) get a page.
fn wants_html(req: &HttpRequest) -> bool {
    crate::web::error::negotiate(req, crate::web::error::Format::Json) == crate::web::error::Format::Html
}

/// Serves `key` from memory, or makes it with `make` and keeps it. The generation is read
/// before the data, so a change committed meanwhile leaves the new entry already retired.
async fn cached<F>(
    state: &AppState,
    req: &HttpRequest,
    key: DocKey,
    policy: &Policy,
    make: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut SqliteConnection) -> StoreResult<serde_json::Value> + Send + 'static,
{
    let generation = state.docs.generation();
    if let Some(doc) = state.docs.get(&key, generation, crate::clock::system_now()) {
        return Ok(doc.respond(req, policy, None));
    }
    let doc = state.db(make).await?;
    let doc = state.docs.put(key, Doc::whole(generation, None, doc.to_string().into_bytes()));
    Ok(doc.respond(req, policy, None))
}

async fn issuer(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    if wants_html(&req) {
        return Ok(super::redirect("/institution"));
    }
    let (base, email) = (state.base_url.clone(), state.issuer_email.clone());
    cached(&state, &req, DocKey::Issuer, &cache::DESCRIPTION, move |c| {
        Ok(ob::issuer(&base, &institution::get(c)?, &email))
    })
    .await
}

async fn revocations(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let base = state.base_url.clone();
    cached(&state, &req, DocKey::Revocations, &cache::REVOCATIONS, move |c| {
        let list: Vec<serde_json::Value> = awards::revoked(c)?
            .into_iter()
            .map(|(id, reason)| serde_json::json!({"id": ob::assertion_url(&base, &id), "revocationReason": reason}))
            .collect();
        Ok(serde_json::json!({
            "@context": ob::CONTEXT,
            "type": "RevocationList",
            "id": ob::revocation_list_url(&base),
            "issuer": ob::issuer_url(&base),
            "revokedAssertions": list,
        }))
    })
    .await
}

async fn badge_class(
    req: HttpRequest,
    state: web::Data<AppState>,
    slug: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    if wants_html(&req) {
        return Ok(super::redirect(&format!("/tasks/{slug}")));
    }
    let base = state.base_url.clone();
    cached(&state, &req, DocKey::BadgeClass(slug.clone()), &cache::DESCRIPTION, move |c| {
        let task = courses::get_task_by_slug(c, &slug)?;
        let places = courses::places_of_task(c, task.id)?;
        let mut titles: Vec<String> = places.into_iter().map(|(c, _)| c.title).collect();
        titles.dedup();
        Ok(ob::badge_class(&base, &task, &titles))
    })
    .await
}

#[derive(Template)]
#[template(path = "assertion.html")]
struct VerificationPage {
    page: Page,
    award: Award,
    task: Task,
    institution: Institution,
    url: String,
    status: &'static str,
    issued: String,
    expires: Option<String>,
    check: Option<bool>,
    mentions: Vec<String>,
    base: String,
    /// `issued` as a machine-readable date.
    published: String,
    /// The institution's logo, when it has one.
    logo: Option<String>,
    /// The Task's description as plain text, for link previews.
    summary: String,
    share: super::portfolio::Share,
    embed: String,
    /// The learner's public badges page, unless they hid it.
    portfolio: Option<String>,
    /// The page's address as a QR code (inline SVG), for the printed certificate.
    qr: Option<String>,
    /// The courses the badge belongs to: (title, public page).
    courses: Vec<(String, String)>,
    /// The criteria, rendered from Markdown and sanitised.
    criteria_html: String,
    /// The instructor's comment, rendered from Markdown and sanitised.
    comment_html: Option<String>,
    /// Every check, in plain words.
    checks: Vec<verification::Check>,
    /// No check failed.
    verified: bool,
    /// The block holding the award's chain record, when recorded.
    block: Option<String>,
}

/// A withdrawn award answers 410 Gone, saying why and nothing more.
fn gone_if_withdrawn(a: &Award) -> StoreResult<()> {
    if a.is_withdrawn() { Err(crate::db::StoreError::Gone(crate::app::learners::WITHDRAWN)) } else { Ok(()) }
}

/// An award with what its page shows.
struct Loaded {
    award: Award,
    task: Task,
    institution: Institution,
    chain: crate::ledger::ChainStatus,
    mentions: Vec<String>,
    portfolio: Option<Portfolio>,
    courses: Vec<(String, String)>,
    signature: Option<Result<String, String>>,
}

async fn load(state: &AppState, id: String) -> Result<Loaded, AppError> {
    let ledger = state.ledger.clone();
    let base = state.base_url.clone();
    state
        .db(move |c| {
            let award = awards::by_public_id(c, &id)?;
            gone_if_withdrawn(&award)?;
            let task = courses::get_task(c, award.task_id)?;
            let chain = ledger.status(c, award.id)?;
            let mentions = crate::notify::verified_for(c, &ob::assertion_url(&base, &award.public_id))?;
            let portfolio = portfolios::of_award(c, award.author_id, &award.recipient_email)?.filter(|p| !p.hidden);
            let mut courses: Vec<(String, String)> = courses::places_of_task(c, task.id)?
                .into_iter()
                .map(|(course, _)| (course.title, format!("/courses/{}", course.slug)))
                .collect();
            courses.dedup();
            let signature = verification::credential_signature(c, &base, ledger.key(), &award.public_id)?;
            Ok(Loaded {
                award,
                task,
                institution: institution::get(c)?,
                chain,
                mentions,
                portfolio,
                courses,
                signature,
            })
        })
        .await
}

/// The page's title.
fn page_title(task: &Task) -> String {
    format!("{} — badge", task.title)
}

fn verification_page(state: &AppState, page: Page, l: Loaded, check: Option<bool>, now: i64) -> VerificationPage {
    let Loaded { award, task, institution, chain, mentions, portfolio, courses, signature } = l;
    let status = if award.is_revoked() {
        "revoked"
    } else if award.is_expired(now) {
        "expired"
    } else {
        "valid"
    };
    let base = state.base_url.clone();
    let share = super::portfolio::Share::new(&base, &award, &task, &institution);
    let summary: String = task.description.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect();
    let checks =
        verification::checks(&award, &institution.name, &signature, &chain, state.ledger.members().len(), now, day);
    VerificationPage {
        page,
        url: ob::assertion_url(&state.base_url, &award.public_id),
        published: super::rfc3339(award.issued_on),
        logo: institution.image_type.is_some().then(|| format!("{base}/institution/image")),
        summary,
        embed: share.embed(),
        qr: super::qr::svg(&ob::assertion_url(&state.base_url, &award.public_id)),
        share,
        portfolio: portfolio.map(|p| super::portfolio::url(&base, &p.public_id)),
        base,
        issued: day(award.issued_on),
        expires: award.expires.map(day),
        status,
        criteria_html: crate::markdown::render(&task.criteria),
        comment_html: award.narrative.as_deref().filter(|n| !n.trim().is_empty()).map(crate::markdown::render),
        verified: checks.iter().all(|c| c.outcome != verification::Outcome::Failed),
        checks,
        block: chain.block_hash().map(str::to_string),
        courses,
        award,
        task,
        institution,
        check,
        mentions,
    }
}

/// Stands for the visitor's form token in a cached page; filled in per request.
const TOKEN_MARKER: &str = "\u{1}csrf\u{1}";

async fn assertion(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    if !wants_html(&req) {
        let base = state.base_url.clone();
        return cached(&state, &req, DocKey::Assertion(id.clone()), &cache::ASSERTION, move |c| {
            let (award, task) = awards::with_task(c, &id)?;
            gone_if_withdrawn(&award)?;
            Ok(assertion_document(&base, &award, &task))
        })
        .await;
    }
    let (signed_in, flash) = (auth::instructor_id(&session).is_some(), auth::take_flash(&session));
    let mut res = if signed_in || flash.is_some() {
        // What an instructor, or a visitor with a message, sees differs from the public page.
        let loaded = load(&state, id).await?;
        let page =
            Page { title: page_title(&loaded.task), signed_in, csrf: auth::csrf_token(&session), flash, notice: None };
        let mut res = render(&verification_page(&state, page, loaded, None, crate::clock::system_now()))?;
        res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static(cache::PAGE.cache_control));
        res.headers_mut().insert(header::VARY, header::HeaderValue::from_static(cache::PAGE.vary));
        res
    } else {
        let (generation, now) = (state.docs.generation(), crate::clock::system_now());
        let key = DocKey::Page(id.clone());
        let doc = match state.docs.get(&key, generation, now) {
            Some(doc) => doc,
            None => {
                let loaded = load(&state, id).await?;
                // The page turns to "expired" at the expiry: kept until then only.
                let until = loaded.award.expires.filter(|e| *e > now);
                let page = Page {
                    title: page_title(&loaded.task),
                    signed_in: false,
                    csrf: TOKEN_MARKER.into(),
                    flash: None,
                    notice: None,
                };
                let html = verification_page(&state, page, loaded, None, now)
                    .render()
                    .map_err(|e| AppError::Internal(e.into()))?;
                let doc = Doc::page(generation, until, &html, TOKEN_MARKER).ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!("the verification page has no single form token"))
                })?;
                state.docs.put(key, doc)
            }
        };
        doc.respond(&req, &cache::PAGE, Some(&auth::csrf_token(&session)))
    };
    let (k, v) = webmention_link(&state.base_url);
    res.headers_mut().insert(k, v);
    Ok(res)
}

#[derive(Deserialize)]
struct MentionForm {
    #[serde(default)]
    source: String,
    #[serde(default)]
    target: String,
}

/// The Webmention endpoint (W3C Recommendation, receiver side): checks the request, queues
/// it and answers 202; the source is fetched and checked later.
async fn receive_webmention(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<MentionForm>,
) -> Result<HttpResponse, AppError> {
    let (client, now) = (state.client_ip(&req), crate::clock::system_now());
    if let Err(wait) = state.mention_rate.check(client, now) {
        return Err(AppError::Limited {
            message: "too many Webmentions from your address; try again in a minute".into(),
            retry_after: wait,
        });
    }
    let (base, form) = (state.base_url.clone(), form.into_inner());
    match state.db(move |c| crate::app::mentions::receive(c, &base, &form.source, &form.target, client, now)).await {
        Ok(()) => {
            state.notifier.mentions_wake.notify_one();
            Ok(HttpResponse::Accepted()
                .content_type("text/plain; charset=utf-8")
                .body("Accepted: the source will be checked for a link to the target.\n"))
        }
        Err(AppError::Busy(m)) => {
            tracing::warn!(reason = %m, "webmention refused");
            Err(AppError::Limited { message: m, retry_after: 60 })
        }
        // The Recommendation answers invalid requests with 400.
        Err(AppError::Invalid(e)) => Err(AppError::BadRequest(e.to_string())),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
struct CheckForm {
    #[serde(default)]
    email: String,
}

async fn check_recipient(
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
    CsrfForm(form): CsrfForm<CheckForm>,
) -> Result<HttpResponse, AppError> {
    let loaded = load(&state, id.into_inner()).await?;
    let matches = ob::identity_hash(&form.email, &loaded.award.salt) == loaded.award.identity;
    let page = Page::with_form(&session, page_title(&loaded.task));
    render(&verification_page(&state, page, loaded, Some(matches), crate::clock::system_now()))
}

#[derive(Deserialize)]
struct DownloadQuery {
    #[serde(default)]
    download: Option<String>,
}

async fn baked(state: &AppState, id: String, svg: bool, download: bool) -> Result<HttpResponse, AppError> {
    let public_id = id.clone();
    let stored = state
        .db(move |c| {
            gone_if_withdrawn(&awards::by_public_id(c, &public_id)?)?;
            awards::images(c, &public_id)
        })
        .await?;
    let (bytes, mime, ext) = if svg {
        (crate::badges::award::baked_svg_of(&stored)?, "image/svg+xml", "svg")
    } else {
        (crate::badges::award::baked_png_of(&stored)?, "image/png", "png")
    };
    let mut res = super::image_response(bytes, mime);
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    if download {
        let v = format!("attachment; filename=\"badge-{id}.{ext}\"");
        if let Ok(v) = header::HeaderValue::from_str(&v) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(res)
}

async fn baked_svg(
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<DownloadQuery>,
) -> Result<HttpResponse, AppError> {
    baked(&state, id.into_inner(), true, q.download.is_some()).await
}

async fn baked_png(
    state: web::Data<AppState>,
    id: web::Path<String>,
    q: web::Query<DownloadQuery>,
) -> Result<HttpResponse, AppError> {
    baked(&state, id.into_inner(), false, q.download.is_some()).await
}

/// Serves `key` from memory, or makes its bytes with `make` and keeps them.
async fn cached_text<F>(
    state: &AppState,
    req: &HttpRequest,
    key: DocKey,
    policy: &Policy,
    make: F,
) -> Result<HttpResponse, AppError>
where
    F: FnOnce(&mut SqliteConnection) -> StoreResult<String> + Send + 'static,
{
    let generation = state.docs.generation();
    if let Some(doc) = state.docs.get(&key, generation, crate::clock::system_now()) {
        return Ok(doc.respond(req, policy, None));
    }
    let text = state.db(make).await?;
    let doc = state.docs.put(key, Doc::whole(generation, None, text.into_bytes()));
    Ok(doc.respond(req, policy, None))
}

/// An award's Open Badges 3.0 credential, exactly as signed.
async fn credential(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    cached_text(&state, &req, DocKey::Credential(id.clone()), &cache::CREDENTIAL, move |c| {
        gone_if_withdrawn(&awards::by_public_id(c, &id)?)?;
        crate::db::credentials::json_of(c, &id)
    })
    .await
}

/// The credential baked into the Task's artwork (Open Badges 3.0 baking).
async fn baked_credential(state: web::Data<AppState>, id: String, svg: bool) -> Result<HttpResponse, AppError> {
    let (shared, public_id) = (state.clone(), id.clone());
    let bytes = state
        .db(move |c| {
            let (award, task) = awards::with_task(c, &public_id)?;
            gone_if_withdrawn(&award)?;
            let json = crate::db::credentials::json_of(c, &public_id)?;
            crate::badges::award::bake_credential(c, &shared.issuer(), &task, &json, svg)
        })
        .await?;
    let (mime, ext) = if svg { ("image/svg+xml", "svg") } else { ("image/png", "png") };
    let mut res = super::image_response(bytes, mime);
    res.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, header::HeaderValue::from_static("*"));
    if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"credential-{id}.{ext}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

async fn credential_svg(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    baked_credential(state, id.into_inner(), true).await
}

async fn credential_png(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    baked_credential(state, id.into_inner(), false).await
}

/// A `BitstringStatusListCredential`, signed when first asked for after a change.
async fn status_list(
    req: HttpRequest,
    state: web::Data<AppState>,
    list: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let list = list.into_inner();
    let (base, key) = (state.base_url.clone(), state.ledger.key().clone());
    cached_text(&state, &req, DocKey::StatusList(list), &cache::STATUS_LIST, move |c| {
        crate::badges::award::status_list_credential(c, &base, &key, list, crate::clock::system_now())
    })
    .await
}

async fn did_document(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (base, key) = (state.base_url.clone(), state.ledger.key().clone());
    cached_text(&state, &req, DocKey::DidDocument, &cache::DID_DOCUMENT, move |c| {
        Ok(crate::badges::award::did_document(c, &base, &key)?.to_string())
    })
    .await
}
