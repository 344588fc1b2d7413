use crate::helpers::{png, spawn_app};

#[tokio::test]
async fn the_institution_profile_is_editable_and_public() {
    let app = spawn_app().await;
    let page = app.get_html("/institution").await;
    assert!(page.contains("Test University"), "named from the configuration on first start");

    app.login().await;
    let fields = [
        ("name", "Open University of Cairns"),
        ("url", "https://cairns.example.edu/"),
        ("email", "badges@cairns.example.edu"),
        ("description", "We recognise learning wherever it happens."),
    ];
    let res = app.post_multipart("/admin/institution", &fields, "image", Some((png(96, 96), "logo.png"))).await;
    assert_eq!(res.status(), 303);
    let public = reqwest::get(app.url("/institution")).await.unwrap().text().await.unwrap();
    for (_, v) in fields {
        assert!(public.contains(v), "{v}");
    }
    let logo = reqwest::get(app.url("/institution/image")).await.unwrap();
    assert_eq!(logo.headers()["content-type"], "image/png");

    let bad = [("name", ""), ("url", "javascript:alert(1)"), ("email", "nobody"), ("description", "d")];
    let res =
        app.post_multipart("/admin/institution", &bad, "image", Some((b"MZ\x90\x00 exe".to_vec(), "x.png"))).await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    for id in ["e-name", "e-url", "e-email", "e-image"] {
        assert!(body.contains(id), "{id}");
    }
    let public = reqwest::get(app.url("/institution")).await.unwrap().text().await.unwrap();
    assert!(public.contains("Open University of Cairns"), "nothing changed");
}

/// The institution page lists its courses, each with the badges its tasks offer.
#[tokio::test]
async fn the_institution_page_lists_its_courses_and_badges() {
    let app = spawn_app().await;
    let empty = app.get_html("/institution").await;
    assert!(empty.contains("No courses yet."), "{empty}");
    cairn::demo::seed(&mut app.pool.get().unwrap()).unwrap();
    let page = app.get_html("/institution").await;
    assert!(page.contains("<h2 id=\"courses-h\">Courses and badges</h2>"), "{page}");
    assert!(page.contains("href=\"/courses/e-learning-3-0\">E-Learning 3.0</a>"), "{page}");
    for tag in ["el30-data", "el30-cloud", "el30-conclusion"] {
        assert!(page.contains(&format!("src=\"/tasks/{tag}/badge\"")), "the badge of #{tag}");
        assert!(page.contains(&format!("<code class=\"hashtag\">#{tag}</code>")), "#{tag}");
    }
}

/// The issuer profile comes first: until it has a name, a web address and a contact email,
/// the dashboard asks for it and the first award is refused with the way to the form; the
/// command line shows and completes it.
#[tokio::test]
async fn the_first_award_waits_for_a_complete_issuer_profile() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Profile first").await;
    let module = app.create_module(course, "M").await;
    assert_eq!(app.create_task(module, "Data", "#profile-data").await.status(), 303);
    // An instance as it starts: the name from the settings, nothing else.
    let blank = cairn::app::institution::InstitutionForm { name: "Test University".into(), ..Default::default() };
    cairn::app::institution::update(&mut app.pool.get().unwrap(), &blank, None, 0).unwrap();

    let dashboard = app.get_html("/admin").await;
    assert!(dashboard.contains("The institution profile lacks a web address and a contact email"), "{dashboard}");
    assert!(dashboard.contains("href=\"/admin/institution\""), "{dashboard}");

    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#profile-data".into(),
        recipient: "lin@example.edu".into(),
        evidence: "https://lin.example.org/data".into(),
        ..Default::default()
    };
    let award = |conn: &mut diesel::SqliteConnection| {
        cairn::app::award::award_by_hashtag(conn, &issuer, &req, cairn::clock::system_now())
    };
    let refused = award(&mut app.pool.get().unwrap()).unwrap_err();
    let words = cairn::app::award::refusal_text(&refused);
    assert!(words.contains("Complete the institution profile before the first award"), "{words}");
    assert!(words.contains("/admin/institution"), "{words}");
    assert_eq!(cairn::db::awards::count(&mut app.pool.get().unwrap()).unwrap(), 0);

    // The command line names what is missing, then completes the profile.
    let data = app.data_dir.clone();
    let out = crate::helpers::cairn_cmd().args(["admin", "institution", "--data-dir"]).arg(&data).output().unwrap();
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("Before the first award, give it a web address and a contact email."), "{shown}");
    let out = crate::helpers::cairn_cmd()
        .args(["admin", "institution", "--url", "https://tu.example.edu/", "--email", "badges@tu.example.edu"])
        .arg("--data-dir")
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("https://tu.example.edu/") && !shown.contains("Before the first award"), "{shown}");

    award(&mut app.pool.get().unwrap()).expect("awarded once the profile is complete");
    assert!(!app.get_html("/admin").await.contains("The institution profile lacks"));
}

/// The Reader's award form meets the same rule: the refusal page links the profile form (a
/// JSON client reads its address), and the Reader asks for the profile as the dashboard does.
#[tokio::test]
async fn the_web_award_refusal_links_the_profile_form_and_the_reader_asks_for_it() {
    let (app, _server, post) = crate::badges::app_with_post().await;
    let blank = cairn::app::institution::InstitutionForm { name: "Test University".into(), ..Default::default() };
    cairn::app::institution::update(&mut app.pool.get().unwrap(), &blank, None, 0).unwrap();

    let reader = app.get_html("/admin/reader").await;
    assert!(reader.contains("The institution profile lacks a web address and a contact email"), "{reader}");
    assert!(reader.contains("<a href=\"/admin/institution\">Complete the institution profile</a>"), "{reader}");

    let task = crate::badges::task_id(&app, "el30-data").to_string();
    let fields = [("link_id", post.to_string()), ("task_id", task), ("back", "/admin/reader".to_string())];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let res = app.post_form("/admin/reader/award", &fields).await;
    assert_eq!(res.status(), 409);
    let page = res.text().await.unwrap();
    assert!(page.contains("Complete the institution profile before the first award"), "{page}");
    assert!(page.contains("<a href=\"/admin/institution\">Complete the institution profile</a>"), "a link: {page}");
    assert!(!page.contains("Complete it at"), "no bare address to copy: {page}");

    let csrf = app.csrf().await;
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(&fields);
    let res = app
        .client
        .post(app.url("/admin/reader/award"))
        .header("accept", "application/json")
        .form(&all)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(
        doc["error"]["message"].as_str().unwrap().ends_with("Complete the institution profile: /admin/institution")
    );
    assert_eq!(cairn::db::awards::count(&mut app.pool.get().unwrap()).unwrap(), 0);
}
