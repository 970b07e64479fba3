// credvault-gateway — every limit on what an HTTP client controls, in one place.
//
// Each is tested at the limit and one past it (tests/frontends/). The HTTP ones are defaults
// that the command line may override; the XML and SuperOffice field limits are fixed.

#pragma once

#include "base/field-limits.h"

#include <kj/time.h>
#include <stddef.h>
#include <stdint.h>

namespace credvault::frontends {

// ---- HTTP (frontends/http) -------------------------------------------------------------
constexpr size_t DEFAULT_MAX_HEADER_BYTES = 16 * 1024;             // request line + headers -> 431
constexpr size_t DEFAULT_MAX_HEADER_COUNT = 100;                   // header fields -> 431
constexpr size_t DEFAULT_MAX_BODY_BYTES = 1024 * 1024;             // decoded body -> 413
constexpr size_t MAX_CHUNK_LINE_BYTES = 256;                       // "1a2b;ext\r\n" -> 400
constexpr kj::Duration DEFAULT_HEADER_TIMEOUT = 10 * kj::SECONDS;  // first byte..end of head -> 408
constexpr kj::Duration DEFAULT_BODY_TIMEOUT = 30 * kj::SECONDS;    // whole body -> 408
constexpr kj::Duration DEFAULT_IDLE_TIMEOUT = 15 * kj::SECONDS;    // keep-alive wait -> close
constexpr kj::Duration DEFAULT_WRITE_TIMEOUT = 30 * kj::SECONDS;   // client not reading -> close
constexpr kj::Duration DEFAULT_DRAIN_TIMEOUT = 10 * kj::SECONDS;   // graceful shutdown bound
constexpr size_t DEFAULT_MAX_CONNECTIONS = 1024;                   // beyond: 503 and close
constexpr size_t DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 64;         // one peer IP; beyond: 503
constexpr size_t DEFAULT_MAX_BODY_BUFFER = 64 * 1024 * 1024;       // all bodies held -> 503
constexpr size_t DEFAULT_MAX_ANSWER_BUFFER = 64 * 1024 * 1024;     // all unsent answers -> 503
constexpr uint32_t BUSY_RETRY_AFTER_SECONDS = 5;                   // Retry-After on those 503s

// ---- daemon link (frontends/common) -----------------------------------------------------
constexpr kj::Duration DAEMON_CALL_TIMEOUT = 30 * kj::SECONDS;  // no answer -> unavailable

// ---- SOAP (frontends/soap) -------------------------------------------------------------
// SOAP carries its credentials inside the body, so a SOAP body cannot be authenticated
// before it is read: it is capped at what a legitimate request needs. The largest one (a
// Save with a 70-character secret, 238-character public value and 255-character comment,
// every character written as a 10-byte character reference, plus envelope and headers)
// is under 12 KiB.
constexpr size_t DEFAULT_MAX_SOAP_BODY_BYTES = 64 * 1024;  // -> 413

// ---- XML (frontends/xml) ---------------------------------------------------------------
constexpr uint32_t XML_MAX_DEPTH = 32;                // nested elements
constexpr uint32_t XML_MAX_ELEMENTS = 4096;           // elements per document
constexpr size_t XML_MAX_TEXT_BYTES = 64 * 1024;      // text of one element (decoded)
constexpr uint32_t XML_MAX_ATTRIBUTES = 64;           // attributes (incl. xmlns) per element
constexpr uint32_t XML_MAX_NAMESPACES = 128;          // namespace declarations in scope at once
constexpr size_t XML_MAX_NAME_BYTES = 256;            // element / attribute / prefix name
constexpr size_t XML_MAX_ATTRIBUTE_BYTES = 8 * 1024;  // one attribute value (decoded)

// ---- SuperOffice carrier fields (SOAP and REST frontends) ------------------------------
// The daemon's own field limits (base/field-limits.h), checked here first so that a client
// gets the same answer without a round trip. The gateway is stricter in one place, where
// SuperOffice is: SecretValue, 70 characters (the native API takes 8 KiB). Nowhere is it looser
// (static_asserts below), so what the gateway accepts the daemon accepts.
constexpr size_t SO_MAX_SECRET_VALUE_CHARS = base::MAX_SUPEROFFICE_SECRET_CHARS;
constexpr size_t SO_MAX_PUBLIC_VALUE_CHARS = base::MAX_PUBLIC_VALUE_CHARS;
constexpr size_t SO_MAX_COMMENT_CHARS = base::MAX_COMMENT_CHARS;
constexpr size_t SO_MAX_TYPE_CHARS = base::MAX_TYPE_CHARS;
// A login name, checked in bytes before it is decoded (64 characters of up to 4 bytes).
constexpr size_t SO_MAX_USERNAME_BYTES = base::MAX_NAME_BYTES;
constexpr size_t SO_MAX_PASSWORD_BYTES = base::MAX_PASSWORD_BYTES;
// A ticket (SoTicket) or API token (Bearer): longer is refused as not authenticated.
constexpr size_t SO_MAX_TICKET_BYTES = base::MAX_TICKET_BYTES;
constexpr size_t SO_MAX_APP_TOKEN_BYTES = base::MAX_APP_TOKEN_BYTES;
static_assert(SO_MAX_TICKET_BYTES <= base::MAX_TOKEN_BYTES,
              "the gateway bounds tickets and API tokens with one number");
static_assert(SO_MAX_SECRET_VALUE_CHARS * 4 <= base::MAX_SECRET_BYTES,
              "a SuperOffice secret always fits the daemon's limit");

// ---- REST (frontends/rest) -------------------------------------------------------------
// The REST frontend's own bounds, tighter than the HTTP ones: its bodies are a few hundred
// bytes, so anything near these is hostile or a mistake.
constexpr size_t REST_MAX_BODY_BYTES = 64 * 1024;  // decoded body -> 413
// A REST body larger than this is read only after the daemon accepted the request's
// Authorization header (legitimate bodies are a few hundred bytes).
constexpr size_t REST_AUTH_FIRST_BODY_BYTES = 16 * 1024;
constexpr uint32_t JSON_MAX_DEPTH = 32;              // nested arrays/objects -> 400
constexpr uint32_t JSON_MAX_VALUES = 4096;           // values per document -> 400
constexpr uint32_t JSON_MAX_MEMBERS = 256;           // members of one object -> 400
constexpr size_t JSON_MAX_STRING_BYTES = 16 * 1024;  // one string (decoded) -> 400
constexpr size_t JSON_MAX_NUMBER_CHARS = 64;         // one number as written -> 400
constexpr uint32_t FORM_MAX_FIELDS = 64;             // form / query fields -> 400

}  // namespace credvault::frontends
