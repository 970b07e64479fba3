// The storage interface's contract (store/store.h), asserted the same way on both backends:
// the LMDB environment and PostgreSQL (a real server of the test binary's own,
// tests/support/postgres.h, a fresh database per test). Then what only a shared server has:
// two Store instances on one database, other hosts' commits moving the generation, a
// server that stops, crashes and comes back.

#include "store/env.h"
#include "store/postgres.h"
#include "tests/support/eventually.h"
#include "tests/support/failure.h"
#include "tests/support/postgres.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <kj/debug.h>
#include <kj/thread.h>
#include <kj/vector.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace credvault::store {
namespace {

using Bytes = kj::ArrayPtr<const kj::byte>;
using support::eventually;
using support::failureOf;
using support::has;
using support::PostgresServer;

Bytes b(const char* text) {
  return kj::StringPtr(text).asBytes();
}
std::string text(Bytes bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}
std::string get(Store& s, Table t, Bytes key) {
  auto txn = s.read();
  KJ_IF_MAYBE(v, txn.get(t, key)) { return text(*v); }
  return "<absent>";
}
void put(Store& s, Table t, Bytes key, Bytes value) {
  s.write([&](WriteTxn& txn) { txn.put(t, key, value); });
}
kj::Array<kj::byte> bytes(std::initializer_list<int> list) {
  auto out = kj::heapArray<kj::byte>(list.size());
  size_t i = 0;
  for (int v : list) out[i++] = kj::byte(v);
  return out;
}
kj::Array<kj::byte> be32(uint32_t v) {
  auto out = kj::heapArray<kj::byte>(4);
  putBe32(out.begin(), v);
  return out;
}
std::vector<std::string> keysUnder(Store& s, Table t, Bytes prefix) {
  std::vector<std::string> out;
  auto txn = s.read();
  txn.scan(t, prefix, [&](Bytes key, Bytes) {
    out.push_back(text(key));
    return true;
  });
  return out;
}
std::string hex(Bytes key) {
  std::string out;
  for (auto c : key) {
    char buf[3];
    snprintf(buf, sizeof(buf), "%02x", c);
    out += buf;
  }
  return out;
}

// Runs SQL on the test's database as the superuser (to provoke what a test needs).
std::string sql(kj::StringPtr conninfo, kj::StringPtr statement) {
  PGconn* conn = PQconnectdb(conninfo.cStr());
  KJ_DEFER(PQfinish(conn));
  KJ_REQUIRE(PQstatus(conn) == CONNECTION_OK, PQerrorMessage(conn));
  PGresult* r = PQexec(conn, statement.cStr());
  KJ_DEFER(PQclear(r));
  auto status = PQresultStatus(r);
  KJ_REQUIRE(status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK, PQerrorMessage(conn));
  if (status == PGRES_TUPLES_OK && PQntuples(r) > 0) return PQgetvalue(r, 0, 0);
  return "";
}

class StoreContract : public testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (isPostgres()) {
      if (!PostgresServer::available()) GTEST_SKIP() << "PostgreSQL 15 is not installed";
      conninfo = PostgresServer::instance().freshDatabase();
    }
  }
  bool isPostgres() const { return kj::StringPtr(GetParam()) == "postgresql"; }

  kj::Own<Store> open(bool readOnly = false) {
    if (isPostgres()) {
      PostgresOptions o;
      o.conninfo = kj::heapString(conninfo);
      o.readOnly = readOnly;
      return openPostgres(kj::mv(o));
    }
    Options o;
    o.readOnly = readOnly;
    return kj::heap<Environment>(dir.path(), o);
  }

  support::TempDir dir;
  kj::String conninfo;
};

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, testing::Values("lmdb", "postgresql"),
                         [](const auto& info) { return std::string(info.param); });

TEST_P(StoreContract, PutGetReplaceDeleteAndEmptyValues) {
  auto s = open();
  auto t = s->table("things");
  EXPECT_EQ(s->backendName(), GetParam());
  put(*s, t, b("alpha"), b("1"));
  put(*s, t, b("beta"), b("two"));
  put(*s, t, b("alpha"), b("one"));
  put(*s, t, b("empty"), nullptr);
  EXPECT_EQ(get(*s, t, b("alpha")), "one");
  EXPECT_EQ(get(*s, t, b("beta")), "two");
  EXPECT_EQ(get(*s, t, b("gamma")), "<absent>");
  {
    auto txn = s->read();
    auto v = KJ_ASSERT_NONNULL(txn.get(t, b("empty")), "an empty value reads as absent");
    EXPECT_EQ(v.size(), 0u);
    // Views from get() stay valid until the transaction ends, however many reads follow.
    auto alpha = KJ_ASSERT_NONNULL(txn.get(t, b("alpha")));
    for (int i = 0; i < 20; ++i) txn.get(t, b("beta"));
    EXPECT_EQ(text(alpha), "one");
  }
  bool existed = false, missing = true;
  s->write([&](WriteTxn& txn) {
    existed = txn.del(t, b("alpha"));
    missing = txn.del(t, b("nope"));
  });
  EXPECT_TRUE(existed);
  EXPECT_FALSE(missing);
  EXPECT_EQ(get(*s, t, b("alpha")), "<absent>");
}

