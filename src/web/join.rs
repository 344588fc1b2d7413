//! The public "Join the course" flow: a learner gives a name, an email and a blog or feed
//! address; Cairn finds and reads the feed, emails a confirmation link, and after
//! confirmation gives the learner a private link to edit or remove the subscription.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{AppState, ConfirmLinkPage, Page, render, render_status};
use crate::app::subscribe::{self, Joined, Joining, SubscribeError};
use crate::clock::system_now as now;
use crate::db::feeds::Feed;
use crate::domain::FieldErrors;
use crate::harvest::discover::FeedLink;
use crate::web::auth::CsrfForm;
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/join", web::get().to(join_get))
        .route("/join", web::post().to(join_post))
        .route("/join/confirm/{token}", web::get().to(confirm_page))
        .route("/join/confirm/{token}", web::post().to(confirm))
        .route("/subscription", web::get().to(lost_link_get))
        .route("/subscription", web::post().to(lost_link_post))
        .route("/subscription/{token}", web::get().to(manage_get))
        .route("/subscription/{token}", web::post().to(manage_post))
        .route("/subscription/{token}/remove", web::post().to(manage_remove))
        .route("/subscription/{token}/export", web::get().to(export_data))
        .route("/subscription/{token}/badges.zip", web::get().to(export_badges))
        .route("/subscription/{token}/forget", web::post().to(forget_request))
        .route("/forget/{token}", web::get().to(forget_confirm))
        .route("/forget/{token}", web::post().to(forget_confirmed));
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct JoinForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub url: String,
    /// The feed chosen when a page advertises several.
    #[serde(default)]
    pub feed: String,
    /// How the name appears publicly: given, initials or pseudonym.
    #[serde(default)]
    pub shown: String,
    #[serde(default)]
    pub pseudonym: String,
    /// The course whose page led here (its slug), for the newsletter option.
    #[serde(default)]
    pub course: String,
    /// "Also subscribe to the course newsletter": present when checked.
    #[serde(default)]
    pub newsletter: Option<String>,
}

#[derive(Template)]
#[template(path = "join.html")]
struct JoinPage {
    page: Page,
    form: JoinForm,
    errors: FieldErrors,
    choices: Vec<FeedLink>,
    /// The course whose page led here, with its tasks' hashtags.
    course: Option<CourseNamed>,
}

/// A course as the join page names it.
struct CourseNamed {
    title: String,
    hashtags: Vec<String>,
}

