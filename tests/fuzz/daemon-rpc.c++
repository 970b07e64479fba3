// libFuzzer target: the daemon's request handling. Cap'n Proto messages reach the real RPC
// server (daemon/rpc-server) through the real listener (daemon/listener: transport limits,
// per-connection load) from a peer the input picks, on a vault in a temporary directory.
//
// Peers (the socket credentials the listener sees): root, a mapped user (alice), a user admin
// (ua), a configured gateway uid and a uid mapped to no one.
//
// The first byte picks the peer (low three bits) and the mode (bit 7):
//   structured: the rest is a list of calls, each [target][method][length: 2 bytes LE][params],
//     where target picks the capability called (0 the bootstrap Vault, 1 the peer's Session,
//     2 that Session's Admin, 3 a Session of ua by password — it has an Admin too — and
//     4 that Admin), method the method (modulo the interface's count) and params a single
//     Cap'n Proto segment holding the params struct, copied field by field into the request
//     the way a client library builds it (so malformed pointers are refused on our side and
//     the server sees every shape of well-formed message, every method, every value);
//   raw: the rest is written as it is into the connection, Cap'n Proto framing and all.
// Each input is one connection; it ends once every call is answered (or the daemon has
// nothing in flight, in raw mode). Checks: nothing crashes or leaks (ASan/LSan), every call is
// answered within 5 s, memory stays within libFuzzer's -rss_limit_mb.
//
// Left out: Admin.verify (forks a child per call) and Admin.changeMasterKey (reads a key file
// at a path the caller names: as root in a fuzzer, any host file); both are tested directly.
// The vault is rebuilt every RESET_EVERY inputs so that what earlier inputs wrote (thousands of
// associates, remapped uids) does not grow without bound.
//
// With CREDVAULT_FUZZ_WRITE_SEEDS=DIR set, writes a seed corpus of valid calls (one per method
// and target, a few sequences, and raw recordings of them) into DIR and exits.

#include "daemon/listener.h"
#include "daemon/log.h"
#include "daemon/rpc-server.h"
#include "tests/fuzz/fuzz-util.h"
#include "tests/support/fake-peer.h"
#include "tests/support/vault-world.h"

#include <capnp/dynamic.h>
#include <capnp/message.h>
#include <capnp/rpc-twoparty.h>
#include <capnp/schema.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace credvault::daemon {
namespace {

constexpr uint32_t ALICE_UID = 1001;
constexpr uint32_t ADMIN_UID = 1003;
constexpr uint32_t GATEWAY_UID = 901;
constexpr uint32_t UNMAPPED_UID = 5000;
constexpr uint32_t PEERS[] = {0, ALICE_UID, ADMIN_UID, GATEWAY_UID, UNMAPPED_UID};
constexpr size_t PEER_COUNT = sizeof(PEERS) / sizeof(PEERS[0]);
constexpr const char UA_PASSWORD[] = "ua-Fuzz-Pw-1";
constexpr const char ALICE_SECRET[] = "fz-alice-Secret-91c3";
constexpr size_t RESET_EVERY = 4096;
constexpr size_t MAX_CALLS = 64;
constexpr auto ANSWER_DEADLINE = 5 * kj::SECONDS;

enum Target : uint8_t { VAULT, SESSION, ADMIN, PW_SESSION, PW_ADMIN, TARGETS };

capnp::InterfaceSchema schemaOf(Target t) {
  switch (t) {
    case VAULT:
      return capnp::Schema::from<rpc::Vault>();
    case SESSION:
    case PW_SESSION:
      return capnp::Schema::from<rpc::Session>();
    case ADMIN:
    case PW_ADMIN:
    case TARGETS:
      break;
  }
  return capnp::Schema::from<rpc::Admin>();
}

// Methods not called (see the header comment).
bool excluded(Target t, kj::StringPtr name) {
  return (t == ADMIN || t == PW_ADMIN) && (name == "verify" || name == "changeMasterKey");
}

// A daemon's parts, as main.c++ wires them, on a vault in a temporary directory.
struct Daemon {
  kj::AsyncIoContext& io;
  support::VaultWorld world{support::VaultWorld::Clock::SYSTEM, "credvault-fuzz-rpc"};
  kj::Own<GroupCommitter> committer;
  kj::Own<BlockingPool> passwords;
  kj::Own<AuditLog> audit;
  kj::Own<Service> service;
  support::FakePeerReceiver* receiver = nullptr;
  kj::Own<Listener> listener;
  kj::Promise<void> accepting = nullptr;

