use crate::helpers::{location, png, spawn_app, start};

#[tokio::test]
async fn course_module_and_task_round_trip_through_the_pages() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Networks of Learning").await;
    let public = app.get_html("/courses/networks-of-learning").await;
    assert!(public.contains("Networks of Learning"));

    let res = app
        .post_form(
            &format!("/admin/courses/{course}"),
            &[("title", "Networks of Learning 2"), ("description", "Edited")],
        )
        .await;
    assert_eq!(res.status(), 303);
    let public = app.get_html("/courses/networks-of-learning").await;
    assert!(public.contains("Networks of Learning 2") && public.contains("Edited"), "slug stays, title changes");

    let week1 = app.create_module(course, "Week 1").await;
    let week2 = app.create_module(course, "Week 2").await;
    let res = app.create_task(week1, "Introduce yourself", "#nol-intro").await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let res = app.create_task(week2, "Map your network", "#nol-map").await;
    assert_eq!(res.status(), 303);

    let public = app.get_html("/courses/networks-of-learning").await;
    let (w1, w2) = (public.find("Week 1").unwrap(), public.find("Week 2").unwrap());
    assert!(w1 < w2);
    assert!(public.contains("#nol-intro") && public.contains("/tasks/nol-intro"));

    // Reorder: Week 2 first.
    let res = app.post_form(&format!("/admin/courses/{course}/modules/{week2}/move"), &[("dir", "up")]).await;
    assert_eq!(res.status(), 303);
    let public = app.get_html("/courses/networks-of-learning").await;
    assert!(public.find("Week 2").unwrap() < public.find("Week 1").unwrap(), "reordered");

    // Task page renders criteria Markdown safely and shows where it belongs.
    let task_page = app.get_html("/tasks/nol-intro").await;
    assert!(task_page.contains("<strong>Post</strong>"));
    assert!(task_page.contains("Week 1"));
    let badge = app.get("/tasks/nol-intro/badge").await;
    assert_eq!(badge.headers()["content-type"], "image/svg+xml");
    assert!(badge.text().await.unwrap().contains("Introduce yourself"));

    // Edit the task: new title and hashtag.
    let mut conn = app.pool.get().unwrap();
    let task = cairn::db::courses::get_task_by_slug(&mut conn, "nol-intro").unwrap();
    drop(conn);
    let res = app
        .post_multipart(
            &format!("/admin/tasks/{}", task.id),
            &[("title", "Say hello"), ("hashtag", "#nol-hello"), ("description", ""), ("criteria", "Hi")],
            "badge",
            None,
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.get("/tasks/nol-intro").await.status(), 404);
    assert!(app.get_html("/tasks/nol-hello").await.contains("Say hello"));

    // Deleting a non-empty module or course is refused and nothing is lost.
    let res = app.post_form(&format!("/admin/modules/{week1}/delete"), &[]).await;
    assert_eq!(res.status(), 409);
    assert!(res.text().await.unwrap().contains("still has 1 task"));
    let res = app.post_form(&format!("/admin/courses/{course}/delete"), &[]).await;
    assert_eq!(res.status(), 409);
    assert!(app.get_html("/tasks/nol-hello").await.contains("Say hello"));

    // Delete the task, then the module, then detach the other module and delete the course.
    assert_eq!(app.post_form(&format!("/admin/tasks/{}/delete", task.id), &[]).await.status(), 303);
    assert_eq!(app.get("/tasks/nol-hello").await.status(), 404);
    assert_eq!(app.post_form(&format!("/admin/modules/{week1}/delete"), &[]).await.status(), 303);
    assert_eq!(app.post_form(&format!("/admin/courses/{course}/modules/{week2}/detach"), &[]).await.status(), 303);
    assert_eq!(app.post_form(&format!("/admin/courses/{course}/delete"), &[]).await.status(), 303);
    assert_eq!(app.get("/courses/networks-of-learning").await.status(), 404);
    // The detached module and its task survive.
    assert!(app.get_html("/tasks/nol-map").await.contains("Map your network"));
}

