#include "rpc-server.h"
#include "rpc-convert.h"
#include "backup.h"
#include "verify.h"
#include "log.h"
#include "core/limits.h"
#include "crypto/masterkey.h"
#include "ipc/client.h"
#include "credvault-config.h"

#include <capnp/dynamic.h>
#include <kj/debug.h>

namespace credvault::daemon {

void setError(rpc::Error::Builder out, const core::Refusal& r) {
  out.setCode(toWire(r.code));
  out.setField(r.field);
  out.setMessage(r.message);
  out.setRetryAfterSeconds(r.retryAfterSeconds);
}

namespace {

using DispatchCallResult = capnp::Capability::Server::DispatchCallResult;
using AnyContext = capnp::CallContext<capnp::AnyPointer, capnp::AnyPointer>;

kj::StringPtr methodName(core::AuthMethod m) {
  switch (m) {
    case core::AuthMethod::NONE:
      return "none";
    case core::AuthMethod::PEER_CREDENTIALS:
      return "peer";
    case core::AuthMethod::PASSWORD:
      return "password";
    case core::AuthMethod::TICKET:
      return "ticket";
    case core::AuthMethod::API_TOKEN:
      return "token";
  }
  return "none";
}

kj::StringPtr methodName(rpc::AuthMethod m) {
  switch (m) {
    case rpc::AuthMethod::NONE:
      return "none";
    case rpc::AuthMethod::PEER_CREDENTIALS:
      return "peer";
    case rpc::AuthMethod::PASSWORD:
      return "password";
    case rpc::AuthMethod::TICKET:
      return "ticket";
    case rpc::AuthMethod::API_TOKEN:
      return "token";
  }
  return "none";
}

// What a connection's sessions know of the caller besides the principal: the peer, and what
// a front end said of its own client (for the audit trail only; never for a decision).
struct Caller {
  Peer peer;
  kj::String clientAddress;
  kj::String requestId;
  kj::Own<ConnectionLoad> load;  // the connection's, shared by its capabilities

