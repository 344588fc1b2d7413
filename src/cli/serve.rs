//! `cairn serve` and `cairn demo`.

use std::io::Write;

use anyhow::Context as _;

use crate::config::Settings;
use crate::startup::{Application, open_store};

pub fn serve(settings: &Settings, demo: bool) -> anyhow::Result<()> {
    let mut settings = settings.clone();
    settings.demo.enabled = demo;
    let settings = &settings;
    // Refused before anything is opened, seeded or bound.
    crate::startup::check_bind(settings)?;
    if let Some(warning) = crate::startup::demo_exposure_warning(settings) {
        eprintln!("{warning}");
    }
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let pool = open_store(settings)?;
        let demo_outcome = if demo { Some(crate::demo::seed(&mut *pool.get()?)?) } else { None };
        let app = Application::build_with_pool(settings, pool)?;
        let url = format!("{}/", app.base_url());
        println!("Cairn is running at {url} (listening on {}, data in {})", app.addr(), settings.data_dir.display());
        if let Some(addr) = app.metrics_addr() {
            println!("Prometheus metrics at http://{addr}/metrics");
        }
        if let Some(outcome) = &demo_outcome {
            print_demo(outcome);
            println!(
                "Demo blogs: {url}demo/blogs/ (harvested now; a new post every {} s)",
                settings.demo.post_every_secs
            );
            println!("Sign in at {url}login");
        }
        std::io::stdout().flush().ok();
        app.run_until_stopped().await.context("server stopped with an error")
    })
}

/// Seeds the demo course (once) and the demo instructor.
pub fn demo(settings: &Settings) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let outcome = crate::demo::seed(&mut *pool.get()?)?;
    print_demo(&outcome);
    Ok(())
}

/// Takes every demo row away.
pub fn remove_demo(settings: &Settings) -> anyhow::Result<()> {
    let pool = open_store(settings)?;
    let r = crate::demo::remove(&mut *pool.get()?)?;
    println!(
        "Removed the demo: {} learners, {} feeds, {} harvested posts, {} awards, {} blog posts.",
        r.learners, r.feeds, r.posts, r.awards, r.blog_posts
    );
    match (&r.course, &r.course_kept) {
        (true, _) => println!("Removed the demo course \"E-Learning 3.0\"."),
        (false, Some(why)) => println!("Kept the demo course \"E-Learning 3.0\": {why}."),
        (false, None) => {}
    }
    if r.instructor {
        println!("Removed the demo instructor {}.", crate::demo::DEMO_EMAIL);
    }
    println!("Records already in the recognition chain stay: the chain is append-only.");
    Ok(())
}

fn print_demo(outcome: &crate::demo::DemoOutcome) {
    if outcome.created_course {
        println!("Seeded the demo course \"E-Learning 3.0\".");
    } else {
        println!("The demo course \"E-Learning 3.0\" is already there; left as it is.");
    }
    if outcome.learners_added > 0 {
        println!("Seeded {} demo learners with their blogs.", outcome.learners_added);
    }
    println!("Demo instructor: {}  password: {}", outcome.email, outcome.password);
}
