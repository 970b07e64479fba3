#include "operations.h"

#include "base/ascii.h"
#include "base/utf8.h"
#include "frontends/limits.h"
#include "ipc/errors.h"

#include <kj/debug.h>
#include <string.h>

namespace credvault::frontends {

namespace {

struct OpInfo {
  Op op;
  kj::StringPtr name;
};
const OpInfo OPS[OP_COUNT] = {
    {Op::CREATE_DEFAULT, "CreateDefaultUntrustedCredentials"_kj},
    {Op::GET, "GetUntrustedCredentials"_kj},
    {Op::GET_FOR_ASSOCIATE, "GetUntrustedCredentialsForAssociate"_kj},
    {Op::SAVE, "SaveUntrustedCredentials"_kj},
    {Op::SAVE_FOR_ASSOCIATE, "SaveUntrustedCredentialsForAssociate"_kj},
    {Op::REMOVE, "RemoveUntrustedCredentials"_kj},
    {Op::REMOVE_FOR_ASSOCIATE, "RemoveUntrustedCredentialsForAssociate"_kj},
};

}  // namespace

kj::StringPtr opName(Op op) {
  return OPS[static_cast<size_t>(op)].name;
}

kj::Maybe<Op> opFromName(kj::StringPtr name, bool ignoreCase) {
  for (auto& info : OPS) {
    if (ignoreCase ? base::equalsIgnoreCase(name, info.name) : name == info.name) {
      return info.op;
    }
  }
  return nullptr;
}

bool opHasAssociate(Op op) {
  return op == Op::GET_FOR_ASSOCIATE || op == Op::SAVE_FOR_ASSOCIATE ||
         op == Op::REMOVE_FOR_ASSOCIATE;
}
bool opHasCredential(Op op) {
  return op == Op::SAVE || op == Op::SAVE_FOR_ASSOCIATE;
}
bool opHasPublicValue(Op op) {
  return op == Op::REMOVE || op == Op::REMOVE_FOR_ASSOCIATE;
}
bool opReturnsList(Op op) {
  return op == Op::GET || op == Op::GET_FOR_ASSOCIATE;
}

Failure makeFailure(rpc::ErrorCode code, kj::StringPtr field, kj::StringPtr message) {
  return Failure{code, kj::heapString(field), kj::heapString(message)};
}

bool isValidUtf8(kj::StringPtr text) {
  return base::utf8::isValid(text) && memchr(text.begin(), '\0', text.size()) == nullptr;
}

size_t countCodePoints(kj::StringPtr text) {
  size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++n;
  }
  return n;
}

namespace {

kj::Maybe<Failure> checkText(kj::StringPtr text, kj::StringPtr field, size_t maxChars) {
  if (!isValidUtf8(text)) {
    return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, field,
                       kj::str(field, " is not valid UTF-8 text"));
  }
  if (countCodePoints(text) > maxChars) {
    return makeFailure(rpc::ErrorCode::LIMIT_EXCEEDED, field,
                       kj::str(field, " is longer than ", maxChars, " characters"));
  }
  return nullptr;
}

}  // namespace

kj::Maybe<Failure> validate(const OpRequest& request) {
  if (request.op != Op::CREATE_DEFAULT) {
    KJ_IF_MAYBE(f, checkText(request.type, "Type", SO_MAX_TYPE_CHARS)) { return kj::mv(*f); }
  }
  if (opHasCredential(request.op)) {
    auto& c = request.credential;
    KJ_IF_MAYBE(f, checkText(c.comment, "Comment", SO_MAX_COMMENT_CHARS)) { return kj::mv(*f); }
    KJ_IF_MAYBE(f, checkText(c.publicValue, "PublicValue", SO_MAX_PUBLIC_VALUE_CHARS)) {
      return kj::mv(*f);
    }
    KJ_IF_MAYBE(s, c.secretValue) {
      KJ_IF_MAYBE(f, checkText(s->reveal(), "SecretValue", SO_MAX_SECRET_VALUE_CHARS)) {
        return kj::mv(*f);
      }
    }
    if (c.validFrom < 0 || c.validFrom > ipc::MAX_TICKS) {
      return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, "ValidFrom",
                         "ValidFrom is out of range");
    }
    if (c.validTo < 0 || c.validTo > ipc::MAX_TICKS) {
      return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, "ValidTo", "ValidTo is out of range");
    }
  }
  if (opHasPublicValue(request.op)) {
    KJ_IF_MAYBE(f, checkText(request.publicValue, "PublicValue", SO_MAX_PUBLIC_VALUE_CHARS)) {
      return kj::mv(*f);
    }
  }
  return nullptr;
}

