//! The public chain explorer and the chain endpoints: recent blocks, a block's records, the
//! pending pool, the head, and each award's proof.

use actix_session::Session;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{AppState, Page, render};
use crate::db::awards;
use crate::ledger::{PendingRecord, RecordDoc};
use crate::peers::wire::{Announced, BlocksPage, Head, Identity, PAGE, Payload, Relayed};
use crate::peers::{self, Refusal};
use crate::web::error::AppError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/chain", web::get().to(explorer))
        .route("/chain/head", web::get().to(head))
        .route("/chain/blocks/{hash}", web::get().to(block_page))
        .route("/assertions/{id}/proof", web::get().to(proof))
        .route("/chain/identity", web::get().to(identity))
        .route("/chain/blocks", web::get().to(blocks_page))
        .route("/chain/blocks", web::post().to(announce))
        .route("/chain/records", web::post().to(relay));
}

/// A block as the explorer lists it.
pub struct BlockRow {
    pub height: u64,
    pub hash: String,
    pub time: String,
    pub miner: String,
    pub records: usize,
}

fn time(t: i64) -> String {
    super::moment(t)
}

#[derive(Template)]
#[template(path = "chain.html")]
struct ExplorerPage {
    page: Page,
    network: String,
    genesis: String,
    height: u64,
    tip: String,
    blocks: Vec<BlockRow>,
    pending: Vec<PendingRecord>,
    institution: String,
}

async fn explorer(session: Session, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let ledger = state.ledger.clone();
    let (height, tip, genesis, blocks) = ledger.with_chain(|c| {
        let (height, tip, _) = c.tip();
        let from = height.saturating_sub(19).max(1);
        let mut blocks: Vec<BlockRow> = c
            .range(from, height)
            .iter()
            .map(|b| BlockRow {
                height: b.header.height,
                hash: b.hash().to_hex(),
                time: time(b.header.timestamp),
                miner: cairn_chain::to_hex(&b.header.miner)[..16].to_string(),
                records: b.records.len(),
            })
            .collect();
        blocks.reverse();
        (height, tip.to_hex(), c.genesis_hash().to_hex(), blocks)
    });
    let l = ledger.clone();
    let pending = state.db(move |c| l.pending(c)).await?;
    render(&ExplorerPage {
        page: Page::new(&session, "Recognition chain"),
        network: ledger.params().network.clone(),
        genesis,
        height,
        tip,
        blocks,
        pending,
        institution: ledger.institution_id(),
    })
}

async fn head(state: web::Data<AppState>) -> HttpResponse {
    let (height, hash, work) = state.ledger.with_chain(|c| c.tip());
    HttpResponse::Ok().insert_header(("Access-Control-Allow-Origin", "*")).json(Head {
        height,
        hash: hash.to_hex(),
        work: u64::try_from(work).unwrap_or(u64::MAX),
    })
}

#[derive(Template)]
#[template(path = "chain_block.html")]
struct BlockPage {
    page: Page,
    height: u64,
    hash: String,
    prev: String,
    merkle_root: String,
    time: String,
    miner: String,
    nonce: u64,
    header_hex: String,
    main: bool,
    depth: u64,
    records: Vec<RecordDoc>,
}

async fn block_page(
    session: Session,
    state: web::Data<AppState>,
    hash: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let hash = cairn_chain::Hash::from_hex(&hash).ok_or(AppError::NotFound("block"))?;
    let found = state.ledger.with_chain(|c| c.block(&hash).map(|b| (b, c.is_main(&hash), c.height())));
    let Some((b, main, tip)) = found else { return Err(AppError::NotFound("block")) };
    render(&BlockPage {
        page: Page::new(&session, format!("Block {}", b.header.height)),
        height: b.header.height,
        hash: b.hash().to_hex(),
        prev: b.header.prev.to_hex(),
        merkle_root: b.header.merkle_root.to_hex(),
        time: time(b.header.timestamp),
        miner: cairn_chain::to_hex(&b.header.miner),
        nonce: b.header.nonce,
        header_hex: cairn_chain::to_hex(&b.header.encode()),
        main,
        depth: if main { tip - b.header.height + 1 } else { 0 },
        records: b.records.iter().map(RecordDoc::from).collect(),
    })
}

