#include "rpc-server.h"
#include "rpc-convert.h"
#include "backup.h"
#include "log.h"
#include "core/limits.h"
#include "crypto/masterkey.h"
#include "credvault-config.h"

#include <kj/debug.h>

namespace credvault::daemon {

void setError(rpc::Error::Builder out, const core::VaultError& e) {
  out.setCode(toWire(e.code()));
  out.setField(e.field());
  out.setMessage(e.message());
}

namespace {

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

void logOutcome(Level level, kj::StringPtr op, const core::Principal& who, kj::StringPtr result,
                kj::StringPtr field = nullptr) {
  if (!logEnabled(level)) return;
  if (field == nullptr || field.size() == 0) {
    logf(level, kj::str(op, " ", result), LogField{"OP", kj::str(op)},
         LogField{"UID", kj::str(who.uid)}, LogField{"ASSOCIATE", kj::str(who.associateId)},
         LogField{"AUTH", kj::str(methodName(who.method))}, LogField{"RESULT", kj::str(result)});
  } else {
    logf(level, kj::str(op, " ", result), LogField{"OP", kj::str(op)},
         LogField{"UID", kj::str(who.uid)}, LogField{"ASSOCIATE", kj::str(who.associateId)},
         LogField{"AUTH", kj::str(methodName(who.method))}, LogField{"RESULT", kj::str(result)},
         LogField{"FIELD", kj::str(field)});
  }
}

// Logs an unexpected failure (its text is ours and holds no secrets) and answers the
// client only `internal`.
void setInternal(rpc::Error::Builder out, kj::StringPtr op, const kj::Exception& e) {
  logf(Level::ERROR, kj::str(op, " failed: ", e.getDescription()), LogField{"OP", kj::str(op)},
       LogField{"RESULT", kj::str("internal")});
  out.setCode(rpc::ErrorCode::INTERNAL);
  out.setMessage("internal error; see the daemon's log");
}

// Runs a method body. A VaultError becomes the typed error in the results; anything else
// is logged and reported as `internal` without its text.
template<typename Context, typename Func>
kj::Promise<void> guarded(Context& context, kj::StringPtr op, const core::Principal* who,
                          Func&& body) {
  kj::Maybe<kj::Promise<void>> result;
  kj::Maybe<core::VaultError> refused;
  KJ_IF_MAYBE(exception, kj::runCatchingExceptions([&]() {
                try {
                  result = kj::Promise<void>(body());
                } catch (const core::VaultError& e) { refused = e; }
              })) {
    setInternal(context.getResults().initError(), op, *exception);
    return kj::READY_NOW;
  }
  KJ_IF_MAYBE(e, refused) {
    if (who != nullptr) {
      logOutcome(Level::INFO, op, *who, core::errorCodeName(e->code()), e->field());
    }
    setError(context.getResults().initError(), *e);
    return kj::READY_NOW;
  }
  return KJ_ASSERT_NONNULL(kj::mv(result));
}

// Completes a queued write: the typed outcome goes into the results.
template<typename T, typename Context, typename Fill>
kj::Promise<void> finishWrite(kj::Promise<Outcome<T>> promise, Context context, kj::StringPtr op,
                              core::Principal who, Fill&& fill) {
  return promise.then(
      [context, op, who = kj::mv(who), fill = kj::fwd<Fill>(fill)](Outcome<T> outcome) mutable {
        KJ_IF_MAYBE(e, outcome.error) {
          logOutcome(Level::INFO, op, who, core::errorCodeName(e->code()), e->field());
          setError(context.getResults().initError(), *e);
          return;
        }
        KJ_IF_MAYBE(f, outcome.failure) {
          setInternal(context.getResults().initError(), op, *f);
          return;
        }
        logOutcome(Level::INFO, op, who, "ok");
        fill(context.getResults(), KJ_ASSERT_NONNULL(kj::mv(outcome.value)));
      });
}

// Oversized requests are refused per call, so the connection stays usable. (The transport
// closes a connection only past TRANSPORT_LIMIT, see listener.h.)
template<typename Params>
void checkSize(Params params) {
  // Measuring walks the whole request, so it meets a nesting or traversal limit first.
  uint64_t words = 0;
  if (kj::runCatchingExceptions([&]() { words = params.totalSize().wordCount; }) != nullptr) {
    core::fail(core::ErrorCode::LIMIT_EXCEEDED, "message",
               kj::str("the request is nested deeper than ", core::MAX_MESSAGE_NESTING,
                       " levels or too large to read"));
  }
  if (words * 8 > core::MAX_MESSAGE_BYTES) {
    core::fail(core::ErrorCode::LIMIT_EXCEEDED, "message",
               kj::str("the request is larger than ", core::MAX_MESSAGE_BYTES, " bytes"));
  }
}

class AdminImpl final : public rpc::Admin::Server {
 public:
  AdminImpl(Service& service, core::Principal who) : service_(service), who_(kj::mv(who)) {}

