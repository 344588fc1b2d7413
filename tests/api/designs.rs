//! Badge designs: the task form previews the badge as learners will receive it before
//! anything is saved, warns when text cannot be drawn, and saves the previewed design without
//! a second upload.

use base64::Engine as _;
use diesel::prelude::*;

use crate::helpers::spawn_app;

const DISC: &str = "<circle cx=\"100\" cy=\"100\" r=\"90\" fill=\"#224488\"/>";

fn svg(inner: &str) -> Vec<u8> {
    format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"200\" height=\"200\">{DISC}{inner}</svg>").into_bytes()
}

/// The preview image of a form page, decoded.
fn preview_pixels(html: &str) -> image::RgbaImage {
    let start = html.find("src=\"data:image/png;base64,").expect("a preview image") + 27;
    let end = start + html[start..].find('"').expect("end of the data URI");
    let png = base64::engine::general_purpose::STANDARD.decode(&html[start..end]).expect("base64");
    image::load_from_memory_with_format(&png, image::ImageFormat::Png).expect("a PNG").to_rgba8()
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))? + name.len() + 15;
    Some(html[at..at + html[at..].find('"')?].to_string())
}

#[tokio::test]
async fn a_badge_design_is_previewed_baked_before_saving_and_saved_from_the_preview() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Design").await;
    let module = app.create_module(course, "M").await;
    let url = format!("/admin/modules/{module}/tasks");
    let lettered = svg("<text x=\"100\" y=\"110\" font-family=\"sans-serif\" font-size=\"40\" fill=\"#ffffff\" \
                        text-anchor=\"middle\">Data</text>");
    let fields =
        [("title", "Data"), ("hashtag", "#design-data"), ("description", ""), ("criteria", ""), ("preview", "1")];

    // Preview: the page answers with the drawn badge, and nothing is saved.
    let res = app.post_multipart(&url, &fields, "badge", Some((lettered.clone(), "b.svg"))).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("It is not saved yet"), "{page}");
    assert!(!page.contains("Text could not be rendered"), "{page}");
    let with_text = preview_pixels(&page);
    assert_eq!(with_text.dimensions(), (400, 400), "drawn at the baked size");
    let tasks: i64 = {
        use cairn::db::schema::tasks::dsl::*;
        tasks.filter(hashtag.eq("#design-data")).count().get_result(&mut app.pool.get().unwrap()).unwrap()
    };
    assert_eq!(tasks, 0, "a preview saves nothing");

    // The same design without its text previews differently: the letters were drawn.
    let bare = app.post_multipart(&url, &fields, "badge", Some((svg(""), "b.svg"))).await.text().await.unwrap();
    let bare = preview_pixels(&bare);
    let letters = with_text.pixels().zip(bare.pixels()).filter(|(a, b)| a[0] > 200 && b[0] < 100).count();
    assert!(letters > 300, "only {letters} pixels of text in the preview");

    // Save without choosing the file again: the previewed design is kept.
    let draft = hidden(&page, "badge_draft").expect("the upload carried in the form");
    let mut save = fields[..4].to_vec();
    save.push(("badge_draft", draft.as_str()));
    let res = app.post_multipart(&url, &save, "badge", None).await;
    assert_eq!(res.status(), 303);
    let (stored, kind): (Option<Vec<u8>>, Option<String>) = {
        use cairn::db::schema::tasks::dsl::*;
        tasks
            .filter(hashtag.eq("#design-data"))
            .select((badge_image, badge_image_type))
            .first(&mut app.pool.get().unwrap())
            .unwrap()
    };
    assert_eq!(kind.as_deref(), Some("image/svg+xml"));
    assert!(String::from_utf8(stored.unwrap()).unwrap().contains("Data"), "the text is kept");
}

#[tokio::test]
async fn the_preview_warns_when_text_cannot_be_drawn_and_previews_the_generated_badge_without_upload() {
    let app = spawn_app().await;
    app.login().await;
    let course = app.create_course("Design").await;
    let module = app.create_module(course, "M").await;
    let url = format!("/admin/modules/{module}/tasks");
    let fields =
        [("title", "Hidden"), ("hashtag", "#design-hidden"), ("description", ""), ("criteria", ""), ("preview", "1")];
    let hidden_text = svg("<text x=\"100\" y=\"110\" font-size=\"0\">Hidden</text>");
    let page = app.post_multipart(&url, &fields, "badge", Some((hidden_text, "b.svg"))).await.text().await.unwrap();
    assert!(page.contains("Text could not be rendered: 1 of the image"), "{page}");

    // No upload: the generated badge for this title is shown, and nothing is carried to save.
    let res = app.post_multipart(&url, &fields, "badge", None).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Preview of the badge as it stands"), "{page}");
    assert!(hidden(&page, "badge_draft").is_none());
    assert_eq!(preview_pixels(&page).dimensions(), (400, 400));

    // A bad upload is reported on the field, not previewed.
    let res = app.post_multipart(&url, &fields, "badge", Some((b"GIF89a....".to_vec(), "b.gif"))).await;
    let page = res.text().await.unwrap();
    assert!(page.contains("badge images must be PNG or SVG"), "{page}");
    assert!(!page.contains("data:image/png;base64"));
}