TEST_P(StoreContract, BinaryKeysAndValuesRoundTripAndTablesAreSeparate) {
  auto s = open();
  auto a = s->table("a");
  auto c = s->table("c");
  auto key = bytes({0, 1, 0xff, 0, 0x80});
  auto value = kj::heapArray<kj::byte>(300000);
  for (size_t i = 0; i < value.size(); ++i) value[i] = kj::byte(i * 7 + (i >> 9));
  put(*s, a, key, value);
  put(*s, c, key, b("in c"));
  auto txn = s->read();
  auto got = KJ_ASSERT_NONNULL(txn.get(a, key));
  ASSERT_EQ(got.size(), value.size());
  EXPECT_EQ(memcmp(got.begin(), value.begin(), value.size()), 0);
  EXPECT_EQ(text(KJ_ASSERT_NONNULL(txn.get(c, key))), "in c");
  EXPECT_EQ(txn.count(a), 1u);
  EXPECT_EQ(txn.count(c), 1u);
}

TEST_P(StoreContract, DataAndTablesSurviveReopening) {
  {
    auto s = open();
    put(*s, s->table("things"), b("k"), b("v"));
    s->table("other");
  }
  auto s = open();
  EXPECT_TRUE(s->existingTable("other") != nullptr);
  EXPECT_TRUE(s->existingTable("never") == nullptr);
  EXPECT_EQ(get(*s, s->table("things"), b("k")), "v");
}

TEST_P(StoreContract, ScansVisitExactlyThePrefixInByteOrderAtTheFfEdges) {
  auto s = open();
  auto t = s->table("edges");
  auto other = s->table("neighbour");
  std::vector<kj::Array<kj::byte>> keys;
  keys.push_back(bytes({0x01}));
  keys.push_back(bytes({0x01, 0x00}));
  keys.push_back(bytes({0x01, 0xff}));
  keys.push_back(bytes({0x01, 0xff, 0xff}));
  keys.push_back(bytes({0x02}));
  keys.push_back(bytes({0x7f, 0xff}));
  keys.push_back(bytes({0x80}));
  keys.push_back(bytes({0xfe, 0xff, 0xff}));
  keys.push_back(bytes({0xff}));
  keys.push_back(bytes({0xff, 0x00}));
  keys.push_back(bytes({0xff, 0xff}));
  keys.push_back(bytes({0xff, 0xff, 0x01}));
  // Inserted in reverse: the order must come from the store.
  s->write([&](WriteTxn& txn) {
    for (size_t i = keys.size(); i-- > 0;) txn.put(t, keys[i], b("x"));
    txn.put(other, bytes({0x01, 0x00}), b("not mine"));
    txn.put(other, bytes({0xff, 0xff, 0xff}), b("not mine"));
  });
  auto scan = [&](kj::ArrayPtr<const kj::byte> prefix) {
    std::string out;
    for (auto& k : keysUnder(*s, t, prefix)) {
      if (!out.empty()) out += " ";
      out += hex(kj::StringPtr(k.c_str(), k.size()).asBytes());
    }
    return out;
  };
  EXPECT_EQ(scan(nullptr), "01 0100 01ff 01ffff 02 7fff 80 feffff ff ff00 ffff ffff01");
  EXPECT_EQ(scan(bytes({0x01})), "01 0100 01ff 01ffff");
  EXPECT_EQ(scan(bytes({0x01, 0xff})), "01ff 01ffff");
  EXPECT_EQ(scan(bytes({0x7f})), "7fff");
  EXPECT_EQ(scan(bytes({0xfe})), "feffff");
  EXPECT_EQ(scan(bytes({0xff})), "ff ff00 ffff ffff01");
  EXPECT_EQ(scan(bytes({0xff, 0xff})), "ffff ffff01");
  EXPECT_EQ(scan(bytes({0xff, 0xff, 0x01})), "ffff01");
  EXPECT_EQ(scan(bytes({0xff, 0xff, 0x01, 0x00})), "");
  EXPECT_EQ(scan(bytes({0x00})), "");
  EXPECT_EQ(scan(bytes({0x03})), "");
}

