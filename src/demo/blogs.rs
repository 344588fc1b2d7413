//! The demo learners and what they write, generated deterministically: the same learner and
//! post number always give the same post, so seeding twice adds nothing.

use crate::db::demo::{FeedFormat, NewPost};

/// Every demo learner's email is at this domain (reserved for examples: no mail reaches anyone).
pub const LEARNER_DOMAIN: &str = "learners.cairn.example.org";

/// (slug, name, feed format, about)
pub const LEARNERS: [(&str, &str, FeedFormat, &str); 7] = [
    ("noor", "Noor Haddad", FeedFormat::Rss, "Teacher educator in Amman, writing about open data in classrooms."),
    ("tomas", "Tomás Ferreira", FeedFormat::Atom, "Instructional designer in Porto; graphs, maps and networks."),
    ("mei", "Mei Lin", FeedFormat::Json, "Librarian in Singapore thinking about identity and recognition."),
    ("amara", "Amara Okafor", FeedFormat::Rss, "Community organiser in Lagos, learning in public."),
    ("lukas", "Lukas Berger", FeedFormat::Atom, "Vocational trainer in Graz who runs everything in containers."),
    ("priya", "Priya Nair", FeedFormat::Json, "PhD student in Bangalore researching learner agency."),
    ("sam", "Sam Taylor", FeedFormat::Rss, "Secondary-school teacher in Leeds trying simulations and games."),
];

/// The name shown for a demo learner everywhere Cairn shows authors, so no one mistakes them
/// for a real participant.
pub fn shown_name(name: &str) -> String {
    format!("{name} (demo)")
}

pub fn email(slug: &str) -> String {
    format!("{slug}@{LEARNER_DOMAIN}")
}

/// (hashtag suffix, topic phrase, what the learner did)
const TOPICS: [(&str, &str, &str); 9] = [
    ("data", "open data", "listed the data sources my students use and which of them are open"),
    ("cloud", "the cloud", "set up a small wiki in a container and moved my course notes into it"),
    ("graph", "my learning network", "drew the graph of the people and feeds I learn from"),
    ("identity", "digital identity", "wrote down every account I use to learn and who controls each"),
    ("recognition", "recognition", "described a skill of mine that no certificate has ever named"),
    ("community", "community decisions", "watched how my local group decides without a chair"),
    ("experience", "learning by doing", "built a short role-play for my class and noted what stuck"),
    ("agency", "learner agency", "kept a week's log of when I chose what to learn next"),
    ("conclusion", "looking back", "collected my favourite posts from each week of the course"),
];

const OPENINGS: [&str; 4] = ["Notes on", "Thinking about", "A week with", "What I learned about"];

/// How a post is tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tagging {
    /// `#el30-…` in the text, and as a category.
    Hashtag,
    /// Only a feed category (`el30-…`), no hashtag in the text.
    CategoryOnly,
    /// No task's tag at all.
    Untagged,
}

/// Post number `n` (0-based) of the whole demo: its author (by index into [`LEARNERS`]),
/// slug, title, body and categories. The first posts (seeded at start) hold a few untagged
/// ones and exactly one tagged by category only; later ones are all tagged, except every
/// fifth.
pub fn post(n: usize) -> (usize, String, String, String, String, Tagging) {
    let learner = n % LEARNERS.len();
    let (tag, topic, did) = TOPICS[(n + n / LEARNERS.len()) % TOPICS.len()];
    let tagging = match n {
        5 => Tagging::CategoryOnly,
        3 | 9 | 12 => Tagging::Untagged,
        n if n >= SEEDED && n % 5 == 4 => Tagging::Untagged,
        _ => Tagging::Hashtag,
    };
    let opening = OPENINGS[n % OPENINGS.len()];
    let title = format!("{opening} {topic}");
    let slug = format!("{}-{}", n + 1, slugify(&title));
    let name = LEARNERS[learner].1;
    let mut body = format!(
        "This week I {did}. It took longer than I expected, and the most useful part was talking it through \
         with two other people in the course.\n\n\
         What surprised me is how much of {topic} depends on who keeps the records, and who can read them later. \
         — {name}"
    );
    let categories = match tagging {
        Tagging::Hashtag => {
            body.push_str(&format!("\n\nPosted for #el30-{tag}."));
            format!("el30-{tag} elearning")
        }
        Tagging::CategoryOnly => format!("el30-{tag}"),
        Tagging::Untagged => {
            body.push_str("\n\nNot for a task this time: just thinking out loud.");
            "notes".to_string()
        }
    };
    (learner, slug, title, body, categories, tagging)
}

/// Posts seeded at start-up (two per learner).
pub const SEEDED: usize = 14;

/// The post to store for post number `n`, published at `at`.
pub fn new_post<'a>(slug: &'a str, title: &'a str, body: &'a str, categories: &'a str, at: i64) -> NewPost<'a> {
    NewPost { slug, title, body, categories, published_at: at }
}

fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeded_posts_mix_hashtags_untagged_and_one_category_only() {
        let seeded: Vec<_> = (0..SEEDED).map(post).collect();
        assert_eq!(seeded.iter().filter(|p| p.5 == Tagging::CategoryOnly).count(), 1);
        assert_eq!(seeded.iter().filter(|p| p.5 == Tagging::Untagged).count(), 3);
        let only = seeded.iter().find(|p| p.5 == Tagging::CategoryOnly).unwrap();
        assert!(!only.3.contains('#') && only.4.starts_with("el30-"), "{only:?}");
        // Every learner has posts, and the same number gives the same post.
        for l in 0..LEARNERS.len() {
            assert!(seeded.iter().any(|p| p.0 == l));
        }
        assert_eq!(post(20), post(20));
        let slugs: std::collections::HashSet<_> = (0..200).map(|n| post(n).1).collect();
        assert_eq!(slugs.len(), 200);
    }
}