  Caller clone() {
    return {peer, kj::heapString(clientAddress), kj::heapString(requestId), kj::addRef(*load)};
  }
};

// ---- The rule of each method -------------------------------------------------------------

enum class Target : uint8_t {
  NONE,           // the operation names no associate
  SELF,           // the caller's own associate
  PARAM,          // params.associateId (a positive id)
  PARAM_OR_SELF,  // params.associateId, 0 meaning the caller
  // params.associateId, 0 meaning the caller, as PARAM_OR_SELF; a negative id is left to core,
  // which names the argument at fault before deciding (the credential calls).
  OWNER,
};

struct Rule {
  kj::StringPtr operation;  // the audit record's name of the call
  core::Operation policy;   // what core::authorize is asked
  Target target;
  // Probes (health checks, metric scrapes) come every few seconds and change nothing: only
  // their refusals and failures go into the audit trail, so the trail stays readable.
  bool auditSuccess = true;
};

// Indexed by method ordinal. checkRules() (at start) proves each table covers its interface.
const Rule VAULT_RULES[] = {
    {"whoami", core::Operation::WHOAMI, Target::NONE},                       // @0
    {"session", core::Operation::AUTHENTICATE, Target::NONE},                // @1
    {"authenticate-password", core::Operation::AUTHENTICATE, Target::NONE},  // @2
    {"authenticate-ticket", core::Operation::AUTHENTICATE, Target::NONE},    // @3
    {"authenticate-token", core::Operation::AUTHENTICATE, Target::NONE},     // @4
    {"status", core::Operation::AUTHENTICATE, Target::NONE},                 // @5
    {"ticket-revoke", core::Operation::REVOKE_TICKET, Target::NONE},         // @6
    {"health", core::Operation::HEALTH, Target::NONE, false},                // @7
    {"metrics", core::Operation::METRICS, Target::NONE, false},              // @8
};

const Rule SESSION_RULES[] = {
    {"whoami", core::Operation::WHOAMI, Target::NONE},                        // @0
    {"create-default", core::Operation::CREATE_DEFAULT, Target::NONE},        // @1
    {"get", core::Operation::GET, Target::OWNER},                             // @2
    {"get", core::Operation::GET, Target::OWNER},                             // @3 deprecated
    {"save", core::Operation::SAVE, Target::OWNER},                           // @4
    {"save", core::Operation::SAVE, Target::OWNER},                           // @5 deprecated
    {"remove", core::Operation::REMOVE, Target::OWNER},                       // @6
    {"remove", core::Operation::REMOVE, Target::OWNER},                       // @7 deprecated
    {"admin", core::Operation::ADMIN, Target::NONE},                          // @8
    {"logout", core::Operation::LOGOUT, Target::NONE},                        // @9
    {"token-create", core::Operation::CREATE_TOKEN, Target::PARAM_OR_SELF},   // @10
    {"token-list", core::Operation::MANAGE_TOKENS, Target::PARAM_OR_SELF},    // @11
    {"token-revoke", core::Operation::MANAGE_TOKENS, Target::PARAM_OR_SELF},  // @12
    {"list", core::Operation::GET, Target::PARAM_OR_SELF},                    // @13
    {"list-all", core::Operation::LIST_ALL, Target::NONE},                    // @14
    {"update", core::Operation::SAVE, Target::PARAM_OR_SELF},                 // @15
    {"passwd", core::Operation::SET_PASSWORD, Target::SELF},                  // @16
};

const Rule ADMIN_RULES[] = {
    {"associate-add", core::Operation::CHANGE_ASSOCIATES, Target::NONE},      // @0
    {"associate-list", core::Operation::LIST_ASSOCIATES, Target::NONE},       // @1
    {"associate-set", core::Operation::CHANGE_ASSOCIATES, Target::PARAM},     // @2
    {"associate-remove", core::Operation::CHANGE_ASSOCIATES, Target::PARAM},  // @3
    {"associate-passwd", core::Operation::SET_PASSWORD, Target::PARAM},       // @4
    {"associate-find", core::Operation::LIST_ASSOCIATES, Target::NONE},       // @5
    {"backup", core::Operation::MAINTAIN, Target::NONE},                      // @6
    {"rotate-key", core::Operation::MAINTAIN, Target::NONE},                  // @7
    {"application-add", core::Operation::MAINTAIN, Target::NONE},             // @8
    {"application-list", core::Operation::MAINTAIN, Target::NONE},            // @9
    {"application-remove", core::Operation::MAINTAIN, Target::NONE},          // @10
    {"change-master-key", core::Operation::MAINTAIN, Target::NONE},           // @11
    {"backup", core::Operation::MAINTAIN, Target::NONE},                      // @12
    {"audit-hash", core::Operation::MAINTAIN, Target::NONE},                  // @13
    {"verify", core::Operation::MAINTAIN, Target::NONE},                      // @14
};

// ---- The choke point -------------------------------------------------------------------

// The audit record of one call, filled as the call goes; owns the strings it points to.
struct Pending {
  AuditRecord record;
  kj::String type;
  kj::String publicValueHmac;
  kj::String clientAddress;
  kj::String requestId;
};

// Where the choke point finds what it records in one method's params and results: looked up
// by name once per method, not on every call.
struct Shape {
  capnp::StructSchema params;
  capnp::StructSchema results;
  kj::Maybe<capnp::StructSchema::Field> clientAddress, requestId, type, publicValue, credential,
      associateId;                                         // params
  kj::Maybe<capnp::StructSchema::Field> error, principal;  // results
};

template<typename Interface>
const Shape& shapeOf(uint16_t methodId) {
  static const kj::Array<Shape> shapes = []() {
    auto methods = capnp::Schema::from<Interface>().getMethods();
    auto out = kj::heapArrayBuilder<Shape>(methods.size());
    for (auto method : methods) {
      Shape s;
      s.params = method.getParamType();
      s.results = method.getResultType();
      s.clientAddress = s.params.findFieldByName("clientAddress");
      s.requestId = s.params.findFieldByName("requestId");
      s.type = s.params.findFieldByName("type");
      s.publicValue = s.params.findFieldByName("publicValue");
      s.credential = s.params.findFieldByName("credential");
      s.associateId = s.params.findFieldByName("associateId");
      s.error = s.results.findFieldByName("error");
      s.principal = s.results.findFieldByName("principal");
      out.add(kj::mv(s));
    }
    return out.finish();
  }();
  return shapes[methodId];
}

// Whether `s` has `field` (when its method has one) and it is set.
template<typename Struct>
bool isSet(Struct s, const kj::Maybe<capnp::StructSchema::Field>& field) {
  KJ_IF_MAYBE(f, field) { return s.has(*f); }
  return false;
}

// Text a front end passes about its client: printable ASCII, bounded.
core::Result<kj::String> frontEndText(capnp::DynamicStruct::Reader params,
                                      const kj::Maybe<capnp::StructSchema::Field>& field,
                                      kj::StringPtr name) {
  KJ_IF_MAYBE(f, field) {
    if (!params.has(*f)) return kj::String();
    auto text = params.get(*f).as<capnp::Text>();
    if (text.size() > 64) return core::invalidArgument(name, name, " is longer than 64 bytes");
    for (char c : text) {
      if (c < 0x21 || c > 0x7e)
        return core::invalidArgument(name, name, " must be printable ASCII");
    }
    return kj::heapString(text);
  }
  return kj::String();
}

// Oversized requests are refused per call, so the connection stays usable. (The transport
// closes a connection only past TRANSPORT_LIMIT, see listener.h.)
kj::Maybe<core::Refusal> checkSize(capnp::AnyPointer::Reader params) {
  // Measuring walks the whole request, so it meets a nesting or traversal limit first.
  uint64_t words = 0;
  if (kj::runCatchingExceptions([&]() { words = params.targetSize().wordCount; }) != nullptr) {
    return core::refuse(core::ErrorCode::LIMIT_EXCEEDED, "message",
                        kj::str("the request is nested deeper than ", core::MAX_MESSAGE_NESTING,
                                " levels or too large to read"));
  }
  if (words * 8 > core::MAX_MESSAGE_BYTES) {
    return core::refuse(core::ErrorCode::LIMIT_EXCEEDED, "message",
                        kj::str("the request is larger than ", core::MAX_MESSAGE_BYTES, " bytes"));
  }
  return nullptr;
}

constexpr uint32_t STORAGE_RETRY_AFTER_SECONDS = 5;

// Logs an unexpected failure (its text is ours and holds no secrets) and answers the
// client only `internal`. Damaged data (core::isIntegrityFailure) is answered `integrity`
// with core's message, as a refusal is (the call's audit record and log line say so). A storage
// failure (no space, I/O error) is the operator's to fix, not a bug: it is answered `unavailable`
// naming the store (field "storage") with what went wrong, and logged by StoreHealth
// (rate-limited), not once per call.
void setInternal(rpc::Error::Builder out, kj::StringPtr op, const kj::Exception& e) {
  if (store::isStorageFailure(e)) {
    logf(Level::DEBUG, kj::str(op, " failed: ", e.getDescription()), LogField{"OP", kj::str(op)},
         LogField{"RESULT", kj::str("unavailable")});
    out.setCode(rpc::ErrorCode::UNAVAILABLE);
    out.setField("storage");
    auto d = e.getDescription();
    out.setMessage(kj::str("the vault cannot store data now: ",
                           d.slice(sizeof(store::STORAGE_FAILURE_PREFIX) - 1)));
    out.setRetryAfterSeconds(STORAGE_RETRY_AFTER_SECONDS);
    return;
  }
  if (core::isIntegrityFailure(e)) {
    // Damaged data (core/error.h): `integrity` with core's message, which names no value.
    out.setCode(rpc::ErrorCode::INTEGRITY);
    out.setMessage(core::integrityMessage(e));
    return;
  }
  logf(Level::ERROR, kj::str(op, " failed: ", e.getDescription()), LogField{"OP", kj::str(op)},
       LogField{"RESULT", kj::str("internal")});
  out.setCode(rpc::ErrorCode::INTERNAL);
  out.setMessage("internal error; see the daemon's log");
}

// The daemon's own log of a call (the audit trail is the record): refusals at INFO, the
// rest at DEBUG. Ids, names and codes only.
void logCall(const AuditRecord& r, kj::StringPtr field) {
  bool ok = r.result == "ok";
  Level level = ok ? Level::DEBUG : Level::INFO;
  if (!logEnabled(level)) return;
  if (field.size() == 0) {
    logf(level, kj::str(r.operation, " ", r.result), LogField{"OP", kj::str(r.operation)},
         LogField{"UID", kj::str(r.peerUid)}, LogField{"ASSOCIATE", kj::str(r.associateId)},
         LogField{"AUTH", kj::str(r.authMethod)}, LogField{"RESULT", kj::str(r.result)});
  } else {
    logf(level, kj::str(r.operation, " ", r.result), LogField{"OP", kj::str(r.operation)},
         LogField{"UID", kj::str(r.peerUid)}, LogField{"ASSOCIATE", kj::str(r.associateId)},
         LogField{"AUTH", kj::str(r.authMethod)}, LogField{"RESULT", kj::str(r.result)},
         LogField{"FIELD", kj::str(field)});
  }
}

// A capability's view of the choke point: who it serves and how it dispatches.
struct GateSide {
  Service& service;
  Caller& caller;
  kj::Maybe<core::Standing&> standing;  // null on the bootstrap (identity comes with the call)
  const core::Principal*& current;      // set for the synchronous part of the method body
};

template<typename Interface, typename Dispatch>
DispatchCallResult pass(GateSide side, kj::ArrayPtr<const Rule> rules, uint64_t interfaceId,
                        uint16_t methodId, AnyContext context, Dispatch&& dispatch) {
  if (interfaceId != capnp::typeId<Interface>() || methodId >= rules.size()) {
    // Not ours (capnp answers "unimplemented"), and still one record.
    AuditRecord r;
    r.operation = "unknown-method";
    r.result = "unimplemented";
    r.peerUid = side.caller.peer.uid;
    r.peerPid = side.caller.peer.pid;
    r.authMethod = "none";
    r.time = side.service.clock().now();
    side.service.audit().write(r);
    return dispatch();
  }
  const Rule& rule = rules[methodId];
  const Shape& shape = shapeOf<Interface>(methodId);
  auto resultType = shape.results;
  // Counted until its answer is complete (audit record included), for the graceful stop.
  ++side.service.inFlight;
  auto inFlight = kj::defer([&service = side.service]() { --service.inFlight; });
  auto pending = kj::heap<Pending>();
  auto& service = side.service;
  {
    auto& r = pending->record;
    r.operation = rule.operation;
    r.peerUid = side.caller.peer.uid;
    r.peerPid = side.caller.peer.pid;
    r.authMethod = "none";
    r.clientAddress = side.caller.clientAddress;
    r.requestId = side.caller.requestId;
  }

  // Writes the record once the results hold the outcome. In fail-closed mode a record that
  // cannot be written withholds the answer.
  // Resolves once the record is in the trail (batched per event-loop turn: AuditLog::writeSoon),
  // so no answer leaves before its record is written.
  bool auditSuccess = rule.auditSuccess;
  auto finish = [&service, context, &shape, auditSuccess](Pending& p) mutable -> kj::Promise<void> {
    auto results = context.getResults().template getAs<capnp::DynamicStruct>(shape.results);
    p.record.result = "ok";
    kj::StringPtr field;
    if (isSet(results, shape.error)) {
      auto error = results.get(KJ_ASSERT_NONNULL(shape.error)).template as<rpc::Error>();
      p.record.result = ipc::errorCodeName(error.getCode());
      field = error.getField();
    } else if (p.record.associateId == 0 && isSet(results, shape.principal)) {
      auto who = results.get(KJ_ASSERT_NONNULL(shape.principal)).template as<rpc::Principal>();
      p.record.associateId = who.getAssociateId();
      p.record.authMethod = methodName(who.getMethod());
    }
    p.record.time = service.clock().now();
    logCall(p.record, field);
    if (!auditSuccess && p.record.result == "ok") return kj::READY_NOW;
    return service.audit().writeSoon(p.record).then(
        [&service, context, &shape](bool written) mutable {
          if (written || service.audit().failureMode() != AuditFailureMode::REFUSE) return;
          auto resultType = shape.results;
          auto results = context.getResults().template getAs<capnp::DynamicStruct>(resultType);
          for (auto field : resultType.getFields()) results.clear(field);
          auto error = results.init("error").template as<rpc::Error>();
          error.setCode(rpc::ErrorCode::UNAVAILABLE);
          error.setMessage("the audit trail cannot be written; see the daemon's log");
        });
  };

  kj::Maybe<core::Refusal> refused;
  kj::Maybe<DispatchCallResult> dispatched;
  // A long call's weight (ConnectionLoad::longCalls, taken by the method) counts until its
  // answer is handed to capnp below, not only while it runs: an answer built and waiting for
  // its audit record is memory too.
  auto& load = *side.caller.load;
  size_t longBefore = load.longCalls;
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&]() {
                {
                  auto params = context.getParams();
                  KJ_IF_MAYBE(tooBig, checkSize(params)) {
                    refused = kj::mv(*tooBig);
                    return;
                  }
                  auto fields = params.template getAs<capnp::DynamicStruct>(shape.params);
                  auto& r = pending->record;
                  auto clientAddress = frontEndText(fields, shape.clientAddress, "clientAddress");
                  auto requestId = frontEndText(fields, shape.requestId, "requestId");
                  for (auto* text : {&clientAddress, &requestId}) {
                    if (!text->ok()) {
                      refused = text->takeRefusal();
                      return;
                    }
                  }
                  pending->clientAddress = kj::mv(clientAddress).value();
                  pending->requestId = kj::mv(requestId).value();
                  if (!service.identity().isGatewayUid(side.caller.peer.uid)) {
                    // Only a front end's word about its client is recorded.
                    pending->clientAddress = nullptr;
                    pending->requestId = nullptr;
                  }
                  if (pending->clientAddress.size() > 0) r.clientAddress = pending->clientAddress;
                  if (pending->requestId.size() > 0) r.requestId = pending->requestId;
                  if (isSet(fields, shape.type)) {
                    pending->type = kj::heapString(
                        fields.get(KJ_ASSERT_NONNULL(shape.type)).template as<capnp::Text>());
                    r.type = pending->type;
                  }
                  kj::Maybe<capnp::Text::Reader> publicValue;
                  if (isSet(fields, shape.publicValue)) {
                    publicValue =
                        fields.get(KJ_ASSERT_NONNULL(shape.publicValue)).template as<capnp::Text>();
                  } else if (isSet(fields, shape.credential)) {
                    auto c = fields.get(KJ_ASSERT_NONNULL(shape.credential))
                                 .template as<rpc::Credential>();
                    if (c.hasPublicValue()) publicValue = c.getPublicValue();
                  }
                  KJ_IF_MAYBE(v, publicValue) {
                    pending->publicValueHmac = service.vault().auditHash(*v);
                    r.publicValueHmac = pending->publicValueHmac;
                  }
                  int32_t named = 0;
                  if (rule.target == Target::PARAM || rule.target == Target::PARAM_OR_SELF ||
                      rule.target == Target::OWNER) {
                    named = fields.get(KJ_ASSERT_NONNULL(shape.associateId)).template as<int32_t>();
                  }

                  if (service.stopping) {
                    refused =
                        core::refuse(core::ErrorCode::UNAVAILABLE, "",
                                     kj::str("credvaultd is stopping; retry when it is back"));
                    return;
                  }
                  if (!service.audit().accepting()) {
                    refused = core::refuse(
                        core::ErrorCode::UNAVAILABLE, "",
                        kj::str("the audit trail cannot be written; the daemon refuses "
                                "calls until it can (see its log)"));
                    return;
                  }

                  KJ_IF_MAYBE(standing, side.standing) {
                    auto now = service.identity().current(*standing);
                    if (!now.ok()) {
                      refused = now.takeRefusal();
                      return;
                    }
                    const core::Principal& who = now.value();
                    r.authMethod = methodName(who.method);
                    r.associateId = who.associateId;
                    int32_t target = 0;
                    bool decide = true;
                    switch (rule.target) {
                      case Target::NONE:
                        break;
                      case Target::SELF:
                        target = who.associateId;
                        break;
                      case Target::PARAM:
                        target = named;
                        // core names the argument at fault before deciding.
                        decide = named > 0;
                        break;
                      case Target::PARAM_OR_SELF:
                        target = named == 0 ? who.associateId : named;
                        break;
                      case Target::OWNER:
                        target = named == 0 ? who.associateId : named;
                        decide = named >= 0;
                        break;
                    }
                    r.targetAssociateId = target;
                    if (decide) {
                      auto decision = core::authorize(who, rule.policy, target);
                      if (!decision.ok()) {
                        refused = decision.takeRefusal();
                        return;
                      }
                    }
                    side.current = &who;
                  } else if (!core::openToAnyone(rule.policy)) {
                    // The bootstrap: the peer's own identity decides (status, metrics).
                    auto who = service.identity().peerPrincipal(side.caller.peer);
                    r.authMethod = methodName(who.method);
                    r.associateId = who.associateId;
                    auto decision = core::authorize(who, rule.policy, 0);
                    if (!decision.ok()) {
                      refused = decision.takeRefusal();
                      return;
                    }
                  }
                  KJ_DEFER(side.current = nullptr);
                  dispatched = dispatch();
                }
              })) {
    load.longCalls = longBefore;
    setInternal(context.getResults()
                    .template getAs<capnp::DynamicStruct>(resultType)
                    .init("error")
                    .template as<rpc::Error>(),
                rule.operation, *exception);
    auto written = finish(*pending);
    return {written.attach(kj::mv(pending), kj::mv(inFlight)), false};
  }
  KJ_IF_MAYBE(e, refused) {
    load.longCalls = longBefore;
    setError(context.getResults()
                 .template getAs<capnp::DynamicStruct>(resultType)
                 .init("error")
                 .template as<rpc::Error>(),
             *e);
    auto written = finish(*pending);
    return {written.attach(kj::mv(pending), kj::mv(inFlight)), false};
  }
  auto result = KJ_ASSERT_NONNULL(kj::mv(dispatched));
  auto operation = rule.operation;
  // Until it is answered, the call keeps its connection from counting as idle.
  ++load.calls;
  size_t longTaken = load.longCalls - longBefore;
  auto answered = kj::defer([load = kj::addRef(load), longTaken]() mutable {
    --load->calls;
    load->longCalls -= longTaken;
  });
  result.promise = result.promise
                       .then([finish, &pending = *pending]() mutable { return finish(pending); },
                             [finish, &pending = *pending, context, resultType,
                              operation](kj::Exception&& e) mutable {
                               setInternal(context.getResults()
                                               .template getAs<capnp::DynamicStruct>(resultType)
                                               .init("error")
                                               .template as<rpc::Error>(),
                                           operation, e);
                               return finish(pending);
                             })
                       .attach(kj::mv(pending), kj::mv(answered), kj::mv(inFlight));
  return result;
}