TEST_P(StoreContract, LongScansPageInNumericOrderAndStopWhenAsked) {
  auto s = open();
  auto t = s->table("numbers");
  constexpr uint32_t N = 2500;
  s->write([&](WriteTxn& txn) {
    for (uint32_t i = N; i-- > 0;) {
      auto key = kj::heapArray<kj::byte>(5);
      key[0] = 'n';
      putBe32(key.begin() + 1, i * 3);
      txn.put(t, key, be32(i));
    }
    txn.put(t, b("o"), b("after"));
  });
  auto txn = s->read();
  uint32_t seen = 0;
  bool ordered = true;
  txn.scan(t, b("n"), [&](Bytes key, Bytes value) {
    ordered = ordered && getBe32(key.begin() + 1) == seen * 3 && getBe32(value.begin()) == seen;
    ++seen;
    return true;
  });
  EXPECT_EQ(seen, N);
  EXPECT_TRUE(ordered);
  uint32_t visits = 0;
  txn.scan(t, b("n"), [&](Bytes, Bytes) { return ++visits < 17; });
  EXPECT_EQ(visits, 17u);
  EXPECT_EQ(txn.count(t), N + 1);
}

TEST_P(StoreContract, CountsFollowInsertsReplacesDeletesAndUndoneChildren) {
  auto s = open();
  auto t = s->table("counted");
  s->write([&](WriteTxn& txn) {
    txn.put(t, b("a"), b("1"));
    txn.put(t, b("b"), b("1"));
    txn.put(t, b("a"), b("2"));  // a replace is not a new entry
    EXPECT_EQ(txn.count(t), 2u);
    txn.nested([&](WriteTxn& inner) {
      inner.put(t, b("c"), b("1"));
      EXPECT_EQ(inner.count(t), 3u);
      KJ_FAIL_REQUIRE("undo c");
    });
    EXPECT_EQ(txn.count(t), 2u);
    txn.nested([&](WriteTxn& inner) { inner.del(t, b("b")); });
    EXPECT_EQ(txn.count(t), 1u);
  });
  EXPECT_EQ(s->read().count(t), 1u);
  s->write([&](WriteTxn& txn) { txn.put(t, b("z"), b("1")); });
  EXPECT_EQ(s->read().count(t), 2u);
}

// Writes that nothing reads back before the commit (PostgreSQL sends them with the next
// statement that needs an answer, here the commit): the entry counts still follow each level.
TEST_P(StoreContract, CountsFollowWritesNotReadBackThroughKeptAndUndoneChildren) {
  auto s = open();
  auto t = s->table("counted");
  put(*s, t, b("old"), b("0"));
  s->write([&](WriteTxn& txn) {
    txn.put(t, b("a"), b("1"));
    txn.nested([&](WriteTxn& inner) {
      inner.put(t, b("b"), b("1"));
      inner.nested([&](WriteTxn& grand) { grand.put(t, b("c"), b("1")); });
    });
    // A child that read (so it began on the server), then wrote, then failed: undone.
    auto failed = txn.nested([&](WriteTxn& inner) {
      EXPECT_TRUE(inner.get(t, b("old")) != nullptr);
      inner.put(t, b("d"), b("1"));
      inner.put(t, b("old"), b("1"));
      KJ_FAIL_REQUIRE("undo d");
    });
    EXPECT_TRUE(failed != nullptr);
    txn.put(t, b("old"), b("2"));  // a replace
  });
  EXPECT_EQ(s->read().count(t), 4u);  // old, a, b, c
  EXPECT_EQ(get(*s, t, b("c")), "1");
  EXPECT_EQ(get(*s, t, b("d")), "<absent>");
  EXPECT_EQ(get(*s, t, b("old")), "2");
}

// What a write transaction reads again is what it holds now: its own writes, and after an
// undone child what was there before the child (PostgreSQL remembers a write transaction's
// reads until it writes the key or undoes a child).
TEST_P(StoreContract, ReadsAgainSeeTheTransactionsWritesAndNotThoseOfAnUndoneChild) {
  auto s = open();
  auto t = s->table("things");
  put(*s, t, b("k"), b("0"));
  s->write([&](WriteTxn& txn) {
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(txn.get(t, b("k")))), "0");
    EXPECT_TRUE(txn.get(t, b("new")) == nullptr);
    txn.put(t, b("k"), b("1"));
    txn.put(t, b("new"), b("1"));
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(txn.get(t, b("k")))), "1");
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(txn.get(t, b("new")))), "1");
    auto failed = txn.nested([&](WriteTxn& inner) {
      inner.put(t, b("k"), b("2"));
      EXPECT_EQ(text(KJ_ASSERT_NONNULL(inner.get(t, b("k")))), "2");
      EXPECT_TRUE(inner.del(t, b("new")));
      EXPECT_TRUE(inner.get(t, b("new")) == nullptr);
      KJ_FAIL_REQUIRE("undo the child");
    });
    EXPECT_TRUE(failed != nullptr);
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(txn.get(t, b("k")))), "1");
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(txn.get(t, b("new")))), "1");
  });
  EXPECT_EQ(get(*s, t, b("k")), "1");
  EXPECT_EQ(get(*s, t, b("new")), "1");
}