/// An award's chain proof explained to a person: what the record is, which block holds it,
/// what "final" means and how to check it without trusting this site.
#[derive(Template)]
#[template(path = "chain_proof.html")]
struct ProofPage {
    page: Page,
    /// The verification page of the award.
    assertion: String,
    /// The proof document's own address (JSON).
    json_url: String,
    record: RecordDoc,
    recorded_on: String,
    block: Option<crate::ledger::BlockDoc>,
    block_time: String,
    confirmations: u64,
    is_final: bool,
    finality_depth: u64,
    merkle_steps: usize,
    members: usize,
}

/// The proof of an award's chain record: JSON (docs/peers.md), or for a browser the same
/// proof as a page.
async fn proof(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let ledger = state.ledger.clone();
    let public_id = id.clone();
    let doc = state
        .db(move |c| {
            let a = awards::by_public_id(c, &public_id)?;
            ledger.proof(c, a.id)
        })
        .await?
        .ok_or(AppError::NotFound("chain record for this award"))?;
    if crate::web::error::negotiate(&req, crate::web::error::Format::Json) != crate::web::error::Format::Html {
        return Ok(HttpResponse::Ok().insert_header(("Access-Control-Allow-Origin", "*")).json(doc));
    }
    let assertion = crate::badges::ob::assertion_url(&state.base_url, &id);
    let (record, merkle_steps, block, confirmations, is_final, finality_depth) = match doc {
        crate::ledger::Proof::Recorded {
            record, merkle_path, block, confirmations, is_final, finality_depth, ..
        } => (record, merkle_path.len(), Some(block), confirmations, is_final, finality_depth),
        crate::ledger::Proof::Pending { record, .. } => {
            (record, 0, None, 0, false, state.ledger.params().finality_depth)
        }
    };
    let mut res = render(&ProofPage {
        page: Page::new(&session, "Chain proof"),
        json_url: format!("{assertion}/proof"),
        assertion,
        recorded_on: time(record.issued_at),
        block_time: block.as_ref().map(|b| time(b.timestamp)).unwrap_or_default(),
        record,
        block,
        confirmations,
        is_final,
        finality_depth,
        merkle_steps,
        members: state.ledger.members().len(),
    })?;
    res.headers_mut().insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Ok(res)
}

async fn identity(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let name = state.db(crate::db::institution::get).await?.name;
    let key = state.ledger.institution_id();
    Ok(HttpResponse::Ok().json(Identity {
        institution: key.clone(),
        public_key: key,
        name,
        network: state.ledger.params().network.clone(),
        genesis: state.ledger.with_chain(|c| c.genesis_hash().to_hex()),
        base_url: state.base_url.clone(),
    }))
}

#[derive(serde::Deserialize)]
struct BlocksQuery {
    #[serde(default)]
    from: Option<u64>,
    #[serde(default)]
    limit: Option<u64>,
}

/// Main-chain blocks from a height, paginated (stored form, hex).
async fn blocks_page(state: web::Data<AppState>, q: web::Query<BlocksQuery>) -> HttpResponse {
    let from = q.from.unwrap_or(1).max(1);
    let limit = q.limit.unwrap_or(PAGE).clamp(1, PAGE);
    let (blocks, height) = state.ledger.with_chain(|c| {
        let to = from.saturating_add(limit - 1);
        (c.range(from, to).iter().map(|b| cairn_chain::to_hex(&b.encode_stored())).collect::<Vec<_>>(), c.height())
    });
    HttpResponse::Ok().json(BlocksPage { from, blocks, height })
}