#[tokio::test]
async fn a_module_can_be_shared_by_two_courses_and_tasks_reordered() {
    let app = spawn_app().await;
    app.login().await;
    let a = app.create_course("Course A").await;
    let b = app.create_course("Course B").await;
    let shared = app.create_module(a, "Shared module").await;
    assert_eq!(
        app.post_form(&format!("/admin/courses/{b}/modules/attach"), &[("module_id", &shared.to_string())])
            .await
            .status(),
        303
    );
    assert_eq!(app.create_task(shared, "First", "#t-first").await.status(), 303);
    assert_eq!(app.create_task(shared, "Second", "#t-second").await.status(), 303);
    for slug in ["course-a", "course-b"] {
        let page = app.get_html(&format!("/courses/{slug}")).await;
        assert!(
            page.contains("Shared module") && page.find(">First<").unwrap() < page.find(">Second<").unwrap(),
            "{slug}: {page}"
        );
    }
    let mut conn = app.pool.get().unwrap();
    let second = cairn::db::courses::get_task_by_slug(&mut conn, "t-second").unwrap();
    drop(conn);
    let res = app
        .post_form(
            &format!("/admin/modules/{shared}/tasks/{}/move", second.id),
            &[("dir", "up"), ("back", &format!("/admin/courses/{a}"))],
        )
        .await;
    assert_eq!(location(&res), format!("/admin/courses/{a}"), "{:?}", res.text().await);
    let page = app.get_html("/courses/course-b").await;
    assert!(page.find(">Second<").unwrap() < page.find(">First<").unwrap());
    // Courses reorder too.
    assert_eq!(app.post_form(&format!("/admin/courses/{b}/move"), &[("dir", "up")]).await.status(), 303);
    let home = app.get_html("/").await;
    assert!(home.find("Course B").unwrap() < home.find("Course A").unwrap());
}

#[tokio::test]
async fn duplicate_and_malformed_hashtags_are_rejected_with_the_form_refilled() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Tags").await;
    let module = app.create_module(course, "M").await;
    assert_eq!(app.create_task(module, "One", "#tags-one").await.status(), 303);

    let res = app.create_task(module, "Another one", "#tags-one").await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("already used by the task"), "{body}");
    assert!(body.contains("value=\"Another one\""), "title kept");
    assert!(body.contains("aria-invalid=\"true\" aria-describedby=\"e-hashtag\""));

    for bad in ["tags-two", "#Tags", "#has space", "#x", "#ünï", "#trailing-"] {
        let res = app.create_task(module, "Bad tag", bad).await;
        assert_eq!(res.status(), 422, "{bad}");
        let body = res.text().await.unwrap();
        assert!(body.contains("e-hashtag"), "{bad}");
    }
    // An empty title is reported next to its own field.
    let res = app.create_task(module, "  ", "#tags-three").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("the title is required"));

    let mut conn = app.pool.get().unwrap();
    assert_eq!(cairn::db::courses::list_tasks(&mut conn).unwrap().len(), 1, "nothing bad was stored");
}

#[tokio::test]
async fn badge_uploads_accept_png_and_svg_and_refuse_anything_else() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Art").await;
    let module = app.create_module(course, "M").await;
    let fields = [("title", "Drawn"), ("hashtag", "#art-drawn"), ("description", ""), ("criteria", "")];
    let path = format!("/admin/modules/{module}/tasks");

    for (bytes, name, why) in [
        (b"GIF89a not really".to_vec(), "x.png", "GIF"),
        (b"just some text".to_vec(), "x.svg", "neither a PNG nor an SVG"),
        (
            b"<!DOCTYPE svg [<!ENTITY a \"a\">]><svg xmlns=\"http://www.w3.org/2000/svg\">&a;</svg>".to_vec(),
            "x.svg",
            "DTD",
        ),
        (png(4000, 40), "big.png", "pixels"),
        (png(64, 64)[..100].to_vec(), "cut.png", "PNG"),
    ] {
        let res = app.post_multipart(&path, &fields, "badge", Some((bytes, name))).await;
        assert_eq!(res.status(), 422, "{why}");
        let body = res.text().await.unwrap();
        assert!(body.contains(why), "{why}: {body}");
        assert!(body.contains("value=\"#art-drawn\""), "hashtag kept");
    }
    let mut conn = app.pool.get().unwrap();
    assert!(cairn::db::courses::list_tasks(&mut conn).unwrap().is_empty());
    drop(conn);

    let image = png(128, 128);
    let res = app.post_multipart(&path, &fields, "badge", Some((image.clone(), "badge.png"))).await;
    assert_eq!(res.status(), 303);
    let res = app.get("/tasks/art-drawn/badge").await;
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().to_vec(), image);

    // Replace with an SVG, then go back to the generated badge.
    let mut conn = app.pool.get().unwrap();
    let task = cairn::db::courses::get_task_by_slug(&mut conn, "art-drawn").unwrap();
    drop(conn);
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><circle r=\"5\" fill=\"red\"/></svg>"
        .to_vec();
    let res =
        app.post_multipart(&format!("/admin/tasks/{}", task.id), &fields, "badge", Some((svg.clone(), "b.svg"))).await;
    assert_eq!(res.status(), 303);
    let res = app.get("/tasks/art-drawn/badge").await;
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    assert!(res.headers()["content-security-policy"].to_str().unwrap().contains("sandbox"));
    // Stored as Cairn rewrote it: the same drawing, written out by usvg.
    let stored = res.text().await.unwrap();
    assert!(stored.contains("<path") && stored.contains("#ff0000"), "{stored}");
    let mut with_default = fields.to_vec();
    with_default.push(("use_default_badge", "1"));
    let res = app.post_multipart(&format!("/admin/tasks/{}", task.id), &with_default, "badge", None).await;
    assert_eq!(res.status(), 303);
    let body = app.get("/tasks/art-drawn/badge").await.text().await.unwrap();
    assert!(body.contains("Drawn") && body.contains("Art"), "generated badge names task and course");
}