// A transaction that writes many keys without reading (a bulk copy): all kept, counted once,
// and an undone child's share undone, however many of its writes had already been sent.
TEST_P(StoreContract, ManyWritesWithoutReadsAreKeptAndCountedAndAnUndoneChildsAreNot) {
  auto s = open();
  auto t = s->table("bulk");
  auto key = [](const char* prefix, int i) { return kj::str(prefix, i); };
  s->write([&](WriteTxn& txn) {
    for (int i = 0; i < 1000; i++) txn.put(t, key("k", i).asBytes(), b("v"));
    auto failed = txn.nested([&](WriteTxn& inner) {
      for (int i = 0; i < 600; i++) inner.put(t, key("undone", i).asBytes(), b("v"));
      KJ_FAIL_REQUIRE("undo the child");
    });
    EXPECT_TRUE(failed != nullptr);
    for (int i = 0; i < 300; i++) txn.put(t, key("k", i).asBytes(), b("w"));  // replaces
  });
  EXPECT_EQ(s->read().count(t), 1000u);
  EXPECT_EQ(get(*s, t, key("k", 0).asBytes()), "w");
  EXPECT_EQ(get(*s, t, key("k", 999).asBytes()), "v");
  EXPECT_EQ(get(*s, t, key("undone", 0).asBytes()), "<absent>");
  EXPECT_EQ(get(*s, t, key("undone", 599).asBytes()), "<absent>");
}

// One key written again and again in one transaction (PostgreSQL sends only the last of
// the writes it still holds): every read inside sees the latest write, a delete after a put
// stays a delete, the counts follow, and the commit keeps exactly the last state.
TEST_P(StoreContract, RewritesOfOneKeyInOneTransactionKeepTheLastAndReadBackEachStep) {
  auto s = open();
  auto t = s->table("things");
  put(*s, t, b("before"), b("0"));
  auto read = [&](WriteTxn& txn, const char* key) {
    KJ_IF_MAYBE(v, txn.get(t, b(key))) { return text(*v); }
    return std::string("<absent>");
  };
  s->write([&](WriteTxn& txn) {
    txn.put(t, b("A"), b("1"));
    EXPECT_EQ(read(txn, "A"), "1");
    txn.put(t, b("A"), b("2"));
    EXPECT_EQ(read(txn, "A"), "2");
    EXPECT_TRUE(txn.del(t, b("A")));
    EXPECT_EQ(read(txn, "A"), "<absent>");
    EXPECT_FALSE(txn.del(t, b("A")));
    txn.put(t, b("A"), b("3"));
    EXPECT_EQ(read(txn, "A"), "3");
    EXPECT_EQ(txn.count(t), 2u);  // before, A
    // A key that existed before the transaction: rewritten, then deleted.
    txn.put(t, b("before"), b("1"));
    txn.put(t, b("before"), b("2"));
    EXPECT_TRUE(txn.del(t, b("before")));
    EXPECT_EQ(read(txn, "before"), "<absent>");
    // A new key written and deleted without a read: never there, never counted.
    txn.put(t, b("B"), b("1"));
    txn.put(t, b("B"), b("2"));
    EXPECT_TRUE(txn.del(t, b("B")));
    EXPECT_EQ(txn.count(t), 1u);
    // A view of a value the transaction wrote outlives the writes being sent (the count
    // sends them) and later rewrites of other keys.
    txn.put(t, b("C"), b("viewed"));
    auto view = KJ_ASSERT_NONNULL(txn.get(t, b("C")));
    txn.put(t, b("D"), b("1"));
    EXPECT_EQ(txn.count(t), 3u);
    EXPECT_EQ(text(view), "viewed");
    EXPECT_EQ(read(txn, "C"), "viewed");
    txn.put(t, b("C"), b("last"));
    EXPECT_EQ(read(txn, "C"), "last");
  });
  EXPECT_EQ(get(*s, t, b("A")), "3");
  EXPECT_EQ(get(*s, t, b("before")), "<absent>");
  EXPECT_EQ(get(*s, t, b("B")), "<absent>");
  EXPECT_EQ(get(*s, t, b("C")), "last");
  EXPECT_EQ(s->read().count(t), 3u);  // A, C, D
}

