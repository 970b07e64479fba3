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

// The LMDB environment behind `vault`, for the operations only a local file offers; a vault in
// another backend is refused with where to look instead.
core::Result<store::Environment&> lmdbFor(core::Vault& vault, kj::StringPtr operation) {
  auto& store = vault.environment();
  KJ_IF_MAYBE(env, store.lmdb()) { return *env; }
  return core::invalidArgument("", "credvaultctl ", operation,
                               " works on an LMDB vault; a vault kept in ", store.backendName(),
                               " is backed up and checked with the database's own tools "
                               "(docs/operations.md)");
}

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

struct Pending;

// What a connection's sessions know of the caller besides the principal: the peer, and what
// a front end said of its own client (for the audit trail only; never for a decision).
struct Caller {
  Peer peer;
  kj::String clientAddress;
  kj::String requestId;
  kj::Own<ConnectionLoad> load;  // the connection's, shared by its capabilities
  // The call the choke point is passing to its method (set for the synchronous part of the
  // method body; a method that goes on later keeps it: it outlives the method's promise).
  Pending* call = nullptr;

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
  // What the call added to its connection's long calls (ConnectionLoad::longCalls; runLong),
  // perhaps only after a worker's read: the choke point takes it back once the answer is
  // handed to capnp, from then on counted by its bytes.
  size_t longCalls = 0;
};

// Where one field the choke point records lives in its struct, found in the schema once per
// method: its pointer's index, or (associateId) its offset in the data section in 32-bit units
// and its default. The choke point reads these raw (AnyStruct) on every call: capnp's reflection
// (DynamicStruct::get/has) looks each field's type up in the schema every time, which was about
// half of the choke point's own cost (docs/performance.md §14, "perf-11").
struct Place {
  uint32_t index = 0;
  int32_t defaultValue = 0;
};

// The places of one method's params and results; null where the method has no such field.
struct Shape {
  capnp::StructSchema params;
  capnp::StructSchema results;
  kj::Maybe<Place> clientAddress, requestId, type, publicValue, credential, associateId;  // params
  kj::Maybe<Place> error, principal;                                                      // results
  uint64_t resultWords = 0;  // the results struct's own size
};

// The place of `name` in `schema`, checked to be a plain field (no union member, no group) of
// the type the choke point reads it as; null when `schema` has no such field. A same-named field
// of another type is a schema bug, found at start (checkRules).
kj::Maybe<Place> placeOf(capnp::StructSchema schema, kj::StringPtr name,
                         capnp::schema::Type::Which which, uint64_t structId = 0) {
  KJ_IF_MAYBE(field, schema.findFieldByName(name)) {
    auto proto = field->getProto();
    KJ_ASSERT(
        proto.isSlot() && proto.getDiscriminantValue() == capnp::schema::Field::NO_DISCRIMINANT,
        "the choke point reads this field raw; it must be a plain field", name);
    auto type = field->getType();
    KJ_ASSERT(type.which() == which, "the choke point reads this field as another type", name);
    if (which == capnp::schema::Type::STRUCT) {
      KJ_ASSERT(type.asStruct().getProto().getId() == structId,
                "the choke point reads this field as another struct", name);
    }
    Place place;
    place.index = proto.getSlot().getOffset();
    if (which == capnp::schema::Type::INT32) {
      place.defaultValue = proto.getSlot().getDefaultValue().getInt32();
    }
    return place;
  }
  return nullptr;
}

template<typename Interface>
const Shape& shapeOf(uint16_t methodId) {
  static const kj::Array<Shape> shapes = []() {
    using Which = capnp::schema::Type::Which;
    auto methods = capnp::Schema::from<Interface>().getMethods();
    auto out = kj::heapArrayBuilder<Shape>(methods.size());
    for (auto method : methods) {
      Shape s;
      s.params = method.getParamType();
      s.results = method.getResultType();
      auto resultShape = s.results.getProto().getStruct();
      s.resultWords = resultShape.getDataWordCount() + resultShape.getPointerCount();
      s.clientAddress = placeOf(s.params, "clientAddress", Which::TEXT);
      s.requestId = placeOf(s.params, "requestId", Which::TEXT);
      s.type = placeOf(s.params, "type", Which::TEXT);
      s.publicValue = placeOf(s.params, "publicValue", Which::TEXT);
      s.credential =
          placeOf(s.params, "credential", Which::STRUCT, capnp::typeId<rpc::Credential>());
      s.associateId = placeOf(s.params, "associateId", Which::INT32);
      s.error = placeOf(s.results, "error", Which::STRUCT, capnp::typeId<rpc::Error>());
      s.principal = placeOf(s.results, "principal", Which::STRUCT, capnp::typeId<rpc::Principal>());
      out.add(kj::mv(s));
    }
    return out.finish();
  }();
  return shapes[methodId];
}

// The pointer at `place` of `s`, when the method has the field and the struct is recent enough
// to carry it (an older client's shorter struct reads as null, i.e. as the default).
capnp::AnyPointer::Reader pointerAt(capnp::AnyStruct::Reader s, const kj::Maybe<Place>& place) {
  KJ_IF_MAYBE(p, place) {
    auto pointers = s.getPointerSection();
    if (p->index < pointers.size()) return pointers[p->index];
  }
  return capnp::AnyPointer::Reader();
}

// The Int32 at `place` of `s` (capnp keeps a data field XORed with its default, little-endian).
int32_t int32At(capnp::AnyStruct::Reader s, const Place& place) {
  auto data = s.getDataSection();
  if ((uint64_t{place.index} + 1) * 4 > data.size()) return place.defaultValue;
  auto b = data.begin() + place.index * 4;
  uint32_t raw = uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  return static_cast<int32_t>(raw) ^ place.defaultValue;
}

