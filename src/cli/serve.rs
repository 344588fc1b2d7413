//! `cairn serve` and `cairn demo`.

use std::io::Write;

use anyhow::Context as _;

use crate::config::Settings;
use crate::startup::{Application, open_store};

pub fn serve(settings: &Settings, demo: bool) -> anyhow::Result<()> {
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let pool = open_store(settings)?;
        let demo_outcome = if demo { Some(crate::demo::seed(&mut *pool.get()?)?) } else { None };
        let app = Application::build_with_pool(settings, pool)?;
        let url = format!("{}/", app.base_url());
        println!("Cairn is running at {url} (listening on {}, data in {})", app.addr(), settings.data_dir.display());
        if let Some(outcome) = &demo_outcome {
            print_demo(outcome);
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

fn print_demo(outcome: &crate::demo::DemoOutcome) {
    if outcome.created_course {
        println!("Seeded the demo course \"E-Learning 3.0\".");
    } else {
        println!("The demo course \"E-Learning 3.0\" is already there; left as it is.");
    }
    println!("Demo instructor: {}  password: {}", outcome.email, outcome.password);
}