  kj::Promise<void> addAssociate(AddAssociateContext context) override {
    return guarded(context, "associate-add", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      core::NewAssociate na;
      na.name = kj::heapString(p.getName());
      na.kind = fromWire(p.getKind());
      na.userAdmin = p.getUserAdmin();
      int64_t uid = p.getUnixUid();
      if (uid >= 0) {
        if (uid > UINT32_MAX - 1) core::invalid("unixUid", "unixUid is out of range");
        na.unixUid = static_cast<uint32_t>(uid);
      } else if (uid != -1) {
        core::invalid("unixUid", "unixUid must be -1 (none) or a uid");
      }
      if (p.hasPassword()) na.password = crypto::Secret::copyOf(p.getPassword().asBytes());
      auto op = service_.vault().addAssociate(who_, kj::mv(na));
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "associate-add",
                         core::clonePrincipal(who_), [](auto results, core::Associate a) {
                           toWire(a, results.initAssociate());
                         });
    });
  }

  kj::Promise<void> listAssociates(ListAssociatesContext context) override {
    return guarded(context, "associate-list", &who_, [&]() {
      auto list = service_.vault().listAssociates(who_);
      auto out = context.getResults().initAssociates(list.size());
      for (auto i : kj::indices(list)) toWire(list[i], out[i]);
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> findAssociate(FindAssociateContext context) override {
    return guarded(context, "associate-find", &who_, [&]() -> kj::Promise<void> {
      if (!(who_.isSystem() || who_.userAdmin)) {
        core::fail(core::ErrorCode::PERMISSION_DENIED, "", kj::str("not allowed"));
      }
      KJ_IF_MAYBE(a, service_.vault().findAssociateByName(context.getParams().getName())) {
        toWire(*a, context.getResults().initAssociate());
        return kj::READY_NOW;
      }
      core::fail(core::ErrorCode::NOT_FOUND, "name", kj::str("no associate has this name"));
    });
  }

  kj::Promise<void> setAssociate(SetAssociateContext context) override {
    return guarded(context, "associate-set", &who_, [&]() {
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
          core::invalid("unixUid", "unixUid must be -1 (none) or a uid");
        }
      }
      auto op = service_.vault().setAssociate(who_, p.getAssociateId(), kj::mv(update));
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "associate-set",
                         core::clonePrincipal(who_), [](auto results, core::Associate a) {
                           toWire(a, results.initAssociate());
                         });
    });
  }