#[tokio::test]
async fn data_survives_a_restart() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Persistent").await;
    let module = app.create_module(course, "Kept").await;
    assert_eq!(app.create_task(module, "Still here", "#kept-task").await.status(), 303);
    let (dir, _guard) = app.stop().await;
    assert!(dir.join("cairn.db").exists());

    let app = start(&dir).await;
    assert!(app.get_html("/courses/persistent").await.contains("Kept"));
    assert!(app.get_html("/tasks/kept-task").await.contains("Still here"));
    // The instructor and session key survive as well.
    app.login().await;
    assert_eq!(app.get("/admin").await.status(), 200);
}

/// Text in uploaded artwork is drawn whatever family it names: generic families and families
/// the machine lacks fall back to the bundled DejaVu faces, so the baked PNG keeps the words.
#[tokio::test]
async fn uploaded_svg_text_in_any_family_stays_in_the_baked_badge() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Type").await;
    let module = app.create_module(course, "M").await;
    let circle = "<circle cx=\"100\" cy=\"100\" r=\"90\" fill=\"#224488\"/>";
    let svg = |text: &str| {
        format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"200\">{circle}{text}</svg>")
            .into_bytes()
    };
    let text = |family: &str| {
        format!(
            "<text x=\"100\" y=\"110\" font-family=\"{family}\" font-size=\"40\" fill=\"#ffffff\" \
             text-anchor=\"middle\">Data</text>"
        )
    };
    let cases = [
        ("bare", svg("")),
        ("sans", svg(&text("sans-serif"))),
        ("serif", svg(&text("serif"))),
        ("missing", svg(&text("No Such Family, Another Missing One"))),
    ];
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let mut pixels = std::collections::HashMap::new();
    for (name, bytes) in cases {
        let hashtag = format!("#type-{name}");
        let fields = [("title", name), ("hashtag", hashtag.as_str()), ("description", ""), ("criteria", "")];
        let res = app
            .post_multipart(&format!("/admin/modules/{module}/tasks"), &fields, "badge", Some((bytes, "b.svg")))
            .await;
        assert_eq!(res.status(), 303, "{name}");
        let shown = app.get_html(&location(&res)).await;
        assert!(!shown.contains("could not be drawn"), "{name}: no warning expected: {shown}");
        let mut conn = app.pool.get().unwrap();
        let req = cairn::app::award::HashtagAward {
            task: hashtag.clone(),
            recipient: "lin@example.edu".into(),
            evidence: "https://lin.example.org/data".into(),
            ..Default::default()
        };
        let award = cairn::app::award::award_by_hashtag(&mut conn, &issuer, &req, cairn::clock::system_now()).unwrap();
        drop(conn);
        let res = app.get(&format!("/assertions/{}/badge.png", award.public_id)).await;
        assert_eq!(res.status(), 200);
        let png = res.bytes().await.unwrap();
        let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap().to_rgba8();
        pixels.insert(name, img);
    }
    let bare = &pixels["bare"];
    for name in ["sans", "serif", "missing"] {
        let img = &pixels[name];
        assert_eq!(img.dimensions(), bare.dimensions());
        // White letters on the blue disc: many pixels turn light where the bare disc has none.
        let lettered = img.pixels().zip(bare.pixels()).filter(|(a, b)| a[0] > 200 && b[0] < 100).count();
        assert!(lettered > 300, "{name}: only {lettered} pixels of text drawn");
    }
}

