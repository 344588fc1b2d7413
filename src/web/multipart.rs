//! Forms with a file upload (badge artwork, institution image): read with limits, and
//! their CSRF token checked like any other form.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_session::Session;
use futures_util::StreamExt;

use crate::badges::art::MAX_BYTES;
use crate::web::auth::verify_csrf;
use crate::web::error::AppError;

/// Largest text field accepted, in bytes.
const MAX_FIELD: usize = 64 * 1024;
/// How much of an oversized upload is read before giving up on it.
const MAX_DRAIN: usize = 4 * 1024 * 1024;
/// Most fields a form may have.
const MAX_FIELDS: usize = 32;
/// Name suffix of the hidden field that carries a previewed upload back (base64), so that
/// "Preview" then "Save" does not ask for the file twice.
pub const DRAFT_SUFFIX: &str = "_draft";

/// A multipart form: its text fields and the one uploaded file, if any was chosen.
#[derive(Debug, Default)]
pub struct UploadForm {
    pub fields: HashMap<String, String>,
    /// Bytes of the file field named `file_field`, `None` when no file was chosen.
    pub file: Option<Vec<u8>>,
}

impl UploadForm {
    pub fn text(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }
}

/// Reads a multipart form, checks its CSRF token and returns its fields. The file in
/// `file_field` may be up to the artwork limit plus one byte, so that an oversized upload
/// is reported with its real reason by the artwork check.
pub async fn read(mp: Multipart, session: &Session, file_field: &str) -> Result<UploadForm, AppError> {
    read_limited(mp, session, file_field, MAX_BYTES + 1).await
}

/// [`read`], with the file in `file_field` cut at `limit` bytes (a larger upload is read up to
/// `limit` bytes, so that its check can say why it is refused).
pub async fn read_limited(
    mut mp: Multipart,
    session: &Session,
    file_field: &str,
    limit: usize,
) -> Result<UploadForm, AppError> {
    let file_limit = limit;
    let mut form = UploadForm::default();
    let mut count = 0;
    while let Some(field) = mp.next().await {
        let mut field = field.map_err(|e| AppError::BadRequest(format!("the form could not be read: {e}")))?;
        count += 1;
        if count > MAX_FIELDS {
            return Err(AppError::BadRequest("the form has too many fields".into()));
        }
        let name = field.name().unwrap_or_default().to_string();
        let is_file = name == file_field;
        let is_draft = name.strip_suffix(DRAFT_SUFFIX) == Some(file_field);
        let limit = if is_file {
            file_limit
        } else if is_draft {
            file_limit.div_ceil(3) * 4
        } else {
            MAX_FIELD
        };
        let mut data = Vec::new();
        let mut too_big = false;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| AppError::BadRequest(format!("the upload was interrupted: {e}")))?;
            if data.len() + chunk.len() > limit {
                too_big = true;
                data.extend_from_slice(&chunk[..limit - data.len()]);
                // Drain a little more so a browser gets our answer rather than a reset,
                // but never read an unbounded body.
                let mut drained = 0usize;
                while let Some(rest) = field.next().await {
                    drained +=
                        rest.map_err(|e| AppError::BadRequest(format!("the upload was interrupted: {e}")))?.len();
                    if drained > MAX_DRAIN {
                        return Err(AppError::BadRequest(format!(
                            "the upload is far larger than the {} KiB limit",
                            file_limit.saturating_sub(1) / 1024
                        )));
                    }
                }
                break;
            }
            data.extend_from_slice(&chunk);
        }
        if is_file {
            // Browsers send an empty part when no file was chosen.
            if !data.is_empty() {
                form.file = Some(data);
            }
        } else {
            if too_big {
                return Err(AppError::BadRequest(format!("the field {name} is too long")));
            }
            let text = String::from_utf8(data)
                .map_err(|_| AppError::BadRequest(format!("the field {name} is not valid UTF-8")))?;
            form.fields.insert(name, text);
        }
    }
    verify_csrf(session, &form.text("csrf_token"))?;
    Ok(form)
}
