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