  kj::Promise<void> removeAssociate(RemoveAssociateContext context) override {
    return guarded(context, "associate-remove", &who_, [&]() {
      auto op = service_.vault().removeAssociate(who_, context.getParams().getAssociateId());
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "associate-remove",
                         core::clonePrincipal(who_),
                         [](auto results, uint32_t n) { results.setRemovedCredentials(n); });
    });
  }

  kj::Promise<void> setPassword(SetPasswordContext context) override {
    return guarded(context, "associate-passwd", &who_, [&]() {
      auto p = context.getParams();
      auto pw = crypto::Secret::copyOf(p.getPassword().asBytes());
      auto op = service_.vault().setPassword(who_, p.getAssociateId(), kj::mv(pw));
      auto& auth = service_.auth();
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "associate-passwd",
                         core::clonePrincipal(who_), [&auth](auto, bool) { auth.flushCache(); });
    });
  }

  kj::Promise<void> backup(BackupContext context) override {
    return guarded(context, "backup-path", &who_, [&]() -> kj::Promise<void> {
      // Withdrawn: the daemon never creates a file where a client names (a file-creation
      // primitive and an existence oracle when it runs as root). The path is not looked at.
      core::fail(core::ErrorCode::PERMISSION_DENIED, "",
                 kj::str("Admin.backup is withdrawn: the daemon no longer writes backup files; "
                         "use Admin.backupTo (credvaultctl backup FILE writes FILE as you)"));
    });
  }

  kj::Promise<void> backupTo(BackupToContext context) override {
    return guarded(context, "backup", &who_, [&]() {
      core::requireSystem(who_, "taking a backup");
      auto& vault = service_.vault();
      BackupSource source;
      source.spoolDirectory = vault.environment().directory();
      source.sizeBound = vault.environment().stats().usedBytes;
      source.write = [&vault, who = core::clonePrincipal(who_)](int fd) { vault.backup(who, fd); };
      return finishWrite(
          streamBackup(service_.passwords(), kj::mv(source), context.getParams().getSink()),
          context, "backup", core::clonePrincipal(who_),
          [](auto results, uint64_t bytes) { results.setBytes(bytes); });
    });
  }

  kj::Promise<void> addApplication(AddApplicationContext context) override {
    return guarded(context, "application-add", &who_, [&]() {
      auto op = service_.auth().addApplication(who_, context.getParams().getName());
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "application-add",
                         core::clonePrincipal(who_), [](auto results, core::IssuedApiToken t) {
                           results.setToken(t.token);
                           auto app = results.initApplication();
                           app.setName(t.info.name);
                           app.setCreated(t.info.createdUnix);
                         });
    });
  }

  kj::Promise<void> listApplications(ListApplicationsContext context) override {
    return guarded(context, "application-list", &who_, [&]() {
      auto list = service_.auth().listApplications(who_);
      auto out = context.getResults().initApplications(list.size());
      for (auto i : kj::indices(list)) {
        out[i].setName(list[i].name);
        out[i].setCreated(list[i].createdUnix);
      }
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> removeApplication(RemoveApplicationContext context) override {
    return guarded(context, "application-remove", &who_, [&]() {
      auto op = service_.auth().removeApplication(who_, context.getParams().getName());
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "application-remove",
                         core::clonePrincipal(who_),
                         [](auto results, bool removed) { results.setRemoved(removed); });
    });
  }

  kj::Promise<void> changeMasterKey(ChangeMasterKeyContext context) override {
    return guarded(context, "change-master-key", &who_, [&]() {
      auto path = context.getParams().getKeyFile();
      if (path.size() == 0 || path[0] != '/') {
        core::invalid("keyFile", "the key file path must be absolute");
      }
      // Checked before the key file is read, not only inside the vault.
      core::requireSystem(who_, "changing the master key");
      crypto::MasterKeyOptions options;
      options.keyFile = path;
      auto loaded = crypto::loadMasterKey(options);
      auto fingerprint = crypto::Keyring::fingerprint(loaded.key);
      service_.vault().changeMasterKey(who_, kj::mv(loaded.key));
      context.getResults().setFingerprint(fingerprint);
      logOutcome(Level::NOTICE, "change-master-key", who_, "ok");
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> rotateDataKey(RotateDataKeyContext context) override {
    return guarded(context, "rotate-key", &who_, [&]() {
      context.getResults().setKeyId(service_.vault().rotateDataKey(who_));
      logOutcome(Level::NOTICE, "rotate-key", who_, "ok");
      return kj::READY_NOW;
    });
  }

 private:
  Service& service_;
  core::Principal who_;
};

class SessionImpl final : public rpc::Session::Server {
 public:
  SessionImpl(Service& service, core::Principal who, Peer peer, uint32_t epoch,
              kj::Maybe<kj::String> ticket = nullptr)
      : service_(service), who_(kj::mv(who)), peer_(peer), epoch_(epoch), ticket_(kj::mv(ticket)) {}

  kj::Promise<void> whoami(WhoamiContext context) override {
    return guarded(context, "whoami", nullptr, [&]() {
      toWire(current(), context.getResults().initPrincipal());
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> createDefault(CreateDefaultContext context) override {
    return guarded(context, "create-default", nullptr, [&]() {
      toWire(service_.vault().createDefault(current()), context.getResults().initCredential());
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> get(GetContext context) override {
    return guarded(context, "get", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      fillList(context, service_.vault().get(current(), nullptr, p.getType()));
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> getForAssociate(GetForAssociateContext context) override {
    return guarded(context, "get", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      fillList(context, service_.vault().get(current(), p.getAssociateId(), p.getType()));
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> save(SaveContext context) override {
    return guarded(context, "save", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      return doSave(context, nullptr, p.getType(), p.getCredential());
    });
  }

  kj::Promise<void> saveForAssociate(SaveForAssociateContext context) override {
    return guarded(context, "save", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      return doSave(context, p.getAssociateId(), p.getType(), p.getCredential());
    });
  }

  kj::Promise<void> remove(RemoveContext context) override {
    return guarded(context, "remove", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      return doRemove(context, nullptr, p.getType(), p.getPublicValue());
    });
  }

  kj::Promise<void> removeForAssociate(RemoveForAssociateContext context) override {
    return guarded(context, "remove", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      return doRemove(context, p.getAssociateId(), p.getType(), p.getPublicValue());
    });
  }

  kj::Promise<void> admin(AdminContext context) override {
    return guarded(context, "admin", &who_, [&]() {
      auto who = current();
      if (who.partnerApp || !(who.isSystem() || who.userAdmin)) {
        core::fail(core::ErrorCode::PERMISSION_DENIED, "",
                   kj::str("administration needs a system user or a user administrator"));
      }
      context.getResults().setAdmin(kj::heap<AdminImpl>(service_, kj::mv(who)));
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> logout(LogoutContext context) override {
    return guarded(context, "logout", &who_, [&]() -> kj::Promise<void> {
      KJ_IF_MAYBE(t, ticket_) {
        auto op = service_.auth().revokeTicket(*t);
        ticket_ = nullptr;
        return finishWrite(service_.committer().submit(kj::mv(op)), context, "logout",
                           core::clonePrincipal(who_), [](auto, bool) {});
      }
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> createToken(CreateTokenContext context) override {
    return guarded(context, "token-create", &who_, [&]() {
      auto p = context.getParams();
      checkSize(p);
      auto op =
          service_.auth().createToken(current(), p.getAssociateId(), p.getName(), p.getExpires());
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "token-create",
                         core::clonePrincipal(who_), [](auto results, core::IssuedApiToken t) {
                           results.setToken(t.token);
                           fillToken(results.initInfo(), t.info);
                         });
    });
  }

  kj::Promise<void> listTokens(ListTokensContext context) override {
    return guarded(context, "token-list", &who_, [&]() {
      auto list = service_.auth().listTokens(current(), context.getParams().getAssociateId());
      auto out = context.getResults().initTokens(list.size());
      for (auto i : kj::indices(list)) fillToken(out[i], list[i]);
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> revokeToken(RevokeTokenContext context) override {
    return guarded(context, "token-revoke", &who_, [&]() {
      auto p = context.getParams();
      auto op = service_.auth().revokeToken(current(), p.getAssociateId(), p.getName());
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "token-revoke",
                         core::clonePrincipal(who_),
                         [](auto results, bool revoked) { results.setRevoked(revoked); });
    });
  }

 private:
  Service& service_;
  core::Principal who_;
  Peer peer_;
  uint32_t epoch_;
  kj::Maybe<kj::String> ticket_;
  bool fresh_ = true;

  static void fillToken(rpc::ApiToken::Builder out, const core::ApiTokenInfo& info) {
    out.setName(info.name);
    out.setAssociateId(info.associateId);
    out.setCreated(info.createdUnix);
    out.setExpires(info.expiresUnix);
  }

  // The session's principal as the store has it now: an associate removed, deactivated,
  // remapped to another uid, or whose tickets were revoked, ends the session.
  core::Principal current() {
    auto p = core::clonePrincipal(who_);
    // The first call is answered on the state checked when the session was opened (the
    // gateway opens a session per HTTP request and pipelines one call on it: checking
    // twice would double its store reads). Every later call re-checks.
    if (fresh_) {
      fresh_ = false;
      return p;
    }
    if (who_.associateId == 0) return p;
    auto gone = [](kj::StringPtr why) {
      core::fail(core::ErrorCode::NOT_AUTHENTICATED, "", kj::str(why));
    };
    KJ_IF_MAYBE(a, service_.vault().findAssociate(who_.associateId)) {
      if (!a->active) gone("the associate is inactive");
      bool systemUid = service_.isSystemUid(peer_.uid);
      if (who_.method == core::AuthMethod::PEER_CREDENTIALS && !systemUid) {
        KJ_IF_MAYBE(uid, a->unixUid) {
          if (*uid != peer_.uid) gone("the uid is no longer mapped to this associate");
        } else {
          gone("the uid is no longer mapped to this associate");
        }
      }
      if (who_.method != core::AuthMethod::PEER_CREDENTIALS && a->credentialEpoch != epoch_) {
        gone("the session's credentials were revoked");
      }
      KJ_IF_MAYBE(t, ticket_) {
        // The associate and its epoch were checked just above: the record is enough.
        if (service_.auth().findTicket(*t) == nullptr) gone("the ticket was revoked or expired");
      }
      p.kind = (a->kind == core::Kind::SYSTEM ||
                (systemUid && who_.method == core::AuthMethod::PEER_CREDENTIALS))
                   ? core::Kind::SYSTEM
                   : core::Kind::USER;
      p.userAdmin = a->userAdmin;
      p.name = kj::heapString(a->name);
      return p;
    }
    gone("the associate no longer exists");
    KJ_UNREACHABLE;  // gone() throws
  }

  template<typename Context>
  static void fillList(Context& context, kj::Array<core::Credential> list) {
    auto out = context.getResults().initCredentials(list.size());
    for (auto i : kj::indices(list)) toWire(list[i], out[i]);
  }

  template<typename Context>
  kj::Promise<void> doSave(Context& context, kj::Maybe<int32_t> target, capnp::Text::Reader type,
                           rpc::Credential::Reader credential) {
    auto who = current();
    auto op = service_.vault().save(who, target, type, fromWire(credential));
    return finishWrite(service_.committer().submit(kj::mv(op)), context, "save", kj::mv(who),
                       [](auto, bool) {});
  }

  template<typename Context>
  kj::Promise<void> doRemove(Context& context, kj::Maybe<int32_t> target, capnp::Text::Reader type,
                             capnp::Text::Reader publicValue) {
    auto who = current();
    auto op = service_.vault().remove(who, target, type, publicValue);
    return finishWrite(service_.committer().submit(kj::mv(op)), context, "remove", kj::mv(who),
                       [](auto results, bool removed) { results.setRemoved(removed); });
  }
};

class VaultImpl final : public rpc::Vault::Server {
 public:
  VaultImpl(Service& service, Peer peer) : service_(service), peer_(peer) {}

  kj::Promise<void> whoami(WhoamiContext context) override {
    return guarded(context, "whoami", nullptr, [&]() {
      auto out = context.getResults().initPrincipal();
      KJ_IF_MAYBE(p, peerPrincipal()) {
        toWire(*p, out);
      } else {
        core::Principal nobody;
        nobody.uid = peer_.uid;
        nobody.pid = peer_.pid;
        toWire(nobody, out);
      }
      return kj::READY_NOW;
    });
  }

  kj::Promise<void> session(SessionContext context) override {
    return guarded(context, "session", nullptr, [&]() {
      KJ_IF_MAYBE(p, peerPrincipal()) {
        context.getResults().setSession(kj::heap<SessionImpl>(service_, kj::mv(*p), peer_, 0));
        return kj::READY_NOW;
      }
      core::fail(core::ErrorCode::NOT_AUTHENTICATED, "",
                 kj::str("uid ", peer_.uid,
                         " is not mapped to an associate; authenticate "
                         "with a ticket or password"));
    });
  }

  kj::Promise<void> authenticatePassword(AuthenticatePasswordContext context) override {
    return guarded(context, "authenticate-password", nullptr, [&]() -> kj::Promise<void> {
      auto p = context.getParams();
      checkSize(p);
      bool partner = service_.auth().checkApplication(appToken(p));
      bool issueTicket = p.getIssueTicket();
      struct Checked {
        core::Associate associate;
        kj::Maybe<kj::String> rehash;
      };
      auto& auth = service_.auth();
      auto password = crypto::Secret::copyOf(p.getPassword().asBytes());
      auto client = kj::str(peer_.uid, "/", p.getClientAddress());
      kj::Promise<Outcome<Checked>> checked = nullptr;
      KJ_IF_MAYBE(a, auth.checkCachedPassword(p.getName(), password, client)) {
        // A verification-cache hit (HTTP Basic at request rate) needs no Argon2id.
        Outcome<Checked> hit;
        hit.value = Checked{kj::mv(*a), nullptr};
        checked = kj::mv(hit);
      } else {
        // Argon2id runs on the blocking pool, never on the event loop.
        auto job = [&auth, name = kj::heapString(p.getName()), password = kj::mv(password),
                    client = kj::mv(client)]() mutable {
          Checked c;
          c.associate = auth.checkPassword(name, password, client, c.rehash);
          return c;
        };
        checked = service_.passwords().run<Checked>(kj::mv(job));
      }
      return checked.then([this, context, partner,
                           issueTicket](Outcome<Checked> outcome) mutable -> kj::Promise<void> {
        KJ_IF_MAYBE(e, outcome.error) {
          logf(Level::NOTICE, "authentication failed",
               LogField{"OP", kj::str("authenticate-password")},
               LogField{"UID", kj::str(peer_.uid)},
               LogField{"RESULT", kj::str(core::errorCodeName(e->code()))});
          setError(context.getResults().initError(), *e);
          return kj::READY_NOW;
        }
        KJ_IF_MAYBE(f, outcome.failure) {
          setInternal(context.getResults().initError(), "authenticate-password", *f);
          return kj::READY_NOW;
        }
        auto checked = KJ_ASSERT_NONNULL(kj::mv(outcome.value));
        auto& a = checked.associate;
        KJ_IF_MAYBE(h, checked.rehash) {
          // Best effort: a failure leaves the old hash, which still verifies.
          service_.committer()
              .submit(service_.auth().storeRehash(a.id, kj::mv(*h), a.credentialEpoch))
              .detach([](kj::Exception&&) {});
        }
        auto who = principalFor(a, core::AuthMethod::PASSWORD);
        who.partnerApp = partner;
        logOutcome(Level::INFO, "authenticate-password", who, "ok");
        toWire(who, context.getResults().initPrincipal());
        if (!issueTicket) {
          context.getResults().setSession(
              kj::heap<SessionImpl>(service_, kj::mv(who), peer_, a.credentialEpoch));
          return kj::READY_NOW;
        }
        auto op = service_.auth().issueTicket(a);
        uint32_t epoch = a.credentialEpoch;
        return finishWrite(
            service_.committer().submit(kj::mv(op)), context, "ticket-issue",
            core::clonePrincipal(who),
            [this, who = kj::mv(who), epoch](auto results, core::IssuedTicket t) mutable {
              results.setTicket(t.ticket);
              results.setTicketExpires(t.expiresUnix * core::TICKS_PER_SECOND +
                                       core::UNIX_EPOCH_TICKS);
              results.setSession(
                  kj::heap<SessionImpl>(service_, kj::mv(who), peer_, epoch, kj::mv(t.ticket)));
            });
      });
    });
  }

  kj::Promise<void> authenticateTicket(AuthenticateTicketContext context) override {
    return guarded(context, "authenticate-ticket", nullptr, [&]() -> kj::Promise<void> {
      auto p = context.getParams();
      checkSize(p);
      bool partner = service_.auth().checkApplication(appToken(p));
      KJ_IF_MAYBE(a, service_.auth().validateTicket(p.getTicket())) {
        auto who = principalFor(*a, core::AuthMethod::TICKET);
        who.partnerApp = partner;
        toWire(who, context.getResults().initPrincipal());
        context.getResults().setSession(kj::heap<SessionImpl>(
            service_, kj::mv(who), peer_, a->credentialEpoch, kj::heapString(p.getTicket())));
        return kj::READY_NOW;
      }
      logf(Level::DEBUG, "ticket refused", LogField{"OP", kj::str("authenticate-ticket")},
           LogField{"UID", kj::str(peer_.uid)});
      core::fail(core::ErrorCode::NOT_AUTHENTICATED, "ticket",
                 kj::str("unknown, expired or revoked ticket"));
    });
  }

  kj::Promise<void> authenticateToken(AuthenticateTokenContext context) override {
    return guarded(context, "authenticate-token", nullptr, [&]() -> kj::Promise<void> {
      auto p = context.getParams();
      checkSize(p);
      bool partner = service_.auth().checkApplication(appToken(p));
      KJ_IF_MAYBE(t, service_.auth().validateToken(p.getToken())) {
        KJ_IF_MAYBE(a, service_.vault().findAssociate(t->associateId)) {
          if (a->active) {
            auto who = principalFor(*a, core::AuthMethod::API_TOKEN);
            who.partnerApp = partner;
            toWire(who, context.getResults().initPrincipal());
            context.getResults().setSession(
                kj::heap<SessionImpl>(service_, kj::mv(who), peer_, a->credentialEpoch));
            return kj::READY_NOW;
          }
        }
      }
      core::fail(core::ErrorCode::NOT_AUTHENTICATED, "token",
                 kj::str("unknown, expired or revoked token"));
    });
  }

  kj::Promise<void> revokeTicket(RevokeTicketContext context) override {
    return guarded(context, "ticket-revoke", nullptr, [&]() {
      auto op = service_.auth().revokeTicket(context.getParams().getTicket());
      core::Principal anyone;
      anyone.uid = peer_.uid;
      anyone.pid = peer_.pid;
      return finishWrite(service_.committer().submit(kj::mv(op)), context, "ticket-revoke",
                         kj::mv(anyone),
                         [](auto results, bool revoked) { results.setRevoked(revoked); });
    });
  }

  kj::Promise<void> status(StatusContext context) override {
    return guarded(context, "status", nullptr, [&]() {
      if (peerPrincipal() == nullptr) {
        core::fail(core::ErrorCode::NOT_AUTHENTICATED, "",
                   kj::str("uid ", peer_.uid, " is not mapped to an associate"));
      }
      auto counts = service_.vault().counts();
      auto env = service_.vault().environment().stats();
      auto s = context.getResults().initStatus();
      s.setVersion(CREDVAULT_VERSION);
      s.setCredentials(counts.credentials);
      s.setAssociates(counts.associates);
      s.setDataKeyId(counts.dataKeyId);
      s.setMapSize(env.mapSize);
      s.setUsedBytes(env.usedBytes);
      s.setUptimeSeconds((service_.clock().now() - service_.started) / kj::SECONDS);
      s.setConnections(service_.connections);
      return kj::READY_NOW;
    });
  }

 private:
  Service& service_;
  Peer peer_;

  template<typename Params>
  static kj::Maybe<kj::StringPtr> appToken(Params p) {
    if (p.hasAppToken() && p.getAppToken().size() > 0) return kj::StringPtr(p.getAppToken());
    return nullptr;
  }

  core::Principal principalFor(const core::Associate& a, core::AuthMethod method) {
    core::Principal p;
    p.associateId = a.id;
    p.name = kj::heapString(a.name);
    p.kind = a.kind;
    p.userAdmin = a.userAdmin;
    p.method = method;
    p.uid = peer_.uid;
    p.pid = peer_.pid;
    return p;
  }

  // uid 0 and configured uids are system users (with their associate, if one maps to the
  // uid); any other uid is the active associate with that unixUid, or no one.
  kj::Maybe<core::Principal> peerPrincipal() {
    auto mapped = service_.vault().findAssociateByUid(peer_.uid);
    if (service_.isSystemUid(peer_.uid)) {
      core::Principal p;
      KJ_IF_MAYBE(a, mapped) {
        if (a->active) p = principalFor(*a, core::AuthMethod::PEER_CREDENTIALS);
      }
      if (p.name.size() == 0) p.name = kj::str("uid ", peer_.uid);
      p.kind = core::Kind::SYSTEM;
      p.method = core::AuthMethod::PEER_CREDENTIALS;
      p.uid = peer_.uid;
      p.pid = peer_.pid;
      return kj::mv(p);
    }
    KJ_IF_MAYBE(a, mapped) {
      if (a->active) return principalFor(*a, core::AuthMethod::PEER_CREDENTIALS);
    }
    return nullptr;
  }
};

}  // namespace

Service::Service(core::Vault& vault, core::Authenticator& auth, GroupCommitter& committer,
                 BlockingPool& passwords, const kj::Clock& clock, ServiceConfig config)
    : started(clock.now()),
      vault_(vault),
      auth_(auth),
      committer_(committer),
      passwords_(passwords),
      clock_(clock),
      config_(kj::mv(config)) {}

bool Service::isSystemUid(uint32_t uid) const {
  if (uid == 0) return true;
  for (auto u : config_.systemUids) {
    if (u == uid) return true;
  }
  return false;
}

rpc::Vault::Client Service::newBootstrap(Peer peer) {
  return kj::heap<VaultImpl>(*this, peer);
}

}  // namespace credvault::daemon
