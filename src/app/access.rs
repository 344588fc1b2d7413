//! Who may do what: institution admins, and per course an owner, editors and reviewers.
//!
//! - An **admin** manages the institution profile, peers, keys, instructors and their roles,
//!   and holds every course role.
//! - Per course, an **owner** manages the course and its staff; an **editor** edits modules,
//!   tasks and badges, and revokes awards; a **reviewer** works in the Reader: ties,
//!   dismisses, awards.
//!
//! Every surface (pages, forms, the command line, the API) acts through an [`Actor`], and the
//! use cases check it here, so a template never decides what is allowed. An API token acts
//! with its instructor's roles, narrowed to the token's courses when it names some.

use std::collections::HashMap;

use diesel::SqliteConnection;

use crate::db::instructors::Instructor;
use crate::db::{StoreError, StoreResult, courses, staff};

/// A course role, weakest first: each includes what the ones before it allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reviewer,
    Editor,
    Owner,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Editor, Role::Reviewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reviewer => "reviewer",
            Role::Editor => "editor",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reviewer" => Ok(Role::Reviewer),
            "editor" => Ok(Role::Editor),
            "owner" => Ok(Role::Owner),
            other => Err(format!("{other:?} is not a role; the roles are owner, editor and reviewer")),
        }
    }

    /// Who holds this role or a stronger one, in words: "an editor or owner".
    pub fn needs(self) -> &'static str {
        match self {
            Role::Reviewer => "a reviewer, editor or owner",
            Role::Editor => "an editor or owner",
            Role::Owner => "an owner",
        }
    }

    /// What the role may do, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Role::Reviewer => "works in the Reader: ties, dismisses, awards",
            Role::Editor => "also edits modules, tasks and badges, and revokes awards",
            Role::Owner => "also manages the course and its staff",
        }
    }
}

/// Where an action came from, as the audit trail records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Web,
    Api,
    Cli,
    System,
}

impl Surface {
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Web => "web",
            Surface::Api => "api",
            Surface::Cli => "cli",
            Surface::System => "system",
        }
    }
}

/// Someone acting: an instructor with their roles, or the institution itself (the command
/// line run by whoever holds the database, without `--as`).
#[derive(Debug, Clone)]
pub struct Actor {
    /// `None` for the institution itself.
    pub instructor_id: Option<i64>,
    /// The instructor's email, or a word for the institution ("command line").
    pub name: String,
    pub admin: bool,
    roles: HashMap<i64, Role>,
    /// An API token narrowed to these courses.
    only: Option<Vec<i64>>,
    pub surface: Surface,
    /// The client's address, when known (web and API).
    pub client: Option<String>,
}

impl Actor {
    /// An instructor with the roles stored for them.
    pub fn load(
        conn: &mut SqliteConnection,
        instructor: &Instructor,
        surface: Surface,
        client: Option<String>,
    ) -> StoreResult<Actor> {
        let roles = staff::roles_of(conn, instructor.id)?
            .into_iter()
            .filter_map(|(course, role)| Role::parse(&role).ok().map(|r| (course, r)))
            .collect();
        Ok(Actor {
            instructor_id: Some(instructor.id),
            name: instructor.email.clone(),
            admin: instructor.admin,
            roles,
            only: None,
            surface,
            client,
        })
    }

    /// [`Actor::load`] by instructor id.
    pub fn load_id(
        conn: &mut SqliteConnection,
        instructor_id: i64,
        surface: Surface,
        client: Option<String>,
    ) -> StoreResult<Actor> {
        let who = crate::db::instructors::find(conn, instructor_id)?.ok_or(StoreError::NotFound("instructor"))?;
        Actor::load(conn, &who, surface, client)
    }

    /// The institution itself: everything is allowed (the command line without `--as`, and
    /// Cairn's own jobs).
    pub fn institution(surface: Surface) -> Actor {
        let name = match surface {
            Surface::Cli => "command line",
            _ => "Cairn",
        };
        Actor {
            instructor_id: None,
            name: name.into(),
            admin: true,
            roles: HashMap::new(),
            only: None,
            surface,
            client: None,
        }
    }

    /// Someone who is not staff, named for the audit trail (a learner acting through their
    /// emailed link): no role anywhere.
    pub fn someone(name: &str, surface: Surface) -> Actor {
        Actor {
            instructor_id: None,
            name: name.into(),
            admin: false,
            roles: HashMap::new(),
            only: None,
            surface,
            client: None,
        }
    }

    /// Narrowed to `courses` (an API token that names courses); empty narrows nothing.
    pub fn narrowed(mut self, courses: Vec<i64>) -> Actor {
        if !courses.is_empty() {
            self.only = Some(courses);
        }
        self
    }

    /// The role held in `course`: an admin holds every role, unless a token narrows it away.
    pub fn role_in(&self, course: i64) -> Option<Role> {
        if let Some(only) = &self.only
            && !only.contains(&course)
        {
            return None;
        }
        if self.admin { Some(Role::Owner) } else { self.roles.get(&course).copied() }
    }

    /// Whether this actor holds `role` (or a stronger one) in `course`.
    pub fn can(&self, course: i64, role: Role) -> bool {
        self.role_in(course).is_some_and(|r| r >= role)
    }

