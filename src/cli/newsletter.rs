//! `cairn newsletter`: sending a course's issue now, importing readers, listing them.

use std::path::PathBuf;

use clap::Subcommand;

use super::runtime;
use crate::app::newsletter::{self as nl, Built, Newsletter};
use crate::config::Settings;
use crate::db::newsletter::{self as store, Imported};

#[derive(Debug, Subcommand)]
pub enum NewsletterCommand {
    /// Build the course's issue for a day (today in the course's time zone unless --date) and
    /// send it now, as the scheduler would: a day gets one issue, and each reader one copy,
    /// however often this runs; a run after an interrupted send finishes it.
    Send {
        #[arg(long, value_name = "SLUG")]
        course: String,
        /// The course's local date, YYYY-MM-DD.
        #[arg(long, value_name = "YYYY-MM-DD")]
        date: Option<String>,
    },
    /// Add readers who already consented, from a CSV file of `email,name` rows (a header row
    /// is allowed); prints each row's outcome.
    Import {
        #[arg(long, value_name = "SLUG")]
        course: String,
        file: PathBuf,
    },
    /// Record that a reader complained about the newsletter (marked it as spam, e.g. in a mail
    /// provider's feedback-loop report): they are unsubscribed, and the complaint is listed on
    /// the course's newsletter page.
    Complaint {
        #[arg(long, value_name = "SLUG")]
        course: String,
        /// The reader's address.
        email: String,
    },
    /// Print the number of confirmed readers and the issues sent.
    List {
        #[arg(long, value_name = "SLUG")]
        course: String,
    },
}

pub fn run(settings: &Settings, cmd: NewsletterCommand) -> anyhow::Result<()> {
    let pool = crate::startup::open_store(settings)?;
    let mut conn = pool.get()?;
    let course_of = |conn: &mut diesel::SqliteConnection, slug: &str| {
        crate::db::courses::get_course_by_slug(conn, slug).map_err(|_| anyhow::anyhow!("no course with slug '{slug}'"))
    };
    match cmd {
        NewsletterCommand::Send { course, date } => {
            let course = course_of(&mut conn, &course)?;
            let now = crate::clock::system_now();
            let date = match date {
                Some(d) => nl::parse_date(&d).map_err(anyhow::Error::msg)?,
                None => nl::local_day(&store::settings(&mut conn, course.id)?.time_zone, now).0,
            };
            drop(conn);
            let base = settings.public_base_url(settings.bind);
            // The SMTP pool lives on the runtime: made and dropped inside it.
            let built = runtime()?.block_on(async {
                let mailer = crate::email::Mailer::new(&settings.mail, &settings.data_dir)?;
                let sender = Newsletter::new(pool.clone(), mailer, base, settings.newsletter);
                anyhow::Ok(sender.send_now(course.id, &date, now).await?)
            })?;
            let issue = match built {
                Built::Queued { issue, .. } => issue,
                Built::Exists(issue) if issue.status == store::IssueStatus::Sent => {
                    println!("{date} already had its issue; only copies not yet sent were sent");
                    issue
                }
                Built::Exists(issue) => {
                    println!("{date} is {}: nothing was sent", issue.status);
                    return Ok(());
                }
                Built::Empty => {
                    println!("{date}: nothing new and no note; nothing was sent");
                    return Ok(());
                }
                Built::Skipped => {
                    println!("{date} is skipped; nothing was sent");
                    return Ok(());
                }
            };
            let (sent, waiting, failed) = store::delivery_counts(&mut *pool.get()?, issue.id)?;
            println!(
                "issue {date}: {} post(s); {sent} sent, {waiting} waiting for a retry, {failed} failed",
                issue.posts
            );
            Ok(())
        }
        NewsletterCommand::Import { course, file } => {
            let course = course_of(&mut conn, &course)?;
            let f = std::fs::File::open(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let rows = nl::import_csv(&mut conn, course.id, f, crate::clock::system_now())?;
            let mut failed = 0;
            for r in &rows {
                let what = match &r.outcome {
                    Ok(Imported::Added) => "added".to_string(),
                    Ok(Imported::AlreadySubscribed) => "already subscribed".to_string(),
                    Ok(Imported::Confirmed) => "confirmed (was waiting for confirmation)".to_string(),
                    Ok(Imported::KeptOut(status)) => format!("not added: {status} earlier"),
                    Err(e) => {
                        failed += 1;
                        format!("error: {e}")
                    }
                };
                println!("line {}: {}: {what}", r.line, r.email);
            }
            println!("{} row(s), {failed} error(s)", rows.len());
            Ok(())
        }
        NewsletterCommand::Complaint { course, email } => {
            let course = course_of(&mut conn, &course)?;
            let email = crate::domain::Email::parse(&email).map_err(anyhow::Error::msg)?;
            match nl::complain_by_email(
                &mut conn,
                course.id,
                &email,
                store::ComplaintSource::Cli,
                crate::clock::system_now(),
            ) {
                Ok(true) => {
                    println!("{email}: complaint recorded; unsubscribed from the newsletter of {}", course.title)
                }
                Ok(false) => println!("{email}: a complaint was already recorded; nothing changed"),
                Err(crate::db::StoreError::NotFound(_)) => {
                    anyhow::bail!("{email} is not a reader of the newsletter of {}", course.title)
                }
                Err(e) => return Err(e.into()),
            }
            Ok(())
        }
        NewsletterCommand::List { course } => {
            let course = course_of(&mut conn, &course)?;
            println!("{} confirmed reader(s)", store::count_confirmed(&mut conn, course.id)?);
            for issue in store::sent_issues(&mut conn, course.id, i64::MAX)? {
                let (sent, waiting, failed) = store::delivery_counts(&mut conn, issue.id)?;
                println!("{}: {} post(s), {sent} sent, {waiting} waiting, {failed} failed", issue.date, issue.posts);
            }
            Ok(())
        }
    }
}
