//! The Reader's rules: which Tasks a post's Tie offers first, and when an award made from the
//! Reader asks the instructor to confirm it (a Task the post is not tied to, or one of another
//! course than the post's). The web's Reader asks; these functions decide. And what each
//! member of the teaching team reads and may change there: a reviewer reads the posts of the
//! courses they review, and ties, dismisses and stars those.

use std::collections::HashMap;

use diesel::SqliteConnection;

use crate::app::access::{Actor, Role};
use crate::db::courses::{self, Course, Module, Task};
use crate::db::links::Authorship;
use crate::db::reader::LinkFlag;
use crate::db::{StoreError, StoreResult, links, reader};

/// The courses whose posts `actor` reads in the Reader, on the Posts page and through the
/// API: those they review (or edit, or own). `None`: every post (an institution admin).
pub fn scope(actor: &Actor) -> Option<Vec<i64>> {
    actor.courses_with(Role::Reviewer)
}

/// The courses, modules and Tasks the Reader's filters offer `actor`: those of the courses
/// they review, or all of them.
pub fn filter_choices(
    conn: &mut SqliteConnection,
    actor: &Actor,
) -> StoreResult<(Vec<Course>, Vec<Module>, Vec<Task>)> {
    let Some(within) = scope(actor) else {
        return Ok((courses::list_courses(conn)?, courses::list_modules(conn)?, courses::list_tasks(conn)?));
    };
    let (mut cs, mut ms, mut ts) = (Vec::new(), Vec::<Module>::new(), Vec::<Task>::new());
    for course in courses::list_courses(conn)?.into_iter().filter(|c| within.contains(&c.id)) {
        let outline = courses::outline(conn, course.id)?;
        for m in outline.modules {
            for t in m.tasks {
                if !ts.iter().any(|x| x.id == t.id) {
                    ts.push(t);
                }
            }
            if !ms.iter().any(|x| x.id == m.module.id) {
                ms.push(m.module);
            }
        }
        cs.push(course);
    }
    ms.sort_by(|a, b| a.title.cmp(&b.title));
    ts.sort_by(|a, b| a.hashtag.cmp(&b.hashtag));
    Ok((cs, ms, ts))
}

/// Refuses unless the post is one of those `actor` reads (see [`scope`]); a post that does
/// not exist is "not found" first.
pub fn require_post(conn: &mut SqliteConnection, actor: &Actor, link_id: i64, what: &str) -> StoreResult<()> {
    links::get_link(conn, link_id)?;
    match scope(actor) {
        None => Ok(()),
        Some(within) if reader::is_within(conn, link_id, &within)? => Ok(()),
        Some(_) => Err(StoreError::Forbidden(format!(
            "only a reviewer of this post's course (or an institution admin) may {what}"
        ))),
    }
}

/// Dismisses or restores, stars or unstars a post the actor reads.
pub fn set_flag(conn: &mut SqliteConnection, actor: &Actor, link_id: i64, flag: LinkFlag, on: bool) -> StoreResult<()> {
    let what = match flag {
        LinkFlag::Dismissed => "dismiss or restore this post",
        LinkFlag::Starred => "star this post",
    };
    require_post(conn, actor, link_id, what)?;
    reader::set_flag(conn, link_id, flag, on)
}

/// Ties a post to a Task (or unties it): the Task's reviewers may. A post gone is "not found"
/// whatever the Task; a Task gone is an error on the `task_id` field.
pub fn tie(
    conn: &mut SqliteConnection,
    actor: &Actor,
    link_id: i64,
    task_id: i64,
    tied: bool,
    now: i64,
) -> StoreResult<Task> {
    links::get_link(conn, link_id)?;
    let task = courses::get_task(conn, task_id).map_err(|e| match e {
        StoreError::NotFound(_) => StoreError::field("task_id", "that task no longer exists"),
        e => e,
    })?;
    let what = if tied { "tie posts to this task" } else { "untie posts from this task" };
    actor.require_task(conn, task_id, Role::Reviewer, what)?;
    links::set_tie(conn, link_id, task_id, tied, now)?;
    Ok(task)
}

/// Every Task, grouped by the courses it sits in (a Task in two courses is in both groups),
/// read once per page.
pub struct TaskChoices {
    /// Courses in their order, each with its Tasks in module order; then the Tasks of no course.
    groups: Vec<(Option<Course>, Vec<Task>)>,
    /// The course ids of each Task.
    courses_of: HashMap<i64, Vec<i64>>,
    /// The courses of each learner's tied posts, for a post tied to nothing.
    learner_courses: HashMap<i64, Vec<i64>>,
}

/// One `<optgroup>` of the Tie select.
pub struct TieGroup {
    pub label: String,
    pub options: Vec<TieOption>,
}

/// One `<option>` of the Tie select.
pub struct TieOption {
    pub task_id: i64,
    pub hashtag: String,
    pub title: String,
    pub selected: bool,
}