// Puts, deletes and reads of a few hot keys and many cold ones in one transaction, with
// children kept and undone, against a model: each read and each delete's answer inside, the
// count after each child, and after the commit every key and value.
TEST_P(StoreContract, InterleavedPutsAndDeletesInOneTransactionMatchAModel) {
  auto s = open();
  auto t = s->table("model");
  std::map<std::string, std::string> model;
  s->write([&](WriteTxn& txn) {
    for (int i = 0; i < 12; i += 3) {
      auto key = kj::str("hot", i);
      txn.put(t, key.asBytes(), b("old"));
      model[key.cStr()] = "old";
    }
  });
  uint32_t seed = 20261201;
  auto next = [&](uint32_t n) {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) % n;
  };
  auto anyKey = [&]() {
    return next(5) < 4 ? kj::str("hot", next(12)) : kj::str("cold", next(400));
  };
  // One step on `txn` against `m`: a put, a delete or a read.
  auto step = [&](WriteTxn& txn, std::map<std::string, std::string>& m, int n) {
    auto key = anyKey();
    uint32_t what = next(10);
    if (what < 5) {
      auto value = kj::str(key, "=", n);
      txn.put(t, key.asBytes(), value.asBytes());
      m[key.cStr()] = value.cStr();
    } else if (what < 7) {
      bool existed = m.erase(key.cStr()) > 0;
      EXPECT_EQ(txn.del(t, key.asBytes()), existed) << key.cStr() << " at step " << n;
    } else {
      auto it = m.find(key.cStr());
      auto got = txn.get(t, key.asBytes());
      if (it == m.end()) {
        EXPECT_TRUE(got == nullptr) << key.cStr() << " at step " << n;
      } else {
        EXPECT_EQ(text(KJ_ASSERT_NONNULL(got)), it->second) << key.cStr() << " at step " << n;
      }
    }
  };
  s->write([&](WriteTxn& txn) {
    for (int n = 0; n < 2000; n++) {
      if (next(20) != 0) {
        step(txn, model, n);
        continue;
      }
      auto copy = model;
      bool keep = next(2) == 0;
      txn.nestedKeepIf([&](WriteTxn& inner) {
        for (int i = 0; i < 8; i++) step(inner, copy, n * 100 + i);
        return keep;
      });
      if (keep) model = copy;
      EXPECT_EQ(txn.count(t), model.size()) << "after the child at step " << n;
    }
    EXPECT_EQ(txn.count(t), model.size());
  });
  std::map<std::string, std::string> stored;
  auto txn = s->read();
  txn.scan(t, nullptr, [&](Bytes key, Bytes value) {
    stored[text(key)] = text(value);
    return true;
  });
  EXPECT_EQ(stored, model);
  EXPECT_EQ(txn.count(t), model.size());
}

TEST_P(StoreContract, NestedTransactionsKeepOrUndoOnlyThemselves) {
  auto s = open();
  auto t = s->table("things");
  put(*s, t, b("base"), b("0"));
  s->write([&](WriteTxn& txn) {
    txn.put(t, b("outer"), b("1"));
    EXPECT_TRUE(txn.nested([&](WriteTxn& inner) { inner.put(t, b("kept"), b("1")); }) == nullptr);
    auto failed = txn.nested([&](WriteTxn& inner) {
      inner.put(t, b("undone"), b("1"));
      inner.del(t, b("base"));
      // A grandchild that succeeded goes with its failing parent.
      inner.nested([&](WriteTxn& grand) { grand.put(t, b("grandchild"), b("1")); });
      KJ_FAIL_REQUIRE("this op fails");
    });
    EXPECT_TRUE(failed != nullptr);
    // Declined without throwing: undone too.
    txn.nestedKeepIf([&](WriteTxn& inner) {
      inner.put(t, b("declined"), b("1"));
      return false;
    });
    // Nothing sent yet in a child: undoing it costs nothing and breaks nothing.
    txn.nestedKeepIf([&](WriteTxn&) { return false; });
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(txn.get(t, b("base")))), "0");
    EXPECT_TRUE(txn.get(t, b("undone")) == nullptr);
  });
  EXPECT_EQ(get(*s, t, b("outer")), "1");
  EXPECT_EQ(get(*s, t, b("kept")), "1");
  EXPECT_EQ(get(*s, t, b("base")), "0");
  EXPECT_EQ(get(*s, t, b("undone")), "<absent>");
  EXPECT_EQ(get(*s, t, b("grandchild")), "<absent>");
  EXPECT_EQ(get(*s, t, b("declined")), "<absent>");
}

TEST_P(StoreContract, AThrowingBodyCommitsNothing) {
  auto s = open();
  auto t = s->table("things");
  put(*s, t, b("k"), b("old"));
  auto message = failureOf([&]() {
    s->write([&](WriteTxn& txn) {
      txn.put(t, b("k"), b("new"));
      txn.put(t, b("k2"), b("new"));
      KJ_FAIL_REQUIRE("refused");
    });
  });
  EXPECT_TRUE(has(message, "refused")) << message;
  EXPECT_EQ(get(*s, t, b("k")), "old");
  EXPECT_EQ(get(*s, t, b("k2")), "<absent>");
  EXPECT_EQ(s->read().count(t), 1u);
  // The store goes on.
  put(*s, t, b("k3"), b("fine"));
  EXPECT_EQ(get(*s, t, b("k3")), "fine");
}