    /// The courses where this actor holds at least `role`; `None` means every course.
    pub fn courses_with(&self, role: Role) -> Option<Vec<i64>> {
        match (&self.only, self.admin) {
            (None, true) => None,
            (Some(only), true) => Some(only.clone()),
            (only, false) => Some(
                self.roles
                    .iter()
                    .filter(|(c, r)| **r >= role && only.as_ref().is_none_or(|o| o.contains(c)))
                    .map(|(c, _)| *c)
                    .collect(),
            ),
        }
    }

    /// Refuses unless this actor is an institution admin (and not a token narrowed to
    /// courses).
    pub fn require_admin(&self, what: &str) -> StoreResult<()> {
        if self.admin && self.only.is_none() {
            Ok(())
        } else {
            Err(StoreError::Forbidden(format!("only an institution admin may {what}")))
        }
    }

    /// Refuses unless this actor holds `role` (or a stronger one) in at least one course, or
    /// is an institution admin: for what belongs to the institution but serves every course,
    /// such as learners' feeds.
    pub fn require_some(&self, role: Role, what: &str) -> StoreResult<()> {
        match self.courses_with(role) {
            None => Ok(()),
            Some(cs) if !cs.is_empty() => Ok(()),
            Some(_) => Err(StoreError::Forbidden(format!(
                "only {} of a course (or an institution admin) may {what}",
                role.needs()
            ))),
        }
    }

    /// Refuses unless this actor holds `role` in `course`.
    pub fn require_course(&self, conn: &mut SqliteConnection, course: i64, role: Role, what: &str) -> StoreResult<()> {
        if self.can(course, role) {
            return Ok(());
        }
        let title = courses::get_course(conn, course).map(|c| c.title).unwrap_or_else(|_| format!("course {course}"));
        Err(refusal(role, what, &[title]))
    }

    /// Refuses unless this actor holds `role` in a course that includes the Task; returns
    /// that course (the first, in course order).
    pub fn require_task(
        &self,
        conn: &mut SqliteConnection,
        task: i64,
        role: Role,
        what: &str,
    ) -> StoreResult<Option<i64>> {
        let places = courses::places_of_task(conn, task)?;
        if places.is_empty() {
            // A task in no course yet: its editors are the admins.
            return if self.admin && self.only.is_none() { Ok(None) } else { Err(refusal(role, what, &[])) };
        }
        if let Some((c, _)) = places.iter().find(|(c, _)| self.can(c.id, role)) {
            return Ok(Some(c.id));
        }
        let mut titles: Vec<String> = places.into_iter().map(|(c, _)| c.title).collect();
        titles.dedup();
        Err(refusal(role, what, &titles))
    }

    /// Refuses unless this actor holds `role` in a course that includes the module.
    pub fn require_module(&self, conn: &mut SqliteConnection, module: i64, role: Role, what: &str) -> StoreResult<()> {
        let courses = courses::courses_of_module(conn, module)?;
        if courses.is_empty() {
            return if self.admin && self.only.is_none() { Ok(()) } else { Err(refusal(role, what, &[])) };
        }
        if courses.iter().any(|c| self.can(c.id, role)) {
            return Ok(());
        }
        Err(refusal(role, what, &courses.into_iter().map(|c| c.title).collect::<Vec<_>>()))
    }
}

/// "an editor of Open Learning may revoke this award".
fn refusal(role: Role, what: &str, courses: &[String]) -> StoreError {
    let needs = role.needs();
    StoreError::Forbidden(match courses {
        [] => format!("only an institution admin may {what}"),
        [one] => format!("only {needs} of {one} (or an institution admin) may {what}"),
        many => format!("only {needs} of {} (or an institution admin) may {what}", many.join(" or ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(admin: bool, roles: &[(i64, Role)]) -> Actor {
        Actor {
            instructor_id: Some(1),
            name: "x@example.edu".into(),
            admin,
            roles: roles.iter().copied().collect(),
            only: None,
            surface: Surface::Web,
            client: None,
        }
    }

    #[test]
    fn roles_include_the_weaker_ones_and_admins_hold_every_course_unless_a_token_narrows_them() {
        let reviewer = actor(false, &[(1, Role::Reviewer), (2, Role::Owner)]);
        assert!(reviewer.can(1, Role::Reviewer) && !reviewer.can(1, Role::Editor));
        assert!(reviewer.can(2, Role::Editor) && !reviewer.can(3, Role::Reviewer));
        assert_eq!(reviewer.courses_with(Role::Editor), Some(vec![2]));
        let narrowed = reviewer.clone().narrowed(vec![1]);
        assert!(!narrowed.can(2, Role::Reviewer), "a token for course 1 cannot act in course 2");
        let admin = actor(true, &[]);
        assert!(admin.can(9, Role::Owner) && admin.courses_with(Role::Owner).is_none());
        assert!(admin.require_admin("rotate keys").is_ok());
        let admin_token = admin.narrowed(vec![9]);
        assert!(admin_token.can(9, Role::Owner) && !admin_token.can(8, Role::Reviewer));
        assert!(admin_token.require_admin("rotate keys").is_err(), "a course token is no admin");
        assert!(Role::parse("Editor").is_ok() && Role::parse("boss").unwrap_err().contains("owner, editor"));
    }
}