// Text a front end passes about its client: printable ASCII, bounded.
core::Result<kj::String> frontEndText(capnp::AnyStruct::Reader params,
                                      const kj::Maybe<Place>& place, kj::StringPtr name) {
  auto pointer = pointerAt(params, place);
  if (pointer.isNull()) return kj::String();
  auto text = pointer.getAs<capnp::Text>();
  if (text.size() > 64) return core::invalidArgument(name, name, " is longer than 64 bytes");
  for (char c : text) {
    if (c < 0x21 || c > 0x7e) return core::invalidArgument(name, name, " must be printable ASCII");
  }
  return kj::heapString(text);
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

// The error field of a call's results, in an answer sized for an error (a code and two short
// texts; a longer message takes a second segment): without the hint capnp starts the answer
// with 8 KiB, calloc'd and, when freed, wiped again.
constexpr uint64_t ERROR_TEXT_WORDS = 32;

rpc::Error::Builder initError(AnyContext& context, const Shape& shape) {
  uint64_t words = shape.resultWords + capnp::sizeInWords<rpc::Error>() + ERROR_TEXT_WORDS;
  return context.getResults(capnp::MessageSize{words, 0})
      .getAs<capnp::DynamicStruct>(shape.results)
      .init("error")
      .as<rpc::Error>();
}

// The same for a method's typed results.
template<typename Params, typename Results>
typename Results::Builder errorResults(capnp::CallContext<Params, Results>& context) {
  uint64_t words =
      capnp::sizeInWords<Results>() + capnp::sizeInWords<rpc::Error>() + ERROR_TEXT_WORDS;
  return context.getResults(capnp::MessageSize{words, 0});
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

// Who the caller is, found on a reads worker before the choke point runs (a store that may
// block): the principal a session's grant stands for now (with the generation read before the
// read began and the ticket's expiry), or the bootstrap peer's principal. `fresh` null: the
// session's cached principal still holds.
struct Known {
  kj::Maybe<core::Principal> fresh;
  uint64_t generation = 0;
  int64_t expiresUnix = 0;
};

// The principal `known` brings for `standing`, stored as the standing's cache; or the refusal
// (NOT_AUTHENTICATED, throttled) the worker met. Rethrows its failure (storage).
core::Result<const core::Principal&> adopt(core::Standing& standing, Outcome<Known>& known) {
  KJ_IF_MAYBE(e, known.error) { return e->clone(); }
  KJ_IF_MAYBE(f, known.failure) { kj::throwFatalException(kj::mv(*f)); }
  auto& k = KJ_ASSERT_NONNULL(known.value);
  KJ_IF_MAYBE(p, k.fresh) {
    standing.generation = 0;
    standing.principal = kj::mv(*p);
    standing.expiresUnix = k.expiresUnix;
    standing.generation = k.generation;
  }
  return standing.principal;
}

// `known`: null when the store never blocks (the choke point reads it inline), else what gate()
// found on a worker.
template<typename Interface, typename Dispatch>
DispatchCallResult pass(GateSide side, kj::ArrayPtr<const Rule> rules, uint64_t interfaceId,
                        uint16_t methodId, AnyContext context, kj::Maybe<Outcome<Known>> known,
                        Dispatch&& dispatch) {
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
    // A reader: what the method set. (A method that set nothing gets its empty results here,
    // sized as such rather than capnp's default 8 KiB.)
    auto results = context.getResults(capnp::MessageSize{shape.resultWords, 0})
                       .asReader()
                       .template getAs<capnp::AnyStruct>();
    p.record.result = "ok";
    kj::StringPtr field;
    auto errorAt = pointerAt(results, shape.error);
    auto principalAt = pointerAt(results, shape.principal);
    if (!errorAt.isNull()) {
      auto error = errorAt.template getAs<rpc::Error>();
      p.record.result = ipc::errorCodeName(error.getCode());
      field = error.getField();
    } else if (p.record.associateId == 0 && !principalAt.isNull()) {
      auto who = principalAt.template getAs<rpc::Principal>();
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
  // A long call's weight (ConnectionLoad::longCalls, taken by the method, Pending::longCalls)
  // counts until its answer is handed to capnp below, not only while it runs: an answer built
  // and waiting for its audit record is memory too.
  auto& load = *side.caller.load;
  auto& call = *pending;
  auto releaseLong = [&load, &call]() {
    load.longCalls -= call.longCalls;
    call.longCalls = 0;
  };
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&]() {
                {
                  auto params = context.getParams();
                  KJ_IF_MAYBE(tooBig, checkSize(params)) {
                    refused = kj::mv(*tooBig);
                    return;
                  }
                  auto fields = params.template getAs<capnp::AnyStruct>();
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
                  auto type = pointerAt(fields, shape.type);
                  if (!type.isNull()) {
                    pending->type = kj::heapString(type.template getAs<capnp::Text>());
                    r.type = pending->type;
                  }
                  kj::Maybe<capnp::Text::Reader> publicValue;
                  auto value = pointerAt(fields, shape.publicValue);
                  auto credential = pointerAt(fields, shape.credential);
                  if (!value.isNull()) {
                    publicValue = value.template getAs<capnp::Text>();
                  } else if (!credential.isNull()) {
                    auto c = credential.template getAs<rpc::Credential>();
                    if (c.hasPublicValue()) publicValue = c.getPublicValue();
                  }
                  KJ_IF_MAYBE(v, publicValue) {
                    pending->publicValueHmac = service.vault().auditHash(*v);
                    r.publicValueHmac = pending->publicValueHmac;
                  }
                  int32_t named = 0;
                  if (rule.target == Target::PARAM || rule.target == Target::PARAM_OR_SELF ||
                      rule.target == Target::OWNER) {
                    named = int32At(fields, KJ_ASSERT_NONNULL(shape.associateId));
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
                    auto now = [&]() -> core::Result<const core::Principal&> {
                      KJ_IF_MAYBE(k, known) { return adopt(*standing, *k); }
                      return service.identity().current(*standing);
                    }();
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
                    core::Principal who;
                    KJ_IF_MAYBE(k, known) {
                      KJ_IF_MAYBE(e, k->error) {
                        refused = e->clone();
                        return;
                      }
                      KJ_IF_MAYBE(f, k->failure) { kj::throwFatalException(kj::mv(*f)); }
                      who = kj::mv(KJ_ASSERT_NONNULL(KJ_ASSERT_NONNULL(k->value).fresh));
                    } else {
                      who = service.identity().peerPrincipal(side.caller.peer);
                    }
                    r.authMethod = methodName(who.method);
                    r.associateId = who.associateId;
                    auto decision = core::authorize(who, rule.policy, 0);
                    if (!decision.ok()) {
                      refused = decision.takeRefusal();
                      return;
                    }
                  }
                  KJ_DEFER(side.current = nullptr);
                  auto* outer = side.caller.call;
                  side.caller.call = &call;
                  KJ_DEFER(side.caller.call = outer);
                  dispatched = dispatch();
                }
              })) {
    releaseLong();
    setInternal(initError(context, shape), rule.operation, *exception);
    auto written = finish(*pending);
    return {written.attach(kj::mv(pending), kj::mv(inFlight)), false};
  }
  KJ_IF_MAYBE(e, refused) {
    releaseLong();
    setError(initError(context, shape), *e);
    auto written = finish(*pending);
    return {written.attach(kj::mv(pending), kj::mv(inFlight)), false};
  }
  auto result = KJ_ASSERT_NONNULL(kj::mv(dispatched));
  auto operation = rule.operation;
  // Until it is answered, the call keeps its connection from counting as idle.
  ++load.calls;
  // Owns the call's record: the method's later steps (which may take a long call's weight)
  // run before this is destroyed.
  auto answered = kj::defer([load = kj::addRef(load), pending = kj::mv(pending)]() mutable {
    --load->calls;
    load->longCalls -= pending->longCalls;
  });
  result.promise =
      result.promise
          .then([finish, &pending = call]() mutable { return finish(pending); },
                [finish, &pending = call, context, &shape, operation](kj::Exception&& e) mutable {
                  setInternal(initError(context, shape), operation, e);
                  return finish(pending);
                })
          .attach(kj::mv(answered), kj::mv(inFlight));
  return result;
}