TEST_P(StoreContract, ARerunStartsAgainFromNothing) {
  auto s = open();
  auto t = s->table("things");
  int runs = 0;
  int result = s->write([&](WriteTxn& txn) {
    ++runs;
    EXPECT_TRUE(txn.get(t, b("first")) == nullptr) << "run " << runs << " saw the last one's write";
    txn.put(t, b("first"), b("x"));
    txn.nested([&](WriteTxn& inner) {
      if (runs == 1) throw MapFull();  // passes through nested() to Store::write
    });
    return runs;
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(result, 2);
  EXPECT_EQ(s->read().count(t), 1u);
}

TEST_P(StoreContract, AReadTransactionSeesOneSnapshot) {
  auto s = open();
  auto t = s->table("things");
  // Three times, each reader right after another read (on PostgreSQL likely on the connection
  // that still owes that read's COMMIT, which then goes with this one's BEGIN).
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    auto k = kj::str("k", round);
    auto fresh = kj::str("new", round);
    put(*s, t, k.asBytes(), b("before"));
    EXPECT_EQ(get(*s, t, k.asBytes()), "before");
    auto reader = s->read();
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(reader.get(t, k.asBytes()))), "before");
    put(*s, t, k.asBytes(), b("after"));
    put(*s, t, fresh.asBytes(), b("x"));
    EXPECT_EQ(text(KJ_ASSERT_NONNULL(reader.get(t, k.asBytes()))), "before");
    EXPECT_TRUE(reader.get(t, fresh.asBytes()) == nullptr);
    EXPECT_EQ(reader.count(t), 1u + 2 * round);
    EXPECT_EQ(get(*s, t, k.asBytes()), "after");
  }
}

TEST_P(StoreContract, TheGenerationMovesOnlyForCommitsThatAskAndAfterCommit) {
  auto s = open();
  auto t = s->table("things");
  if (isPostgres()) {
    // Until the listener is up, every transaction moves it (see postgres.c++).
    ASSERT_TRUE(eventually([&]() {
      auto g = s->generation();
      s->read();
      return s->generation() == g;
    }));
  }
  auto g0 = s->generation();
  put(*s, t, b("k"), b("v"));
  EXPECT_EQ(s->generation(), g0);
  s->write([&](WriteTxn& txn) {
    txn.put(t, b("k"), b("w"));
    txn.moveGenerationOnCommit();
    EXPECT_EQ(s->generation(), g0) << "moved before the commit";
  });
  EXPECT_GT(s->generation(), g0);
  // Once: a store does not hear its own commit a second time (PostgreSQL: its own NOTIFY).
  usleep(200000);
  EXPECT_EQ(s->generation(), g0 + 1);
  auto g1 = s->generation();
  kj::runCatchingExceptions([&]() {
    s->write([&](WriteTxn& txn) {
      txn.moveGenerationOnCommit();
      KJ_FAIL_REQUIRE("aborted");
    });
  });
  if (!isPostgres()) { EXPECT_EQ(s->generation(), g1); }
}

TEST_P(StoreContract, ReadOnlyOpensWhatExistsAndWritesNothing) {
  if (isPostgres()) {
    auto message = failureOf([&]() { open(true); });
    EXPECT_TRUE(has(message, "there is no credvault vault")) << message;
  }
  {
    auto s = open();
    put(*s, s->table("things"), b("k"), b("v"));
    EXPECT_EQ(s->checkSchema(3), 0u);
  }
  auto s = open(true);
  EXPECT_TRUE(s->readOnly());
  EXPECT_EQ(s->checkSchemaOnly(3), 3u);
  EXPECT_EQ(get(*s, s->table("things"), b("k")), "v");
  EXPECT_TRUE(s->existingTable("missing") == nullptr);
  auto message = failureOf([&]() { s->table("missing"); });
  EXPECT_TRUE(has(message, "table is missing")) << message;
  auto newer = failureOf([&]() { s->checkSchemaOnly(2); });
  EXPECT_TRUE(has(newer, "newer")) << newer;
}

// ---------------------------------------------------------------------------------------
// What only a server shared by several daemons has.

class PostgresStore : public StoreContract {};
INSTANTIATE_TEST_SUITE_P(Backends, PostgresStore, testing::Values("postgresql"),
                         [](const auto& info) { return std::string(info.param); });