  explicit Daemon(kj::AsyncIoContext& io) : io(io) {
    world.storeOptions.durable = false;
    world.identityOptions.gatewayUids = kj::heapArray<uint32_t>({GATEWAY_UID});
    world.open();
    committer = kj::heap<GroupCommitter>(*world.env);
    passwords = kj::heap<BlockingPool>(1);
    AuditOptions ao;
    ao.path = world.dir / "audit.jsonl";
    ao.journal = false;
    audit = kj::heap<AuditLog>(kj::mv(ao));
    service = kj::heap<Service>(*world.vault, *world.auth, *world.identity, *committer, *passwords,
                                *audit, kj::systemPreciseCalendarClock());
    world.add("alice", core::Kind::USER, false, ALICE_UID);
    world.add("ua", core::Kind::USER, true, ADMIN_UID, UA_PASSWORD);
    world.add("svc", core::Kind::SYSTEM, false, nullptr, "svc-Fuzz-Pw-2");
    auto r = kj::heap<support::FakePeerReceiver>(*io.provider);
    receiver = r.get();
    listener = kj::heap<Listener>(*service, kj::mv(r), io.provider->getTimer());
    accepting = listener->run().eagerlyEvaluate(
        [](kj::Exception&& e) { KJ_FAIL_ASSERT("the listener stopped accepting", e); });
    // Alice has a credential, so that reads have something to open.
    auto stream = receiver->connect(ALICE_UID);
    capnp::TwoPartyClient client(*stream);
    auto save =
        client.bootstrap().castAs<rpc::Vault>().sessionRequest().send().getSession().saveRequest();
    save.setType("imap");
    auto c = save.initCredential();
    c.setPublicValue("alice@example.com");
    c.setSecretValue(ALICE_SECRET);
    c.setIsActive(true);
    auto saved = save.send().wait(io.waitScope);
    KJ_ASSERT(!saved.hasError(), saved.getError().getMessage());
  }
  ~Daemon() noexcept(false) {
    accepting = nullptr;
    listener = nullptr;
    service = nullptr;
    audit = nullptr;
    passwords = nullptr;
    committer = nullptr;  // drains, before the vault goes
  }

