//! Serving the public Open Badges documents from memory: validators, caching headers, and
//! revocations and edits seen by the very next request, whichever process made them.

use std::io::Read as _;
use std::time::Duration;

use reqwest::header::HeaderMap;
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, spawn_app};

/// A server with the demo course and one award of `#el30-data`; returns the assertion's id.
pub async fn app_with_award() -> (TestApp, String) {
    let app = spawn_app().await;
    let mut c = app.pool.get().unwrap();
    cairn::demo::seed(&mut c).unwrap();
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#el30-data".into(),
        recipient: "lin@example.edu".into(),
        evidence: "https://lin.example.org/data".into(),
        ..Default::default()
    };
    let award = cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap();
    drop(c);
    (app, award.public_id)
}

/// A client that sends no `Accept-Encoding` of its own and keeps no cookies.
fn plain() -> reqwest::Client {
    cairn::net::install_crypto_provider();
    reqwest::Client::builder().no_gzip().no_brotli().no_deflate().timeout(Duration::from_secs(30)).build().unwrap()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (u16, HeaderMap, Vec<u8>) {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let (status, h) = (res.status().as_u16(), res.headers().clone());
    (status, h, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn documents_carry_strong_validators_and_caching_headers_and_answer_304() {
    let (app, id) = app_with_award().await;
    let client = plain();
    let url = app.url(&format!("/assertions/{id}"));

    let (status, h, body) = get(&client, &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "content-type"), "application/ld+json");
    assert_eq!(header(&h, "cache-control"), "public, max-age=60, must-revalidate");
    assert!(header(&h, "vary").contains("Accept"), "{h:?}");
    assert_eq!(header(&h, "access-control-allow-origin"), "*");
    let etag = header(&h, "etag").to_string();
    // Strong, and the hash of the bytes sent.
    assert_eq!(etag, format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]));
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["id"], url);

    let (status, h2, again) = get(&client, &url, &[]).await;
    assert_eq!((status, header(&h2, "etag"), &again), (200, etag.as_str(), &body));

    for validator in [etag.clone(), format!("W/{etag}"), format!("\"other\", {etag}"), "*".to_string()] {
        let (status, h, body) = get(&client, &url, &[("if-none-match", &validator)]).await;
        assert_eq!(status, 304, "{validator}");
        assert!(body.is_empty());
        assert_eq!(header(&h, "etag"), etag);
        assert_eq!(header(&h, "cache-control"), "public, max-age=60, must-revalidate");
    }
    let (status, _, _) = get(&client, &url, &[("if-none-match", "\"not-this-one\"")]).await;
    assert_eq!(status, 200);

    // The gzip form is another representation, with its own validator.
    let (status, h, zipped) = get(&client, &url, &[("accept-encoding", "gzip, br")]).await;
    assert_eq!((status, header(&h, "content-encoding")), (200, "gzip"));
    assert_ne!(header(&h, "etag"), etag);
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..]).read_to_end(&mut unzipped).unwrap();
    assert_eq!(unzipped, body);
    let (status, h, _) = get(&client, &url, &[("accept-encoding", "gzip;q=0")]).await;
    assert_eq!((status, header(&h, "etag")), (200, etag.as_str()));

    // BadgeClass and Issuer: negotiated too, kept longer (an edit revokes nothing).
    for path in ["/badges/el30-data", "/issuer"] {
        let (status, h, _) = get(&client, &app.url(path), &[]).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&h, "cache-control"), "public, max-age=300, must-revalidate", "{path}");
        assert!(header(&h, "vary").contains("Accept"), "{path}");
        let tag = header(&h, "etag").to_string();
        assert!(tag.starts_with('"'), "{path}: {tag}");
        let (status, _, body) = get(&client, &app.url(path), &[("if-none-match", &tag)]).await;
        assert_eq!((status, body.len()), (304, 0), "{path}");
    }
    let (status, h, _) = get(&client, &app.url("/issuer/revocations"), &[]).await;
    assert_eq!((status, header(&h, "cache-control")), (200, "public, max-age=60, must-revalidate"));

    // The page: per visitor (its form token), so private and revalidated each time.
    let browser = crate::helpers::client();
    let res =
        browser.get(&url).header("accept", "text/html").header("accept-encoding", "identity").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(header(&h, "cache-control"), "private, no-cache");
    assert!(header(&h, "vary").contains("Accept") && header(&h, "vary").contains("Cookie"), "{h:?}");
    assert!(header(&h, "link").contains("rel=\"webmention\""));
    let page = res.text().await.unwrap();
    let page_tag = header(&h, "etag").to_string();
    let res = browser
        .get(&url)
        .header("accept", "text/html")
        .header("accept-encoding", "identity")
        .header("if-none-match", &page_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    // Another visitor's page carries their own token, not the first one's.
    let other = crate::helpers::client();
    let other_page = other.get(&url).header("accept", "text/html").send().await.unwrap().text().await.unwrap();
    let (mine, theirs) = (crate::helpers::csrf_in(&page), crate::helpers::csrf_in(&other_page));
    assert_ne!(mine, theirs);
    assert_eq!(page.replace(&mine, ""), other_page.replace(&theirs, ""));
    let res = other.get(&url).header("accept", "text/html").header("if-none-match", &page_tag).send().await.unwrap();
    assert_eq!(res.status(), 200, "a validator of another visitor's page does not match");
    // And the token works.
    let res = browser
        .post(format!("{url}/check"))
        .form(&[("csrf_token", mine.as_str()), ("email", "lin@example.edu")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Yes: this badge was awarded to that address."));
}

#[tokio::test]
async fn cached_documents_are_served_without_the_store() {
    let (app, id) = app_with_award().await;
    let client = plain();
    let url = app.url(&format!("/assertions/{id}"));
    let (status, _, body) = get(&client, &url, &[]).await;
    assert_eq!(status, 200);
    // Every pooled connection taken: what is in memory is still served, what is not waits.
    let held: Vec<_> = (0..app.pool.max_size()).map(|_| app.pool.get().unwrap()).collect();
    let quick = reqwest::Client::builder().no_gzip().timeout(Duration::from_secs(2)).build().unwrap();
    let (status, _, again) = get(&quick, &url, &[]).await;
    assert_eq!((status, &again), (200, &body));
    let waiting = quick.get(app.url("/badges/el30-cloud")).send().await;
    assert!(waiting.is_err_and(|e| e.is_timeout()), "a document not yet in memory needs the store");
    drop(held);
}

#[tokio::test]
async fn revocations_and_edits_are_served_by_the_next_request_whichever_process_made_them() {
    let (app, id) = app_with_award().await;
    let client = plain();
    let url = app.url(&format!("/assertions/{id}"));
    let html = |c: &reqwest::Client| c.get(&url).header("accept", "text/html").send();
    let (_, h, _) = get(&client, &url, &[]).await;
    let before = header(&h, "etag").to_string();
    assert!(html(&client).await.unwrap().text().await.unwrap().contains("valid"));
    for path in ["/badges/el30-data", "/issuer", "/issuer/revocations"] {
        assert_eq!(get(&client, &app.url(path), &[]).await.0, 200);
    }

    // Another process revokes. Its commit is seen by requests starting `FRESH_FOR` (2 ms) after
    // the last reading of the generation, the request above; starting the command takes longer.
    let (dir, base, target) = (app.data_dir.clone(), app.address.clone(), url.clone());
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::cairn_cmd()
            .env("CAIRN_DATA_DIR", &dir)
            .env("CAIRN_BASE_URL", &base)
            .args(["revoke", &target, "--reason", "Plagiarised"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, h, body) = get(&client, &url, &[("if-none-match", &before)]).await;
    assert_eq!(status, 200, "the old validator no longer matches");
    assert_ne!(header(&h, "etag"), before);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((doc["revoked"].as_bool(), doc["revocationReason"].as_str()), (Some(true), Some("Plagiarised")));
    let page = html(&client).await.unwrap().text().await.unwrap();
    assert!(page.contains("was <strong>revoked</strong>: Plagiarised"), "{page}");
    let list: serde_json::Value =
        serde_json::from_slice(&get(&client, &app.url("/issuer/revocations"), &[]).await.2).unwrap();
    assert_eq!(list["revokedAssertions"][0]["id"], url);

    // The web: a second award revoked by the instructor, then a task and the institution edited.
    let mut c = app.pool.get().unwrap();
    let raster = cairn::badges::bake::RasterCache::default();
    let issuer = cairn::badges::award::Issuer { base: &app.address, raster: &raster, signer: app.ledger.key() };
    let req = cairn::app::award::HashtagAward {
        task: "#el30-cloud".into(),
        recipient: "ada@example.edu".into(),
        evidence: "https://ada.example.org/cloud".into(),
        ..Default::default()
    };
    let second =
        cairn::app::award::award_by_hashtag(&mut c, &issuer, &req, cairn::clock::system_now()).unwrap().public_id;
    let task = cairn::db::courses::get_task_by_slug(&mut c, "el30-data").unwrap();
    drop(c);
    let second_url = app.url(&format!("/assertions/{second}"));
    let (_, _, body) = get(&client, &second_url, &[]).await;
    assert!(serde_json::from_slice::<serde_json::Value>(&body).unwrap().get("revoked").is_none());
    app.login().await;
    let res = app
        .post_form(&format!("/admin/awards/{second}/revoke"), &[("reason", "Wrong person"), ("back", "/admin/reader")])
        .await;
    assert_eq!(res.status(), 303);
    let (_, _, body) = get(&client, &second_url, &[]).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["revoked"], true);

    let res = app
        .post_multipart(
            &format!("/admin/tasks/{}", task.id),
            &[("title", "Data, renamed"), ("hashtag", "#el30-data"), ("description", ""), ("criteria", "")],
            "badge",
            None,
        )
        .await;
    assert_eq!(res.status(), 303);
    let (_, _, body) = get(&client, &app.url("/badges/el30-data"), &[]).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["name"], "Data, renamed");
    assert!(html(&client).await.unwrap().text().await.unwrap().contains("Data, renamed"));

    let fields = [("name", "Renamed Institute"), ("url", ""), ("email", ""), ("description", "")];
    let res = app.post_multipart("/admin/institution", &fields, "image", None).await;
    assert_eq!(res.status(), 303);
    let (_, _, body) = get(&client, &app.url("/issuer"), &[]).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&body).unwrap()["name"], "Renamed Institute");
}

