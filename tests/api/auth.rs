use crate::helpers::{EMAIL, PASSWORD, location, spawn_app};

#[tokio::test]
async fn instructor_pages_redirect_to_login_when_signed_out() {
    let app = spawn_app().await;
    for path in [
        "/admin",
        "/admin/courses/1",
        "/admin/modules/1",
        "/admin/tasks/1",
        "/admin/institution",
        "/admin/modules/1/tasks/new",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert!(location(&res).starts_with("/login?next=%2Fadmin"), "{path} -> {}", location(&res));
    }
    // A state-changing request while signed out changes nothing.
    let res = app.post_form("/admin/courses", &[("title", "Sneaky")]).await;
    assert_eq!(res.status(), 303);
    let mut conn = app.pool.get().unwrap();
    assert!(cairn::db::courses::list_courses(&mut conn).unwrap().is_empty());
}

#[tokio::test]
async fn login_needs_the_right_password_and_returns_to_the_page_asked_for() {
    let app = spawn_app().await;
    let res = app.login_as(EMAIL, "wrong password!").await;
    assert_eq!(res.status(), 401);
    let body = res.text().await.unwrap();
    assert!(body.contains("do not match"), "{body}");
    assert!(body.contains(EMAIL), "the typed email is kept");
    assert_eq!(app.get("/admin").await.status(), 303);

    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "ADA@example.edu"),
            ("password", PASSWORD),
            ("next", "/admin/institution"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "/admin/institution");
    assert_eq!(app.get("/admin").await.status(), 200);
}

#[tokio::test]
async fn login_never_redirects_off_site() {
    let app = spawn_app().await;
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD), ("next", "//evil.example/x")])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&res), "/admin");
}

#[tokio::test]
async fn the_session_cookie_is_httponly_samesite_lax_and_signed() {
    let app = spawn_app().await;
    let csrf = app.csrf().await;
    let res = app
        .client
        .post(app.url("/login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", EMAIL), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let cookie = res.headers().get("set-cookie").expect("session cookie").to_str().unwrap().to_string();
    assert!(cookie.starts_with("cairn_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    // A forged cookie claiming to be signed in is ignored.
    let value = cookie.split(';').next().unwrap().trim_start_matches("cairn_session=");
    let forged = value.replace("instructor_id", "instructor_iD");
    let other = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = other.get(app.url("/admin")).header("cookie", format!("cairn_session={forged}")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let res = other.get(app.url("/admin")).header("cookie", format!("cairn_session={value}")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the genuine cookie works");
}

#[tokio::test]
async fn forms_without_or_with_a_wrong_csrf_token_are_refused() {
    let app = spawn_app().await;
    app.login().await;
    let res = app.client.post(app.url("/admin/courses")).form(&[("title", "No token")]).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .post(app.url("/admin/courses"))
        .form(&[("title", "Wrong token"), ("csrf_token", &"0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("CSRF"));
    // Multipart forms too.
    let form = reqwest::multipart::Form::new().text("title", "x").text("hashtag", "#no-token");
    let course = app.create_course("Tokens").await;
    let module = app.create_module(course, "M").await;
    let res = app.client.post(app.url(&format!("/admin/modules/{module}/tasks"))).multipart(form).send().await.unwrap();
    assert_eq!(res.status(), 403);
    // Logout and login need it as well.
    let res = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res =
        app.client.post(app.url("/login")).form(&[("email", EMAIL), ("password", PASSWORD)]).send().await.unwrap();
    assert_eq!(res.status(), 403);

    let mut conn = app.pool.get().unwrap();
    let titles: Vec<String> =
        cairn::db::courses::list_courses(&mut conn).unwrap().into_iter().map(|c| c.title).collect();
    assert_eq!(titles, vec!["Tokens".to_string()]);
    assert!(cairn::db::courses::list_tasks(&mut conn).unwrap().is_empty());
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_per_account() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(app.login_as(EMAIL, "not the password").await.status(), 401);
    }
    // Now even the right password must wait.
    let res = app.login_as(EMAIL, PASSWORD).await;
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers().get("retry-after").expect("Retry-After").to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    // Another account from the same address is not locked yet.
    let mut conn = app.pool.get().unwrap();
    cairn::db::instructors::create(&mut conn, "grace@example.edu", PASSWORD).unwrap();
    drop(conn);
    assert_eq!(app.login_as("grace@example.edu", PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    app.login().await;
    assert_eq!(app.get("/admin").await.status(), 200);
    let res = app.post_form("/logout", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.get("/admin").await.status(), 303);
}
