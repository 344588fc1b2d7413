// A real OpenID Connect provider for Cairn's sign-in tests: the oidc-provider package,
// listening on 127.0.0.1 on a port of its own choosing, with one confidential client and the
// test accounts the test gives it. Its development login page takes any account name that is
// configured (the password is ignored); consent is granted without asking, as for a
// first-party client. The email, email_verified and groups claims go into the ID token.
//
//   node provider.mjs
//
// Prints {"issuer": "http://127.0.0.1:PORT"} once it listens (the client's redirect URI may
// depend on the issuer), then reads one JSON line from standard input:
//   {"client": {"client_id": "...", "client_secret": "...", "redirect_uris": ["..."]},
//    "accounts": {"alice": {"email": "...", "email_verified": true, "groups": ["staff"]}}}
// and prints {"ready": true} once it serves. It exits when its standard input closes, so it
// never outlives the test that started it.

import http from 'node:http';
import crypto from 'node:crypto';
import readline from 'node:readline';
import Provider from 'oidc-provider';

const server = http.createServer((req, res) => {
  res.writeHead(503).end('not configured yet');
});

function configure(issuer, {client, accounts}) {
  if (!client?.client_id || !client?.client_secret || !Array.isArray(client?.redirect_uris)) {
    throw new Error('the client needs client_id, client_secret and redirect_uris');
  }
  const provider = new Provider(issuer, {
    clients: [{
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    claims: {openid: ['sub'], email: ['email', 'email_verified'], groups: ['groups']},
    scopes: ['openid', 'email', 'groups'],
    cookies: {keys: [crypto.randomBytes(32).toString('hex')]},
    pkce: {required: () => true},
    conformIdTokenClaims: false,
    features: {devInteractions: {enabled: true}},
    async findAccount(ctx, id) {
      const claims = (accounts ?? {})[id];
      if (!claims) return undefined;
      return {accountId: id, async claims() { return {sub: id, ...claims}; }};
    },
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId});
      grant.addOIDCScope('openid email groups');
      await grant.save();
      return grant;
    },
  });
  server.removeAllListeners('request');
  server.on('request', provider.callback());
}

server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  console.log(JSON.stringify({issuer}));
  const lines = readline.createInterface({input: process.stdin});
  let configured = false;
  lines.on('line', (line) => {
    if (configured || !line.trim()) return;
    try {
      configure(issuer, JSON.parse(line));
      configured = true;
      console.log(JSON.stringify({ready: true}));
    } catch (e) {
      console.error(`provider.mjs: ${e.message}`);
      process.exit(2);
    }
  });
  lines.on('close', () => process.exit(0));
});