// Proves at start that each rule table has one entry per method, in order.
template<typename Interface>
void checkRules(kj::ArrayPtr<const Rule> rules) {
  auto methods = capnp::Schema::from<Interface>().getMethods();
  KJ_ASSERT(methods.size() == rules.size(), "a method has no rule in rpc-server.c++",
            capnp::Schema::from<Interface>().getProto().getDisplayName());
}

// Completes a queued job (a write in the group commit, work on a worker): the typed outcome
// goes into the results. An unexpected failure is rethrown for the choke point to log and
// answer `internal`.
template<typename T, typename Context, typename Fill>
kj::Promise<void> finishQueued(kj::Promise<Outcome<T>> promise, Context context, Fill&& fill) {
  return promise.then([context, fill = kj::fwd<Fill>(fill)](Outcome<T> outcome) mutable {
    KJ_IF_MAYBE(e, outcome.error) {
      setError(context.getResults().initError(), *e);
      return;
    }
    KJ_IF_MAYBE(f, outcome.failure) { kj::throwFatalException(kj::mv(*f)); }
    fill(context.getResults(), KJ_ASSERT_NONNULL(kj::mv(outcome.value)));
  });
}

// Answers a call with a refusal (the choke point records it like any answer).
template<typename Context>
kj::Promise<void> refuseCall(Context& context, const core::Refusal& refusal) {
  setError(context.getResults().initError(), refusal);
  return kj::READY_NOW;
}

