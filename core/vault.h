// credvault — the vault: associates, sealed credentials, and who may do what.
//
// No sockets, no RPC, no logging. Reads open their own read transaction and may run on any
// thread. Writes are split in two: the public method validates and authorises what it can
// without the database, then returns a WriteOp that the caller runs inside a write
// transaction (the daemon batches many into one durable commit; tests and tools use
// runNow()). A WriteOp may run more than once (LMDB map growth reruns the transaction), so
// it must only read its captures.
//
// Security invariants: only ciphertext and keyed hashes reach the store; a SecretValue is
// returned only to its owner or a system principal; refusal messages never contain a
// secret, public value or comment.

#pragma once

#include "model.h"
#include "error.h"
#include "policy.h"
#include "crypto/keyring.h"
#include "crypto/password.h"
#include "store/env.h"
#include <kj/function.h>
#include <kj/mutex.h>
#include <kj/time.h>
#include <kj/vector.h>

namespace credvault::core {

template<typename T>
using WriteOp = kj::Function<T(store::WriteTxn&)>;

// A write whose arguments and permission were checked before it is queued: the refusal, or
// the op to run, which may itself be refused inside its transaction (a returned refusal
// aborts the op's nested transaction: nothing of the refused write is stored).
template<typename T>
using CheckedWrite = Result<WriteOp<Result<T>>>;

struct VaultOptions {
  crypto::PasswordParams passwordParams = crypto::defaultPasswordParams();
};

// What Vault::verify() found in a vault that passed.
struct VerifyReport {
  uint64_t tables = 0;
  uint64_t entries = 0;  // in every table, the free-page list included
  uint64_t associates = 0;
  uint64_t credentials = 0;
};

struct NewAssociate {
  kj::String name;
  Kind kind = Kind::USER;
  bool userAdmin = false;
  kj::Maybe<uint32_t> unixUid;
  kj::Maybe<crypto::Secret> password;
};

struct AssociateUpdate {
  kj::Maybe<kj::String> name;
  kj::Maybe<Kind> kind;
  kj::Maybe<bool> userAdmin;
  kj::Maybe<kj::Maybe<uint32_t>> unixUid;  // set to null to remove the mapping
  kj::Maybe<bool> active;
};

// A field mask for Vault::update: a null field keeps the stored value.
struct CredentialUpdate {
  kj::Maybe<Ticks> validFrom;
  kj::Maybe<Ticks> validTo;
  kj::Maybe<kj::String> comment;
  kj::Maybe<crypto::Secret> secretValue;
  kj::Maybe<bool> isActive;
};

// One entry of a listing: where it is filed, and its carrier without the secret.
struct ListedCredential {
  int32_t associateId = 0;
  kj::String type;
  Credential credential;  // secretValue always null
};

struct VaultCounts {
  uint64_t credentials;
  uint64_t associates;
  uint32_t dataKeyId;
};

class Vault {
 public:
  // Opens the vault kept in `env`: creates its tables, checks the schema version, and
  // unwraps its keys with `masterKey` (creating them on a new vault). Throws a KJ exception
  // with an operator-facing message when the master key does not open the stored keys.
  Vault(store::Store& env, crypto::Secret masterKey, const kj::Clock& clock,
        VaultOptions options = {});
  KJ_DISALLOW_COPY(Vault);

  // 1: the first release. 2: credential counts and the next associate id carry a MAC. 3:
  // credential records are stored.Credential capnp structs (core/credential-record.h). An
  // older vault is migrated, in one transaction, when it is first opened for writing; a
  // read-only view (verify) reads every older layout as it is.
  static constexpr uint32_t SCHEMA_VERSION = 3;

  // Walks every table and page of the database, opens every sealed record, and checks the
  // counts, the name and uid indexes and the next id against the records. Throws an integrity
  // failure (core/error.h, naming the table) at the first problem. Works on a read-only
  // environment. `progress` is called with each table's name before it is read (see
  // daemon/verify.h).
  VerifyReport verify(kj::FunctionParam<void(kj::StringPtr table)> progress) const;