  // Runs the event loop until nothing is in flight (the pool and the committer answer on
  // other threads), or fails past the deadline.
  void settle() {
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + ANSWER_DEADLINE;
    while (service->inFlight > 0) {
      KJ_ASSERT(timer.now() < deadline, "a call was not answered in time", service->inFlight);
      timer.afterDelay(1 * kj::MILLISECONDS).wait(io.waitScope);
    }
  }
};

struct State {
  kj::AsyncIoContext io = kj::setupAsyncIo();
  kj::Own<Daemon> daemon;
  size_t runs = 0;
};

State& state() {
  static State* s = [] {
    setLogLevel(Level::CRITICAL);  // refused calls are logged; a fuzzer makes millions
    return new State;
  }();
  static bool cleanup = [] {
    // At exit (libFuzzer's -max_total_time) the vault goes, and its temporary directory.
    return atexit([]() { s->daemon = nullptr; }) == 0;
  }();
  (void)cleanup;
  if (s->daemon.get() == nullptr || s->runs++ % RESET_EVERY == 0) {
    s->daemon = nullptr;
    s->daemon = kj::heap<Daemon>(s->io);
  }
  return *s;
}

// ---- the input ---------------------------------------------------------------------------

struct Reader {
  const uint8_t* p;
  size_t left;
  bool take(size_t n, const uint8_t** out) {
    if (left < n) return false;
    *out = p;
    p += n;
    left -= n;
    return true;
  }
};

// Copies `from` into `to` field by field (the union member that is set, and every other
// field present); a malformed pointer throws, which the caller treats as a call not made.
void copyStruct(capnp::DynamicStruct::Reader from, capnp::DynamicStruct::Builder to) {
  KJ_IF_MAYBE(u, from.which()) { to.set(*u, from.get(*u)); }
  for (auto field : from.getSchema().getNonUnionFields()) {
    if (from.has(field)) to.set(field, from.get(field));
  }
}

// One connection as `peer`, the calls of `in` on it.
void runStructured(Daemon& d, uint32_t peer, Reader in) {
  auto& ws = d.io.waitScope;
  auto stream = d.receiver->connect(peer);
  capnp::TwoPartyClient client(*stream);
  auto vault = client.bootstrap().castAs<rpc::Vault>();
  // The other capabilities, pipelined when first called (a password login costs a hash).
  kj::Maybe<capnp::Capability::Client> caps[TARGETS];
  caps[VAULT] = vault;
  std::function<capnp::Capability::Client(Target)> cap;
  cap = [&](Target t) -> capnp::Capability::Client {
    KJ_IF_MAYBE(c, caps[t]) { return *c; }
    capnp::Capability::Client made = nullptr;
    switch (t) {
      case SESSION:
        made = vault.sessionRequest().send().getSession();
        break;
      case ADMIN:
        made = cap(SESSION).castAs<rpc::Session>().adminRequest().send().getAdmin();
        break;
      case PW_SESSION: {
        auto login = vault.authenticatePasswordRequest();
        login.setName("ua");
        login.setPassword(UA_PASSWORD);
        made = login.send().getSession();
        break;
      }
      case PW_ADMIN:
        made = cap(PW_SESSION).castAs<rpc::Session>().adminRequest().send().getAdmin();
        break;
      case VAULT:
      case TARGETS:
        made = vault;
        break;
    }
    caps[t] = made;
    return made;
  };

  kj::Vector<kj::Promise<void>> answers;
  const uint8_t* head;
  while (answers.size() < MAX_CALLS && in.take(4, &head)) {
    auto target = static_cast<Target>(head[0] % TARGETS);
    auto schema = schemaOf(target);
    auto methods = schema.getMethods();
    auto method = methods[head[1] % methods.size()];
    size_t length = kj::min(head[2] | (size_t(head[3]) << 8), in.left);
    const uint8_t* body;
    in.take(length, &body);
    if (excluded(target, method.getProto().getName())) continue;
    auto request = cap(target).castAs<capnp::DynamicCapability>(schema).newRequest(method);
    if (length >= 8) {
      // One segment, word-aligned (a copy: libFuzzer's buffer is not aligned).
      auto words = kj::heapArray<capnp::word>(length / 8);
      memcpy(words.begin(), body, words.size() * sizeof(capnp::word));
      kj::ArrayPtr<const capnp::word> segments[] = {words};
      capnp::SegmentArrayMessageReader message(segments);
      if (kj::runCatchingExceptions([&]() {
            copyStruct(message.getRoot<capnp::DynamicStruct>(method.getParamType()), request);
          }) != nullptr) {
        continue;
      }
    }
    // The answer or the exception both count as answered; only their absence is a finding.
    answers.add(request.send().then([](auto&&) {}, [](kj::Exception&&) {}));
  }
  auto& timer = d.io.provider->getTimer();
  bool answered = kj::joinPromises(answers.releaseAsArray())
                      .then([]() { return true; })
                      .exclusiveJoin(timer.afterDelay(ANSWER_DEADLINE).then([]() { return false; }))
                      .wait(ws);
  KJ_ASSERT(answered, "a call was not answered in time");
  d.settle();
}

void runRaw(Daemon& d, uint32_t peer, Reader in) {
  auto& ws = d.io.waitScope;
  auto stream = d.receiver->connect(peer);
  // The daemon may close the connection before everything is written (a refused message).
  kj::runCatchingExceptions([&]() { stream->write(in.p, in.left).wait(ws); });
  // Let it read and answer what it can, then hang up.
  ws.poll();
  d.settle();
  stream = nullptr;
}

void fuzzOne(const uint8_t* data, size_t size) {
  if (size < 1) return;
  auto& s = state();
  uint32_t peer = PEERS[(data[0] & 0x07) % PEER_COUNT];
  Reader in{data + 1, size - 1};
  if (data[0] & 0x80) {
    runRaw(*s.daemon, peer, in);
  } else {
    runStructured(*s.daemon, peer, in);
  }
  // The daemon's side of the connection goes away too before the next input.
  s.io.waitScope.poll();
  s.daemon->settle();
}

// ---- the seed corpus ---------------------------------------------------------------------

// A plausible value for every field, by name and type: what a correct client would send.
void fillPlausibly(capnp::DynamicStruct::Builder b, int32_t aliceId) {
  auto schema = b.getSchema();
  auto fill = [&](capnp::StructSchema::Field field) {
    auto name = field.getProto().getName();
    auto type = field.getType();
    switch (type.which()) {
      case capnp::schema::Type::TEXT: {
        kj::StringPtr v = "imap";
        if (name == "name") v = "ua";
        if (name == "password" || name == "current") v = UA_PASSWORD;
        if (name == "publicValue") v = "alice@example.com";
        if (name == "secretValue") v = "fz-new-Secret-5d2e";
        if (name == "comment") v = "fuzz seed";
        if (name == "clientAddress") v = "203.0.113.9";
        if (name == "requestId") v = "req-0001";
        if (name == "ticket" || name == "token" || name == "appToken") v = "AAAAAAAAAAAAAAAA";
        if (name == "value") v = "alice@example.com";
        b.set(field, capnp::Text::Reader(v));
        break;
      }
      case capnp::schema::Type::INT32:
        b.set(field, name == "associateId" ? aliceId : 1);
        break;
      case capnp::schema::Type::INT64:
        b.set(field, name == "unixUid" ? int64_t(-1) : int64_t(0));
        break;
      case capnp::schema::Type::BOOL:
        b.set(field, name != "issueTicket");
        break;
      case capnp::schema::Type::STRUCT:
        fillPlausibly(b.init(field).as<capnp::DynamicStruct>(), aliceId);
        break;
      default:
        break;  // enums, unsigned counts, capabilities: their defaults
    }
  };
  for (auto field : schema.getNonUnionFields()) {
    if (field.getProto().isGroup()) {
      // A union group ("keep" or "set"): set, with a plausible value.
      auto group = b.get(field).as<capnp::DynamicStruct>();
      auto members = group.getSchema().getUnionFields();
      if (members.size() > 1) {
        auto set = members[1];
        switch (set.getType().which()) {
          case capnp::schema::Type::TEXT:
            group.set(set, "renamed");
            break;
          case capnp::schema::Type::BOOL:
            group.set(set, true);
            break;
          case capnp::schema::Type::INT64:
            group.set(set, int64_t(4321));
            break;
          default:
            group.clear(set);
        }
      }
      continue;
    }
    fill(field);
  }
  auto members = schema.getUnionFields();
  if (members.size() > 0) fill(members[0]);
}

kj::Array<kj::byte> paramsOf(capnp::InterfaceSchema::Method method, int32_t aliceId) {
  capnp::MallocMessageBuilder message(1024);
  fillPlausibly(message.initRoot<capnp::DynamicStruct>(method.getParamType()), aliceId);
  auto segments = message.getSegmentsForOutput();
  KJ_ASSERT(segments.size() == 1);
  return kj::heapArray(segments[0].asBytes());
}

void writeSeed(kj::StringPtr dir, kj::StringPtr name, kj::ArrayPtr<const kj::byte> bytes) {
  support::writeFile(kj::str(dir, "/", name), bytes, 0644);
}

void writeSeeds(kj::StringPtr dir) {
  auto& s = state();
  int32_t aliceId = KJ_ASSERT_NONNULL(s.daemon->world.vault->findAssociateByName("alice")).id;
  auto call = [&](kj::Vector<kj::byte>& out, Target t, uint8_t m) {
    auto params = paramsOf(schemaOf(t).getMethods()[m], aliceId);
    out.add(t);
    out.add(m);
    out.add(params.size() & 0xff);
    out.add(params.size() >> 8);
    out.addAll(params);
  };
  // Which peer a target's seed comes from: what can succeed there.
  auto peerFor = [](Target t) -> uint8_t {
    switch (t) {
      case VAULT:
      case SESSION:
        return 1;  // alice
      case ADMIN:
        return 0;  // root
      default:
        return 4;  // the unmapped uid, by ua's password
    }
  };
  size_t count = 0;
  for (uint8_t t = 0; t < TARGETS; ++t) {
    auto methods = schemaOf(Target(t)).getMethods();
    for (uint8_t m = 0; m < methods.size(); ++m) {
      if (excluded(Target(t), methods[m].getProto().getName())) continue;
      kj::Vector<kj::byte> seed;
      seed.add(peerFor(Target(t)));
      call(seed, Target(t), m);
      writeSeed(dir, kj::str("t", t, "-", methods[m].getProto().getName()), seed);
      ++count;
    }
  }
  // Sequences: save then get then remove as alice; every admin listing as root.
  auto method = [](Target t, kj::StringPtr name) -> uint8_t {
    auto methods = schemaOf(t).getMethods();
    for (uint8_t i = 0; i < methods.size(); ++i) {
      if (methods[i].getProto().getName() == name) return i;
    }
    KJ_FAIL_ASSERT("no such method", name);
  };
  kj::Vector<kj::byte> seq;
  seq.add(1);
  for (auto name : {"save", "get", "update", "list", "remove", "get"}) {
    call(seq, SESSION, method(SESSION, name));
  }
  writeSeed(dir, "seq-alice-save-get-remove", seq);
  kj::Vector<kj::byte> adminSeq;
  adminSeq.add(0);
  for (auto name : {"addAssociate", "listAssociates", "setAssociate", "findAssociate",
                    "setPassword", "removeAssociate", "rotateDataKey"}) {
    call(adminSeq, ADMIN, method(ADMIN, name));
  }
  writeSeed(dir, "seq-root-admin", adminSeq);
  count += 2;

  // Raw: what a client library writes for a whoami, a session and a save.
  {
    auto& ws = s.io.waitScope;
    auto pipe = s.io.provider->newTwoWayPipe();
    auto recorded = kj::heap<kj::Vector<kj::byte>>();
    {
      capnp::TwoPartyClient client(*pipe.ends[0]);
      auto vault = client.bootstrap().castAs<rpc::Vault>();
      auto who = vault.whoamiRequest().send();
      auto save = vault.sessionRequest().send().getSession().saveRequest();
      save.setType("imap");
      auto c = save.initCredential();
      c.setPublicValue("raw@example.com");
      c.setSecretValue("fz-raw-Secret-0b7a");
      auto saved = save.send();
      // Read what the client sent without answering it.
      kj::byte buffer[8192];
      for (int i = 0; i < 10; ++i) {
        auto n = pipe.ends[1]
                     ->tryRead(buffer, 1, sizeof(buffer))
                     .exclusiveJoin(s.io.provider->getTimer()
                                        .afterDelay(20 * kj::MILLISECONDS)
                                        .then([]() -> size_t { return 0; }))
                     .wait(ws);
        if (n == 0) break;
        recorded->addAll(kj::arrayPtr(buffer, n));
      }
    }
    for (uint8_t peer = 0; peer < PEER_COUNT; ++peer) {
      kj::Vector<kj::byte> seed;
      seed.add(0x80 | peer);
      seed.addAll(*recorded);
      writeSeed(dir, kj::str("raw-", peer), seed);
      ++count;
    }
  }
  fprintf(stderr, "daemon-rpc: wrote %zu seeds into %s\n", count, dir.cStr());
}

}  // namespace
}  // namespace credvault::daemon

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = getenv("CREDVAULT_FUZZ_WRITE_SEEDS")) {
    credvault::fuzz::runOne([&]() { credvault::daemon::writeSeeds(dir); });
    exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  credvault::fuzz::runOne([&]() { credvault::daemon::fuzzOne(data, size); });
  return 0;
}