/// Text that cannot be drawn is stored without it, and the instructor is told so.
#[tokio::test]
async fn uploaded_svg_text_that_cannot_be_drawn_is_reported() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Type").await;
    let module = app.create_module(course, "M").await;
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"200\">\
        <circle cx=\"100\" cy=\"100\" r=\"90\" fill=\"#224488\"/>\
        <text x=\"100\" y=\"110\" font-size=\"0\">Hidden</text></svg>"
        .to_vec();
    let fields = [("title", "Hidden"), ("hashtag", "#type-hidden"), ("description", ""), ("criteria", "")];
    let res =
        app.post_multipart(&format!("/admin/modules/{module}/tasks"), &fields, "badge", Some((svg, "b.svg"))).await;
    assert_eq!(res.status(), 303);
    let shown = app.get_html(&location(&res)).await;
    assert!(shown.contains("1 text element(s) could not be drawn"), "{shown}");
}

/// The UTC date `days` from now, `YYYY-MM-DD` (a new course's time zone is UTC).
fn utc_day(days: i64) -> String {
    let t = chrono::DateTime::from_timestamp(cairn::clock::system_now() + days * 86_400, 0).unwrap();
    t.format("%Y-%m-%d").to_string()
}

/// The UTC date `days` from now as pages write it ("7 December 2026").
fn read_day(days: i64) -> String {
    let t = chrono::DateTime::from_timestamp(cairn::clock::system_now() + days * 86_400, 0).unwrap();
    t.format("%-d %B %Y").to_string()
}

/// The modules the course page marks as current, by their titles.
fn marked_current(page: &str) -> Vec<String> {
    page.split("<h2>")
        .skip(1)
        .filter_map(|rest| {
            let h2 = &rest[..rest.find("</h2>").unwrap()];
            h2.strip_suffix(" <span class=\"badge-current\">current module</span>").map(str::to_string)
        })
        .collect()
}

