//! The instructor dashboard: the courses, and how each Task's posts, awards and
//! notifications are going.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::app::courses::TitledForm;
use crate::db::courses::Course;
use crate::db::dashboard;
use crate::domain::FieldErrors;
use crate::web::auth::Acting;
use crate::web::charts::{self, Labels, Layout, Row};
use crate::web::error::AppError;
use crate::web::{AppState, Page, render};

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
pub(super) struct DashboardPage {
    pub(super) page: Page,
    pub(super) courses: Vec<Course>,
    /// Whether the instructor may create and reorder courses.
    pub(super) manage: bool,
    /// The courses whose outline the instructor edits (`None`: every course); the others link
    /// to their roster.
    pub(super) editable: Option<Vec<i64>>,
    pub(super) form: TitledForm,
    pub(super) errors: FieldErrors,
    /// The charts of the chosen course; `None` when there is no course yet.
    pub(super) view: Option<DashboardView>,
}

impl DashboardPage {
    fn edits(&self, course: &i64) -> bool {
        self.editable.as_ref().is_none_or(|e| e.contains(course))
    }
}

#[derive(Deserialize)]
pub(super) struct DashboardQuery {
    course: Option<i64>,
}

pub(super) async fn dashboard(
    who: Acting,
    session: Session,
    state: web::Data<AppState>,
    q: web::Query<DashboardQuery>,
) -> Result<HttpResponse, AppError> {
    let now = crate::clock::system_now();
    let wanted = q.course;
    let manage = crate::app::courses::may_manage_courses(&who.0);
    let editable = who.0.courses_with(crate::app::access::Role::Editor);
    let (courses, figures, missing) = state
        .db(move |c| {
            let courses = crate::app::courses::visible(c, &who.0)?;
            if let Some(id) = wanted {
                who.0.require_course(c, id, crate::app::access::Role::Reviewer, "see this course's dashboard")?;
            }
            let chosen = wanted.or_else(|| courses.first().map(|course| course.id));
            let figures = chosen.map(|id| dashboard::figures(c, id)).transpose()?;
            Ok((courses, figures, crate::app::institution::missing(c)?))
        })
        .await?;
    render(&DashboardPage {
        page: Page::new(&session, "Dashboard").ask_for_profile(&missing),
        courses,
        manage,
        editable,
        form: TitledForm::default(),
        errors: FieldErrors::new(),
        view: figures.map(|f| DashboardView::new(f, now)),
    })
}

/// Most days the posts chart shows, ending today.
const CHART_DAYS: i64 = 91;
/// Fewest days it shows: a course's first day of posts is one column among two weeks, not
/// one column as wide as the chart.
const CHART_MIN_DAYS: i64 = 14;

/// Posts of one day, per task in outline order, for the data table.
struct DayRow {
    day: String,
    posts: Vec<i64>,
    total: i64,
}

/// The dashboard's charts (HTML with SVG bars) and the figures their tables show.
pub(super) struct DashboardView {
    figures: dashboard::Figures,
    posts_chart: String,
    learners_chart: String,
    feeds_chart: String,
    awards_chart: String,
    delivery_chart: String,
    peers_chart: String,
    /// Days with posts in the chart's range, oldest first.
    day_rows: Vec<DayRow>,
    first_day: String,
    last_day: String,
    /// When the last block was made: (RFC 3339, in words).
    last_block: Option<(String, String)>,
}

