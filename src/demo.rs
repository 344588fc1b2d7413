//! The demo course: "E-Learning 3.0", the nine modules of the 2019 course, one task each,
//! a demo instructor with a generated password, and sample learners whose blogs this server
//! serves itself (`blogs`: what they write; `live`: subscribing, publishing and Webmentions
//! while `cairn serve --demo` runs). Everything demo-only is marked as such and can be taken
//! away with [`remove`].

pub mod blogs;
mod live;

pub use live::{DemoBlogs, MAX_PENDING, MAX_PER_POST, MAX_URL_LEN, blog_url};

use diesel::SqliteConnection;
use rand::Rng;

use crate::app::courses::{self as authoring, TaskForm, TitledForm};
use crate::db::courses;
use crate::db::{StoreResult, demo, instructors};

/// The demo instructor's sign-in email.
pub const DEMO_EMAIL: &str = "demo@cairn.example.org";
/// Slug of the demo course.
pub const DEMO_SLUG: &str = "e-learning-3-0";

/// What seeding did.
#[derive(Debug)]
pub struct DemoOutcome {
    /// False when the course was already there and left as it was.
    pub created_course: bool,
    pub email: String,
    /// The demo instructor's new password (set afresh on every run, since only its hash is kept).
    pub password: String,
    /// Demo learners (with their first posts) added by this run.
    pub learners_added: usize,
}

/// (module title, module description, hashtag suffix, task title, task description)
const MODULES: [(&str, &str, &str, &str, &str); 9] = [
    (
        "Data",
        "From documents to data: how content becomes something machines read and reuse.",
        "data",
        "Open up a data source",
        "Write a post describing a data source you use in your own learning or teaching, and what it would take to make it open and linked.",
    ),
    (
        "Cloud",
        "Cloud and containers: where our learning environments now live.",
        "cloud",
        "Run something in the cloud",
        "Set up a small cloud or container-based service (or describe one you use) and reflect on what moving to the cloud changes for learners.",
    ),
    (
        "Graph",
        "Graphs and networks: the shape of connections between people, content and ideas.",
        "graph",
        "Map your learning network",
        "Draw or describe the graph of your own learning network: the people, sites and feeds you connect with, and how knowledge flows.",
    ),
    (
        "Identity",
        "Identity, privacy and the self in networked learning.",
        "identity",
        "Your digital identity",
        "Write about how you present yourself online as a learner, and what you would want to control about your digital identity.",
    ),
    (
        "Recognition",
        "Badges, credentials and the recognition of learning.",
        "recognition",
        "Recognise an achievement",
        "Describe an achievement of yours that no credential recognises, and how a badge or other evidence could recognise it.",
    ),
    (
        "Community",
        "Communities, consensus and decentralised networks.",
        "community",
        "How your community decides",
        "Reflect on a community you belong to: how does it decide things, and what would change if it had no centre?",
    ),
    (
        "Experience",
        "Experience, simulation and learning by doing.",
        "experience",
        "Design a learning experience",
        "Create or describe a learning experience (a simulation, game or event) and what a learner takes away from it.",
    ),
    (
        "Agency",
        "Agency: learners in control of their own learning.",
        "agency",
        "Taking charge of learning",
        "Write about a time you took charge of your own learning, and what tools or supports made that possible.",
    ),
    (
        "Conclusion",
        "Looking back on the course and forward to what comes next.",
        "conclusion",
        "Looking back, looking forward",
        "Write a closing post that links to your favourite post from each module and says what you will carry forward.",
    ),
];

/// Creates the demo course once (left alone if present) and the demo instructor, whose
/// password is set afresh and returned.
pub fn seed(conn: &mut SqliteConnection) -> StoreResult<DemoOutcome> {
    seed_at(conn, crate::clock::system_now())
}

/// [`seed`] at `now`.
pub fn seed_at(conn: &mut SqliteConnection, now: i64) -> StoreResult<DemoOutcome> {
    let created_course = match courses::get_course_by_slug(conn, DEMO_SLUG) {
        Ok(_) => false,
        Err(crate::db::StoreError::NotFound(_)) => {
            seed_course(conn, now)?;
            true
        }
        Err(e) => return Err(e),
    };
    let learners_added = seed_learners(conn, now)?;
    complete_profile(conn, now)?;
    let password = generate_password();
    match instructors::find_by_email(conn, DEMO_EMAIL)? {
        Some(i) => crate::app::instructors::set_password(conn, i.id, &password)?,
        None => {
            crate::app::instructors::create(conn, DEMO_EMAIL, &password, now)?;
        }
    }
    Ok(DemoOutcome { created_course, email: DEMO_EMAIL.to_string(), password, learners_added })
}