kj::Maybe<Failure> validate(const Caller& caller) {
  auto notAuthenticated = [](kj::StringPtr message) {
    return makeFailure(rpc::ErrorCode::NOT_AUTHENTICATED, "", message);
  };
  size_t max = caller.kind == Caller::PASSWORD ? SO_MAX_PASSWORD_BYTES : SO_MAX_TICKET_BYTES;
  if (caller.secret.size() == 0 && caller.kind != Caller::PASSWORD) {
    return notAuthenticated("No credentials were presented");
  }
  if (caller.secret.size() > max || !isValidUtf8(caller.secret.reveal())) {
    return notAuthenticated("The credentials presented are not valid");
  }
  if (caller.kind == Caller::PASSWORD &&
      (caller.userName.size() == 0 || caller.userName.size() > SO_MAX_USERNAME_BYTES ||
       !isValidUtf8(caller.userName))) {
    return notAuthenticated("The credentials presented are not valid");
  }
  KJ_IF_MAYBE(t, caller.appToken) {
    if (t->size() > SO_MAX_APP_TOKEN_BYTES || !isValidUtf8(*t)) {
      return makeFailure(rpc::ErrorCode::INVALID_ARGUMENT, "ApplicationToken",
                         "The application token is not valid");
    }
  }
  return nullptr;
}