#[tokio::test]
async fn start_dates_and_the_named_current_module_mark_the_course_page_and_a_bad_date_is_refused_at_its_field() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Timed Course").await;
    let week1 = app.create_module(course, "Week 1").await;
    let week2 = app.create_module(course, "Week 2").await;
    let week3 = app.create_module(course, "Week 3").await;
    // No dates yet: the first module is current, never the one added last.
    let public = app.get_html("/courses/timed-course").await;
    assert_eq!(marked_current(&public), ["Week 1"], "{public}");

    // A date that does not exist is refused next to its field, and what was typed stays.
    let form = app.get_html(&format!("/admin/modules/{week2}")).await;
    assert!(form.contains(r#"name="starts_on" type="date""#), "{form}");
    let res = app
        .post_form(
            &format!("/admin/modules/{week2}"),
            &[("title", "Week 2"), ("description", ""), ("starts_on", "2026-02-30")],
        )
        .await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    let field = &page[page.find("id=\"f-starts_on\"").unwrap()..];
    let field = &field[..field.find("</div>").unwrap()];
    assert!(field.contains("value=\"2026-02-30\"") && field.contains("aria-invalid=\"true\""), "{field}");
    assert!(
        field.contains(r#"<p class="error" id="e-starts_on" role="alert">&#39;2026-02-30&#39; is not a date like"#)
            || field.contains(r#"<p class="error" id="e-starts_on" role="alert">'2026-02-30' is not a date like"#),
        "{field}"
    );
    assert_eq!(cairn::db::courses::get_module(&mut app.pool.get().unwrap(), week2).unwrap().starts_on, None);

    // Week 1 started a week ago, Week 2 yesterday, Week 3 starts next week: Week 2 is current.
    for (module, title, day) in
        [(week1, "Week 1", utc_day(-7)), (week2, "Week 2", utc_day(-1)), (week3, "Week 3", utc_day(7))]
    {
        let res = app
            .post_form(
                &format!("/admin/modules/{module}"),
                &[("title", title), ("description", ""), ("starts_on", &day)],
            )
            .await;
        assert_eq!(res.status(), 303, "{title}");
    }
    let public = app.get_html("/courses/timed-course").await;
    assert_eq!(marked_current(&public), ["Week 2"], "{public}");
    let (iso, read) = (utc_day(7), read_day(7));
    assert!(public.contains(&format!("Starts <time datetime=\"{iso}\">{read}</time>")), "{public}");
    let admin = app.get_html(&format!("/admin/courses/{course}")).await;
    assert!(admin.contains(&format!("starts <time datetime=\"{iso}\">{read}</time>")), "{admin}");
    assert!(admin.contains(&format!("Today ({}, UTC)", read_day(0))), "{admin}");
    assert!(admin.contains("<option value=\"auto\" selected>Automatic: by start dates</option>"), "{admin}");
    assert!(admin.contains("the current module is <strong>Week 2</strong> (by start dates)"), "{admin}");

    // The instructor names Week 3 (not started yet) as current.
    let res =
        app.post_form(&format!("/admin/courses/{course}/current-module"), &[("current_module", "nonsense")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("id=\"e-current_module\""));
    let res = app
        .post_form(&format!("/admin/courses/{course}/current-module"), &[("current_module", &week3.to_string())])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(marked_current(&app.get_html("/courses/timed-course").await), ["Week 3"]);
    let admin = app.get_html(&format!("/admin/courses/{course}")).await;
    assert!(admin.contains(&format!("<option value=\"{week3}\" selected>Week 3</option>")), "{admin}");
    assert!(admin.contains("<strong>Week 3</strong> (chosen by you)"), "{admin}");

    // Taken out of the course, it is no longer current: back to start dates.
    assert_eq!(app.post_form(&format!("/admin/courses/{course}/modules/{week3}/detach"), &[]).await.status(), 303);
    assert_eq!(marked_current(&app.get_html("/courses/timed-course").await), ["Week 2"]);
    let outline = cairn::db::courses::outline(&mut app.pool.get().unwrap(), course).unwrap();
    assert_eq!(outline.current_module_id, None);
    // A module of another course cannot be named.
    let res = app
        .post_form(&format!("/admin/courses/{course}/current-module"), &[("current_module", &week3.to_string())])
        .await;
    assert_eq!(res.status(), 404);

    // A module added with a start date: refused next to the field when the date is wrong; of two
    // modules starting the same day, the later in the course's order is current.
    let create = format!("/admin/courses/{course}/modules");
    let res = app.post_form(&create, &[("title", "Week 4"), ("description", ""), ("starts_on", "1 Dec 2026")]).await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"<p class="error" id="me-starts_on" role="alert">"#), "{page}");
    assert!(page.contains(r#"value="1 Dec 2026""#), "what was typed stays: {page}");
    let yesterday = utc_day(-1);
    let res = app.post_form(&create, &[("title", "Week 4"), ("description", ""), ("starts_on", &yesterday)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(marked_current(&app.get_html("/courses/timed-course").await), ["Week 4"]);
}

/// The course page leads with "Join with your blog", then the modules with their tasks, then
/// the newsletter; public pages have "Chain" in their footer, not in the top navigation.
#[tokio::test]
async fn the_course_page_leads_with_joining_and_the_chain_link_sits_in_the_footer() {
    let app = crate::helpers::spawn_app().await;
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    let slug = cairn::demo::DEMO_SLUG;
    let course = format!("/courses/{slug}");
    let page = app.get_html(&course).await;
    let at = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("no {needle}: {page}"));
    let join = at(&format!("<a class=\"button\" href=\"/join?course={slug}\">Join with your blog</a>"));
    let modules = at("<ol class=\"modules\">");
    let newsletter = at("id=\"newsletter-form\"");
    assert!(join < modules && modules < newsletter, "join, modules, newsletter: {page}");
    assert!(page[modules..newsletter].contains("class=\"hashtag\">#el30-"), "the modules hold the tasks: {page}");
    for path in ["/", course.as_str(), "/institution", "/join", "/chain"] {
        let page = app.get_html(path).await;
        let header = page.split("</header>").next().unwrap();
        let footer = page.split("<footer").nth(1).unwrap_or_else(|| panic!("{path}: no footer: {page}"));
        assert!(!header.contains("href=\"/chain\""), "{path}: Chain is not in the top navigation: {header}");
        assert!(footer.contains("<a href=\"/chain\">"), "{path}: Chain is in the footer: {footer}");
    }
}