impl DashboardView {
    fn new(f: dashboard::Figures, now: i64) -> DashboardView {
        let today = now.div_euclid(86_400);
        let first = f.days.first().map_or(today, |d| d.day).clamp(today - CHART_DAYS + 1, today - CHART_MIN_DAYS + 1);
        let span = usize::try_from(today - first + 1).unwrap_or(1);
        let count = |v: i64| u64::try_from(v).unwrap_or(0);
        let mut per_task: Vec<Vec<u64>> = vec![vec![0; span]; f.tasks.len()];
        let mut day_rows: Vec<DayRow> = Vec::new();
        for d in f.days.iter().filter(|d| d.day >= first && d.day <= today) {
            let Some(t) = f.tasks.iter().position(|t| t.id == d.task_id) else { continue };
            let i = usize::try_from(d.day - first).unwrap_or(0);
            if let Some(slot) = per_task.get_mut(t).and_then(|r| r.get_mut(i)) {
                *slot += count(d.posts);
            }
            let label = crate::web::day(d.day * 86_400);
            if day_rows.last().is_none_or(|r| r.day != label) {
                day_rows.push(DayRow { day: label, posts: vec![0; f.tasks.len()], total: 0 });
            }
            if let Some(row) = day_rows.last_mut() {
                if let Some(p) = row.posts.get_mut(t) {
                    *p += d.posts;
                }
                row.total += d.posts;
            }
        }
        let (first_day, last_day) = (crate::web::day(first * 86_400), crate::web::day(today * 86_400));
        let title = &f.course.title;
        let posts_chart = charts::daily(
            &Labels {
                id: "chart-posts",
                title: &format!("Posts per day per task, {title}"),
                desc: &format!(
                    "One strip per task, one column per day from {first_day} to {last_day}; \
                     taller columns are days with more posts. The table below lists the figures."
                ),
            },
            &f.tasks
                .iter()
                .zip(per_task)
                .map(|(t, values)| Row { label: format!("{} {}", t.hashtag, t.title), values })
                .collect::<Vec<_>>(),
            &first_day,
            &last_day,
        );
        let learners_chart = charts::bars(
            &Labels {
                id: "chart-learners",
                title: &format!("Learners per module, {title}"),
                desc: "For each module, learners with at least one post and learners with at least one badge.",
            },
            &["With a post", "With a badge"],
            &f.modules
                .iter()
                .map(|m| Row { label: m.title.clone(), values: vec![count(m.posted), count(m.badged)] })
                .collect::<Vec<_>>(),
            Layout::Grouped,
        );
        let h = &f.feeds;
        let feeds_chart = charts::bars(
            &Labels {
                id: "chart-feeds",
                title: "Feed health",
                desc: &format!(
                    "Learners' feeds of the institution: {} polled without error, {} failing, {} gone.",
                    h.ok, h.erroring, h.gone
                ),
            },
            &["Feeds"],
            &[("OK", h.ok), ("Erroring", h.erroring), ("Gone", h.gone)]
                .map(|(label, n)| Row { label: label.into(), values: vec![count(n)] }),
            Layout::Grouped,
        );
        let awards_chart = charts::bars(
            &Labels {
                id: "chart-awards",
                title: &format!("Awards per task, {title}"),
                desc: "For each task, awards recorded in a block of the chain and awards still pending.",
            },
            &["Recorded in a block", "Pending"],
            &f.tasks
                .iter()
                .map(|t| Row { label: t.hashtag.clone(), values: vec![count(t.recorded), count(t.pending)] })
                .collect::<Vec<_>>(),
            Layout::Stacked,
        );
        let d = f.delivery;
        let delivery_chart = charts::bars(
            &Labels {
                id: "chart-delivery",
                title: &format!("Notification delivery, {title}"),
                desc: "Emails and Webmentions telling learners of their awards, by where their delivery stands.",
            },
            &["Notifications"],
            &[
                ("Sent", d.sent),
                ("Retrying", d.retrying),
                ("Not tried yet", d.queued),
                ("Failed", d.failed),
                ("No endpoint", d.no_endpoint),
            ]
            .map(|(label, n)| Row { label: label.into(), values: vec![count(n)] }),
            Layout::Grouped,
        );
        let c = &f.chain;
        let peers_chart = charts::bars(
            &Labels {
                id: "chart-chain",
                title: "Chain heights",
                desc: "The height of this institution's chain and the last height each trusted peer reported.",
            },
            &["Height"],
            &std::iter::once(Row { label: "This institution".into(), values: vec![count(c.height.unwrap_or(0))] })
                .chain(
                    c.peers.iter().map(|p| Row { label: p.name.clone(), values: vec![count(p.height.unwrap_or(0))] }),
                )
                .collect::<Vec<_>>(),
            Layout::Grouped,
        );
        DashboardView {
            last_block: c.last_block_at.map(|t| (crate::web::rfc3339(t), crate::web::feeds::relative(t, now))),
            figures: f,
            posts_chart,
            learners_chart,
            feeds_chart,
            awards_chart,
            delivery_chart,
            peers_chart,
            day_rows,
            first_day,
            last_day,
        }
    }
}
