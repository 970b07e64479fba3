// credvault — the limits on every field a client sends, shared by the daemon and the gateway.
//
// One set of numbers (issue 16): core/limits.h (the daemon's checks) and frontends/limits.h
// (the gateway's) both take their field limits from here, so a field is refused at the same
// length whichever process sees it first. The gateway is stricter in one place only, where
// SuperOffice is: its SecretValue (MAX_SUPEROFFICE_SECRET_CHARS). docs/limits.md lists them;
// each is tested at the limit and one past it in the daemon (tests/core/) and the gateway
// (tests/frontends/).
//
// Character counts are Unicode code points of valid UTF-8; byte limits say so. (Not named
// limits.h: a folder on the include path must not shadow the C library's <limits.h>.)

#pragma once

#include <stddef.h>
#include <stdint.h>

namespace credvault::base {

// ---- A credential (UntrustedCredentials; SuperOffice's own limits where it has them) ----
constexpr size_t MAX_COMMENT_CHARS = 255;
constexpr size_t MAX_PUBLIC_VALUE_CHARS = 238;
constexpr size_t MAX_TYPE_CHARS = 64;      // "imap", "smtp", "office365-oauth"
constexpr size_t MAX_SECRET_BYTES = 8192;  // native API; a PEM key or an OAuth token
// SuperOffice's SecretValue: what the SOAP and REST frontends accept (stricter than the native
// API's MAX_SECRET_BYTES, because SuperOffice's own carrier is).
constexpr size_t MAX_SUPEROFFICE_SECRET_CHARS = 70;

// ---- An associate, and a password login -------------------------------------------------
constexpr size_t MAX_NAME_CHARS = 64;
// The same bound in bytes, for checks made before the text is decoded (4 bytes per code point
// at most in UTF-8): a longer name cannot be valid.
constexpr size_t MAX_NAME_BYTES = MAX_NAME_CHARS * 4;
constexpr size_t MAX_PASSWORD_BYTES = 1024;
constexpr size_t MIN_PASSWORD_CHARS = 1;

// ---- Authentication material ------------------------------------------------------------
// A longer ticket or API token is answered like an unknown one (not-authenticated) by either
// process; a longer application token is invalid-argument at the gateway and unknown to the
// daemon.
constexpr size_t MAX_TICKET_BYTES = 256;
constexpr size_t MAX_TOKEN_BYTES = 256;
constexpr size_t MAX_TOKEN_NAME_CHARS = 64;
constexpr size_t MAX_APP_TOKEN_BYTES = 256;

}  // namespace credvault::base
