"""Identity and authorisation shared by every service (issue #12).

- `tokens`: bearer JWT → verified `Caller` (PyJWT + the issuer's JWKS, cached, refetched on an unknown key id).
- `policy`: the one policy file (`policy.yaml`, overridable by `BJSV_AUTHZ_POLICY_FILE`) and the role check.
- `scope`: the one scope helper handlers call with the resource they are about to read or change.
- `guard`: what the server interceptor calls per RPC (authenticate → authorise), public-call rate limit.
- `credentials`: a service's own identity (client credentials) for the calls it makes.
- `issuer_tls`: the certificates the issuer's HTTPS is verified with (stack CA, or system + BJSV_OIDC_CA_FILE).
- `personal`: masking and keyed hashing of personal information (个人信息保护法).
"""
