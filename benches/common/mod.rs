//! Helpers shared by the benchmark binaries.
#![allow(dead_code)]

/// The value at fraction `p` of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The first CSRF token in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("csrf") + marker.len();
    html[start..start + 64].to_string()
}

/// The benchmark instructor's credentials.
pub const EMAIL: &str = "bench@example.edu";
pub const PASSWORD: &str = "bench password 123";

/// Signs in as the benchmark instructor; returns a CSRF token for instructor forms.
pub async fn sign_in(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    sign_in_as(client, base, EMAIL).await
}

/// Signs in as the instructor with `email` (and the benchmark password).
pub async fn sign_in_as(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let page = client.get(format!("{base}/login")).send().await?.text().await?;
    let csrf = csrf_in(&page);
    let res = client
        .post(format!("{base}/login"))
        .form(&[("csrf_token", csrf.as_str()), ("email", email), ("password", PASSWORD)])
        .send()
        .await?;
    anyhow::ensure!(res.status() == 303, "login failed");
    Ok(csrf_in(&client.get(format!("{base}/admin")).send().await?.text().await?))
}

/// Gives the institution profile the web address and contact email the first award needs (its
/// name comes from the settings), as an instructor does on /admin/institution.
pub fn complete_profile(conn: &mut diesel::SqliteConnection) -> anyhow::Result<()> {
    let name = cairn::db::institution::get(conn)?.name;
    let form = cairn::app::institution::InstitutionForm {
        name,
        url: "https://university.example.edu/".into(),
        email: "badges@university.example.edu".into(),
        description: String::new(),
    };
    cairn::app::institution::update(conn, &form, None, 0)?;
    Ok(())
}