  // ---- UntrustedCredentials --------------------------------------------------------------
  // `associateId` 0 means the principal's own associate (SuperOffice's AssociateId 0), as in
  // every call below that takes one.
  Result<Credential> createDefault(const Principal& who) const;
  Result<kj::Array<Credential>> get(const Principal& who, int32_t associateId,
                                    kj::StringPtr type) const;
  // The same, giving up (null) as soon as the list would hold more than `limit` entries: an
  // event loop answers short lists itself and moves long ones (up to 10,000 decryptions) to
  // a worker, so one user's long list cannot stall everyone else's calls.
  Result<kj::Maybe<kj::Array<Credential>>> tryGet(const Principal& who, int32_t associateId,
                                                  kj::StringPtr type, size_t limit) const;
  // Returns true when the entry was created, false when replaced.
  CheckedWrite<bool> save(const Principal& who, int32_t associateId, kj::StringPtr type,
                          Credential credential) const;
  // Changes the fields `update` names of the entry (type, publicValue) and keeps the rest,
  // inside the write transaction (no read-modify-write race). NOT_FOUND when there is none.
  CheckedWrite<bool> update(const Principal& who, int32_t associateId, kj::StringPtr type,
                            kj::StringPtr publicValue, CredentialUpdate update) const;
  // The entries of one associate (of every type when `type` is empty), never with secrets.
  // Allowed to whoever may Get that associate's list.
  Result<kj::Array<ListedCredential>> list(const Principal& who, int32_t associateId,
                                           kj::StringPtr type) const;
  // The same over every associate: system users and user administrators. LIMIT_EXCEEDED past
  // MAX_LISTED_CREDENTIALS entries or MAX_LISTED_BYTES of text.
  Result<kj::Array<ListedCredential>> listAll(const Principal& who, kj::StringPtr type) const;
  // Every entry of every associate (of `type` when not empty), one at a time and without
  // secrets, for the daemon's own scans (expiry warnings): no cap, nothing kept. Refused (and
  // nothing visited) like listAll.
  [[nodiscard]] kj::Maybe<Refusal> visitAll(const Principal& who, kj::StringPtr type,
                                            kj::FunctionParam<void(ListedCredential&&)> each) const;
  // Returns whether an entry was removed.
  CheckedWrite<bool> remove(const Principal& who, int32_t associateId, kj::StringPtr type,
                            kj::StringPtr publicValue) const;

  // ---- Associates --------------------------------------------------------------------------
  kj::Maybe<Associate> findAssociate(int32_t id) const;
  kj::Maybe<Associate> findAssociateByName(kj::StringPtr name) const;
  kj::Maybe<Associate> findAssociateByUid(uint32_t uid) const;
  Result<kj::Array<Associate>> listAssociates(const Principal& who) const;
  CheckedWrite<Associate> addAssociate(const Principal& who, NewAssociate associate) const;
  CheckedWrite<Associate> setAssociate(const Principal& who, int32_t id,
                                       AssociateUpdate update) const;
  // Removes the associate and all of its credentials (returns how many).
  CheckedWrite<uint32_t> removeAssociate(const Principal& who, int32_t id) const;
  CheckedWrite<bool> setPassword(const Principal& who, int32_t id, crypto::Secret password) const;

  // Replaces the stored hash with one made under the current parameters, unless the
  // password changed meanwhile (epoch moved). Does not end tickets.
  WriteOp<bool> replacePasswordHash(int32_t id, kj::String hash, uint32_t epoch) const;
  kj::Maybe<Associate> findAssociateIn(const store::ReadTxn& txn, int32_t id) const {
    return readAssociate(txn, id);
  }

  // Checks a password (Argon2id); null when the name is unknown, inactive or the password
  // is wrong (an unknown name costs a hash too).
  kj::Maybe<Associate> verifyPassword(kj::StringPtr name, const crypto::Secret& password) const;

  // ---- Keys and maintenance ---------------------------------------------------------------
  // Adds a data key; new records are sealed with it. Old records stay readable.
  // Runs synchronously (it must be durable before any record uses the new key).
  Result<uint32_t> rotateDataKey(const Principal& who);
  // Writes a consistent, compacted snapshot of the whole database (ciphertext and keyed
  // hashes, as on disk) to `fd`, which the caller opened and owns. The vault never opens a
  // path for a backup: where a copy goes is the caller's business (the daemon streams it to
  // the client, who writes it as itself).
  [[nodiscard]] kj::Maybe<Refusal> backup(const Principal& who, int fd);
  // Re-wraps every stored key under `newMasterKey` in one durable transaction, then uses it.
  // On failure nothing changes (the old master key still opens everything).
  [[nodiscard]] kj::Maybe<Refusal> changeMasterKey(const Principal& who,
                                                   crypto::Secret newMasterKey);
  VaultCounts counts() const;
  // A copy of the current master key, for a verification child that opens its own read-only
  // view of this vault (daemon/verify.h). System users only; the copy wipes on free.
  Result<crypto::Secret> masterKeyForVerify(const Principal& who) const;

