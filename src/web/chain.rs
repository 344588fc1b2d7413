//! The public chain explorer and the chain endpoints: recent blocks, a block's records, the
//! pending pool, the head, and each award's proof.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{AppState, Page, render};
use crate::db::awards;
use crate::error::AppError;

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
    chrono::DateTime::from_timestamp(t, 0).unwrap_or_default().format("%Y-%m-%d %H:%M:%S UTC").to_string()
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
    pending: Vec<(String, String, i64)>,
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
    HttpResponse::Ok().insert_header(("Access-Control-Allow-Origin", "*")).json(
        serde_json::json!({"height": height, "hash": hash.to_hex(), "work": u64::try_from(work).unwrap_or(u64::MAX)}),
    )
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
    records: Vec<serde_json::Value>,
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
        records: b.records.iter().map(crate::ledger::record_json).collect(),
    })
}

async fn proof(state: web::Data<AppState>, id: web::Path<String>) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let ledger = state.ledger.clone();
    let doc = state
        .db(move |c| {
            let a = awards::by_public_id(c, &id)?;
            ledger.proof(c, a.id)
        })
        .await?
        .ok_or(AppError::NotFound("chain record for this award"))?;
    Ok(HttpResponse::Ok().insert_header(("Access-Control-Allow-Origin", "*")).json(doc))
}

async fn identity(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let name = state.db(crate::db::institution::get).await?.name;
    let key = state.ledger.institution_id();
    Ok(HttpResponse::Ok().json(crate::peers::Identity {
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
    let limit = q.limit.unwrap_or(crate::peers::PAGE).clamp(1, crate::peers::PAGE);
    let (blocks, height) = state.ledger.with_chain(|c| {
        let to = from.saturating_add(limit - 1);
        (c.range(from, to).iter().map(|b| cairn_chain::to_hex(&b.encode_stored())).collect::<Vec<_>>(), c.height())
    });
    HttpResponse::Ok().json(crate::peers::BlocksPage { from, blocks, height })
}

fn peer_refusal(status: u16, reason: String, what: &str) -> HttpResponse {
    tracing::warn!(status, reason = %reason, "refused a {what} from a peer");
    let code = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::BAD_REQUEST);
    // Peers get the reason itself, not a generic error page.
    let mut res = crate::error::json_error(code, &reason);
    if status == 429 {
        res.headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(60u64));
    }
    crate::error::mark_final(&mut res);
    res
}

/// Largest body accepted from a peer (a block announcement).
const PEER_BODY_LIMIT: usize = 1024 * 1024;

/// Reads a peer's JSON payload, refusing oversized or malformed bodies with a reason.
fn payload(
    req: &actix_web::HttpRequest,
    state: &AppState,
    body: &web::Bytes,
    what: &str,
) -> Result<crate::peers::Payload, Box<HttpResponse>> {
    if !state.peer_rate.allow(state.client_ip(req), crate::db::now()) {
        return Err(Box::new(peer_refusal(429, "too many requests".into(), what)));
    }
    if body.len() > PEER_BODY_LIMIT {
        return Err(Box::new(peer_refusal(413, format!("the body is larger than {PEER_BODY_LIMIT} bytes"), what)));
    }
    serde_json::from_slice(body).map_err(|e| Box::new(peer_refusal(400, format!("malformed JSON: {e}"), what)))
}

/// A peer announces a block.
async fn announce(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let p = match payload(&req, &state, &body, "block") {
        Ok(p) => p,
        Err(res) => return Ok(*res),
    };
    let ledger = state.ledger.clone();
    let result = state.db(move |c| Ok(crate::peers::receive_block(c, &ledger, &p.data))).await?;
    Ok(match result {
        Ok(outcome) => HttpResponse::Ok().json(serde_json::json!({"accepted": true, "outcome": outcome})),
        Err(refused) => {
            if refused.missing_parent {
                // We lack its ancestors: fetch them from our peers now.
                state.peers.wake.notify_one();
            }
            peer_refusal(refused.status, refused.reason, "block")
        }
    })
}

/// A peer relays a pending record.
async fn relay(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let p = match payload(&req, &state, &body, "record") {
        Ok(p) => p,
        Err(res) => return Ok(*res),
    };
    let ledger = state.ledger.clone();
    let result = state.db(move |c| Ok(crate::peers::receive_record(c, &ledger, &p.data))).await?;
    Ok(match result {
        Ok(true) => HttpResponse::Created().json(serde_json::json!({"accepted": true, "new": true})),
        Ok(false) => HttpResponse::Ok().json(serde_json::json!({"accepted": true, "new": false})),
        Err(refused) => peer_refusal(refused.status, refused.reason, "record"),
    })
}
