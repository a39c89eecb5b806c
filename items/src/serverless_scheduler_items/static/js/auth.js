// Sign-in: a pasted bearer token (local mode) or Cognito's hosted UI with
// authorization code + PKCE (AWS). Tokens live in sessionStorage only.

const TOKEN_KEY = "scheduler.token";
const EXPIRY_KEY = "scheduler.token_expires_at";
const PKCE_KEY = "scheduler.pkce";

let config = { api_base_url: "", cognito_domain: "", cognito_client_id: "", redirect_uri: "", scopes: "openid email" };

/**
 * Load config.json next to index.html; absent means local mode (same-origin API).
 * Keys: api_url (or api_base_url; a trailing /api/v1 is fine), cognito_domain,
 * client_id (or cognito_client_id), optional redirect_uri and scopes.
 */
export async function loadConfig() {
  let raw = {};
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) raw = await response.json();
  } catch {
    // no config.json: local mode
  }
  config = {
    api_base_url: String(raw.api_base_url || raw.api_url || "").replace(/\/+$/, "").replace(/\/api\/v1$/, ""),
    cognito_domain: String(raw.cognito_domain || ""),
    cognito_client_id: String(raw.cognito_client_id || raw.client_id || ""),
    redirect_uri: String(raw.redirect_uri || ""),
    scopes: String(raw.scopes || "openid email"),
  };
  return config;
}

export function getConfig() {
  return config;
}

export function usesCognito() {
  return Boolean(config.cognito_domain && config.cognito_client_id);
}

export function getToken() {
  const expires = Number(sessionStorage.getItem(EXPIRY_KEY) || 0);
  if (expires && Date.now() > expires) {
    clearToken();
    return null;
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token, expiresInSeconds = 0) {
  sessionStorage.setItem(TOKEN_KEY, token);
  if (expiresInSeconds) {
    sessionStorage.setItem(EXPIRY_KEY, String(Date.now() + (expiresInSeconds - 30) * 1000));
  } else {
    sessionStorage.removeItem(EXPIRY_KEY);
  }
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRY_KEY);
}

/**
 * `#token=...` in the URL (what `serve` prints) signs in once and is removed. A link
 * with another token than the one this tab is signed in with asks first: someone
 * else's link would otherwise sign the tab into their account without a word (what
 * is then created there, they can see).
 */
export function takeTokenFromFragment() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  const token = decodeURIComponent(match[1]);
  history.replaceState(null, "", location.pathname + location.search + "#/");
  const current = getToken();
  if (current && current !== token
      && !window.confirm("This link signs this tab in with another API token, possibly another user's. Sign in with it?")) {
    return false;
  }
  setToken(token);
  return true;
}

function cognitoBase() {
  const domain = config.cognito_domain.replace(/\/+$/, "");
  return domain.startsWith("https://") ? domain : `https://${domain}`;
}

function redirectUri() {
  return config.redirect_uri || location.origin + location.pathname;
}

function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size = 48) {
  return base64url(crypto.getRandomValues(new Uint8Array(size)));
}

/** Go to the Cognito hosted UI; the verifier and state wait in sessionStorage. */
export async function startCognitoSignIn() {
  const verifier = randomString(48);
  const state = randomString(16);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const params = new URLSearchParams({
    response_type: "code",
    client_id: config.cognito_client_id,
    redirect_uri: redirectUri(),
    scope: config.scopes,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
  });
  location.assign(`${cognitoBase()}/oauth2/authorize?${params}`);
}

/** On return from the hosted UI (?code=&state=), trade the code for tokens. */
export async function finishCognitoSignIn() {
  const query = new URLSearchParams(location.search);
  const code = query.get("code");
  if (!code || !usesCognito()) return false;
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "{}");
  sessionStorage.removeItem(PKCE_KEY);
  history.replaceState(null, "", location.pathname + "#/");
  if (!saved.state || saved.state !== query.get("state")) {
    throw new Error("Sign-in failed: the state returned by the identity provider does not match.");
  }
  const response = await fetch(`${cognitoBase()}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      client_id: config.cognito_client_id,
      code,
      redirect_uri: redirectUri(),
      code_verifier: saved.verifier,
    }),
  });
  if (!response.ok) throw new Error(`Sign-in failed: the token endpoint answered ${response.status}.`);
  const tokens = await response.json();
  setToken(tokens.access_token, Number(tokens.expires_in || 3600));
  return true;
}

/** Forget the token; on Cognito also end the hosted-UI session. */
export function signOut() {
  clearToken();
  if (usesCognito()) {
    const params = new URLSearchParams({ client_id: config.cognito_client_id, logout_uri: redirectUri() });
    location.assign(`${cognitoBase()}/logout?${params}`);
  } else {
    location.hash = "#/signin";
  }
}