  // Runs a write op in its own durable transaction (tools, tests, the in-process bench).
  template<typename T>
  T runNow(WriteOp<T>&& op) {
    return env_.write([&](store::WriteTxn& txn) { return op(txn); });
  }
  // The same for a write that may be refused: it runs in a nested transaction that a returned
  // refusal aborts, so nothing of the refused write is stored (as in the group commit).
  template<typename T>
  Result<T> runNow(WriteOp<Result<T>>&& op) {
    return env_.write([&](store::WriteTxn& txn) -> Result<T> {
      kj::Maybe<Result<T>> out;
      KJ_IF_MAYBE(e, txn.nestedKeepIf([&](store::WriteTxn& inner) {
                    auto r = op(inner);
                    bool keep = r.ok();
                    out = kj::mv(r);
                    return keep;
                  })) {
        kj::throwFatalException(kj::mv(*e));
      }
      return KJ_ASSERT_NONNULL(kj::mv(out));
    });
  }
  // And for a checked write: its refusal before the write, or what running it gave.
  template<typename T>
  Result<T> runNow(CheckedWrite<T>&& write) {
    if (!write.ok()) return write.takeRefusal();
    return runNow(kj::mv(write).value());
  }

  store::Store& environment() { return env_; }
  const crypto::PasswordParams& passwordParams() const { return options_.passwordParams; }
  // A keyed hash under the index key (for lookups of tickets and tokens by value).
  kj::Array<kj::byte> indexHash(kj::StringPtr label, kj::ArrayPtr<const kj::byte> value) const;
  // The name of a public value in the audit trail: lower-case hex of a keyed hash under the
  // index key (stable for the life of the vault, meaningless without its keys).
  kj::String auditHash(kj::StringPtr publicValue) const;
  kj::Array<kj::byte> sealValue(kj::StringPtr purpose, kj::ArrayPtr<const kj::byte> context,
                                const crypto::Secret& plaintext) const;
  crypto::Secret openValue(kj::StringPtr purpose, kj::ArrayPtr<const kj::byte> context,
                           kj::ArrayPtr<const kj::byte> stored) const;

 private:
  store::Store& env_;
  const kj::Clock& clock_;
  VaultOptions options_;
  kj::MutexGuarded<crypto::Keyring> keyring_;
  kj::String dummyHash_;  // verified against for unknown names (constant-time answers)
  store::Table keys_, associates_, names_, uids_, credentials_, counters_, meta_;

  bool legacyIndexValues_ = false;  // read-only view of a version-1 vault: values without MAC

  void loadOrCreateKeys();
  kj::Array<kj::byte> macValue(kj::StringPtr table, kj::ArrayPtr<const kj::byte> key,
                               uint32_t value) const;
  uint32_t openValue32(kj::StringPtr table, kj::ArrayPtr<const kj::byte> key,
                       kj::ArrayPtr<const kj::byte> stored) const;
  void rebuildIndexValues(store::WriteTxn& txn) const;
  Associate checkedIndexTarget(const store::ReadTxn& txn, kj::StringPtr table,
                               kj::ArrayPtr<const kj::byte> value) const;
  [[noreturn]] void indexMismatch(kj::StringPtr table) const;
  int64_t nowUnix() const;
  Result<int32_t> resolveTarget(const Principal& who, int32_t associateId) const;
  // The associate whose `type` credentials (null: every type) a call acts on, once its
  // arguments are well-formed and `who` may reach them to `verb` them; else the first refusal
  // in that order: the target, the type, `badArgument` (the call's own check), the reach.
  Result<int32_t> reachTarget(const Principal& who, int32_t associateId,
                              kj::Maybe<kj::StringPtr> type, kj::StringPtr verb,
                              kj::Maybe<Refusal> badArgument = nullptr) const;
  // visitAll, stopping when `each` returns false.
  kj::Maybe<Refusal> visitAllWhile(const Principal& who, kj::StringPtr type,
                                   kj::FunctionParam<bool(ListedCredential&&)> each) const;
  // Reseals every credential record of an older layout in the current one (schema 3).
  void upgradeCredentialRecords(store::WriteTxn& txn) const;
  kj::Maybe<Associate> readAssociate(const store::ReadTxn& txn, int32_t id) const;
  Result<Associate> requireAssociate(const store::ReadTxn& txn, int32_t id) const;
  void writeAssociate(store::WriteTxn& txn, const Associate& a) const;
  kj::Array<kj::byte> credentialKey(int32_t associateId, kj::StringPtr type,
                                    kj::StringPtr publicValue) const;
  kj::Array<kj::byte> typePrefix(int32_t associateId, kj::StringPtr type) const;
  // `keptSecret`, when given, is stored instead of c.secretValue.
  kj::Array<kj::byte> sealCredential(int32_t associateId, kj::StringPtr type, const Credential& c,
                                     kj::Maybe<const crypto::Secret&> keptSecret = nullptr) const;
  uint32_t counter(const store::ReadTxn& txn, int32_t associateId) const;
  void setCounter(store::WriteTxn& txn, int32_t associateId, uint32_t value) const;
};

}  // namespace credvault::core