TEST_P(PostgresStore, TwoInstancesOnOneDatabaseSeeEachOthersCommits) {
  auto a = open();
  auto b2 = open();
  auto ta = a->table("shared");
  auto tb = b2->table("shared");
  EXPECT_EQ(ta.dbi, tb.dbi);
  put(*a, ta, b("from-a"), b("1"));
  EXPECT_EQ(get(*b2, tb, b("from-a")), "1");
  put(*b2, tb, b("from-b"), b("2"));
  EXPECT_EQ(get(*a, ta, b("from-b")), "2");
  // A table the other created after this one started.
  auto late = b2->table("late");
  put(*b2, late, b("k"), b("v"));
  auto mine = KJ_ASSERT_NONNULL(a->existingTable("late"));
  EXPECT_EQ(get(*a, mine, b("k")), "v");
  EXPECT_EQ(a->read().count(ta), 2u);
}

TEST_P(PostgresStore, AnotherInstancesCommitMovesThisGenerationThroughNotify) {
  auto a = open();
  auto b2 = open();
  auto t = b2->table("things");
  ASSERT_TRUE(eventually([&]() {
    auto g = a->generation();
    a->read();
    return a->generation() == g;
  })) << "the listener never came up";
  auto before = a->generation();
  put(*b2, t, b("plain"), b("1"));  // does not ask
  usleep(200000);
  EXPECT_EQ(a->generation(), before);
  b2->write([&](WriteTxn& txn) {
    txn.put(t, b("revoked"), b("1"));
    txn.moveGenerationOnCommit();
  });
  EXPECT_TRUE(eventually([&]() { return a->generation() > before; }));
}

// A read transaction's COMMIT waits for the connection's next statement, but an idle
// connection does not keep the snapshot open (it would hold back vacuum, and the server ends
// sessions idle in a transaction for 60 s): the store sends it within milliseconds.
TEST_P(PostgresStore, AFinishedReadLeavesNoTransactionOpenOnAnIdleConnection) {
  auto s = open();
  auto t = s->table("things");
  put(*s, t, b("k"), b("v"));
  auto openTransactions = [&]() {
    return sql(conninfo,
               "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND "
               "(state LIKE 'idle in transaction%' OR backend_xmin IS NOT NULL) AND pid <> "
               "pg_backend_pid()");
  };
  for (int round = 0; round < 3; ++round) {
    // Reads back to back: each owes its COMMIT to the next one on its connection.
    for (int i = 0; i < 50; ++i) EXPECT_EQ(get(*s, t, b("k")), "v");
    EXPECT_TRUE(eventually([&]() { return openTransactions() == "0"; })) << openTransactions();
    // The connections go on serving, writes included.
    put(*s, t, b("k"), b("v"));
  }
  EXPECT_EQ(s->read().count(t), 1u);
}