/// Fills the institution profile's empty web address and contact email with the demo's
/// placeholders, so that the demo can award at once; filled fields are kept.
fn complete_profile(conn: &mut SqliteConnection, now: i64) -> StoreResult<()> {
    crate::app::institution::ensure(conn, "Cairn demo institution", now)?;
    let inst = crate::db::institution::get(conn)?;
    if crate::app::institution::missing_for_issuing(&inst).is_empty() {
        return Ok(());
    }
    let or = |v: &str, default: &str| if v.trim().is_empty() { default.to_string() } else { v.to_string() };
    let form = crate::app::institution::InstitutionForm {
        name: or(&inst.name, "Cairn demo institution"),
        url: or(&inst.url, DEMO_INSTITUTION_URL),
        email: or(&inst.email, DEMO_INSTITUTION_EMAIL),
        description: inst.description,
    };
    crate::app::institution::update(conn, &form, None, now)
}

/// The demo institution's web address and contact email, placeholders the instructor
/// replaces (not the demo instructor's address: issued credentials keep the issuer's).
pub const DEMO_INSTITUTION_URL: &str = "https://cairn.example.org/";
pub const DEMO_INSTITUTION_EMAIL: &str = "badges@cairn.example.org";

/// Adds the demo learners that are missing, each with their first posts (published over the
/// hours before `now`); returns how many were added.
pub fn seed_learners(conn: &mut SqliteConnection, now: i64) -> StoreResult<usize> {
    crate::db::write_tx(conn, |conn| {
        let mut ids = Vec::new();
        let mut added = 0;
        for &(slug, name, format, about) in &blogs::LEARNERS {
            let email = blogs::email(slug);
            let (l, new) =
                demo::ensure_learner(conn, &demo::NewLearner { slug, name, email: &email, format, about }, now)?;
            added += usize::from(new);
            ids.push((l.id, new));
        }
        for n in 0..blogs::SEEDED {
            let (who, slug, title, body, categories, _) = blogs::post(n);
            let Some(&(learner_id, new)) = ids.get(who) else { continue };
            if new {
                let at = now - i64::try_from((blogs::SEEDED - n) * 1800).unwrap_or(0);
                demo::publish(conn, learner_id, &blogs::new_post(&slug, &title, &body, &categories, at))?;
            }
        }
        Ok(added)
    })
}

/// What [`remove`] took away.
pub use crate::db::demo::Removed;

/// Takes away everything the demo added (see [`demo::remove`]). Chain records stay.
pub fn remove(conn: &mut SqliteConnection) -> StoreResult<Removed> {
    demo::remove(conn, DEMO_EMAIL)
}

fn seed_course(conn: &mut SqliteConnection, now: i64) -> StoreResult<()> {
    crate::db::write_tx(conn, |conn| {
        let course = authoring::create_course(
            conn,
            &TitledForm {
                title: "E-Learning 3.0".into(),
                description: "A connectivist course on the distributed web: data, cloud, graph, identity, \
                    recognition, community, experience and agency. Write on your own blog, tag your posts \
                    with the task's hashtag, and earn a badge for each task."
                    .into(),
            },
            now,
        )?;
        demo::set_state(conn, demo::STATE_COURSE, &course.id.to_string())?;
        for (title, description, tag, task_title, task) in MODULES {
            let module = authoring::create_module(
                conn,
                course.id,
                &TitledForm { title: title.into(), description: description.into() },
                now,
            )?;
            authoring::create_task(
                conn,
                module.id,
                &TaskForm {
                    title: task_title.into(),
                    description: task.into(),
                    criteria: format!(
                        "- A post on your own blog, tagged **#el30-{tag}**.\n\
                         - It responds to the module's theme in your own words ({} words or more).\n\
                         - It links to at least one other course participant's post or resource.",
                        300
                    ),
                    hashtag: format!("#el30-{tag}"),
                    expires_days: String::new(),
                },
                None,
                now,
            )?;
        }
        Ok(())
    })
}

/// 20 characters from an alphabet without look-alikes.
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}