// ---- Admin -------------------------------------------------------------------------------

// What Session and Admin capabilities share: the grant they act under (re-checked on every
// call), the caller, and the principal the choke point checked for the current call.
class GrantHolder {
 protected:
  GrantHolder(Service& service, core::Standing standing, Caller caller)
      : service_(service), standing_(kj::mv(standing)), caller_(kj::mv(caller)) {}

  Service& service_;
  core::Standing standing_;
  Caller caller_;
  const core::Principal* who_ = nullptr;

  // The principal the choke point checked for this call (valid while the body runs).
  const core::Principal& who() {
    KJ_ASSERT(who_ != nullptr, "a method body ran outside the choke point");
    return *who_;
  }

  // A read that runs later on a worker (a long Get, a listing, a backup) is authorized when
  // it is queued (the choke point) and again when it starts: it acts as the principal its
  // grant resolves to at that moment, so a demotion or revocation committed while it waited
  // in the queue refuses it (NOT_AUTHENTICATED, or the policy's PERMISSION_DENIED).
  struct LateCheck {
    const core::Identity& identity;
    core::Grant grant;
    core::Result<core::Principal> operator()() const {
      int64_t expiresUnix;
      return identity.resolve(grant, expiresUnix);
    }
    // What `body` answers as that principal, or the refusal of the grant.
    template<typename Body>
    auto run(Body&& body) const -> decltype(body(kj::instance<const core::Principal&>())) {
      auto who = (*this)();
      if (!who.ok()) return who.takeRefusal();
      return body(who.value());
    }
  };
  LateCheck lateCheck() { return {service_.identity(), core::cloneGrant(standing_.grant)}; }

  // A write authorized now and again inside the transaction that commits it.
  template<typename T>
  core::WriteOp<core::Result<T>> recheckedAs(core::Operation op, int32_t target,
                                             core::WriteOp<core::Result<T>> inner) {
    return service_.identity().recheck(standing_.grant, op, target, kj::mv(inner));
  }
  // The same for a checked write; one refused before it is queued stays refused.
  template<typename T>
  core::CheckedWrite<T> recheckedAs(core::Operation op, int32_t target,
                                    core::CheckedWrite<T> inner) {
    if (!inner.ok()) return inner;
    return recheckedAs(op, target, kj::mv(inner).value());
  }
};

class AdminImpl final : public rpc::Admin::Server, private GrantHolder {
 public:
  AdminImpl(Service& service, core::Standing standing, Caller caller)
      : GrantHolder(service, kj::mv(standing), kj::mv(caller)) {}

  DispatchCallResult dispatchCall(uint64_t interfaceId, uint16_t methodId,
                                  AnyContext context) override {
    return pass<rpc::Admin>(
        {service_, caller_, standing_, who_}, ADMIN_RULES, interfaceId, methodId, context,
        [&]() { return rpc::Admin::Server::dispatchCall(interfaceId, methodId, context); });
  }

  kj::Promise<void> addAssociate(AddAssociateContext context) override {
    auto p = context.getParams();
    core::NewAssociate na;
    na.name = kj::heapString(p.getName());
    na.kind = fromWire(p.getKind());
    na.userAdmin = p.getUserAdmin();
    int64_t uid = p.getUnixUid();
    if (uid >= 0) {
      if (uid > UINT32_MAX - 1) {
        return refuseCall(context, core::invalidArgument("unixUid", "unixUid is out of range"));
      }
      na.unixUid = static_cast<uint32_t>(uid);
    } else if (uid != -1) {
      return refuseCall(context,
                        core::invalidArgument("unixUid", "unixUid must be -1 (none) or a uid"));
    }
    if (p.hasPassword()) na.password = crypto::Secret::copyOf(p.getPassword().asBytes());
    auto op = rechecked(core::Operation::CHANGE_ASSOCIATES, 0,
                        service_.vault().addAssociate(who(), kj::mv(na)));
    return finishQueued(
        service_.committer().submit(kj::mv(op)), context,
        [](auto results, core::Associate a) { toWire(a, results.initAssociate()); });
  }

