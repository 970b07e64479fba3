#include "operations.h"

#include "base/ascii.h"

#include <kj/debug.h>

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

namespace {

template<typename Response>
OpResult answered(Response&& r) {
  OpResult out;
  if (r.hasError()) out.failure = failureFrom(r.getError());
  return out;
}

// One native call per operation: the *ForAssociate operations send their AssociateId, the
// others 0 (the authenticated associate), and the daemon reads 0 the way SuperOffice does.
kj::Promise<OpResult> sendOperation(rpc::Session::Client session, const OpRequest& request) {
  switch (request.op) {
    case Op::CREATE_DEFAULT:
      return session.createDefaultRequest().send().then([](auto&& r) {
        auto out = answered(r);
        if (out.failure == nullptr) out.initCredentials(1).setWithCaveats(0, r.getCredential());
        return out;
      });
    case Op::GET:
    case Op::GET_FOR_ASSOCIATE: {
      auto req = session.getRequest();
      req.setAssociateId(request.associateId);
      req.setType(request.type);
      return req.send().then([](auto&& r) {
        auto out = answered(r);
        if (out.failure == nullptr) out.setCredentials(r.getCredentials());
        return out;
      });
    }
    case Op::SAVE:
    case Op::SAVE_FOR_ASSOCIATE: {
      auto req = session.saveRequest();
      req.setAssociateId(request.associateId);
      req.setType(request.type);
      req.setCredential(request.credential());
      return req.send().then([](auto&& r) { return answered(r); });
    }
    case Op::REMOVE:
    case Op::REMOVE_FOR_ASSOCIATE: {
      auto req = session.removeRequest();
      req.setAssociateId(request.associateId);
      req.setType(request.type);
      req.setPublicValue(request.publicValue);
      return req.send().then([](auto&& r) {
        auto out = answered(r);
        if (out.failure == nullptr) out.removed = r.getRemoved();
        return out;
      });
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
  auto auth = sendAuthentication(vault, s.caller);
  auto operation = sendOperation(kj::mv(auth.session), s.request);
  return kj::mv(auth.outcome)
      .then([operation =
                 kj::mv(operation)](kj::Maybe<Failure> failure) mutable -> kj::Promise<OpResult> {
        KJ_IF_MAYBE(f, failure) {
          // The pipelined call failed on a null session; its outcome is irrelevant.
          OpResult out;
          out.failure = kj::mv(*f);
          return kj::mv(out);
        }
        return kj::mv(operation);
      });
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
  auto state = kj::heap<PerformState>(PerformState{caller.clone(), kj::mv(request)});
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

}  // namespace credvault::frontends
