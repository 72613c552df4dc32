// Package idnsim is a simulated SailPoint Identity Security Cloud tenant: a
// spec-faithful fake of the personal access token API (v3, v2025 and v1 paths),
// its OAuth token endpoint and GET /v3/public-identities, for tests, the demo and
// benchmarks. Every test of patjanitor exercises real HTTP against it.
//
// What it models, and the choices made where SailPoint's documentation is
// silent:
//
//   - POST /oauth/token, grant client_credentials, credentials in the form body,
//     the query string, or HTTP Basic. The client id is a PAT id and the secret
//     must match. Bad credentials get 401 {"error":"invalid_client",
//     "error_description":"Bad client credentials"} (the Spring Security shape);
//     a missing or other grant type gets 400 {"error":"invalid_request"|
//     "unsupported_grant_type",…}. Access tokens are JWT-shaped (HS256 over the
//     claims client_id, user_name, identity_id, scope, exp, jti) and are valid
//     until the PAT's accessTokenValiditySeconds (or Options.AccessTokenTTL) has
//     passed on the injected clock. They carry the scopes and rights the PAT had
//     when they were minted, as a JWT would: deleting or re-scoping the PAT does
//     not revoke them. Minting marks the PAT used, at most once per UTC day.
//     Token calls are never rate limited.
//   - The PAT list, create, patch and delete operations, with rights decided by
//     the caller's scopes and identity (Identity.OrgAdmin, Identity.SeeManaged;
//     see pats.go): every owner's tokens need an org admin with sp:scopes:all
//     or an all-personal-access-tokens scope; owner-id=me any PAT scope;
//     managed tokens appear (and can be patched or deleted) only for an
//     identity that may see them. PATCH of another owner's token is the 403 a
//     real tenant answers ("The server understood the request but refuses to
//     authorize it"), also to an org admin with sp:scopes:all, unless
//     Options.PatchOthers (not a real tenant). PATCH|POST
//     /personal-access-tokens/v1/bulk-update (bulk.go) writes /expirationDate
//     and /userAwareTokenNeverExpires of up to 25 tokens of any owner for an
//     org admin. Create: 200 with the secret once, names unique per
//     owner, at most 10 unmanaged tokens per owner, accessTokenValiditySeconds
//     15..43200, an omitted scope stored and listed as ["sp:scopes:all"].
//     v2025/v1 create of a never-expiring token returns expirationDate null
//     although that schema declares it non-nullable (a spec inconsistency).
//   - The filters grammar in full (filter.go), accepting on the PAT endpoint only
//     "lastUsed le <unquoted RFC 3339 date-time>" and "lastUsed isnull".
//     Composites (and/or/not) are refused with 400: the documentation does not
//     say whether the real service takes them, and a strict fake finds a client that
//     relies on them. "lastUsed le X" never matches a never-used token.
//   - 401 {"error":"JWT validation failed: JWT is expired"} for a missing or
//     expired bearer token; 429 with Retry-After (integer seconds) and
//     {"message":" Rate Limit Exceeded "} beyond Options.RateLimit requests per
//     client id and API version in any window of Options.RateWindow (a sliding
//     window: a client that never sees a 429 here sees none from a fixed-window
//     gateway either). Requests refused with 429 do not count.
//   - Timestamps written as 2006-01-02T15:04:05.000Z and stored at millisecond
//     precision, so a filter compares exactly what a client was shown.
//   - Fault injection, a request log (secrets and bearer tokens are never
//     stored), seeded populations and YAML scenarios, and control endpoints under
//     /__sim/ (a prefix no SailPoint API uses).
//
// Listings are ordered by token id and streamed with a buffered writer; a
// 100,000-token listing is written without building the whole body in memory.
package idnsim