  kj::Promise<void> listAssociates(ListAssociatesContext context) override {
    auto listed = service_.vault().listAssociates(who());
    if (!listed.ok()) return refuseCall(context, listed.takeRefusal());
    auto& list = listed.value();
    auto out = context.getResults().initAssociates(list.size());
    for (auto i : kj::indices(list)) toWire(list[i], out[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> findAssociate(FindAssociateContext context) override {
    KJ_IF_MAYBE(a, service_.vault().findAssociateByName(context.getParams().getName())) {
      toWire(*a, context.getResults().initAssociate());
      return kj::READY_NOW;
    }
    return refuseCall(context, core::refuse(core::ErrorCode::NOT_FOUND, "name",
                                            kj::str("no associate has this name")));
  }

  kj::Promise<void> setAssociate(SetAssociateContext context) override {
    auto p = context.getParams();
    auto u = p.getUpdate();
    core::AssociateUpdate update;
    if (u.getName().isSet()) update.name = kj::heapString(u.getName().getSet());
    if (u.getKind().isSet()) update.kind = fromWire(u.getKind().getSet());
    if (u.getUserAdmin().isSet()) update.userAdmin = u.getUserAdmin().getSet();
    if (u.getActive().isSet()) update.active = u.getActive().getSet();
    if (u.getUnixUid().isSet()) {
      int64_t uid = u.getUnixUid().getSet();
      if (uid == -1) {
        update.unixUid = kj::Maybe<uint32_t>(nullptr);
      } else if (uid >= 0 && uid < UINT32_MAX) {
        update.unixUid = kj::Maybe<uint32_t>(static_cast<uint32_t>(uid));
      } else {
        return refuseCall(context,
                          core::invalidArgument("unixUid", "unixUid must be -1 (none) or a uid"));
      }
    }
    auto op = rechecked(core::Operation::CHANGE_ASSOCIATES, p.getAssociateId(),
                        service_.auth().setAssociate(who(), p.getAssociateId(), kj::mv(update)));
    return finishQueued(
        service_.committer().submit(kj::mv(op)), context,
        [](auto results, core::Associate a) { toWire(a, results.initAssociate()); });
  }

  kj::Promise<void> removeAssociate(RemoveAssociateContext context) override {
    int32_t id = context.getParams().getAssociateId();
    auto op = rechecked(core::Operation::CHANGE_ASSOCIATES, id,
                        service_.auth().removeAssociate(who(), id));
    auto& auth = service_.auth();
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [&auth](auto results, uint32_t n) {
                          auth.flushCache();
                          results.setRemovedCredentials(n);
                        });
  }

  kj::Promise<void> setPassword(SetPasswordContext context) override {
    auto p = context.getParams();
    auto pw = crypto::Secret::copyOf(p.getPassword().asBytes());
    auto op = rechecked(core::Operation::SET_PASSWORD, p.getAssociateId(),
                        service_.vault().setPassword(who(), p.getAssociateId(), kj::mv(pw)));
    auto& auth = service_.auth();
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [&auth](auto, bool) { auth.flushCache(); });
  }

  kj::Promise<void> backup(BackupContext context) override {
    // Withdrawn: the daemon never creates a file where a client names (a file-creation
    // primitive and an existence oracle when it runs as root). The path is not looked at.
    return refuseCall(context,
                      core::refuse(core::ErrorCode::PERMISSION_DENIED, "",
                                   kj::str("Admin.backup is withdrawn: the daemon no longer writes "
                                           "backup files; use Admin.backupTo (credvaultctl backup "
                                           "FILE writes FILE as you)")));
  }

  kj::Promise<void> backupTo(BackupToContext context) override {
    auto& vault = service_.vault();
    BackupSource source;
    source.spoolDirectory = vault.environment().directory();
    source.sizeBound = vault.environment().stats().usedBytes;
    source.write = [&vault, who = lateCheck()](int fd) {
      return who.run([&](const core::Principal& p) { return vault.backup(p, fd); });
    };
    // Its own one-thread pool: a backup never holds up a password verification, and two
    // backups take turns.
    return finishQueued(
        streamBackup(service_.maintenance(), kj::mv(source), context.getParams().getSink()),
        context, [](auto results, uint64_t bytes) { results.setBytes(bytes); });
  }

  kj::Promise<void> auditHash(AuditHashContext context) override {
    context.getResults().setHmac(service_.vault().auditHash(context.getParams().getValue()));
    return kj::READY_NOW;
  }

  kj::Promise<void> verify(VerifyContext context) override {
    auto& vault = service_.vault();
    // The key is copied here (under the keyring's lock, on this thread), never in the child.
    auto copied = vault.masterKeyForVerify(who());
    if (!copied.ok()) return refuseCall(context, copied.takeRefusal());
    auto key = kj::mv(copied).value();
    auto dir = kj::heapString(vault.environment().directory());
    // Off the event loop, one at a time (with backups): the walk reads the whole file.
    auto job = [dir = kj::mv(dir), key = kj::mv(key),
                who = lateCheck()]() mutable -> core::Result<VerifyResult> {
      // Still allowed, at its turn.
      return who.run([&](const core::Principal& p) -> core::Result<VerifyResult> {
        CV_REFUSE_IF(core::requireSystem(p, "verifying the vault"));
        return verifyInChild(dir, key);
      });
    };
    return finishQueued(service_.maintenance().run<VerifyResult>(kj::mv(job)), context,
                        [](auto results, VerifyResult r) {
                          auto out = results.initReport();
                          out.setTables(r.report.tables);
                          out.setEntries(r.report.entries);
                          out.setAssociates(r.report.associates);
                          out.setCredentials(r.report.credentials);
                          out.setDurationMs(r.took / kj::MILLISECONDS);
                          if (!r.ok) {
                            out.setProblem(r.message);
                            // Damage is `integrity`; anything else (the key no longer opens the
                            // file) is not a verdict on the data.
                            setError(results.initError(),
                                     core::refuse(r.damaged ? core::ErrorCode::INTEGRITY
                                                            : core::ErrorCode::INTERNAL,
                                                  "", kj::mv(r.message)));
                          }
                        });
  }

  kj::Promise<void> addApplication(AddApplicationContext context) override {
    auto op = rechecked(core::Operation::MAINTAIN, 0,
                        service_.auth().addApplication(who(), context.getParams().getName()));
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [](auto results, core::IssuedApiToken t) {
                          results.setToken(t.token);
                          auto app = results.initApplication();
                          app.setName(t.info.name);
                          app.setCreated(t.info.createdUnix);
                        });
  }

  kj::Promise<void> listApplications(ListApplicationsContext context) override {
    auto listed = service_.auth().listApplications(who());
    if (!listed.ok()) return refuseCall(context, listed.takeRefusal());
    auto& list = listed.value();
    auto out = context.getResults().initApplications(list.size());
    for (auto i : kj::indices(list)) {
      out[i].setName(list[i].name);
      out[i].setCreated(list[i].createdUnix);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> removeApplication(RemoveApplicationContext context) override {
    auto op = rechecked(core::Operation::MAINTAIN, 0,
                        service_.auth().removeApplication(who(), context.getParams().getName()));
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [](auto results, bool removed) { results.setRemoved(removed); });
  }

  kj::Promise<void> changeMasterKey(ChangeMasterKeyContext context) override {
    auto path = context.getParams().getKeyFile();
    if (path.size() == 0 || path[0] != '/') {
      return refuseCall(context,
                        core::invalidArgument("keyFile", "the key file path must be absolute"));
    }
    crypto::MasterKeyOptions options;
    options.keyFile = path;
    auto loaded = crypto::loadMasterKey(options);
    auto fingerprint = crypto::Keyring::fingerprint(loaded.key);
    KJ_IF_MAYBE(r, service_.vault().changeMasterKey(who(), kj::mv(loaded.key))) {
      return refuseCall(context, *r);
    }
    context.getResults().setFingerprint(fingerprint);
    return kj::READY_NOW;
  }

  kj::Promise<void> rotateDataKey(RotateDataKeyContext context) override {
    auto rotated = service_.vault().rotateDataKey(who());
    if (!rotated.ok()) return refuseCall(context, rotated.takeRefusal());
    context.getResults().setKeyId(rotated.value());
    return kj::READY_NOW;
  }

 private:
  // A write authorized now and again inside the transaction that commits it; an Admin
  // write also needs the right to administer, then as now.
  template<typename Write>  // a core::WriteOp<core::Result<T>> or a core::CheckedWrite<T>
  Write rechecked(core::Operation op, int32_t target, Write inner) {
    return recheckedAs(core::Operation::ADMIN, 0, recheckedAs(op, target, kj::mv(inner)));
  }
};

// ---- Session -----------------------------------------------------------------------------

class SessionImpl final : public rpc::Session::Server, private GrantHolder {
 public:
  SessionImpl(Service& service, core::Standing standing, Caller caller)
      : GrantHolder(service, kj::mv(standing), kj::mv(caller)) {}

  DispatchCallResult dispatchCall(uint64_t interfaceId, uint16_t methodId,
                                  AnyContext context) override {
    return pass<rpc::Session>(
        {service_, caller_, standing_, who_}, SESSION_RULES, interfaceId, methodId, context,
        [&]() { return rpc::Session::Server::dispatchCall(interfaceId, methodId, context); });
  }

  kj::Promise<void> whoami(WhoamiContext context) override {
    toWire(who(), context.getResults().initPrincipal());
    return kj::READY_NOW;
  }

  kj::Promise<void> createDefault(CreateDefaultContext context) override {
    auto made = service_.vault().createDefault(who());
    if (!made.ok()) return refuseCall(context, made.takeRefusal());
    toWire(made.value(), context.getResults().initCredential());
    return kj::READY_NOW;
  }

  // get/save/remove and their deprecated *ForAssociate twins: one path each, associateId 0
  // meaning the caller, passed to core as it came.
  kj::Promise<void> get(GetContext context) override {
    auto p = context.getParams();
    return doGet(context, p.getAssociateId(), p.getType());
  }

  kj::Promise<void> getForAssociate(GetForAssociateContext context) override {
    auto p = context.getParams();
    return doGet(context, p.getAssociateId(), p.getType());
  }

  kj::Promise<void> save(SaveContext context) override {
    auto p = context.getParams();
    return doSave(context, p.getAssociateId(), p.getType(), p.getCredential());
  }

  kj::Promise<void> saveForAssociate(SaveForAssociateContext context) override {
    auto p = context.getParams();
    return doSave(context, p.getAssociateId(), p.getType(), p.getCredential());
  }