/// The course `slug` names, if any: the join page says which course it joins.
async fn course_named(state: &AppState, slug: &str) -> Result<Option<CourseNamed>, AppError> {
    if slug.is_empty() {
        return Ok(None);
    }
    let slug = slug.to_string();
    state
        .db(move |c| match crate::db::courses::get_course_by_slug(c, &slug) {
            Ok(course) => {
                let outline = crate::db::courses::outline(c, course.id)?;
                let hashtags = outline.modules.iter().flat_map(|m| m.tasks.iter().map(|t| t.hashtag.clone())).collect();
                Ok(Some(CourseNamed { title: course.title, hashtags }))
            }
            Err(crate::db::StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        })
        .await
}

/// The page's title: the course it joins, when one led here.
fn join_title(course: &Option<CourseNamed>) -> String {
    course.as_ref().map_or_else(|| "Join the course".into(), |c| format!("Join {}", c.title))
}

#[derive(Template)]
#[template(path = "join_done.html")]
struct JoinDonePage {
    page: Page,
    heading: String,
    message: String,
    link: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct JoinQuery {
    #[serde(default)]
    course: String,
}

async fn join_get(
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<JoinQuery>,
) -> Result<HttpResponse, AppError> {
    let slug: String =
        q.into_inner().course.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(200).collect();
    let course = course_named(&state, &slug).await?;
    // The newsletter is a choice of its own, with its own confirmation mail: not ticked for them.
    render(&JoinPage {
        page: Page::with_form(&session, join_title(&course)),
        form: JoinForm { course: if course.is_some() { slug } else { String::new() }, ..JoinForm::default() },
        errors: FieldErrors::new(),
        choices: vec![],
        course,
    })
}

impl JoinForm {
    fn request(&self) -> subscribe::JoinRequest {
        subscribe::JoinRequest {
            name: self.name.clone(),
            email: self.email.clone(),
            url: self.url.clone(),
            feed: self.feed.clone(),
            shown: self.shown.clone(),
            pseudonym: self.pseudonym.clone(),
            course: self.course.clone(),
        }
    }
}

impl AppState {
    fn joining(&self) -> Joining<'_> {
        Joining {
            pool: &self.pool,
            harvester: &self.harvester,
            mailer: &self.mailer,
            base_url: &self.base_url,
            mails_per_day: self.join.mails_per_address_per_day,
            notifier: &self.notifier,
        }
    }
}

/// The join form again, with what was typed and why it was refused.
async fn again(
    state: &AppState,
    form: JoinForm,
    errors: FieldErrors,
    session: &Session,
) -> Result<HttpResponse, AppError> {
    let course = course_named(state, &form.course).await?;
    render_status(
        &JoinPage { page: Page::with_form(session, join_title(&course)), form, errors, choices: vec![], course },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// The discovery pool is full: 503 with Retry-After, the form kept and the reason by its field.
async fn busy(
    state: &AppState,
    form: JoinForm,
    e: crate::harvest::FeedError,
    session: &Session,
) -> Result<HttpResponse, AppError> {
    let mut errors = FieldErrors::new();
    errors.add("url", e.to_string());
    let course = course_named(state, &form.course).await?;
    let page = JoinPage { page: Page::with_form(session, join_title(&course)), form, errors, choices: vec![], course };
    let mut res = render_status(&page, StatusCode::SERVICE_UNAVAILABLE)?;
    res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(30));
    Ok(res)
}

async fn join_post(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<JoinForm>,
) -> Result<HttpResponse, AppError> {
    let join = form.request();
    let person = match subscribe::check_person(&join) {
        Ok(p) => p,
        Err(errors) => return again(&state, form, errors, &session).await,
    };
    // Per client, before any outbound request; the per-address limit is the use case's.
    let now = now();
    if let Err(wait) = state.join_rate.check(state.client_ip(&req), now) {
        return Err(AppError::Limited {
            message: format!(
                "too many join requests from your address; try again in about {} minute(s)",
                wait.div_ceil(60)
            ),
            retry_after: wait,
        });
    }
    match subscribe::join(&state.joining(), &person, &join, now).await {
        Ok(Joined::Choose { feed_url, choices }) => {
            // Let the learner choose; the first usable feed is preselected.
            let form = JoinForm { feed: feed_url, ..form };
            let errors = FieldErrors::new();
            let course = course_named(&state, &form.course).await?;
            render(&JoinPage { page: Page::with_form(&session, "Choose your feed"), form, errors, choices, course })
        }
        Ok(Joined::Pending { feed_title, items, on_file }) => {
            let joining = match course_named(&state, &form.course).await? {
                Some(c) => format!("You are joining {}. ", c.title),
                None => String::new(),
            };
            let newsletter = if form.newsletter.is_some() && !form.course.is_empty() {
                super::newsletter::also_subscribe(&state, &form.course, &person.email, &person.name, now).await
            } else {
                String::new()
            };
            render(&JoinDonePage {
                page: Page::new(&session, "Check your email"),
                heading: "Check your email".into(),
                message: if on_file {
                    format!(
                        "{joining}We found the feed \u{201c}{feed_title}\u{201d}. Your course's instructor already added it, for a learner with another email address: we sent the confirmation link to that address, not to {}. If you cannot read mail there, ask the instructor to change the address.{newsletter}",
                        person.email
                    )
                } else {
                    format!(
                        "{joining}We found your feed \u{201c}{}\u{201d} with {} post(s). We sent a confirmation link to {}; your posts are collected once you confirm.{newsletter}",
                        feed_title, items, person.email
                    )
                },
                link: None,
            })
        }
        Err(SubscribeError::Invalid(errors)) => again(&state, form, errors, &session).await,
        Err(SubscribeError::Busy(e)) => busy(&state, form, e, &session).await,
        Err(e) => Err(e.into()),
    }
}

/// "Lost your private link?": an email address, to which Cairn mails the private links of its
/// confirmed subscriptions (new ones: only their hashes are kept).
#[derive(Template)]
#[template(path = "lost_link.html")]
struct LostLinkPage {
    page: Page,
    email: String,
    error: String,
}

#[derive(Debug, Default, Deserialize)]
struct LostLinkForm {
    #[serde(default)]
    email: String,
}

async fn lost_link_get(session: Session) -> Result<HttpResponse, AppError> {
    render(&LostLinkPage {
        page: Page::with_form(&session, "Lost your private link?"),
        email: String::new(),
        error: String::new(),
    })
}

/// Anyone may ask, so: the per-client limit of the join form, the per-address mail limit of
/// the join mails, and one answer whether or not the address has a subscription.
async fn lost_link_post(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(form): CsrfForm<LostLinkForm>,
) -> Result<HttpResponse, AppError> {
    let email = match crate::domain::Email::parse(&form.email) {
        Ok(e) => e,
        Err(error) => {
            let email: String = form.email.chars().take(254).collect();
            let page = LostLinkPage { page: Page::with_form(&session, "Lost your private link?"), email, error };
            return render_status(&page, StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let now = now();
    if let Err(wait) = state.join_rate.check(state.client_ip(&req), now) {
        return Err(AppError::Limited {
            message: format!("too many requests from your address; try again in about {} minute(s)", wait.div_ceil(60)),
            retry_after: wait,
        });
    }
    subscribe::send_private_links(&state.joining(), &email, now).await?;
    render(&JoinDonePage {
        page: Page::new(&session, "Check your email"),
        heading: "Check your email".into(),
        message: format!(
            "If {email} is the address of a confirmed subscription, Cairn is sending its private link there. \
             It can take a few minutes; look in your spam folder too. Nothing arrives for an address Cairn does not know."
        ),
        link: None,
    })
}

/// The confirmation link of the join mail: a page with one button, or 404 for a link that is
/// unknown, used or expired. Looking confirms nothing.
async fn confirm_page(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    q: web::Query<ConfirmQuery>,
) -> Result<HttpResponse, AppError> {
    let (token, now) = (token.into_inner(), now());
    let (t, slug) = (token.clone(), q.course.clone());
    let found = state
        .db(move |c| {
            let Some(pending) = subscribe::pending(c, &t, now)? else { return Ok(None) };
            Ok(Some((pending, subscribe::joined_course(c, &slug)?)))
        })
        .await?;
    let Some(((feed, claim), course)) = found else {
        return Err(AppError::NotFound("confirmation link (it may have been used already, or expired)"));
    };
    let joining = course.map(|c| format!("You are joining {}. ", c.title)).unwrap_or_default();
    let message = if claim {
        format!(
            "{joining}Your course's instructor already follows {}. Press the button to confirm that it is yours: you then \
             manage it with the private link in the email, and keep the posts and badges already collected.",
            feed.url
        )
    } else {
        format!("{joining}Press the button to confirm that Cairn may collect the posts of {}.", feed.url)
    };
    render(&ConfirmLinkPage {
        page: Page::new(&session, "Confirm your subscription"),
        heading: "Confirm your subscription",
        message,
        action: format!("/join/confirm/{token}{}", q.query()),
        button: "Confirm my subscription",
    })
}

/// Confirms: the button of the page above. The secret token in the path is the authority
/// (no cookie or CSRF token is needed, as for unsubscribing).
async fn confirm(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    q: web::Query<ConfirmQuery>,
) -> Result<HttpResponse, AppError> {
    let (token, now) = (token.into_inner(), now());
    let q = q.into_inner();
    let done = state
        .db(move |c| {
            let Some(feed) = subscribe::confirm(c, &token, now)? else { return Ok(None) };
            let course = subscribe::joined_course(c, &q.course)?;
            let private = subscribe::is_private_link_of(c, feed.id, &q.m)?.then(|| format!("/subscription/{}", q.m));
            Ok(Some((feed, course, private)))
        })
        .await?;
    match done {
        Some((feed, course, private)) => {
            let title = match &course {
                Some(c) => format!("You are subscribed to {}", c.title),
                None => "You are subscribed".into(),
            };
            render(&SubscribedPage {
                page: Page::new(&session, title.clone()),
                heading: title,
                feed_url: feed.url,
                course,
                private,
            })
        }
        None => Err(AppError::NotFound("confirmation link (it may have been used already)")),
    }
}

/// What the confirmation link carries besides its token: the course whose page led to the
/// join, and the private link's token (both written into the mail).
#[derive(Debug, Clone, Default, Deserialize)]
struct ConfirmQuery {
    #[serde(default)]
    course: String,
    #[serde(default)]
    m: String,
}

impl ConfirmQuery {
    /// The query again, for the confirmation button's form ("" when empty).
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if !self.course.is_empty() {
            q.append_pair("course", &self.course);
        }
        if !self.m.is_empty() {
            q.append_pair("m", &self.m);
        }
        let q = q.finish();
        if q.is_empty() { q } else { format!("?{q}") }
    }
}

/// After confirming: the course named, what to do next (its hashtags and tasks), and the
/// learner's private page.
#[derive(Template)]
#[template(path = "join_subscribed.html")]
struct SubscribedPage {
    page: Page,
    heading: String,
    feed_url: String,
    course: Option<subscribe::JoinedCourse>,
    /// The private page's path, when the link carried its token.
    private: Option<String>,
}

#[derive(Template)]
#[template(path = "subscription.html")]
struct ManagePage {
    page: Page,
    token: String,
    feed: Feed,
    form: JoinForm,
    errors: FieldErrors,
    badges: Vec<(crate::db::awards::Award, crate::db::courses::Task)>,
    /// The learner's public badges page, and whether it is hidden.
    portfolio: Option<(String, bool)>,
    /// Their latest posts, with the Tasks each counts for and its badges.
    posts: Vec<crate::db::links::OwnPost>,
    /// The courses of the Tasks their posts count for and their badges are of.
    courses: Vec<crate::db::courses::Course>,
    now: i64,
}

/// Posts a learner's private page lists (the newest).
const OWN_POSTS_LISTED: i64 = 100;

/// The learner's latest posts with their ties and awards, for their private page.
async fn posts_of(
    state: &AppState,
    author: &crate::db::feeds::Author,
) -> Result<Vec<crate::db::links::OwnPost>, AppError> {
    let id = author.id;
    state.db(move |c| crate::db::links::own_posts(c, id, OWN_POSTS_LISTED)).await
}

/// The courses the learner's posts and badges belong to, for their private page.
async fn courses_of(
    state: &AppState,
    posts: &[crate::db::links::OwnPost],
    badges: &[(crate::db::awards::Award, crate::db::courses::Task)],
) -> Result<Vec<crate::db::courses::Course>, AppError> {
    let mut tasks: Vec<i64> =
        posts.iter().flat_map(|p| p.tasks.iter().map(|(t, _)| t.id)).chain(badges.iter().map(|(_, t)| t.id)).collect();
    tasks.sort_unstable();
    tasks.dedup();
    state.db(move |c| crate::db::courses::courses_of_tasks(c, &tasks)).await
}

/// The learner's badges, for their private page.
async fn badges_of(
    state: &AppState,
    author: &crate::db::feeds::Author,
) -> Result<Vec<(crate::db::awards::Award, crate::db::courses::Task)>, AppError> {
    let (id, email) = (author.id, author.email.clone());
    state.db(move |c| crate::db::awards::for_learner(c, id, email.as_deref())).await
}

/// The learner's public page: its address and whether it is hidden.
async fn portfolio_of(state: &AppState, author: &crate::db::feeds::Author) -> Result<Option<(String, bool)>, AppError> {
    let id = author.id;
    let page = state.db(move |c| crate::db::portfolios::of_author(c, id)).await?;
    Ok(page.map(|p| (super::portfolio::url(&state.base_url, &p.public_id), p.hidden)))
}

async fn load_managed(state: &AppState, token: &str) -> Result<(Feed, crate::db::feeds::Author), AppError> {
    let token = token.to_string();
    state.db(move |c| subscribe::managed(c, &token)).await
}

async fn manage_get(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (feed, author) = load_managed(&state, &token).await?;
    let badges = badges_of(&state, &author).await?;
    let portfolio = portfolio_of(&state, &author).await?;
    let posts = posts_of(&state, &author).await?;
    let courses = courses_of(&state, &posts, &badges).await?;
    let id = author.id;
    let (shown, pseudonym) = state.db(move |c| crate::db::learners::name_choice(c, id)).await?;
    let form = JoinForm {
        name: author.name,
        email: author.email.unwrap_or_default(),
        url: feed.url.clone(),
        feed: String::new(),
        shown: shown.to_string(),
        pseudonym: pseudonym.unwrap_or_default(),
        ..JoinForm::default()
    };
    render(&ManagePage {
        page: Page::with_form(&session, "Your subscription"),
        token: token.into_inner(),
        feed,
        form,
        errors: FieldErrors::new(),
        badges,
        portfolio,
        posts,
        courses,
        now: now(),
    })
}

async fn manage_post(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(form): CsrfForm<JoinForm>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let (feed, author) = load_managed(&state, &token).await?;
    let choice = (form.shown.as_str(), form.pseudonym.as_str());
    let errors = match subscribe::change(&state.joining(), &feed, &author, &form.name, choice, &form.url, now()).await {
        Ok(()) => {
            crate::web::auth::flash(&session, "Your subscription was updated.");
            return Ok(super::redirect(&format!("/subscription/{token}")));
        }
        Err(SubscribeError::Invalid(errors)) => errors,
        Err(e) => return Err(e.into()),
    };
    let badges = badges_of(&state, &author).await?;
    let portfolio = portfolio_of(&state, &author).await?;
    let posts = posts_of(&state, &author).await?;
    let courses = courses_of(&state, &posts, &badges).await?;
    render_status(
        &ManagePage {
            page: Page::with_form(&session, "Your subscription"),
            token,
            feed,
            form,
            errors,
            badges,
            portfolio,
            posts,
            courses,
            now: now(),
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

async fn manage_remove(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let (feed, _) = load_managed(&state, &token).await?;
    let id = feed.id;
    let now = now();
    state.db(move |c| subscribe::remove(c, id, now)).await?;
    render(&JoinDonePage {
        page: Page::new(&session, "Subscription removed"),
        heading: "Your subscription is removed".into(),
        message: format!("Cairn no longer follows {}. Posts already collected stay with the course.", feed.url),
        link: Some("/join".into()),
    })
}

/// A private download: never kept by a cache.
fn download(body: Vec<u8>, content_type: &str, filename: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type.to_string())
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .insert_header((actix_web::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")))
        .body(body)
}

async fn export_data(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, author) = load_managed(&state, &token).await?;
    let base = state.base_url.clone();
    let doc = state.db(move |c| crate::app::learners::export(c, &base, author.id, now())).await?;
    let body = serde_json::to_vec_pretty(&doc).map_err(|e| AppError::Internal(e.into()))?;
    Ok(download(body, "application/json", "my-cairn-data.json"))
}

async fn export_badges(state: web::Data<AppState>, token: web::Path<String>) -> Result<HttpResponse, AppError> {
    let (_, author) = load_managed(&state, &token).await?;
    let zip = state.db(move |c| crate::app::learners::badges_zip(c, author.id)).await?;
    Ok(download(zip, "application/zip", "my-cairn-badges.zip"))
}

async fn forget_request(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    let (_, author) = load_managed(&state, &token).await?;
    crate::app::learners::request_forget(&state.joining(), author.id, now()).await?;
    render(&JoinDonePage {
        page: Page::new(&session, "Check your email"),
        heading: "Check your email".into(),
        message: "Cairn sent a link to the address of your subscription. Nothing is deleted until you open it and \
                  confirm."
            .into(),
        link: None,
    })
}

#[derive(Template)]
#[template(path = "forget_confirm.html")]
struct ForgetConfirmPage {
    page: Page,
    token: String,
    awards: usize,
    posts: i64,
}

async fn forget_confirm(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let token = token.into_inner();
    let t = token.clone();
    let h = state.db(move |c| crate::app::learners::requested(c, &t, now())).await?;
    render(&ForgetConfirmPage {
        page: Page::with_form(&session, "Forget me"),
        token,
        awards: h.awards.len(),
        posts: h.posts,
    })
}

async fn forget_confirmed(
    session: Session,
    state: web::Data<AppState>,
    token: web::Path<String>,
    CsrfForm(_): CsrfForm<serde::de::IgnoredAny>,
) -> Result<HttpResponse, AppError> {
    use crate::app::learners::{self, Requester, Who};
    let (token, st) = (token.into_inner(), state.clone());
    let done = state
        .db(move |c| {
            let now = now();
            let h = learners::requested(c, &token, now)?;
            let id = h.author.map(|a| a.id).ok_or(crate::db::StoreError::NotFound("learner"))?;
            learners::forget(c, &st.issuer(), Who::Author(id), Requester::Learner, now)
        })
        .await?;
    state.awarded();
    tracing::info!(event = done.event.id, awards = done.awards_withdrawn, "learner forgotten at their request");
    render(&JoinDonePage {
        page: Page::new(&session, "Forgotten"),
        heading: "Cairn has forgotten you".into(),
        message: format!(
            "Your name, address, feeds and {} collected post(s) are deleted, and your {} badge(s) are withdrawn.",
            done.posts_deleted, done.awards_withdrawn
        ),
        link: None,
    })
}