TEST_P(PostgresStore, ConcurrentWritersOfTwoInstancesAreSerialised) {
  auto a = open();
  auto b2 = open();
  auto t = a->table("counter");
  b2->table("counter");
  put(*a, t, b("n"), be32(0));
  constexpr int THREADS = 4, ROUNDS = 25;
  std::vector<std::thread> threads;
  for (int i = 0; i < THREADS; ++i) {
    Store& s = i % 2 == 0 ? *a : *b2;
    threads.emplace_back([&s, t]() {
      for (int r = 0; r < ROUNDS; ++r) {
        // Read, then write what was read plus one: lost updates show unless writers are
        // serialised across instances.
        s.write([&](WriteTxn& txn) {
          uint32_t n = getBe32(KJ_ASSERT_NONNULL(txn.get(t, b("n"))).begin());
          usleep(200);
          txn.put(t, b("n"), be32(n + 1));
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  auto txn = a->read();
  EXPECT_EQ(getBe32(KJ_ASSERT_NONNULL(txn.get(t, b("n"))).begin()), uint32_t(THREADS * ROUNDS));
}

TEST_P(PostgresStore, ALostConnectionBeforeCommitRerunsTheWholeTransaction) {
  auto s = open();
  auto t = s->table("things");
  int runs = 0;
  s->write([&](WriteTxn& txn) {
    ++runs;
    txn.put(t, b("k"), b("v"));
    // A read of another key opens the transaction on the server (the put may stay queued).
    EXPECT_TRUE(txn.get(t, b("other")) == nullptr);
    EXPECT_TRUE(txn.get(t, b("k")) != nullptr);
    if (runs == 1) {
      sql(conninfo,
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
          "current_database() AND state LIKE 'idle in transaction%'");
    }
    txn.put(t, b("k2"), b("v"));
  });
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(get(*s, t, b("k2")), "v");
  EXPECT_EQ(s->read().count(t), 2u);
}

TEST_P(PostgresStore, ServerDownIsUnavailableAndTheSameStoreRecoversAfterRestart) {
  auto s = open();
  auto t = s->table("things");
  put(*s, t, b("k"), b("v"));
  auto& server = PostgresServer::instance();
  server.stop();
  KJ_DEFER(if (!server.running()) server.start());
  auto read = kj::runCatchingExceptions([&]() { get(*s, t, b("k")); });
  auto e = KJ_ASSERT_NONNULL(read, "a read with the server down succeeded");
  EXPECT_EQ(storageFailureOf(e), StorageFailure::UNAVAILABLE) << e.getDescription().cStr();
  EXPECT_TRUE(e.getDescription().startsWith("storage: the database server"));
  auto write = kj::runCatchingExceptions([&]() { put(*s, t, b("lost"), b("x")); });
  auto w = KJ_ASSERT_NONNULL(write, "a write with the server down succeeded");
  EXPECT_EQ(storageFailureOf(w), StorageFailure::UNAVAILABLE) << w.getDescription().cStr();
  auto generation = s->generation();
  server.start();
  // No reopening: the next transactions reconnect.
  EXPECT_EQ(get(*s, t, b("k")), "v");
  EXPECT_EQ(get(*s, t, b("lost")), "<absent>");
  put(*s, t, b("after"), b("y"));
  EXPECT_EQ(get(*s, t, b("after")), "y");
  // Whatever it missed meanwhile, caches derived from the store are stale now.
  EXPECT_GT(s->generation(), generation);
}

TEST_P(PostgresStore, ACrashLosesNoAcknowledgedWrite) {
  auto s = open();
  auto t = s->table("things");
  std::atomic<uint32_t> acknowledged{0};
  std::atomic<bool> stop{false};
  std::thread writer([&]() {
    for (uint32_t i = 1; !stop; ++i) {
      bool ok = kj::runCatchingExceptions([&]() { put(*s, t, be32(i), b("v")); }) == nullptr;
      if (!ok) return;
      acknowledged = i;
    }
  });
  ASSERT_TRUE(eventually([&]() { return acknowledged > 20; }));
  auto& server = PostgresServer::instance();
  server.kill();
  stop = true;
  writer.join();
  server.start();
  uint32_t n = acknowledged;
  auto txn = s->read();
  for (uint32_t i = 1; i <= n; ++i) {
    ASSERT_TRUE(txn.get(t, be32(i)) != nullptr) << "acknowledged write " << i << " lost";
  }
  // At most the one in flight when the server died may be there without acknowledgement.
  EXPECT_LE(txn.count(t), n + 1);
}

TEST_P(PostgresStore, RefusesAPasswordInTheConnectionStringWithoutQuotingIt) {
  PostgresOptions o;
  o.conninfo = kj::str(conninfo, " password=hunter2-secret");
  auto message = failureOf([&]() { openPostgres(kj::mv(o)); });
  EXPECT_TRUE(has(message, "holds a password")) << message;
  EXPECT_TRUE(has(message, "passfile")) << message;
  EXPECT_FALSE(has(message, "hunter2")) << message;
  PostgresOptions uri;
  uri.conninfo = kj::str("postgresql://postgres:hunter2-secret@localhost/x");
  message = failureOf([&]() { openPostgres(kj::mv(uri)); });
  EXPECT_TRUE(has(message, "holds a password")) << message;
  EXPECT_FALSE(has(message, "hunter2")) << message;
  PostgresOptions broken;
  broken.conninfo = kj::str("host=x password = 'hunter2-secret");
  message = failureOf([&]() { openPostgres(kj::mv(broken)); });
  EXPECT_FALSE(has(message, "hunter2")) << message;
}

TEST_P(PostgresStore, AServerThatCannotBeReachedIsUnavailable) {
  PostgresOptions o;
  o.conninfo = kj::str("host=", dir.path(), " user=postgres dbname=x connect_timeout=2");
  auto e = KJ_ASSERT_NONNULL(kj::runCatchingExceptions([&]() { openPostgres(kj::mv(o)); }));
  EXPECT_EQ(storageFailureOf(e), StorageFailure::UNAVAILABLE) << e.getDescription().cStr();
  EXPECT_TRUE(e.getDescription().startsWith("storage: the database server cannot be reached"));
}

TEST_P(PostgresStore, RefusesASchemaFromANewerBuild) {
  open();
  sql(conninfo, "UPDATE credvault_schema SET version = 99");
  auto message = failureOf([&]() { open(); });
  EXPECT_TRUE(has(message, "written by a newer credvault (schema 99")) << message;
  EXPECT_TRUE(has(message, "upgrade credvault")) << message;
}

TEST_P(PostgresStore, HoldsOnlyTheBytesItWasGiven) {
  auto s = open();
  auto t = s->table("things");
  put(*s, t, b("key-bytes"), b("sealed-value-bytes"));
  EXPECT_EQ(sql(conninfo, "SELECT count(*) FROM credvault_kv"), "1");
  EXPECT_EQ(sql(conninfo, "SELECT encode(value, 'escape') FROM credvault_kv"),
            "sealed-value-bytes");
  EXPECT_EQ(sql(conninfo, "SELECT entries FROM credvault_tables WHERE name = 'things'"), "1");
}

}  // namespace
}  // namespace credvault::store