  kj::Promise<void> remove(RemoveContext context) override {
    auto p = context.getParams();
    return doRemove(context, p.getAssociateId(), p.getType(), p.getPublicValue());
  }

  kj::Promise<void> removeForAssociate(RemoveForAssociateContext context) override {
    auto p = context.getParams();
    return doRemove(context, p.getAssociateId(), p.getType(), p.getPublicValue());
  }

  kj::Promise<void> admin(AdminContext context) override {
    // The admin capability re-checks its own principal on every call, from the same grant.
    context.getResults().setAdmin(kj::heap<AdminImpl>(
        service_, core::Standing(core::cloneGrant(standing_.grant)), caller_.clone()));
    return kj::READY_NOW;
  }

  kj::Promise<void> logout(LogoutContext context) override {
    if (standing_.grant.ticketKey.size() > 0) {
      auto op = service_.auth().revokeTicketByKey(standing_.grant.ticketKey);
      return finishQueued(service_.committer().submit(kj::mv(op)), context, [](auto, bool) {});
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> createToken(CreateTokenContext context) override {
    auto p = context.getParams();
    auto op = rechecked(
        core::Operation::CREATE_TOKEN, ownerOf(p.getAssociateId()),
        service_.auth().createToken(who(), p.getAssociateId(), p.getName(), p.getExpires()));
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [](auto results, core::IssuedApiToken t) {
                          results.setToken(t.token);
                          fillToken(results.initInfo(), t.info);
                        });
  }

  kj::Promise<void> listTokens(ListTokensContext context) override {
    auto listed = service_.auth().listTokens(who(), context.getParams().getAssociateId());
    if (!listed.ok()) return refuseCall(context, listed.takeRefusal());
    auto& list = listed.value();
    auto out = context.getResults().initTokens(list.size());
    for (auto i : kj::indices(list)) fillToken(out[i], list[i]);
    return kj::READY_NOW;
  }

  kj::Promise<void> revokeToken(RevokeTokenContext context) override {
    auto p = context.getParams();
    auto op = rechecked(core::Operation::MANAGE_TOKENS, ownerOf(p.getAssociateId()),
                        service_.auth().revokeToken(who(), p.getAssociateId(), p.getName()));
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [](auto results, bool revoked) { results.setRevoked(revoked); });
  }

  kj::Promise<void> list(ListContext context) override {
    auto p = context.getParams();
    auto& vault = service_.vault();
    return doList(context, [&vault, who = lateCheck(), target = p.getAssociateId(),
                            type = kj::heapString(p.getType())]() {
      return who.run([&](const core::Principal& p) { return vault.list(p, target, type); });
    });
  }

  kj::Promise<void> listAll(ListAllContext context) override {
    auto& vault = service_.vault();
    return doList(context, [&vault, who = lateCheck(),
                            type = kj::heapString(context.getParams().getType())]() {
      return who.run([&](const core::Principal& p) { return vault.listAll(p, type); });
    });
  }

  kj::Promise<void> update(UpdateContext context) override {
    auto p = context.getParams();
    auto u = p.getUpdate();
    core::CredentialUpdate update;
    if (u.getValidFrom().isSet()) update.validFrom = u.getValidFrom().getSet();
    if (u.getValidTo().isSet()) update.validTo = u.getValidTo().getSet();
    if (u.getComment().isSet()) update.comment = kj::heapString(u.getComment().getSet());
    if (u.getIsActive().isSet()) update.isActive = u.getIsActive().getSet();
    if (u.getSecretValue().isSet()) {
      // Into sodium memory at once, as fromWire does for a save.
      update.secretValue = crypto::Secret::copyOf(u.getSecretValue().getSet().asBytes());
    }
    auto op = rechecked(core::Operation::SAVE, ownerOf(p.getAssociateId()),
                        service_.vault().update(who(), p.getAssociateId(), p.getType(),
                                                p.getPublicValue(), kj::mv(update)));
    return finishQueued(service_.committer().submit(kj::mv(op)), context, [](auto, bool) {});
  }

  kj::Promise<void> changePassword(ChangePasswordContext context) override {
    auto p = context.getParams();
    if (who().associateId == 0) {
      return refuseCall(context,
                        core::refuse(core::ErrorCode::NOT_FOUND, "associateId",
                                     kj::str("the caller is not mapped to an associate; it has no "
                                             "password")));
    }
    auto current = crypto::Secret::copyOf(p.getCurrent().asBytes());
    auto fresh = crypto::Secret::copyOf(p.getPassword().asBytes());
    auto& auth = service_.auth();
    auto& vault = service_.vault();
    int32_t id = who().associateId;
    // Verifying the current password and hashing the new one are two Argon2id runs: on the
    // password workers, in the caller's lane, throttled like a login by this uid.
    Lane lane;
    lane.uid = caller_.peer.uid;
    lane.maxPerClient = service_.options.passwordQueuePerUid;
    lane.maxPerUid = service_.options.passwordQueuePerUid;
    using SetPassword = core::WriteOp<core::Result<bool>>;
    auto job = [&auth, &vault, me = core::clonePrincipal(who()), current = kj::mv(current),
                fresh = kj::mv(fresh),
                client = kj::str(caller_.peer.uid, "/")]() mutable -> core::Result<SetPassword> {
      kj::Maybe<kj::String> rehash;
      auto checked = auth.checkPassword(me.name, current, client, rehash);
      if (!checked.ok()) return checked.takeRefusal();
      if (checked.value().id != me.associateId) {
        return core::refuse(core::ErrorCode::NOT_AUTHENTICATED, "current",
                            kj::str("the current password is wrong"));
      }
      return vault.setPassword(me, me.associateId, kj::mv(fresh));
    };
    return service_.passwords()
        .run<SetPassword>(kj::mv(job), lane)
        .then([this, context, id](Outcome<SetPassword> outcome) mutable -> kj::Promise<void> {
          KJ_IF_MAYBE(e, outcome.error) {
            setError(context.getResults().initError(), *e);
            return kj::READY_NOW;
          }
          KJ_IF_MAYBE(f, outcome.failure) { kj::throwFatalException(kj::mv(*f)); }
          auto op = rechecked(core::Operation::SET_PASSWORD, id,
                              KJ_ASSERT_NONNULL(kj::mv(outcome.value)));
          auto& auth = service_.auth();
          return finishQueued(service_.committer().submit(kj::mv(op)), context,
                              [&auth](auto, bool) { auth.flushCache(); });
        });
  }

 private:
  // A long call (a long Get, a listing) on the reads worker, fair across uids: answered
  // `throttled` while the caller's uid holds MAX_ANSWER_BYTES_PER_UID of answers, queued in the
  // caller's lane, and counted as a long call until the choke point hands its answer to capnp
  // (pass()). Only the encoding of its result runs on the event loop.
  template<typename T, typename Job>
  kj::Promise<Outcome<T>> runLong(Job job) {
    KJ_IF_MAYBE(bytesOf, service_.answerBytesOf) {
      if ((*bytesOf)(caller_.peer.uid) >= MAX_ANSWER_BYTES_PER_UID) {
        auto r = core::refuse(core::ErrorCode::THROTTLED, "",
                              kj::str("too many long answers are waiting to be read; read "
                                      "them, then retry"));
        r.retryAfterSeconds = 1;
        Outcome<T> refused;
        refused.error = kj::mv(r);
        return kj::mv(refused);
      }
    }
    Lane lane;
    lane.uid = caller_.peer.uid;
    lane.maxPerUid = LONG_GETS_PER_UID;
    lane.maxPerClient = LONG_GETS_PER_UID;
    ++caller_.load->longCalls;
    return service_.reads().run<T>(kj::mv(job), lane);
  }