/// The one mapping of a peer's refused block or record to its HTTP answer (docs/peers.md):
/// 400 unreadable, 403 a record by a non-member, 409 an unknown parent or a branch removing a
/// final block, 413 too large, 422 any other rule, 429 too many requests.
fn refusal_status(refusal: &Refusal) -> StatusCode {
    match refusal {
        Refusal::Unreadable(_) => StatusCode::BAD_REQUEST,
        Refusal::UntrustedSigner(_) => StatusCode::FORBIDDEN,
        Refusal::UnknownParent(_) | Refusal::WouldRemoveFinal(_) => StatusCode::CONFLICT,
        Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::BreaksRule(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Refusal::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Answers a refusal. Peers get the reason itself, not a generic error page; a failure of our
/// own store is an internal error (logged with its cause, never shown).
fn refused(refusal: Refusal, what: &str) -> Result<HttpResponse, AppError> {
    let status = refusal_status(&refusal);
    let reason = match refusal {
        Refusal::Store(e) => return Err(AppError::Internal(e)),
        other => other.to_string(),
    };
    tracing::warn!(status = status.as_u16(), reason = %reason, "refused a {what} from a peer");
    let mut res = crate::web::error::json_error(status, &reason);
    if status == StatusCode::TOO_MANY_REQUESTS {
        res.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(PEER_RETRY_AFTER));
    }
    crate::web::error::mark_final(&mut res);
    Ok(res)
}

/// Seconds a peer over its request limit is asked to wait.
const PEER_RETRY_AFTER: u64 = 60;

/// Largest body accepted from a peer (a block announcement).
const PEER_BODY_LIMIT: usize = 1024 * 1024;

/// Reads a peer's JSON payload, refusing oversized or malformed bodies with a reason.
fn payload(req: &HttpRequest, state: &AppState, body: &web::Bytes, now: i64) -> Result<Payload, Refusal> {
    if !state.peer_rate.allow(state.client_ip(req), now) {
        return Err(Refusal::TooManyRequests);
    }
    if body.len() > PEER_BODY_LIMIT {
        return Err(Refusal::TooLarge { limit: PEER_BODY_LIMIT });
    }
    serde_json::from_slice(body).map_err(|e| Refusal::Unreadable(format!("malformed JSON: {e}")))
}

/// A peer announces a block.
async fn announce(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let now = crate::clock::system_now();
    let p = match payload(&req, &state, &body, now) {
        Ok(p) => p,
        Err(refusal) => return refused(refusal, "block"),
    };
    let ledger = state.ledger.clone();
    let result = state.db(move |c| Ok(peers::receive_block(c, &ledger, &p.data, now))).await?;
    match result {
        Ok(outcome) => Ok(HttpResponse::Ok().json(Announced { accepted: true, outcome })),
        Err(refusal) => {
            if let Refusal::UnknownParent(_) = refusal {
                // We lack its ancestors: fetch them from our peers now.
                state.peers.wake.notify_one();
            }
            refused(refusal, "block")
        }
    }
}

/// A peer relays a pending record.
async fn relay(req: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, AppError> {
    let now = crate::clock::system_now();
    let p = match payload(&req, &state, &body, now) {
        Ok(p) => p,
        Err(refusal) => return refused(refusal, "record"),
    };
    let ledger = state.ledger.clone();
    let result = state.db(move |c| Ok(peers::receive_record(c, &ledger, &p.data, now))).await?;
    match result {
        Ok(true) => Ok(HttpResponse::Created().json(Relayed { accepted: true, new: true })),
        Ok(false) => Ok(HttpResponse::Ok().json(Relayed { accepted: true, new: false })),
        Err(refusal) => refused(refusal, "record"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_the_status_docs_peers_md_gives() {
        let cases = [
            (Refusal::Unreadable("not hex".into()), 400),
            (Refusal::UntrustedSigner("stranger".into()), 403),
            (Refusal::UnknownParent("parent".into()), 409),
            (Refusal::WouldRemoveFinal("final".into()), 409),
            (Refusal::TooLarge { limit: PEER_BODY_LIMIT }, 413),
            (Refusal::BreaksRule("work".into()), 422),
            (Refusal::TooManyRequests, 429),
            (Refusal::Store(anyhow::anyhow!("disk full")), 500),
        ];
        for (refusal, status) in cases {
            assert_eq!(refusal_status(&refusal).as_u16(), status, "{refusal:?}");
        }
    }

    #[test]
    fn a_refusal_answers_its_reason_and_a_store_failure_hides_it() {
        let res = refused(Refusal::BreaksRule("not enough proof of work".into()), "block").unwrap();
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let res = refused(Refusal::TooManyRequests, "record").unwrap();
        assert_eq!(res.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("60"));
        assert!(matches!(refused(Refusal::Store(anyhow::anyhow!("disk full")), "block"), Err(AppError::Internal(_))));
    }
}
