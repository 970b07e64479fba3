// credvault — every limit on what a client controls, in one place.
//
// The limits on fields live in base/field-limits.h, shared with the gateway; this adds the
// daemon's own (counts, IPC). Each limit is tested at the bound and one past it (tests/core/
// and the integration tests). Character counts are Unicode code points of valid UTF-8; byte
// limits say so. docs/limits.md explains the choices.

#pragma once

#include "base/field-limits.h"

#include <stddef.h>
#include <stdint.h>

namespace credvault::core {

// The limits on fields, shared with the gateway (base/field-limits.h).
using base::MAX_COMMENT_CHARS;
using base::MAX_PUBLIC_VALUE_CHARS;
using base::MAX_SECRET_BYTES;
using base::MAX_SUPEROFFICE_SECRET_CHARS;
using base::MAX_TYPE_CHARS;

constexpr size_t MAX_CREDENTIALS_PER_ASSOCIATE = 10000;
// One Session.listAll answer: at most this many entries and this many bytes of text (type,
// public value, comment; the limits above count characters, so an entry can reach ~2.3 KiB).
// The byte cap keeps the answer under what credvaultctl reads (64 MiB) and MAX_ANSWER_BYTES.
// Past either the caller names a type or an associate.
constexpr size_t MAX_LISTED_CREDENTIALS = 100000;
constexpr size_t MAX_LISTED_BYTES = 32 << 20;

// Associates.
using base::MAX_NAME_BYTES;
using base::MAX_NAME_CHARS;
using base::MAX_PASSWORD_BYTES;
using base::MIN_PASSWORD_CHARS;
constexpr uint32_t MAX_ASSOCIATES = 1000000;

// Authentication material.
using base::MAX_APP_TOKEN_BYTES;
using base::MAX_TICKET_BYTES;
using base::MAX_TOKEN_BYTES;
using base::MAX_TOKEN_NAME_CHARS;
constexpr size_t MAX_TOKENS_PER_ASSOCIATE = 100;

// IPC (enforced by the daemon).
constexpr uint64_t MAX_MESSAGE_BYTES = 1 << 20;  // capnp traversal limit, in bytes
// Past this the transport closes the connection instead of answering limit-exceeded: a request
// of MAX_MESSAGE_BYTES + 1 must still reach the per-call check, so this adds room for the Call
// envelope (header, capability table, segment table). The largest legitimate request, a save
// of an 8 KiB secret with every text field full, is about 10 KiB.
constexpr uint64_t MAX_TRANSPORT_MESSAGE_BYTES = MAX_MESSAGE_BYTES + (64 << 10);
// The largest answer the daemon sends. capnp 0.9.2's TwoPartyVatNetwork refuses to send a
// message past its own receive limit (traversalLimitInWords), so that limit is set to this and
// the small incoming limit above is enforced by the transport (BufferedStream). A Get of
// MAX_CREDENTIALS_PER_ASSOCIATE full-size credentials is about 105 MiB.
constexpr uint64_t MAX_ANSWER_BYTES = uint64_t(128) << 20;
constexpr int MAX_MESSAGE_NESTING = 16;
constexpr size_t MAX_CONNECTIONS_PER_UID = 256;
constexpr size_t MAX_CONNECTIONS = 4096;
constexpr size_t MAX_PATH_BYTES = 4096;

}  // namespace credvault::core
