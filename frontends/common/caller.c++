#include "caller.h"
#include "request-checks.h"

#include "frontends/limits.h"

#include <kj/debug.h>

namespace credvault::frontends {

Caller Caller::clone() const {
  Caller out;
  out.kind = kind;
  out.userName = kj::heapString(userName);
  out.secret = secret.clone();
  KJ_IF_MAYBE(a, appToken) { out.appToken = kj::heapString(*a); }
  out.clientAddress = kj::heapString(clientAddress);
  out.requestId = kj::heapString(requestId);
  return out;
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

kj::Maybe<Failure> checked(rpc::Error::Reader error, bool hasError) {
  if (hasError) return failureFrom(error);
  return nullptr;
}

// The fields every authenticate call carries besides the credential itself.
template<typename Request>
void fillCommon(Request& req, const Caller& c) {
  KJ_IF_MAYBE(a, c.appToken) { req.setAppToken(*a); }
  req.setClientAddress(c.clientAddress);
  req.setRequestId(c.requestId);
}

}  // namespace

SentAuthentication sendAuthentication(rpc::Vault::Client& vault, const Caller& c) {
  auto check = [](auto&& r) { return checked(r.getError(), r.hasError()); };
  switch (c.kind) {
    case Caller::TICKET: {
      auto req = vault.authenticateTicketRequest();
      req.setTicket(c.secret.reveal());
      fillCommon(req, c);
      auto sent = req.send();
      rpc::Session::Client session = sent.getSession();
      return {kj::mv(session), sent.then(check)};
    }
    case Caller::PASSWORD: {
      auto req = vault.authenticatePasswordRequest();
      req.setName(c.userName);
      req.setPassword(c.secret.reveal());
      req.setIssueTicket(false);
      fillCommon(req, c);
      auto sent = req.send();
      rpc::Session::Client session = sent.getSession();
      return {kj::mv(session), sent.then(check)};
    }
    case Caller::TOKEN: {
      auto req = vault.authenticateTokenRequest();
      req.setToken(c.secret.reveal());
      fillCommon(req, c);
      auto sent = req.send();
      rpc::Session::Client session = sent.getSession();
      return {kj::mv(session), sent.then(check)};
    }
  }
  KJ_UNREACHABLE;
}

kj::Promise<kj::Maybe<Failure>> authenticate(VaultLink& link, const Caller& caller) {
  KJ_IF_MAYBE(f, validate(caller)) { return kj::Maybe<Failure>(kj::mv(*f)); }
  auto state = kj::heap<Caller>(caller.clone());
  auto& c = *state;
  return link
      .call<kj::Maybe<Failure>>(
          [&c](rpc::Vault::Client vault) { return sendAuthentication(vault, c).outcome; })
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
        req.setIssueTicket(true);
        fillCommon(req, c);
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