impl TaskChoices {
    /// Loads the Tasks by course, and the courses of the posts of `learners` (author ids);
    /// with `within`, only the Tasks of those courses (the Tie select of a reviewer).
    pub fn load(conn: &mut SqliteConnection, learners: &[i64], within: Option<&[i64]>) -> StoreResult<TaskChoices> {
        let tasks = courses::list_tasks(conn)?;
        let by_id: HashMap<i64, &Task> = tasks.iter().map(|t| (t.id, t)).collect();
        let mut groups: Vec<(Option<Course>, Vec<Task>)> = Vec::new();
        let mut courses_of: HashMap<i64, Vec<i64>> = HashMap::new();
        for (task_id, course) in courses::task_courses(conn)? {
            let Some(task) = by_id.get(&task_id) else { continue };
            if within.is_some_and(|w| !w.contains(&course.id)) {
                // Still a course of the Task (for the post's own course), but not offered.
                let seen = courses_of.entry(task_id).or_default();
                if !seen.contains(&course.id) {
                    seen.push(course.id);
                }
                continue;
            }
            let seen = courses_of.entry(task_id).or_default();
            if seen.contains(&course.id) {
                continue;
            }
            seen.push(course.id);
            match groups.iter_mut().find(|(c, _)| c.as_ref().map(|c| c.id) == Some(course.id)) {
                Some((_, list)) => list.push((*task).clone()),
                None => groups.push((Some(course), vec![(*task).clone()])),
            }
        }
        let loose: Vec<Task> = tasks.iter().filter(|t| !courses_of.contains_key(&t.id)).cloned().collect();
        if !loose.is_empty() && within.is_none() {
            groups.push((None, loose));
        }
        let mut learner_courses: HashMap<i64, Vec<i64>> = HashMap::new();
        if !learners.is_empty() {
            for (author, task) in reader::tied_tasks_of_authors(conn, learners)? {
                let list = learner_courses.entry(author).or_default();
                for c in courses_of.get(&task).into_iter().flatten() {
                    if !list.contains(c) {
                        list.push(*c);
                    }
                }
            }
        }
        Ok(TaskChoices { groups, courses_of, learner_courses })
    }

    /// The courses of a post: those of the Tasks it is tied to; for a post tied to nothing,
    /// those of its learner's other tied posts.
    pub fn courses_of_post(&self, tied: &[Task], learner: i64) -> Vec<i64> {
        let mut out: Vec<i64> = Vec::new();
        for c in tied.iter().flat_map(|t| self.courses_of.get(&t.id).into_iter().flatten()) {
            if !out.contains(c) {
                out.push(*c);
            }
        }
        if out.is_empty() {
            out = self.learner_courses.get(&learner).cloned().unwrap_or_default();
        }
        out
    }

    /// The Tie select of a post: its own course(s) first, each course a group, and selected
    /// the first Task of its own course that it is not tied to yet. A post whose course is not
    /// known has nothing selected (the select then asks for a choice).
    pub fn tie_groups(&self, tied: &[Task], learner: i64) -> Vec<TieGroup> {
        let own = self.courses_of_post(tied, learner);
        let is_own = |c: &Option<Course>| c.as_ref().is_some_and(|c| own.contains(&c.id));
        let ordered =
            self.groups.iter().filter(|(c, _)| is_own(c)).chain(self.groups.iter().filter(|(c, _)| !is_own(c)));
        let default = self
            .groups
            .iter()
            .filter(|(c, _)| is_own(c))
            .flat_map(|(_, ts)| ts.iter())
            .find(|t| !tied.iter().any(|x| x.id == t.id))
            .map(|t| t.id);
        ordered
            .map(|(c, ts)| TieGroup {
                label: match c {
                    Some(c) if own.contains(&c.id) => format!("{} (this post's course)", c.title),
                    Some(c) => c.title.clone(),
                    None => "In no course".into(),
                },
                options: ts
                    .iter()
                    .map(|t| TieOption {
                        task_id: t.id,
                        hashtag: t.hashtag.clone(),
                        title: t.title.clone(),
                        selected: default == Some(t.id),
                    })
                    .collect(),
            })
            .collect()
    }

    /// True when a group is preselected (else the select starts on "Choose a task").
    pub fn has_default(groups: &[TieGroup]) -> bool {
        groups.iter().any(|g| g.options.iter().any(|o| o.selected))
    }
}

/// An award the Reader asks the instructor to confirm, in words: which post, whose, which
/// badge, and why it is unusual.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AwardDoubt {
    pub link_id: i64,
    pub post: String,
    pub post_url: Option<String>,
    pub learner: String,
    pub learner_id: i64,
    pub badge: String,
    pub why: String,
}