namespace {

kj::String superOfficeFieldName(kj::StringPtr field) {
  // The daemon names schema fields ("secretValue"); SuperOffice clients know "SecretValue".
  auto out = kj::heapString(field);
  if (out.size() > 0 && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

Failure failureFrom(rpc::Error::Reader error) {
  kj::StringPtr message = error.hasMessage() ? error.getMessage() : kj::StringPtr("");
  if (message.size() == 0) message = ipc::errorInfo(error.getCode()).defaultMessage;
  return Failure{error.getCode(),
                 superOfficeFieldName(error.hasField() ? error.getField() : kj::StringPtr("")),
                 kj::heapString(message), error.getRetryAfterSeconds()};
}

Credential credentialFrom(rpc::Credential::Reader c) {
  Credential out;
  out.validFrom = c.getValidFrom();
  out.validTo = c.getValidTo();
  out.comment = kj::heapString(c.hasComment() ? c.getComment() : kj::StringPtr(""));
  if (c.hasSecretValue()) out.secretValue = SensitiveText(c.getSecretValue());
  out.publicValue = kj::heapString(c.hasPublicValue() ? c.getPublicValue() : kj::StringPtr(""));
  out.isActive = c.getIsActive();
  return out;
}

void fillCredential(rpc::Credential::Builder b, const Credential& c) {
  b.setValidFrom(c.validFrom);
  b.setValidTo(c.validTo);
  b.setComment(c.comment);
  KJ_IF_MAYBE(s, c.secretValue) { b.setSecretValue(s->reveal()); }
  b.setPublicValue(c.publicValue);
  b.setIsActive(c.isActive);
}

template<typename Response>
OpResult errorOnly(Response&& r) {
  OpResult out;
  if (r.hasError()) out.failure = failureFrom(r.getError());
  return out;
}

template<typename Response>
OpResult listResult(Response&& r) {
  OpResult out;
  if (r.hasError()) {
    out.failure = failureFrom(r.getError());
  } else {
    for (auto c : r.getCredentials()) out.credentials.add(credentialFrom(c));
  }
  return out;
}

template<typename Response>
OpResult removeResult(Response&& r) {
  OpResult out;
  if (r.hasError()) {
    out.failure = failureFrom(r.getError());
  } else {
    out.removed = r.getRemoved();
  }
  return out;
}

kj::Promise<OpResult> sendOperation(rpc::Session::Client session, const OpRequest& request) {
  // AssociateId 0 in the *ForAssociate operations means "the authenticated associate".
  bool self = request.associateId == 0;
  switch (request.op) {
    case Op::CREATE_DEFAULT:
      return session.createDefaultRequest().send().then([](auto&& r) {
        OpResult out;
        if (r.hasError()) {
          out.failure = failureFrom(r.getError());
        } else {
          out.credentials.add(credentialFrom(r.getCredential()));
        }
        return out;
      });
    case Op::GET_FOR_ASSOCIATE:
      if (!self) {
        auto req = session.getForAssociateRequest();
        req.setAssociateId(request.associateId);
        req.setType(request.type);
        return req.send().then([](auto&& r) { return listResult(r); });
      }
      KJ_FALLTHROUGH;
    case Op::GET: {
      auto req = session.getRequest();
      req.setType(request.type);
      return req.send().then([](auto&& r) { return listResult(r); });
    }
    case Op::SAVE_FOR_ASSOCIATE:
      if (!self) {
        auto req = session.saveForAssociateRequest();
        req.setAssociateId(request.associateId);
        req.setType(request.type);
        fillCredential(req.initCredential(), request.credential);
        return req.send().then([](auto&& r) { return errorOnly(r); });
      }
      KJ_FALLTHROUGH;
    case Op::SAVE: {
      auto req = session.saveRequest();
      req.setType(request.type);
      fillCredential(req.initCredential(), request.credential);
      return req.send().then([](auto&& r) { return errorOnly(r); });
    }
    case Op::REMOVE_FOR_ASSOCIATE:
      if (!self) {
        auto req = session.removeForAssociateRequest();
        req.setAssociateId(request.associateId);
        req.setType(request.type);
        req.setPublicValue(request.publicValue);
        return req.send().then([](auto&& r) { return removeResult(r); });
      }
      KJ_FALLTHROUGH;
    case Op::REMOVE: {
      auto req = session.removeRequest();
      req.setType(request.type);
      req.setPublicValue(request.publicValue);
      return req.send().then([](auto&& r) { return removeResult(r); });
    }
  }
  KJ_UNREACHABLE;
}

struct PerformState {
  Caller caller;
  OpRequest request;
};

// Sends authentication and operation together; the operation is pipelined on the session.
kj::Promise<OpResult> performOnce(rpc::Vault::Client vault, PerformState& s) {
  rpc::Session::Client session = nullptr;
  kj::Promise<kj::Maybe<Failure>> authenticated = nullptr;
  auto check = [](auto&& r) -> kj::Maybe<Failure> {
    if (r.hasError()) return failureFrom(r.getError());
    return nullptr;
  };
  switch (s.caller.kind) {
    case Caller::TICKET: {
      auto req = vault.authenticateTicketRequest();
      req.setTicket(s.caller.secret.reveal());
      KJ_IF_MAYBE(a, s.caller.appToken) { req.setAppToken(*a); }
      req.setClientAddress(s.caller.clientAddress);
      req.setRequestId(s.caller.requestId);
      auto sent = req.send();
      session = sent.getSession();
      authenticated = sent.then(check);
      break;
    }
    case Caller::PASSWORD: {
      auto req = vault.authenticatePasswordRequest();
      req.setName(s.caller.userName);
      req.setPassword(s.caller.secret.reveal());
      KJ_IF_MAYBE(a, s.caller.appToken) { req.setAppToken(*a); }
      req.setIssueTicket(false);
      req.setClientAddress(s.caller.clientAddress);
      req.setRequestId(s.caller.requestId);
      auto sent = req.send();
      session = sent.getSession();
      authenticated = sent.then(check);
      break;
    }
    case Caller::TOKEN: {
      auto req = vault.authenticateTokenRequest();
      req.setToken(s.caller.secret.reveal());
      KJ_IF_MAYBE(a, s.caller.appToken) { req.setAppToken(*a); }
      req.setClientAddress(s.caller.clientAddress);
      req.setRequestId(s.caller.requestId);
      auto sent = req.send();
      session = sent.getSession();
      authenticated = sent.then(check);
      break;
    }
  }
  auto operation = sendOperation(kj::mv(session), s.request);
  return authenticated.then(
      [operation = kj::mv(operation)](kj::Maybe<Failure> failure) mutable -> kj::Promise<OpResult> {
        KJ_IF_MAYBE(f, failure) {
          // The pipelined call failed on a null session; its outcome is irrelevant.
          OpResult out;
          out.failure = kj::mv(*f);
          return kj::mv(out);
        }
        return kj::mv(operation);
      });
}

Failure failureFromException(const kj::Exception& e) {
  if (e.getType() == kj::Exception::Type::DISCONNECTED) {
    return makeFailure(rpc::ErrorCode::UNAVAILABLE, "", "The credential vault is unavailable");
  }
  if (e.getType() == kj::Exception::Type::OVERLOADED) {
    return makeFailure(rpc::ErrorCode::UNAVAILABLE, "", "The credential vault is overloaded");
  }
  return makeFailure(rpc::ErrorCode::INTERNAL, "", "Internal error");
}

Caller cloneCaller(const Caller& c) {
  Caller out;
  out.kind = c.kind;
  out.userName = kj::heapString(c.userName);
  out.secret = c.secret.clone();
  KJ_IF_MAYBE(a, c.appToken) { out.appToken = kj::heapString(*a); }
  out.clientAddress = kj::heapString(c.clientAddress);
  out.requestId = kj::heapString(c.requestId);
  return out;
}

}  // namespace

kj::Promise<OpResult> perform(VaultLink& link, const Caller& caller, OpRequest request) {
  KJ_IF_MAYBE(f, validate(caller)) {
    OpResult out;
    out.failure = kj::mv(*f);
    return kj::mv(out);
  }
  KJ_IF_MAYBE(f, validate(request)) {
    OpResult out;
    out.failure = kj::mv(*f);
    return kj::mv(out);
  }
  auto state = kj::heap<PerformState>(PerformState{cloneCaller(caller), kj::mv(request)});
  auto& s = *state;
  return link
      .call<OpResult>([&s](rpc::Vault::Client vault) { return performOnce(kj::mv(vault), s); })
      .catch_([](kj::Exception&& e) {
        OpResult out;
        out.failure = failureFromException(e);
        return out;
      })
      .attach(kj::mv(state));
}

kj::Promise<kj::Maybe<Failure>> authenticate(VaultLink& link, const Caller& caller) {
  KJ_IF_MAYBE(f, validate(caller)) { return kj::Maybe<Failure>(kj::mv(*f)); }
  auto state = kj::heap<Caller>(cloneCaller(caller));
  auto& c = *state;
  auto check = [](auto&& r) -> kj::Maybe<Failure> {
    if (r.hasError()) return failureFrom(r.getError());
    return nullptr;
  };
  return link
      .call<kj::Maybe<Failure>>(
          [&c, check](rpc::Vault::Client vault) -> kj::Promise<kj::Maybe<Failure>> {
            switch (c.kind) {
              case Caller::TICKET: {
                auto req = vault.authenticateTicketRequest();
                req.setTicket(c.secret.reveal());
                KJ_IF_MAYBE(a, c.appToken) { req.setAppToken(*a); }
                req.setClientAddress(c.clientAddress);
                req.setRequestId(c.requestId);
                return req.send().then(check);
              }
              case Caller::PASSWORD: {
                auto req = vault.authenticatePasswordRequest();
                req.setName(c.userName);
                req.setPassword(c.secret.reveal());
                KJ_IF_MAYBE(a, c.appToken) { req.setAppToken(*a); }
                req.setIssueTicket(false);
                req.setClientAddress(c.clientAddress);
                req.setRequestId(c.requestId);
                return req.send().then(check);
              }
              case Caller::TOKEN: {
                auto req = vault.authenticateTokenRequest();
                req.setToken(c.secret.reveal());
                KJ_IF_MAYBE(a, c.appToken) { req.setAppToken(*a); }
                req.setClientAddress(c.clientAddress);
                req.setRequestId(c.requestId);
                return req.send().then(check);
              }
            }
            KJ_UNREACHABLE;
          })
      .catch_([](kj::Exception&& e) -> kj::Maybe<Failure> { return failureFromException(e); })
      .attach(kj::mv(state));
}

kj::Promise<LoginResult> login(VaultLink& link, kj::StringPtr userName,
                               const SensitiveText& password, kj::Maybe<kj::StringPtr> appToken,
                               kj::StringPtr clientAddress, kj::StringPtr requestId) {
  Caller caller;
  caller.clientAddress = kj::heapString(clientAddress);
  caller.requestId = kj::heapString(requestId);
  caller.kind = Caller::PASSWORD;
  caller.userName = kj::heapString(userName);
  caller.secret = password.clone();
  KJ_IF_MAYBE(a, appToken) { caller.appToken = kj::heapString(*a); }
  KJ_IF_MAYBE(f, validate(caller)) {
    LoginResult out;
    out.failure = kj::mv(*f);
    return kj::mv(out);
  }
  auto state = kj::heap<Caller>(kj::mv(caller));
  auto& c = *state;
  return link
      .call<LoginResult>([&c](rpc::Vault::Client vault) {
        auto req = vault.authenticatePasswordRequest();
        req.setName(c.userName);
        req.setPassword(c.secret.reveal());
        KJ_IF_MAYBE(a, c.appToken) { req.setAppToken(*a); }
        req.setIssueTicket(true);
        req.setClientAddress(c.clientAddress);
        req.setRequestId(c.requestId);
        return req.send().then([](auto&& r) {
          LoginResult out;
          if (r.hasError()) {
            out.failure = failureFrom(r.getError());
            return out;
          }
          auto p = r.getPrincipal();
          out.associateId = p.getAssociateId();
          out.name = kj::heapString(p.getName());
          out.kind = p.getKind();
          out.userAdmin = p.getUserAdmin();
          out.ticket = SensitiveText(r.getTicket());
          out.ticketExpires = r.getTicketExpires();
          return out;
        });
      })
      .catch_([](kj::Exception&& e) {
        LoginResult out;
        out.failure = failureFromException(e);
        return out;
      })
      .attach(kj::mv(state));
}

kj::String clientAddressOf(kj::StringPtr peer) {
  if (peer.startsWith("[")) {
    KJ_IF_MAYBE(close, peer.findFirst(']')) {
      return kj::heapString(peer.slice(1).begin(), *close - 1);
    }
    return kj::str();
  }
  KJ_IF_MAYBE(colon, peer.findLast(':')) { return kj::heapString(peer.begin(), *colon); }
  return kj::heapString(peer);
}

}  // namespace credvault::frontends