// Proves at start that each rule table has one entry per method, in order.
template<typename Interface>
void checkRules(kj::ArrayPtr<const Rule> rules) {
  auto methods = capnp::Schema::from<Interface>().getMethods();
  KJ_ASSERT(methods.size() == rules.size(), "a method has no rule in rpc-server.c++",
            capnp::Schema::from<Interface>().getProto().getDisplayName());
  // Each method's places, found now: a field of an unexpected type stops the start here.
  for (auto i : kj::indices(rules)) {
    const Shape& shape = shapeOf<Interface>(i);
    auto target = rules[i].target;
    KJ_ASSERT(shape.associateId != nullptr || target == Target::NONE || target == Target::SELF,
              "a rule names params.associateId, which its method lacks",
              methods[i].getProto().getName());
  }
}

// A short store read in the caller's lane (SHORT_READS_PER_UID).
Lane shortReadLane(const Caller& caller) {
  Lane lane;
  lane.uid = caller.peer.uid;
  lane.client = caller.clientAddress;
  lane.maxPerUid = SHORT_READS_PER_UID;
  lane.maxPerClient = SHORT_READS_PER_CLIENT;
  return lane;
}

// Runs `job` where it may read the store: inline when the store never blocks (LMDB), else on
// the reads workers. The outcome is typed as a worker's (a refusal, a failure or the value).
template<typename T>
kj::Promise<Outcome<T>> storeRead(Service& service, const Lane& lane,
                                  kj::Function<core::Result<T>()> job) {
  if (service.offload()) return service.shortReads().run<T>(kj::mv(job), lane);
  return runToOutcome(job);
}

// The choke point's entry. With a store that may block, the store read the choke point needs
// (a session's principal when the store's generation moved; the bootstrap peer's principal
// for status and metrics) runs on a reads worker first, and pass() goes on on the event loop
// with its result; otherwise pass() runs at once and reads inline.
template<typename Interface, typename Dispatch>
DispatchCallResult gate(GateSide side, kj::ArrayPtr<const Rule> rules, uint64_t interfaceId,
                        uint16_t methodId, AnyContext context, Dispatch&& dispatch) {
  auto& service = side.service;
  if (!service.offload() || interfaceId != capnp::typeId<Interface>() || methodId >= rules.size()) {
    return pass<Interface>(side, rules, interfaceId, methodId, context, nullptr, dispatch);
  }
  const Rule& rule = rules[methodId];
  kj::Function<core::Result<Known>()> job;
  auto& identity = service.identity();
  auto& store = service.vault().environment();
  KJ_IF_MAYBE(standing, side.standing) {
    if (identity.cached(*standing) != nullptr) {
      Outcome<Known> cached;
      cached.value = Known();
      return pass<Interface>(side, rules, interfaceId, methodId, context, kj::mv(cached), dispatch);
    }
    job = [&identity, &store, grant = core::cloneGrant(standing->grant)]() {
      Known k;
      // Read before the store is (as Identity::current does).
      k.generation = store.generation();
      auto resolved = identity.resolve(grant, k.expiresUnix);
      if (!resolved.ok()) return core::Result<Known>(resolved.takeRefusal());
      k.fresh = kj::mv(resolved).value();
      return core::Result<Known>(kj::mv(k));
    };
  } else if (!core::openToAnyone(rule.policy)) {
    job = [&identity, peer = side.caller.peer]() {
      Known k;
      k.fresh = identity.peerPrincipal(peer);
      return core::Result<Known>(kj::mv(k));
    };
  } else {
    return pass<Interface>(side, rules, interfaceId, methodId, context, nullptr, dispatch);
  }
  // Counted as in flight and busy while it waits, like any call (graceful stop, idle timeout).
  ++service.inFlight;
  ++side.caller.load->calls;
  auto busy = kj::defer([&service, load = kj::addRef(*side.caller.load)]() mutable {
    --service.inFlight;
    --load->calls;
  });
  auto promise = service.shortReads()
                     .run<Known>(kj::mv(job), shortReadLane(side.caller))
                     .then([side, rules, interfaceId, methodId, context,
                            dispatch = kj::mv(dispatch)](Outcome<Known> known) mutable {
                       return pass<Interface>(side, rules, interfaceId, methodId, context,
                                              kj::mv(known), dispatch)
                           .promise;
                     })
                     .attach(kj::mv(busy));
  return {kj::mv(promise), false};
}