/// Why awarding the badge of `task_id` for the post `link_id` asks for confirmation, or `None`
/// when the post is tied to that Task. A Task of another course than the post's, or one the
/// post is not tied to, is not wrong in itself (a learner may forget a hashtag), but it is
/// what a slip of the mouse looks like.
///
/// A post found elsewhere than on the learner's site, or a duplicate of another learner's, is
/// never tied by hashtag: its award is confirmed (or refused) by the authorship rule of
/// `app::award`, which already names the post and the learner, and is not asked about twice.
pub fn award_doubt(conn: &mut SqliteConnection, link_id: i64, task_id: i64) -> StoreResult<Option<AwardDoubt>> {
    let tied = links::tasks_of_link(conn, link_id)?;
    if tied.iter().any(|t| t.id == task_id) {
        return Ok(None);
    }
    let link = links::get_link(conn, link_id)?;
    if link.authorship != Authorship::Own {
        return Ok(None);
    }
    let task = courses::get_task(conn, task_id)?;
    let (_, learner_id, learner, _) = links::poster(conn, link_id)?;
    let places = courses::task_courses(conn)?;
    let titles = |ids: &mut dyn Iterator<Item = i64>| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in ids {
            if let Some((_, c)) = places.iter().find(|(_, c)| c.id == id)
                && !out.contains(&c.title)
            {
                out.push(c.title.clone());
            }
        }
        out
    };
    let course_ids = |t: i64| places.iter().filter(move |(id, _)| *id == t).map(|(_, c)| c.id);
    let post_courses: Vec<i64> = tied.iter().flat_map(|t| course_ids(t.id)).collect();
    let task_courses: Vec<i64> = course_ids(task_id).collect();
    let tags = tied.iter().map(|t| t.hashtag.as_str()).collect::<Vec<_>>().join(", ");
    let why = if !post_courses.is_empty() && !task_courses.iter().any(|c| post_courses.contains(c)) {
        let theirs = titles(&mut task_courses.iter().copied());
        let ours = titles(&mut post_courses.iter().copied());
        format!(
            "{} is a task of {}, another course than this post's ({}); the post is tagged {tags}, not {}.",
            task.hashtag,
            if theirs.is_empty() { "no course".to_string() } else { theirs.join(", ") },
            ours.join(", "),
            task.hashtag
        )
    } else if tied.is_empty() {
        format!("The post is not tagged {} (it is tied to no task).", task.hashtag)
    } else {
        format!("The post is tagged {tags}, not {}.", task.hashtag)
    };
    Ok(Some(AwardDoubt {
        link_id,
        post: link.title,
        post_url: link.url,
        learner,
        learner_id,
        badge: task.hashtag,
        why,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn course(id: i64, title: &str) -> Course {
        Course {
            id,
            slug: title.to_lowercase(),
            title: title.into(),
            description: String::new(),
            position: id,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn task(id: i64, hashtag: &str) -> Task {
        Task {
            id,
            title: hashtag.trim_start_matches('#').into(),
            description: String::new(),
            criteria: String::new(),
            hashtag: hashtag.into(),
            badge_image_type: None,
            created_at: 0,
            updated_at: 0,
            expires_days: None,
        }
    }

    /// Course 1 holds #a-one and #a-two, course 2 holds #b-one; #loose is in no course.
    /// Learner 7 has posts tied in course 2.
    fn choices() -> TaskChoices {
        TaskChoices {
            groups: vec![
                (Some(course(1, "Alpha")), vec![task(1, "#a-one"), task(2, "#a-two")]),
                (Some(course(2, "Beta")), vec![task(3, "#b-one")]),
                (None, vec![task(4, "#loose")]),
            ],
            courses_of: HashMap::from([(1, vec![1]), (2, vec![1]), (3, vec![2])]),
            learner_courses: HashMap::from([(7, vec![2])]),
        }
    }

    fn selected(groups: &[TieGroup]) -> Option<&str> {
        groups.iter().flat_map(|g| &g.options).find(|o| o.selected).map(|o| o.hashtag.as_str())
    }

    #[test]
    fn the_tie_select_starts_on_the_posts_own_course_and_its_first_untied_task() {
        let c = choices();
        let groups = c.tie_groups(&[task(3, "#b-one")], 1);
        assert_eq!(groups[0].label, "Beta (this post's course)");
        assert_eq!(groups.iter().map(|g| g.label.as_str()).collect::<Vec<_>>()[1..], ["Alpha", "In no course"]);
        // Tied to every task of its course: nothing new to offer, so nothing preselected.
        assert_eq!(selected(&groups), None);
        let groups = c.tie_groups(&[task(1, "#a-one")], 1);
        assert_eq!(selected(&groups), Some("#a-two"));
    }

    #[test]
    fn a_post_tied_to_nothing_starts_on_its_learners_course_or_asks() {
        let c = choices();
        let groups = c.tie_groups(&[], 7);
        assert_eq!(groups[0].label, "Beta (this post's course)");
        assert_eq!(selected(&groups), Some("#b-one"));
        let groups = c.tie_groups(&[], 8);
        assert_eq!(selected(&groups), None, "no course known: the select asks for a choice");
        assert!(!TaskChoices::has_default(&groups));
        assert_eq!(groups[0].label, "Alpha");
    }
}
