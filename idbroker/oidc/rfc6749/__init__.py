"""OAuth 2.0 (RFC 6749): errors, client authentication (§2.3), the authorization-code grant (§4.1), the
client-credentials grant (§4.4), refresh tokens (§6) with rotation and reuse detection (OAuth 2.0
Security BCP §4.14), and the token storage they share."""