// Answers a queued job's refusal (true: the call is answered) and rethrows its unexpected
// failure for the choke point to log and answer `internal`; false: the outcome has a value.
template<typename T, typename Context>
bool answerIfFailed(Context& context, Outcome<T>& outcome) {
  KJ_IF_MAYBE(e, outcome.error) {
    setError(errorResults(context).initError(), *e);
    return true;
  }
  KJ_IF_MAYBE(f, outcome.failure) { kj::throwFatalException(kj::mv(*f)); }
  return false;
}

// Completes a queued job (a write in the group commit, work on a worker): the typed outcome
// goes into the results, or its refusal or failure as answerIfFailed says.
template<typename T, typename Context, typename Fill>
kj::Promise<void> finishQueued(kj::Promise<Outcome<T>> promise, Context context, Fill&& fill) {
  return promise.then([context, fill = kj::fwd<Fill>(fill)](Outcome<T> outcome) mutable {
    if (answerIfFailed(context, outcome)) return;
    fill(context.getResults(), KJ_ASSERT_NONNULL(kj::mv(outcome.value)));
  });
}

// Answers a call with a refusal (the choke point records it like any answer).
template<typename Context>
kj::Promise<void> refuseCall(Context& context, const core::Refusal& refusal) {
  setError(errorResults(context).initError(), refusal);
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

  // Work that waits in a queue (a short read on the reads worker, a long Get, a listing, a
  // backup, a verification) is authorized when it is queued (the choke point) and again when
  // it starts: it acts as the principal its grant stands for at that moment. That is the one
  // the choke point checked while the store's generation is unchanged, else the grant resolved
  // again, so a demotion, deactivation or revocation committed while it waited refuses it
  // (NOT_AUTHENTICATED, or the policy's PERMISSION_DENIED).
  struct AtTurn {
    const core::Identity& identity;
    mutable core::Standing standing;  // a copy of the capability's, as the choke point left it
    // What `body` answers as that principal, or the refusal of the grant.
    template<typename Body>
    auto run(Body&& body) const -> decltype(body(kj::instance<const core::Principal&>())) {
      auto who = identity.current(standing);
      if (!who.ok()) return who.takeRefusal();
      return body(who.value());
    }
  };
  AtTurn atTurn() {
    core::Standing copy(core::cloneGrant(standing_.grant));
    copy.principal = core::clonePrincipal(standing_.principal);
    copy.expiresUnix = standing_.expiresUnix;
    copy.generation = standing_.generation;
    return {service_.identity(), kj::mv(copy)};
  }

  // A short store read: inline with LMDB, on a reads worker when the store may block.
  template<typename T>
  kj::Promise<Outcome<T>> read(kj::Function<core::Result<T>()> job) {
    return storeRead<T>(service_, shortReadLane(caller_), kj::mv(job));
  }

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
    return gate<rpc::Admin>({service_, caller_, standing_, who_}, ADMIN_RULES, interfaceId,
                            methodId, context, [this, interfaceId, methodId, context]() mutable {
                              return rpc::Admin::Server::dispatchCall(interfaceId, methodId,
                                                                      context);
                            });
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
    auto& vault = service_.vault();
    return finishQueued(read<kj::Array<core::Associate>>([&vault, who = atTurn()]() mutable {
                          return who.run([&](auto& p) { return vault.listAssociates(p); });
                        }),
                        context, [](auto results, kj::Array<core::Associate> list) {
                          auto out = results.initAssociates(list.size());
                          for (auto i : kj::indices(list)) toWire(list[i], out[i]);
                        });
  }

  kj::Promise<void> findAssociate(FindAssociateContext context) override {
    auto& vault = service_.vault();
    auto job = [&vault, name = kj::heapString(
                            context.getParams().getName())]() -> core::Result<core::Associate> {
      KJ_IF_MAYBE(a, vault.findAssociateByName(name)) { return kj::mv(*a); }
      return core::refuse(core::ErrorCode::NOT_FOUND, "name",
                          kj::str("no associate has this name"));
    };
    return finishQueued(
        read<core::Associate>(kj::mv(job)), context,
        [](auto results, core::Associate a) { toWire(a, results.initAssociate()); });
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
    auto env = lmdbFor(vault, "backup");
    if (!env.ok()) return refuseCall(context, env.takeRefusal());
    source.spoolDirectory = env.value().directory();
    source.sizeBound = env.value().stats().usedBytes;
    source.write = [&vault, who = atTurn()](int fd) {
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
    kj::Function<VerifyResult()> walk;
    KJ_IF_MAYBE(env, vault.environment().lmdb()) {
      walk = [dir = kj::heapString(env->directory()), key = kj::mv(key)]() {
        return verifyInChild(dir, key);
      };
    } else {
      // A database server's pages are its own: every record opened, in this process.
      walk = [&vault]() { return verifyInProcess(vault); };
    }
    // Off the event loop, one at a time (with backups): the walk reads the whole file.
    auto job = [walk = kj::mv(walk), who = atTurn()]() mutable -> core::Result<VerifyResult> {
      // Still allowed, at its turn.
      return who.run([&](const core::Principal& p) -> core::Result<VerifyResult> {
        CV_REFUSE_IF(core::requireSystem(p, "verifying the vault"));
        return walk();
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
    auto& auth = service_.auth();
    return finishQueued(read<kj::Array<core::ApplicationInfo>>([&auth, who = atTurn()]() mutable {
                          return who.run([&](auto& p) { return auth.listApplications(p); });
                        }),
                        context, [](auto results, kj::Array<core::ApplicationInfo> list) {
                          auto out = results.initApplications(list.size());
                          for (auto i : kj::indices(list)) {
                            out[i].setName(list[i].name);
                            out[i].setCreated(list[i].createdUnix);
                          }
                        });
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
    if (!service_.offload()) {
      KJ_IF_MAYBE(r, service_.vault().changeMasterKey(who(), kj::mv(loaded.key))) {
        return refuseCall(context, *r);
      }
      context.getResults().setFingerprint(fingerprint);
      return kj::READY_NOW;
    }
    // A write transaction that may wait on the database: on the maintenance worker.
    auto& vault = service_.vault();
    auto job = [&vault, key = kj::mv(loaded.key), who = atTurn()]() mutable {
      return who.run([&](const core::Principal& p) -> core::Result<bool> {
        CV_REFUSE_IF(vault.changeMasterKey(p, kj::mv(key)));
        return true;
      });
    };
    return finishQueued(service_.maintenance().run<bool>(kj::mv(job)), context,
                        [fingerprint = kj::mv(fingerprint)](auto results, bool) {
                          results.setFingerprint(fingerprint);
                        });
  }

  kj::Promise<void> rotateDataKey(RotateDataKeyContext context) override {
    if (!service_.offload()) {
      auto rotated = service_.vault().rotateDataKey(who());
      if (!rotated.ok()) return refuseCall(context, rotated.takeRefusal());
      context.getResults().setKeyId(rotated.value());
      return kj::READY_NOW;
    }
    auto& vault = service_.vault();
    auto job = [&vault, who = atTurn()]() {
      return who.run([&](const core::Principal& p) { return vault.rotateDataKey(p); });
    };
    return finishQueued(service_.maintenance().run<uint32_t>(kj::mv(job)), context,
                        [](auto results, uint32_t id) { results.setKeyId(id); });
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
    return gate<rpc::Session>({service_, caller_, standing_, who_}, SESSION_RULES, interfaceId,
                              methodId, context, [this, interfaceId, methodId, context]() mutable {
                                return rpc::Session::Server::dispatchCall(interfaceId, methodId,
                                                                          context);
                              });
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
    auto& auth = service_.auth();
    auto job = [&auth, who = atTurn(), id = context.getParams().getAssociateId()]() mutable {
      return who.run([&](auto& p) { return auth.listTokens(p, id); });
    };
    return finishQueued(read<kj::Array<core::ApiTokenInfo>>(kj::mv(job)), context,
                        [](auto results, kj::Array<core::ApiTokenInfo> list) {
                          auto out = results.initTokens(list.size());
                          for (auto i : kj::indices(list)) fillToken(out[i], list[i]);
                        });
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
    return doList(context, [&vault, who = atTurn(), target = p.getAssociateId(),
                            type = kj::heapString(p.getType())]() {
      return who.run([&](const core::Principal& p) { return vault.list(p, target, type); });
    });
  }

  kj::Promise<void> listAll(ListAllContext context) override {
    auto& vault = service_.vault();
    return doList(
        context, [&vault, who = atTurn(), type = kj::heapString(context.getParams().getType())]() {
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
          if (answerIfFailed(context, outcome)) return kj::READY_NOW;
          auto op = rechecked(core::Operation::SET_PASSWORD, id,
                              KJ_ASSERT_NONNULL(kj::mv(outcome.value)));
          auto& auth = service_.auth();
          return finishQueued(service_.committer().submit(kj::mv(op)), context,
                              [&auth](auto, bool) { auth.flushCache(); });
        });
  }

 private:
  // The call being passed to its method (pass()); a method that goes on later keeps it.
  Pending& thisCall() { return KJ_ASSERT_NONNULL(caller_.call, "outside the choke point"); }

  // A long call (a long Get, a listing) on the reads worker, fair across uids: answered
  // `throttled` while the caller's uid holds MAX_ANSWER_BYTES_PER_UID of answers, queued in the
  // caller's lane, and counted as a long call of `call` until the choke point hands its answer
  // to capnp (pass()). Only the encoding of its result runs on the event loop.
  template<typename T, typename Job>
  kj::Promise<Outcome<T>> runLong(Pending& call, Job job) {
    auto throttled = [](kj::StringPtr why) {
      auto r = core::refuse(core::ErrorCode::THROTTLED, "", kj::str(why));
      r.retryAfterSeconds = 1;
      Outcome<T> refused;
      refused.error = kj::mv(r);
      return refused;
    };
    // A gateway's clients are told apart by the address it reports (GATEWAY_ANSWER_FACTOR).
    bool gateway = service_.identity().isGatewayUid(caller_.peer.uid);
    KJ_IF_MAYBE(bytesOf, service_.answerBytesOf) {
      size_t budget = MAX_ANSWER_BYTES_PER_UID * (gateway ? GATEWAY_ANSWER_FACTOR : 1);
      if ((*bytesOf)(caller_.peer.uid) >= budget) {
        return throttled("too many long answers are waiting to be read; read them, then retry");
      }
    }
    Lane lane;
    lane.uid = caller_.peer.uid;
    lane.maxPerUid = LONG_GETS_PER_UID * (gateway ? GATEWAY_ANSWER_FACTOR : 1);
    lane.maxPerClient = LONG_GETS_PER_UID;
    kj::Maybe<kj::String> client;
    if (gateway) {
      lane.client = caller_.clientAddress;
      lane.maxPerClient = LONG_GETS_PER_CLIENT;
      auto key = kj::str(caller_.peer.uid, "/", caller_.clientAddress);
      auto& admitted = service_.longGetsByClient.findOrCreate(key, [&]() {
        return kj::HashMap<kj::String, uint32_t>::Entry{kj::heapString(key), 0};
      });
      if (admitted >= LONG_GETS_PER_CLIENT) {
        return throttled(
            "this client has too many long answers in progress; retry when they "
            "are answered");
      }
      ++admitted;
      client = kj::mv(key);
    }
    ++caller_.load->longCalls;
    ++call.longCalls;
    auto opened = service_.reads().run<T>(kj::mv(job), lane);
    KJ_IF_MAYBE(key, client) {
      // Counted until the list is opened (or the call is dropped); what it then holds counts
      // in the uid's answer budget above.
      return opened.attach(kj::defer([&service = service_, key = kj::mv(*key)]() {
        KJ_IF_MAYBE(n, service.longGetsByClient.find(key)) {
          if (--*n == 0) service.longGetsByClient.erase(key);
        }
      }));
    }
    return opened;
  }

  // A listing (no secrets, every entry decrypted) runs like a long Get.
  template<typename Context, typename Job>
  kj::Promise<void> doList(Context& context, Job job) {
    return finishQueued(runLong<kj::Array<core::ListedCredential>>(thisCall(), kj::mv(job)),
                        context, [](auto results, kj::Array<core::ListedCredential> list) {
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

  // The answer in one segment of the size it needs (getResults' hint): capnp would otherwise
  // calloc 8 KiB for a one-entry answer, and wipe-on-free zero it again when it is freed.
  template<typename Params, typename Results>
  static void fillList(capnp::CallContext<Params, Results>& context,
                       kj::Array<core::Credential> list) {
    uint64_t words = capnp::sizeInWords<Results>() + wireWords(list);
    auto out = context.getResults(capnp::MessageSize{words, 0}).initCredentials(list.size());
    for (auto i : kj::indices(list)) toWire(list[i], out[i]);
  }

  // A short list is answered here; a long one is opened on a reads worker (fair across uids)
  // and only encoded here, so it never holds the event loop for long.
  template<typename Context>
  kj::Promise<void> doGet(Context& context, int32_t target, capnp::Text::Reader type) {
    auto& vault = service_.vault();
    if (service_.offload()) {
      // Short or long, the store is read on a worker; a long list is then opened like below.
      using Short = kj::Maybe<kj::Array<core::Credential>>;
      auto job = [&vault, who = atTurn(), target, type = kj::heapString(type)]() mutable {
        return who.run([&](auto& p) { return vault.tryGet(p, target, type, INLINE_GET_LIMIT); });
      };
      return read<Short>(kj::mv(job))
          .then([this, context, target, type = kj::heapString(type),
                 &call = thisCall()](Outcome<Short> outcome) mutable -> kj::Promise<void> {
            if (answerIfFailed(context, outcome)) return kj::READY_NOW;
            KJ_IF_MAYBE(list, KJ_ASSERT_NONNULL(outcome.value)) {
              fillList(context, kj::mv(*list));
              return kj::READY_NOW;
            }
            return longGet(call, context, target, type);
          });
    }
    auto shortList = vault.tryGet(who(), target, type, INLINE_GET_LIMIT);
    if (!shortList.ok()) return refuseCall(context, shortList.takeRefusal());
    KJ_IF_MAYBE(list, shortList.value()) {
      fillList(context, kj::mv(*list));
      return kj::READY_NOW;
    }
    return longGet(thisCall(), context, target, type);
  }

  // A long list, opened on a reads worker (fair across uids) as whoever the grant stands for
  // at its turn.
  template<typename Context>
  kj::Promise<void> longGet(Pending& call, Context& context, int32_t target, kj::StringPtr type) {
    auto& vault = service_.vault();
    auto job = [&vault, who = atTurn(), target, type = kj::heapString(type)]() {
      return who.run([&](const core::Principal& p) { return vault.get(p, target, type); });
    };
    return finishQueued(runLong<kj::Array<core::Credential>>(call, kj::mv(job)), context,
                        [](auto results, kj::Array<core::Credential> list) {
                          auto out = results.initCredentials(list.size());
                          for (auto i : kj::indices(list)) toWire(list[i], out[i]);
                        });
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
    return gate<rpc::Vault>({service_, caller_, nullptr, unused_}, VAULT_RULES, interfaceId,
                            methodId, context, [this, interfaceId, methodId, context]() mutable {
                              return rpc::Vault::Server::dispatchCall(interfaceId, methodId,
                                                                      context);
                            });
  }

  kj::Promise<void> whoami(WhoamiContext context) override {
    auto& identity = service_.identity();
    return finishQueued(
        read<core::Principal>(
            [&identity, peer = caller_.peer]() { return identity.peerPrincipal(peer); }),
        context, [](auto results, core::Principal who) { toWire(who, results.initPrincipal()); });
  }

  kj::Promise<void> session(SessionContext context) override {
    auto& identity = service_.identity();
    return finishQueued(
        read<core::Standing>([&identity, peer = caller_.peer]() { return identity.byPeer(peer); }),
        context, [this](auto results, core::Standing standing) {
          results.setSession(kj::heap<SessionImpl>(service_, kj::mv(standing), caller_.clone()));
        });
  }

  kj::Promise<void> authenticatePassword(AuthenticatePasswordContext context) override {
    auto p = context.getParams();
    bool issueTicket = p.getIssueTicket();
    struct Checked {
      core::Associate associate;
      kj::Maybe<kj::String> rehash;
    };
    // Before any hashing: the partner application's token (online mode) and the verification
    // cache (a hit, e.g. HTTP Basic at request rate, needs no Argon2id; it is checked against
    // the associate's record). Both read the store.
    struct Precheck {
      kj::Maybe<kj::Array<kj::byte>> appKey;
      kj::Maybe<core::Associate> cached;
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
    auto name = kj::heapString(p.getName());
    auto precheck = [&auth, appToken = appTokenCopy(p), name = kj::heapString(name),
                     password = crypto::Secret::copyOf(password.reveal()),
                     client = kj::heapString(client)]() -> core::Result<Precheck> {
      Precheck out;
      auto app = auth.checkApplicationKey(appToken.map([](auto& t) { return t.asPtr(); }));
      if (!app.ok()) return app.takeRefusal();
      out.appKey = kj::mv(app).value();
      auto cached = auth.checkCachedPassword(name, password, client);
      if (!cached.ok()) return cached.takeRefusal();
      out.cached = kj::mv(cached).value();
      return kj::mv(out);
    };
    using AppKey = kj::Maybe<kj::Array<kj::byte>>;
    kj::Own<AppKey> appKey = kj::heap<AppKey>();
    auto& appKeyRef = *appKey;
    auto checked =
        read<Precheck>(kj::mv(precheck))
            .then([this, &auth, &appKeyRef, name = kj::mv(name), password = kj::mv(password),
                   client = kj::mv(client), lane = kj::mv(lane)](
                      Outcome<Precheck> pre) mutable -> kj::Promise<Outcome<Checked>> {
              // Refused before any hashing (unknown application, malformed, throttled).
              KJ_IF_MAYBE(failed, passOn<Checked>(pre)) { return kj::mv(*failed); }
              auto& found = KJ_ASSERT_NONNULL(pre.value);
              appKeyRef = kj::mv(found.appKey);
              KJ_IF_MAYBE(a, found.cached) {
                Outcome<Checked> out;
                out.value = Checked{kj::mv(*a), nullptr};
                return kj::mv(out);
              }
              // Argon2id runs on the blocking pool, never on the event loop.
              auto job = [&auth, name = kj::mv(name), password = kj::mv(password),
                          client = kj::mv(client)]() mutable -> core::Result<Checked> {
                Checked c;
                auto verified = auth.checkPassword(name, password, client, c.rehash);
                if (!verified.ok()) return verified.takeRefusal();
                c.associate = kj::mv(verified).value();
                return kj::mv(c);
              };
              return service_.passwords().run<Checked>(kj::mv(job), lane);
            });
    return checked.then([this, context, appKey = kj::mv(appKey), issueTicket,
                         caller = kj::mv(caller)](
                            Outcome<Checked> outcome) mutable -> kj::Promise<void> {
      KJ_IF_MAYBE(e, outcome.error) {
        // For fail2ban and the like; the audit record has the rest.
        logf(Level::NOTICE, "authentication failed",
             LogField{"OP", kj::str("authenticate-password")},
             LogField{"UID", kj::str(caller_.peer.uid)},
             LogField{"RESULT", kj::str(ipc::errorCodeName(toWire(e->code)))});
        setError(errorResults(context).initError(), *e);
        return kj::READY_NOW;
      }
      KJ_IF_MAYBE(f, outcome.failure) { kj::throwFatalException(kj::mv(*f)); }
      auto checked = KJ_ASSERT_NONNULL(kj::mv(outcome.value));
      KJ_IF_MAYBE(h, checked.rehash) {
        // Best effort: a failure leaves the old hash, which still verifies.
        auto& a = checked.associate;
        service_.committer()
            .submit(service_.auth().storeRehash(a.id, kj::mv(*h), a.credentialEpoch))
            .detach([](kj::Exception&&) {});
      }
      // Opening the session reads the associate's record again (a store read).
      struct Opened {
        core::Standing standing;
        core::Associate associate;
      };
      auto& identity = service_.identity();
      auto open = [&identity, peer = caller_.peer, a = kj::mv(checked.associate),
                   appKey = kj::mv(*appKey)]() mutable -> core::Result<Opened> {
        auto standing = identity.byPassword(peer, a, kj::mv(appKey));
        if (!standing.ok()) return standing.takeRefusal();
        return Opened{kj::mv(standing).value(), kj::mv(a)};
      };
      return read<Opened>(kj::mv(open))
          .then([this, context, issueTicket,
                 caller = kj::mv(caller)](Outcome<Opened> opened) mutable -> kj::Promise<void> {
            if (answerIfFailed(context, opened)) return kj::READY_NOW;
            auto o = KJ_ASSERT_NONNULL(kj::mv(opened.value));
            auto standing = kj::mv(o.standing);
            toWire(standing.principal, context.getResults().initPrincipal());
            if (!issueTicket) {
              context.getResults().setSession(
                  kj::heap<SessionImpl>(service_, kj::mv(standing), kj::mv(caller)));
              return kj::READY_NOW;
            }
            auto op = service_.auth().issueTicket(o.associate);
            return finishQueued(service_.committer().submit(kj::mv(op)), context,
                                [this, standing = kj::mv(standing), caller = kj::mv(caller)](
                                    auto results, core::IssuedTicket t) mutable {
                                  // The session follows the ticket: revoking it ends the session.
                                  standing.grant.ticketKey =
                                      KJ_ASSERT_NONNULL(service_.auth().ticketKey(t.ticket));
                                  standing.generation = 0;
                                  results.setTicket(t.ticket);
                                  results.setTicketExpires(t.expiresUnix * core::TICKS_PER_SECOND +
                                                           core::UNIX_EPOCH_TICKS);
                                  results.setSession(kj::heap<SessionImpl>(
                                      service_, kj::mv(standing), kj::mv(caller)));
                                });
          });
    });
  }

  kj::Promise<void> authenticateTicket(AuthenticateTicketContext context) override {
    auto p = context.getParams();
    return bearerLogin(context, p, p.getTicket(), &core::Identity::byTicket);
  }

  kj::Promise<void> authenticateToken(AuthenticateTokenContext context) override {
    auto p = context.getParams();
    return bearerLogin(context, p, p.getToken(), &core::Identity::byToken);
  }

  // A session opened by a bearer secret (ticket or API token), looked up where the store may
  // be read. The secret is copied into sodium memory for the job and wiped after.
  template<typename Context, typename Params>
  kj::Promise<void> bearerLogin(Context& context, Params p, capnp::Text::Reader bearer,
                                core::Result<core::Standing> (core::Identity::*by)(
                                    core::Peer, kj::StringPtr, kj::Maybe<kj::Array<kj::byte>>)
                                    const) {
    auto& auth = service_.auth();
    auto& identity = service_.identity();
    auto job = [&auth, &identity, by, peer = caller_.peer, appToken = appTokenCopy(p),
                secret =
                    crypto::Secret::copyOf(bearer.asBytes())]() -> core::Result<core::Standing> {
      auto appKey = auth.checkApplicationKey(appToken.map([](auto& t) { return t.asPtr(); }));
      if (!appKey.ok()) return appKey.takeRefusal();
      auto text = kj::heapString(reinterpret_cast<const char*>(secret.reveal().begin()),
                                 secret.reveal().size());
      KJ_DEFER(crypto::wipe(text.asArray()));
      return (identity.*by)(peer, text, kj::mv(appKey).value());
    };
    return openSession(context, read<core::Standing>(kj::mv(job)), sessionCaller(p));
  }

  kj::Promise<void> revokeTicket(RevokeTicketContext context) override {
    // Only a live ticket costs a write: anyone may call this, and a durable commit (and
    // every session's re-read) per made-up ticket would be a cheap denial of service.
    auto& auth = service_.auth();
    auto ticket = context.getParams().getTicket();
    kj::Maybe<kj::Array<kj::byte>> key = auth.ticketKey(ticket);
    auto live = [&auth, key = kj::mv(key)]() {
      KJ_IF_MAYBE(k, key) { return core::Result<bool>(auth.findTicketByKey(*k) != nullptr); }
      return core::Result<bool>(false);
    };
    return read<bool>(kj::mv(live))
        .then([this, context](Outcome<bool> found) mutable -> kj::Promise<void> {
          if (answerIfFailed(context, found)) return kj::READY_NOW;
          if (!KJ_ASSERT_NONNULL(found.value)) {
            context.getResults().setRevoked(false);
            return kj::READY_NOW;
          }
          auto op = service_.auth().revokeTicket(context.getParams().getTicket());
          return finishQueued(service_.committer().submit(kj::mv(op)), context,
                              [](auto results, bool revoked) { results.setRevoked(revoked); });
        });
  }

  kj::Promise<void> health(HealthContext context) override {
    // One read transaction: the database answers. (The choke point has already refused the
    // call if the audit trail cannot take records.)
    auto& vault = service_.vault();
    return finishQueued(
        read<core::VaultCounts>([&vault]() { return vault.counts(); }), context,
        [](auto results, core::VaultCounts) { results.setVersion(CREDVAULT_VERSION); });
  }

  // What status and metrics read from the store, on a worker when it may block.
  struct StoreFacts {
    core::VaultCounts counts;
    store::StoreStats stats;
    bool mapped = true;  // the peer is someone (status refuses no one)
  };
  kj::Promise<Outcome<StoreFacts>> storeFacts() {
    auto& vault = service_.vault();
    auto& identity = service_.identity();
    return read<StoreFacts>([&vault, &identity, peer = caller_.peer]() {
      StoreFacts f;
      f.counts = vault.counts();
      f.stats = vault.environment().stats();
      f.mapped = identity.peerPrincipal(peer).method != core::AuthMethod::NONE;
      return f;
    });
  }

  kj::Promise<void> metrics(MetricsContext context) override {
    // The choke point has asked core::authorize (system user or front end).
    return finishQueued(storeFacts(), context, [this](auto results, StoreFacts f) {
      auto s = results.initStatus();
      fillStatus(s, f);
      auto commits = service_.committer().stats();
      s.setCommits(commits.commits);
      s.setCommittedWrites(commits.ops);
      s.setWriteQueue(service_.committer().queued());
      s.setPasswordQueue(service_.passwords().queued());
      s.setPasswordWorkers(service_.passwords().workers());
      s.setReadQueue(service_.reads().queued() +
                     (service_.offload() ? service_.shortReads().queued() : 0));
      s.setMaintenanceQueue(service_.maintenance().queued());
      s.setMapReaders(f.stats.readers);
      s.setAuditAccepting(service_.audit().accepting());
    });
  }

  void fillStatus(rpc::Status::Builder s, const StoreFacts& f) {
    s.setVersion(CREDVAULT_VERSION);
    s.setCredentials(f.counts.credentials);
    s.setAssociates(f.counts.associates);
    s.setDataKeyId(f.counts.dataKeyId);
    s.setMapSize(f.stats.mapSize);
    s.setUsedBytes(f.stats.usedBytes);
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
    return storeFacts().then([this, context](Outcome<StoreFacts> facts) mutable {
      if (answerIfFailed(context, facts)) return;
      auto& f = KJ_ASSERT_NONNULL(facts.value);
      if (!f.mapped) {
        setError(errorResults(context).initError(),
                 core::refuse(core::ErrorCode::NOT_AUTHENTICATED, "",
                              kj::str("uid ", caller_.peer.uid, " is not mapped to an associate")));
        return;
      }
      fillStatus(context.getResults().initStatus(), f);
    });
  }

 private:
  Service& service_;
  Caller caller_;
  const core::Principal* unused_ = nullptr;

  template<typename T>
  kj::Promise<Outcome<T>> read(kj::Function<core::Result<T>()> job) {
    return storeRead<T>(service_, shortReadLane(caller_), kj::mv(job));
  }

  // A session opened by a job (ticket, token): its principal and capability into the results.
  template<typename Context>
  kj::Promise<void> openSession(Context context, kj::Promise<Outcome<core::Standing>> opened,
                                Caller caller) {
    return finishQueued(
        kj::mv(opened), context,
        [this, caller = kj::mv(caller)](auto results, core::Standing standing) mutable {
          toWire(standing.principal, results.initPrincipal());
          results.setSession(kj::heap<SessionImpl>(service_, kj::mv(standing), kj::mv(caller)));
        });
  }

  // The application token, copied for a job that runs later.
  template<typename Params>
  static kj::Maybe<kj::String> appTokenCopy(Params p) {
    KJ_IF_MAYBE(t, appToken(p)) { return kj::heapString(*t); }
    return nullptr;
  }

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
      reads_(kj::heap<BlockingPool>(1)),
      offload_(vault.environment().mayBlock()) {
  if (offload_) shortReads_ = kj::heap<BlockingPool>(4);
  checkRules<rpc::Vault>(VAULT_RULES);
  checkRules<rpc::Session>(SESSION_RULES);
  checkRules<rpc::Admin>(ADMIN_RULES);
}

void Service::setReadWorkers(size_t n) {
  KJ_REQUIRE(n >= 1 && offload_);
  shortReads_ = kj::heap<BlockingPool>(n);
}

rpc::Vault::Client Service::newBootstrap(Peer peer, kj::Own<ConnectionLoad> load) {
  return kj::heap<VaultImpl>(*this, peer, kj::mv(load));
}

}  // namespace credvault::daemon