  // A listing (no secrets, every entry decrypted) runs like a long Get.
  template<typename Context, typename Job>
  kj::Promise<void> doList(Context& context, Job job) {
    return finishQueued(runLong<kj::Array<core::ListedCredential>>(kj::mv(job)), context,
                        [](auto results, kj::Array<core::ListedCredential> list) {
                          auto out = results.initCredentials(list.size());
                          for (auto i : kj::indices(list)) {
                            out[i].setAssociateId(list[i].associateId);
                            out[i].setType(list[i].type);
                            // No secret: the core never opens one for a listing; make sure
                            // none is sent.
                            list[i].credential.secretValue = nullptr;
                            toWire(list[i].credential, out[i].initCredential());
                          }
                        });
  }

  template<typename Write>  // a core::WriteOp<core::Result<T>> or a core::CheckedWrite<T>
  Write rechecked(core::Operation op, int32_t target, Write inner) {
    return recheckedAs(op, target, kj::mv(inner));
  }
  int32_t ownerOf(int32_t associateId) {
    return associateId == 0 ? who().associateId : associateId;
  }

  static void fillToken(rpc::ApiToken::Builder out, const core::ApiTokenInfo& info) {
    out.setName(info.name);
    out.setAssociateId(info.associateId);
    out.setCreated(info.createdUnix);
    out.setExpires(info.expiresUnix);
  }

  template<typename Results>
  static void fillList(Results results, kj::Array<core::Credential> list) {
    auto out = results.initCredentials(list.size());
    for (auto i : kj::indices(list)) toWire(list[i], out[i]);
  }

  // A short list is answered here; a long one is opened on a reads worker (fair across uids)
  // and only encoded here, so it never holds the event loop for long.
  template<typename Context>
  kj::Promise<void> doGet(Context& context, int32_t target, capnp::Text::Reader type) {
    auto& vault = service_.vault();
    auto shortList = vault.tryGet(who(), target, type, INLINE_GET_LIMIT);
    if (!shortList.ok()) return refuseCall(context, shortList.takeRefusal());
    KJ_IF_MAYBE(list, shortList.value()) {
      fillList(context.getResults(), kj::mv(*list));
      return kj::READY_NOW;
    }
    auto job = [&vault, who = lateCheck(), target, type = kj::heapString(type)]() {
      return who.run([&](const core::Principal& p) { return vault.get(p, target, type); });
    };
    return finishQueued(
        runLong<kj::Array<core::Credential>>(kj::mv(job)), context,
        [](auto results, kj::Array<core::Credential> list) { fillList(results, kj::mv(list)); });
  }

  template<typename Context>
  kj::Promise<void> doSave(Context& context, int32_t target, capnp::Text::Reader type,
                           rpc::Credential::Reader credential) {
    auto op = rechecked(core::Operation::SAVE, ownerOf(target),
                        service_.vault().save(who(), target, type, fromWire(credential)));
    return finishQueued(service_.committer().submit(kj::mv(op)), context, [](auto, bool) {});
  }

  template<typename Context>
  kj::Promise<void> doRemove(Context& context, int32_t target, capnp::Text::Reader type,
                             capnp::Text::Reader publicValue) {
    auto op = rechecked(core::Operation::REMOVE, ownerOf(target),
                        service_.vault().remove(who(), target, type, publicValue));
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [](auto results, bool removed) { results.setRemoved(removed); });
  }
};

// ---- Vault (the bootstrap) ---------------------------------------------------------------

class VaultImpl final : public rpc::Vault::Server {
 public:
  VaultImpl(Service& service, Peer peer, kj::Own<ConnectionLoad> load)
      : service_(service), caller_{peer, nullptr, nullptr, kj::mv(load)} {}

  DispatchCallResult dispatchCall(uint64_t interfaceId, uint16_t methodId,
                                  AnyContext context) override {
    return pass<rpc::Vault>(
        {service_, caller_, nullptr, unused_}, VAULT_RULES, interfaceId, methodId, context,
        [&]() { return rpc::Vault::Server::dispatchCall(interfaceId, methodId, context); });
  }

  kj::Promise<void> whoami(WhoamiContext context) override {
    toWire(service_.identity().peerPrincipal(caller_.peer), context.getResults().initPrincipal());
    return kj::READY_NOW;
  }

  kj::Promise<void> session(SessionContext context) override {
    auto standing = service_.identity().byPeer(caller_.peer);
    if (!standing.ok()) return refuseCall(context, standing.takeRefusal());
    context.getResults().setSession(
        kj::heap<SessionImpl>(service_, kj::mv(standing).value(), caller_.clone()));
    return kj::READY_NOW;
  }

  kj::Promise<void> authenticatePassword(AuthenticatePasswordContext context) override {
    auto p = context.getParams();
    auto app = service_.auth().checkApplicationKey(appToken(p));
    if (!app.ok()) return refuseCall(context, app.takeRefusal());
    auto appKey = kj::mv(app).value();
    bool issueTicket = p.getIssueTicket();
    struct Checked {
      core::Associate associate;
      kj::Maybe<kj::String> rehash;
    };
    auto& auth = service_.auth();
    auto password = crypto::Secret::copyOf(p.getPassword().asBytes());
    // The throttle's client: a front end's client address, or else the peer uid itself (a
    // local user does not get to pose as many clients).
    bool gateway = service_.identity().isGatewayUid(caller_.peer.uid);
    kj::StringPtr address = gateway ? kj::StringPtr(p.getClientAddress()) : kj::StringPtr();
    auto client = kj::str(caller_.peer.uid, "/", address);
    Lane lane;
    lane.uid = caller_.peer.uid;
    lane.client = address;
    lane.maxPerClient =
        gateway ? service_.options.passwordQueuePerClient : service_.options.passwordQueuePerUid;
    lane.maxPerUid = service_.options.passwordQueuePerUid * (gateway ? GATEWAY_QUEUE_FACTOR : 1);
    auto caller = sessionCaller(p);
    kj::Promise<Outcome<Checked>> checked = nullptr;
    auto cached = auth.checkCachedPassword(p.getName(), password, client);
    if (!cached.ok()) {
      // Refused before any hashing (malformed, throttled).
      setError(context.getResults().initError(), cached.takeRefusal());
      return kj::READY_NOW;
    }
    KJ_IF_MAYBE(a, cached.value()) {
      // A verification-cache hit (HTTP Basic at request rate) needs no Argon2id.
      Outcome<Checked> hit;
      hit.value = Checked{kj::mv(*a), nullptr};
      checked = kj::mv(hit);
    } else {
      // Argon2id runs on the blocking pool, never on the event loop.
      auto job = [&auth, name = kj::heapString(p.getName()), password = kj::mv(password),
                  client = kj::mv(client)]() mutable -> core::Result<Checked> {
        Checked c;
        auto verified = auth.checkPassword(name, password, client, c.rehash);
        if (!verified.ok()) return verified.takeRefusal();
        c.associate = kj::mv(verified).value();
        return kj::mv(c);
      };
      checked = service_.passwords().run<Checked>(kj::mv(job), lane);
    }
    return checked.then([this, context, appKey = kj::mv(appKey), issueTicket,
                         caller = kj::mv(caller)](
                            Outcome<Checked> outcome) mutable -> kj::Promise<void> {
      KJ_IF_MAYBE(e, outcome.error) {
        // For fail2ban and the like; the audit record has the rest.
        logf(Level::NOTICE, "authentication failed",
             LogField{"OP", kj::str("authenticate-password")},
             LogField{"UID", kj::str(caller_.peer.uid)},
             LogField{"RESULT", kj::str(ipc::errorCodeName(toWire(e->code)))});
        setError(context.getResults().initError(), *e);
        return kj::READY_NOW;
      }
      KJ_IF_MAYBE(f, outcome.failure) { kj::throwFatalException(kj::mv(*f)); }
      auto checked = KJ_ASSERT_NONNULL(kj::mv(outcome.value));
      auto& a = checked.associate;
      KJ_IF_MAYBE(h, checked.rehash) {
        // Best effort: a failure leaves the old hash, which still verifies.
        service_.committer()
            .submit(service_.auth().storeRehash(a.id, kj::mv(*h), a.credentialEpoch))
            .detach([](kj::Exception&&) {});
      }
      auto opened = service_.identity().byPassword(caller_.peer, a, kj::mv(appKey));
      if (!opened.ok()) return refuseCall(context, opened.takeRefusal());
      auto standing = kj::mv(opened).value();
      toWire(standing.principal, context.getResults().initPrincipal());
      if (!issueTicket) {
        context.getResults().setSession(
            kj::heap<SessionImpl>(service_, kj::mv(standing), kj::mv(caller)));
        return kj::READY_NOW;
      }
      auto op = service_.auth().issueTicket(a);
      return finishQueued(
          service_.committer().submit(kj::mv(op)), context,
          [this, standing = kj::mv(standing), caller = kj::mv(caller)](
              auto results, core::IssuedTicket t) mutable {
            // The session follows the ticket: revoking it ends the session.
            standing.grant.ticketKey = KJ_ASSERT_NONNULL(service_.auth().ticketKey(t.ticket));
            standing.generation = 0;
            results.setTicket(t.ticket);
            results.setTicketExpires(t.expiresUnix * core::TICKS_PER_SECOND +
                                     core::UNIX_EPOCH_TICKS);
            results.setSession(kj::heap<SessionImpl>(service_, kj::mv(standing), kj::mv(caller)));
          });
    });
  }

