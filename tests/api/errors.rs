use crate::helpers::spawn_app;

#[tokio::test]
async fn unknown_pages_are_html_for_browsers_and_json_for_scripts() {
    let app = spawn_app().await;
    let res = app.client.get(app.url("/no/such/page")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(res.text().await.unwrap().contains("404"));

    let res = app.client.get(app.url("/courses/missing")).header("accept", "application/json").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], 404);
    assert_eq!(body["error"]["message"], "course not found");
}

#[tokio::test]
async fn malformed_requests_get_a_clear_error_not_a_crash() {
    let app = spawn_app().await;
    app.login().await;
    // A move with a bogus direction: the form cannot be read.
    let course = app.create_course("Errors").await;
    let res = app
        .client
        .post(app.url(&format!("/admin/courses/{course}/move")))
        .header("accept", "application/json")
        .form(&[("csrf_token", app.csrf().await.as_str()), ("dir", "sideways")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("form could not be read"));
    // A non-numeric id in a path.
    let res = app.get("/admin/courses/abc").await;
    assert_eq!(res.status(), 404);
    // The server is still fine.
    assert_eq!(app.get("/health").await.status(), 200);
}

#[tokio::test]
async fn a_course_title_that_is_too_long_is_reported_next_to_the_field() {
    let app = spawn_app().await;
    app.login().await;
    let long = "x".repeat(201);
    let res = app.post_form("/admin/courses", &[("title", long.as_str()), ("description", "kept text")]).await;
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("at most 200 characters"));
    assert!(body.contains("kept text"), "the description typed is still there");
}