/// HEAD answers as GET does, less the body, on pages, documents, images, static files,
/// redirects and errors: uptime monitors and link checkers ask with HEAD.
#[tokio::test]
async fn head_answers_as_get_without_the_body_everywhere() {
    let (app, id) = app_with_award().await;
    cairn::net::install_crypto_provider();
    let client = reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut statuses = std::collections::BTreeSet::new();
    let paths = [
        "/".to_string(),
        "/health".into(),
        "/static/style.css".into(),
        "/static/app.js".into(),
        "/courses/e-learning-3-0".into(),
        "/tasks/el30-data".into(),
        "/issuer".into(),
        format!("/assertions/{id}"),
        format!("/assertions/{id}/badge.png"),
        format!("/assertions/{id}/badge.svg"),
        format!("/assertions/{id}/credential"),
        "/credentials/status/1".into(),
        "/.well-known/did.json".into(),
        "/chain".into(),
        "/admin".into(),
        "/login".into(),
        "/no/such/page".into(),
    ];
    for path in &paths {
        let url = app.url(path);
        let (status, h, body) = get(&client, &url, &[]).await;
        statuses.insert(status);
        let head = client.head(&url).send().await.unwrap();
        let hh = head.headers().clone();
        assert_eq!(head.status().as_u16(), status, "HEAD {path}");
        assert_eq!(header(&hh, "content-type"), header(&h, "content-type"), "HEAD {path}");
        assert_eq!(header(&hh, "location"), header(&h, "location"), "HEAD {path}");
        if !header(&h, "content-length").is_empty() {
            assert_eq!(header(&hh, "content-length"), body.len().to_string(), "HEAD {path}");
        }
        assert!(head.bytes().await.unwrap().is_empty(), "HEAD {path} sent a body");
    }
    // Pages and documents, a redirect and an error are all among them.
    assert!([200, 303, 404].iter().all(|s| statuses.contains(s)), "{statuses:?}");
}