  kj::Promise<void> authenticateTicket(AuthenticateTicketContext context) override {
    auto p = context.getParams();
    auto app = service_.auth().checkApplicationKey(appToken(p));
    if (!app.ok()) return refuseCall(context, app.takeRefusal());
    auto appKey = kj::mv(app).value();
    auto opened = service_.identity().byTicket(caller_.peer, p.getTicket(), kj::mv(appKey));
    if (!opened.ok()) return refuseCall(context, opened.takeRefusal());
    auto standing = kj::mv(opened).value();
    toWire(standing.principal, context.getResults().initPrincipal());
    context.getResults().setSession(
        kj::heap<SessionImpl>(service_, kj::mv(standing), sessionCaller(p)));
    return kj::READY_NOW;
  }

  kj::Promise<void> authenticateToken(AuthenticateTokenContext context) override {
    auto p = context.getParams();
    auto app = service_.auth().checkApplicationKey(appToken(p));
    if (!app.ok()) return refuseCall(context, app.takeRefusal());
    auto appKey = kj::mv(app).value();
    auto opened = service_.identity().byToken(caller_.peer, p.getToken(), kj::mv(appKey));
    if (!opened.ok()) return refuseCall(context, opened.takeRefusal());
    auto standing = kj::mv(opened).value();
    toWire(standing.principal, context.getResults().initPrincipal());
    context.getResults().setSession(
        kj::heap<SessionImpl>(service_, kj::mv(standing), sessionCaller(p)));
    return kj::READY_NOW;
  }

  kj::Promise<void> revokeTicket(RevokeTicketContext context) override {
    // Only a live ticket costs a write: anyone may call this, and a durable commit (and
    // every session's re-read) per made-up ticket would be a cheap denial of service.
    auto& auth = service_.auth();
    auto ticket = context.getParams().getTicket();
    bool live = false;
    KJ_IF_MAYBE(key, auth.ticketKey(ticket)) { live = auth.findTicketByKey(*key) != nullptr; }
    if (!live) {
      context.getResults().setRevoked(false);
      return kj::READY_NOW;
    }
    auto op = auth.revokeTicket(ticket);
    return finishQueued(service_.committer().submit(kj::mv(op)), context,
                        [](auto results, bool revoked) { results.setRevoked(revoked); });
  }

  kj::Promise<void> health(HealthContext context) override {
    // One read transaction: the database answers. (The choke point has already refused the
    // call if the audit trail cannot take records.)
    service_.vault().counts();
    context.getResults().setVersion(CREDVAULT_VERSION);
    return kj::READY_NOW;
  }

  kj::Promise<void> metrics(MetricsContext context) override {
    // The choke point has asked core::authorize (system user or front end).
    auto s = context.getResults().initStatus();
    fillStatus(s);
    auto commits = service_.committer().stats();
    s.setCommits(commits.commits);
    s.setCommittedWrites(commits.ops);
    s.setWriteQueue(service_.committer().queued());
    s.setPasswordQueue(service_.passwords().queued());
    s.setPasswordWorkers(service_.passwords().workers());
    s.setReadQueue(service_.reads().queued());
    s.setMaintenanceQueue(service_.maintenance().queued());
    s.setMapReaders(service_.vault().environment().stats().readers);
    s.setAuditAccepting(service_.audit().accepting());
    return kj::READY_NOW;
  }

  void fillStatus(rpc::Status::Builder s) {
    auto counts = service_.vault().counts();
    auto env = service_.vault().environment().stats();
    s.setVersion(CREDVAULT_VERSION);
    s.setCredentials(counts.credentials);
    s.setAssociates(counts.associates);
    s.setDataKeyId(counts.dataKeyId);
    s.setMapSize(env.mapSize);
    s.setUsedBytes(env.usedBytes);
    s.setUptimeSeconds((service_.clock().now() - service_.started) / kj::SECONDS);
    s.setConnections(service_.connections);
    KJ_IF_MAYBE(h, service_.storeHealth) {
      auto health = h->snapshot();
      if (health.failing) {
        s.setStoreError(health.lastError);
        s.setStoreFailingSince((health.failingSince - kj::UNIX_EPOCH) / kj::SECONDS);
      }
      s.setStoreFailures(health.failures);
    }
    s.setVerification(service_.verification);
  }

  kj::Promise<void> status(StatusContext context) override {
    if (service_.identity().peerPrincipal(caller_.peer).method == core::AuthMethod::NONE) {
      return refuseCall(context, core::refuse(core::ErrorCode::NOT_AUTHENTICATED, "",
                                              kj::str("uid ", caller_.peer.uid,
                                                      " is not mapped to an associate")));
    }
    fillStatus(context.getResults().initStatus());
    return kj::READY_NOW;
  }

 private:
  Service& service_;
  Caller caller_;
  const core::Principal* unused_ = nullptr;

  template<typename Params>
  static kj::Maybe<kj::StringPtr> appToken(Params p) {
    if (p.hasAppToken() && p.getAppToken().size() > 0) return kj::StringPtr(p.getAppToken());
    return nullptr;
  }

  // The caller as the new session records it: the peer, and the front end's client.
  template<typename Params>
  Caller sessionCaller(Params p) {
    if (!service_.identity().isGatewayUid(caller_.peer.uid)) {
      return {caller_.peer, nullptr, nullptr, kj::addRef(*caller_.load)};
    }
    return {caller_.peer, kj::heapString(p.getClientAddress()), kj::heapString(p.getRequestId()),
            kj::addRef(*caller_.load)};
  }
};

}  // namespace

Service::Service(core::Vault& vault, core::Authenticator& auth, core::Identity& identity,
                 GroupCommitter& committer, BlockingPool& passwords, AuditLog& audit,
                 const kj::Clock& clock)
    : started(clock.now()),
      vault_(vault),
      auth_(auth),
      identity_(identity),
      committer_(committer),
      passwords_(passwords),
      audit_(audit),
      clock_(clock),
      maintenance_(kj::heap<BlockingPool>(1, MAINTENANCE_NICENESS)),
      reads_(kj::heap<BlockingPool>(1)) {
  checkRules<rpc::Vault>(VAULT_RULES);
  checkRules<rpc::Session>(SESSION_RULES);
  checkRules<rpc::Admin>(ADMIN_RULES);
}

rpc::Vault::Client Service::newBootstrap(Peer peer, kj::Own<ConnectionLoad> load) {
  return kj::heap<VaultImpl>(*this, peer, kj::mv(load));
}

}  // namespace credvault::daemon
