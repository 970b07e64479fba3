#include "auth.h"

#include "base/ascii.h"

#include <kj/encoding.h>
#include <string.h>

namespace credvault::rest {

using frontends::Caller;
using frontends::SensitiveText;

namespace {

using base::equalsIgnoreCase;

}  // namespace

kj::OneOf<Caller, RestError> callerFrom(const http::HttpRequest& request) {
  auto denied = [](kj::StringPtr detail) {
    return RestError{401, kj::str("Authorization has been denied for this request."),
                     kj::str(detail), nullptr};
  };
  Caller caller;
  KJ_IF_MAYBE(token, request.header("SO-AppToken")) { caller.appToken = kj::str(*token); }

  kj::StringPtr value;
  KJ_IF_MAYBE(v, request.header("Authorization")) {
    value = *v;
  } else {
    return denied("Send an Authorization header: Basic, SoTicket or Bearer.");
  }
  size_t space = 0;
  while (space < value.size() && value[space] != ' ' && value[space] != '\t') ++space;
  kj::ArrayPtr<const char> scheme(value.begin(), space);  // not NUL-terminated
  size_t start = space;
  while (start < value.size() && (value[start] == ' ' || value[start] == '\t')) ++start;
  kj::StringPtr credentials = value.slice(start);
  if (credentials.size() == 0) return denied("The Authorization header has no credentials.");

  if (equalsIgnoreCase(scheme, "SoTicket")) {
    caller.kind = Caller::TICKET;
    caller.secret = SensitiveText(credentials);
  } else if (equalsIgnoreCase(scheme, "Bearer")) {
    caller.kind = Caller::TOKEN;
    caller.secret = SensitiveText(credentials);
  } else if (equalsIgnoreCase(scheme, "Basic")) {
    if (credentials.size() >
        4 * (frontends::SO_MAX_USERNAME_BYTES + frontends::SO_MAX_PASSWORD_BYTES + 2) / 3 + 4) {
      return denied("The Basic credentials are too long.");
    }
    auto decoded = kj::decodeBase64(credentials.asArray());
    KJ_DEFER(if (decoded.size() > 0) explicit_bzero(decoded.begin(), decoded.size()));
    if (decoded.hadErrors) return denied("The Basic credentials are not valid base64.");
    auto chars = decoded.asChars();
    const char* colon = static_cast<const char*>(memchr(chars.begin(), ':', chars.size()));
    if (colon == nullptr) return denied("The Basic credentials must be user-name:password.");
    caller.kind = Caller::PASSWORD;
    caller.userName = kj::heapString(chars.begin(), colon - chars.begin());
    caller.secret = SensitiveText(kj::heapString(colon + 1, chars.end() - colon - 1));
    if (memchr(chars.begin(), '\0', chars.size()) != nullptr) {
      return denied("The Basic credentials are not valid text.");
    }
  } else {
    return denied("Unsupported authorization scheme; use Basic, SoTicket or Bearer.");
  }
  caller.clientAddress = kj::heapString(request.client);
  caller.requestId = kj::heapString(request.id.str());
  return kj::mv(caller);
}

}  // namespace credvault::rest
