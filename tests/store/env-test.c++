// Tests for store/env.h: the LMDB environment, RAII transactions, map growth, schema
// version, backup and concurrent readers. Each test uses its own directory under /tmp.

#include "store/env.h"
#include "tests/support/failure.h"
#include "tests/support/temp-dir.h"

#include <gtest/gtest.h>
#include <kj/debug.h>
#include <kj/exception.h>
#include <kj/vector.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace credvault::store {
namespace {

using Bytes = kj::ArrayPtr<const kj::byte>;

using support::TempDir;

Bytes b(const char* text) {
  return kj::StringPtr(text).asBytes();
}

std::string text(Bytes bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

// The value under `key`, or "<absent>".
std::string get(const ReadTxn& txn, Table table, Bytes key) {
  KJ_IF_MAYBE(v, txn.get(table, key)) { return text(*v); }
  return "<absent>";
}

std::string get(Environment& env, Table table, const char* key) {
  auto txn = env.read();
  return get(txn, table, b(key));
}

void put(Environment& env, Table table, const char* key, const char* value) {
  env.write([&](WriteTxn& txn) { txn.put(table, b(key), b(value)); });
}

// prefix byte + big-endian number
kj::Array<kj::byte> numberKey(char prefix, uint32_t n) {
  auto key = kj::heapArray<kj::byte>(5);
  key[0] = prefix;
  putBe32(key.begin() + 1, n);
  return key;
}

using support::failureOf;
using support::has;

// A value of `size` bytes whose content depends on `seed`, to detect mixed-up values.
kj::Array<kj::byte> pattern(size_t size, uint32_t seed) {
  auto out = kj::heapArray<kj::byte>(size);
  for (size_t i = 0; i < size; i++) out[i] = kj::byte((i * 131 + seed * 7919) >> 3);
  if (size >= 4) putBe32(out.begin(), seed);
  return out;
}

bool samePattern(Bytes value, size_t size, uint32_t seed) {
  auto expected = pattern(size, seed);
  return value.size() == size && memcmp(value.begin(), expected.begin(), size) == 0;
}

constexpr uint64_t TINY_MAP = 64 << 10;  // 16 pages: fills after a few dozen KiB

Options tiny() {
  Options o;
  o.initialMapSize = TINY_MAP;
  return o;
}

// ---------------------------------------------------------------------------------------

TEST(Environment, PutThenGetInALaterReadTransaction) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("things");
  put(env, t, "alpha", "1");
  put(env, t, "beta", "two");
  EXPECT_EQ(get(env, t, "alpha"), "1");
  EXPECT_EQ(get(env, t, "beta"), "two");
  EXPECT_EQ(get(env, t, "gamma"), "<absent>");
}

TEST(Environment, EmptyValuesAreStoredAndDistinctFromAbsent) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("things");
  env.write([&](WriteTxn& txn) { txn.put(t, b("empty"), nullptr); });
  auto txn = env.read();
  KJ_IF_MAYBE(v, txn.get(t, b("empty"))) {
    EXPECT_EQ(v->size(), 0u);
  } else {
    FAIL() << "an empty value reads back as absent";
  }
}

TEST(Environment, DataSurvivesReopening) {
  TempDir dir;
  {
    Environment env(dir.path());
    put(env, env.table("things"), "k", "v");
  }
  Environment env(dir.path());
  EXPECT_EQ(get(env, env.table("things"), "k"), "v");
}

TEST(Environment, TablesKeepSeparateKeys) {
  TempDir dir;
  Environment env(dir.path());
  auto a = env.table("a");
  auto c = env.table("c");
  put(env, a, "k", "in a");
  put(env, c, "k", "in c");
  EXPECT_EQ(get(env, a, "k"), "in a");
  EXPECT_EQ(get(env, c, "k"), "in c");
  auto txn = env.read();
  EXPECT_EQ(txn.count(a), 1u);
  EXPECT_EQ(txn.count(c), 1u);
}

TEST(Environment, OpeningAMissingDirectoryFails) {
  TempDir dir;
  EXPECT_THROW(Environment(dir / "does-not-exist"), kj::Exception);
}

TEST(Environment, RefusesADirectoryThatHoldsSomethingElse) {
  TempDir dir;
  int fd = ::open((dir / "data.mdb").cStr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  std::string junk(64 << 10, 'x');
  ASSERT_EQ(::write(fd, junk.data(), junk.size()), ssize_t(junk.size()));
  ::close(fd);
  auto message = failureOf([&]() { Environment env(dir.path()); });
  EXPECT_TRUE(has(message, "does not hold an LMDB database")) << message;
}

TEST(Environment, CreatesItsFilesPrivate) {
  TempDir dir;
  { Environment env(dir.path()); }
  struct stat st;
  ASSERT_EQ(stat((dir / "data.mdb").cStr(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u) << std::oct << st.st_mode;
}

// ---------------------------------------------------------------------------------------

TEST(BigEndian, RoundTripsAndSortsInNumericOrder) {
  uint32_t values[] = {0, 1, 255, 256, 65535, 65536, 0x01000000, 0x7fffffff, 0xffffffff};
  for (size_t i = 0; i < kj::size(values); i++) {
    kj::byte buf[4];
    putBe32(buf, values[i]);
    EXPECT_EQ(getBe32(buf), values[i]);
    if (i > 0) {
      kj::byte prev[4];
      putBe32(prev, values[i - 1]);
      EXPECT_LT(memcmp(prev, buf, 4), 0) << values[i - 1] << " sorts after " << values[i];
    }
  }
  uint64_t big[] = {0, 1, 0xffffffffull, 0x100000000ull, 0xfedcba9876543210ull};
  for (size_t i = 0; i < kj::size(big); i++) {
    kj::byte buf[8];
    putBe64(buf, big[i]);
    EXPECT_EQ(getBe64(buf), big[i]);
    if (i > 0) {
      kj::byte prev[8];
      putBe64(prev, big[i - 1]);
      EXPECT_LT(memcmp(prev, buf, 8), 0);
    }
  }
  kj::byte buf[4];
  putBe32(buf, 0x01020304);
  EXPECT_EQ(buf[0], 1);
  EXPECT_EQ(buf[3], 4);
}

TEST(ReadTxn, ScanVisitsOnlyThePrefixInNumericOrder) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  std::vector<uint32_t> numbers = {300, 1, 0x01000000, 256, 255, 65536, 2, 0xffffffff};
  env.write([&](WriteTxn& txn) {
    for (uint32_t n : numbers) txn.put(t, numberKey('b', n), b("in b"));
    txn.put(t, numberKey('a', 5), b("in a"));
    txn.put(t, numberKey('c', 0), b("in c"));
    txn.put(t, b("a"), b("shorter than a number key"));
  });
  std::vector<uint32_t> seen;
  auto txn = env.read();
  kj::byte prefix[] = {'b'};
  txn.scan(t, kj::arrayPtr(prefix, 1), [&](Bytes key, Bytes value) {
    if (key.size() != 5) {
      ADD_FAILURE() << "visited a key without the prefix: " << text(key);
    } else {
      EXPECT_EQ(key[0], 'b');
      EXPECT_EQ(text(value), "in b");
      seen.push_back(getBe32(key.begin() + 1));
    }
    return true;
  });
  std::sort(numbers.begin(), numbers.end());
  EXPECT_EQ(seen, numbers);
}

TEST(ReadTxn, ScanOfAMultiBytePrefixSelectsOneOwner) {
  // The layout core/ uses: owner id (big-endian) then the rest of the key.
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  env.write([&](WriteTxn& txn) {
    for (uint32_t owner : {1u, 2u, 256u}) {
      for (uint32_t item : {3u, 1u, 2u}) {
        kj::byte key[8];
        putBe32(key, owner);
        putBe32(key + 4, item);
        txn.put(t, kj::arrayPtr(key, 8), b("x"));
      }
    }
  });
  kj::byte prefix[4];
  putBe32(prefix, 2);
  std::vector<uint32_t> items;
  env.read().scan(t, kj::arrayPtr(prefix, 4), [&](Bytes key, Bytes) {
    EXPECT_EQ(getBe32(key.begin()), 2u);
    items.push_back(getBe32(key.begin() + 4));
    return true;
  });
  EXPECT_EQ(items, (std::vector<uint32_t>{1, 2, 3}));
}

TEST(ReadTxn, ScanStopsWhenTheVisitorReturnsFalse) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  env.write([&](WriteTxn& txn) {
    for (uint32_t n = 0; n < 10; n++) txn.put(t, numberKey('a', n), b("v"));
  });
  int visits = 0;
  env.read().scan(t, b("a"), [&](Bytes, Bytes) { return ++visits < 3; });
  EXPECT_EQ(visits, 3);
}

TEST(ReadTxn, ScanWithAnEmptyPrefixVisitsEverythingAndNoMatchVisitsNothing) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  env.write([&](WriteTxn& txn) {
    txn.put(t, b("m1"), b("1"));
    txn.put(t, b("m2"), b("2"));
    txn.put(t, b("z"), b("3"));
  });
  auto txn = env.read();
  std::vector<std::string> all;
  txn.scan(t, nullptr, [&](Bytes key, Bytes) {
    all.push_back(text(key));
    return true;
  });
  EXPECT_EQ(all, (std::vector<std::string>{"m1", "m2", "z"}));
  int visits = 0;
  auto count = [&](Bytes, Bytes) {
    visits++;
    return true;
  };
  txn.scan(t, b("a"), count);   // before every key
  txn.scan(t, b("n"), count);   // between keys
  txn.scan(t, b("zz"), count);  // after every key
  EXPECT_EQ(visits, 0);
  auto empty = env.table("empty");
  env.read().scan(empty, nullptr, count);
  EXPECT_EQ(visits, 0);
}

TEST(ReadTxn, SeesTheSnapshotTakenAtItsStart) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  put(env, t, "k", "old");
  auto before = env.read();
  put(env, t, "k", "new");
  put(env, t, "added", "x");
  EXPECT_EQ(get(before, t, b("k")), "old");
  EXPECT_EQ(get(before, t, b("added")), "<absent>");
  EXPECT_EQ(get(env, t, "k"), "new");
}

// Read transactions are reset and reused (Environment::read): a reused one must read the
// newest commit, tables opened since it was last used included, wherever it was last used.
TEST(ReadTxn, AReusedTransactionSeesTheNewestCommitAndNewTables) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  put(env, t, "k", "old");
  {
    // More open at once than are kept idle, so some are aborted and some kept.
    kj::Vector<ReadTxn> open;
    for (int i = 0; i < 12; ++i) open.add(env.read());
    for (auto& txn : open) EXPECT_EQ(get(txn, t, b("k")), "old");
  }
  put(env, t, "k", "new");
  auto later = env.table("later");
  put(env, later, "x", "y");
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(get(env, t, "k"), "new");
    EXPECT_EQ(get(env, later, "x"), "y");
  }
  // Used last on other threads, renewed on this one (and the other way round).
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&]() {
      for (int j = 0; j < 200; ++j) {
        if (get(env, t, "k") != "new") ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  put(env, t, "k", "newest");
  EXPECT_EQ(get(env, t, "k"), "newest");
}

// A map that grows while transactions wait idle: the reused ones read the grown map.
TEST(ReadTxn, AReusedTransactionReadsAfterTheMapGrew) {
  TempDir dir;
  Environment env(dir.path(), tiny());
  auto t = env.table("t");
  put(env, t, "k", "before");
  EXPECT_EQ(get(env, t, "k"), "before");
  auto big = pattern(256 << 10, 7);  // four times the map: it grows while one read is idle
  env.write([&](WriteTxn& txn) { txn.put(t, b("big"), big); });
  auto txn = env.read();
  KJ_IF_MAYBE(v, txn.get(t, b("big"))) {
    EXPECT_TRUE(samePattern(*v, big.size(), 7));
  } else {
    ADD_FAILURE() << "the value written after the map grew is missing";
  }
  EXPECT_EQ(get(txn, t, b("k")), "before");
}

TEST(ReadTxn, CountsEntries) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  EXPECT_EQ(env.read().count(t), 0u);
  env.write([&](WriteTxn& txn) {
    for (uint32_t n = 0; n < 25; n++) txn.put(t, numberKey('k', n), b("v"));
  });
  EXPECT_EQ(env.read().count(t), 25u);
}

// ---------------------------------------------------------------------------------------

TEST(WriteTxn, CommitsAndReturnsTheBodysResult) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  int result = env.write([&](WriteTxn& txn) {
    txn.put(t, b("k"), b("v"));
    return 42;
  });
  EXPECT_EQ(result, 42);
  EXPECT_EQ(get(env, t, "k"), "v");
}

TEST(WriteTxn, AbortsWhenTheBodyThrows) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  put(env, t, "kept", "before");
  auto message = failureOf([&]() {
    env.write([&](WriteTxn& txn) {
      txn.put(t, b("k"), b("never committed"));
      txn.put(t, b("kept"), b("changed"));
      KJ_FAIL_REQUIRE("body failed");
    });
  });
  EXPECT_TRUE(has(message, "body failed")) << message;
  EXPECT_EQ(get(env, t, "k"), "<absent>");
  EXPECT_EQ(get(env, t, "kept"), "before");

  EXPECT_THROW(env.write([&](WriteTxn& txn) {
    txn.put(t, b("k2"), b("x"));
    throw std::runtime_error("not a KJ exception");
  }),
               std::runtime_error);
  EXPECT_EQ(get(env, t, "k2"), "<absent>");

  // The environment is still usable afterwards.
  put(env, t, "k3", "ok");
  EXPECT_EQ(get(env, t, "k3"), "ok");
}

TEST(WriteTxn, SeesItsOwnWritesBeforeCommitAndOthersDoNot) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  env.write([&](WriteTxn& txn) {
    txn.put(t, b("k"), b("v"));
    EXPECT_EQ(get(txn, t, b("k")), "v");
    EXPECT_EQ(txn.count(t), 1u);
    auto outside = env.read();
    EXPECT_EQ(get(outside, t, b("k")), "<absent>");
  });
}

TEST(WriteTxn, PutReplacesAndDelReportsWhetherTheKeyExisted) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  put(env, t, "k", "one");
  put(env, t, "k", "two");
  EXPECT_EQ(get(env, t, "k"), "two");
  EXPECT_EQ(env.read().count(t), 1u);
  EXPECT_TRUE(env.write([&](WriteTxn& txn) { return txn.del(t, b("k")); }));
  EXPECT_FALSE(env.write([&](WriteTxn& txn) { return txn.del(t, b("k")); }));
  EXPECT_EQ(get(env, t, "k"), "<absent>");
}

TEST(WriteTxn, NestedUndoesOnlyTheFailingChild) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  put(env, t, "existing", "before");
  env.write([&](WriteTxn& txn) {
    txn.put(t, b("outer"), b("1"));

    auto failed = txn.nested([&](WriteTxn& child) {
      EXPECT_EQ(get(child, t, b("outer")), "1");  // the child sees the parent's writes
      child.put(t, b("bad"), b("x"));
      child.put(t, b("existing"), b("overwritten"));
      child.del(t, b("outer"));
      KJ_FAIL_REQUIRE("child failed");
    });
    KJ_IF_MAYBE(e, failed) {
      EXPECT_TRUE(has(e->getDescription().cStr(), "child failed"));
    } else {
      ADD_FAILURE() << "nested() did not report the child's exception";
    }
    // Only the child's changes are gone.
    EXPECT_EQ(get(txn, t, b("bad")), "<absent>");
    EXPECT_EQ(get(txn, t, b("existing")), "before");
    EXPECT_EQ(get(txn, t, b("outer")), "1");

    auto ok = txn.nested([&](WriteTxn& child) { child.put(t, b("good"), b("2")); });
    EXPECT_TRUE(ok == nullptr);
    EXPECT_EQ(get(txn, t, b("good")), "2");
    txn.put(t, b("after"), b("3"));
  });
  EXPECT_EQ(get(env, t, "outer"), "1");
  EXPECT_EQ(get(env, t, "good"), "2");
  EXPECT_EQ(get(env, t, "after"), "3");
  EXPECT_EQ(get(env, t, "bad"), "<absent>");
  EXPECT_EQ(get(env, t, "existing"), "before");
}

TEST(WriteTxn, NestedChildrenAreUndoneWhenTheParentAborts) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  EXPECT_THROW(env.write([&](WriteTxn& txn) {
    auto ok = txn.nested([&](WriteTxn& child) { child.put(t, b("child"), b("x")); });
    EXPECT_TRUE(ok == nullptr);
    KJ_FAIL_REQUIRE("parent failed");
  }),
               kj::Exception);
  EXPECT_EQ(get(env, t, "child"), "<absent>");
}

TEST(WriteTxn, NestedCatchesNonKjExceptions) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  env.write([&](WriteTxn& txn) {
    auto failed = txn.nested([&](WriteTxn& child) {
      child.put(t, b("x"), b("x"));
      throw std::runtime_error("std failure");
    });
    EXPECT_TRUE(failed != nullptr);
    txn.put(t, b("y"), b("y"));
  });
  EXPECT_EQ(get(env, t, "x"), "<absent>");
  EXPECT_EQ(get(env, t, "y"), "y");
}

// ---------------------------------------------------------------------------------------

TEST(MapGrowth, StartsAtTheConfiguredInitialSize) {
  TempDir dir;
  Environment env(dir.path(), tiny());
  EXPECT_EQ(env.stats().mapSize, TINY_MAP);
}

TEST(MapGrowth, OneLargeTransactionIntoATinyMapSucceedsAndSurvivesReopening) {
  TempDir dir;
  constexpr size_t VALUE = 64 << 10;
  constexpr uint32_t COUNT = 64;  // 4 MiB in one transaction
  int runs = 0;
  uint64_t grownTo = 0;
  {
    Environment env(dir.path(), tiny());
    auto t = env.table("big");
    env.write([&](WriteTxn& txn) {
      runs++;
      for (uint32_t i = 0; i < COUNT; i++) txn.put(t, numberKey('v', i), pattern(VALUE, i));
    });
    EXPECT_GT(runs, 1) << "the map never filled: the test does not exercise growth";
    auto stats = env.stats();
    EXPECT_GE(stats.mapSize, uint64_t(COUNT) * VALUE);
    EXPECT_LE(stats.usedBytes, stats.mapSize);
    EXPECT_EQ(env.read().count(t), COUNT);
    grownTo = stats.mapSize;
  }
  Environment env(dir.path(), tiny());
  EXPECT_EQ(env.stats().mapSize, grownTo) << "reopening forgot the grown map size";
  auto t = env.table("big");
  auto txn = env.read();
  EXPECT_EQ(txn.count(t), COUNT);
  for (uint32_t i = 0; i < COUNT; i++) {
    KJ_IF_MAYBE(v, txn.get(t, numberKey('v', i))) {
      EXPECT_TRUE(samePattern(*v, VALUE, i)) << "value " << i << " differs";
    } else {
      ADD_FAILURE() << "value " << i << " is missing after reopening";
    }
  }
}

TEST(MapGrowth, ManySmallTransactionsIntoATinyMapSucceed) {
  TempDir dir;
  Options o = tiny();
  o.durable = false;  // hundreds of commits; durability is not what is tested here
  Environment env(dir.path(), o);
  auto t = env.table("t");
  for (uint32_t i = 0; i < 400; i++) {
    env.write([&](WriteTxn& txn) { txn.put(t, numberKey('k', i), pattern(8 << 10, i)); });
  }
  auto txn = env.read();
  EXPECT_EQ(txn.count(t), 400u);
  KJ_IF_MAYBE(v, txn.get(t, numberKey('k', 399))) {
    EXPECT_TRUE(samePattern(*v, 8 << 10, 399));
  } else {
    ADD_FAILURE() << "last value missing";
  }
}

TEST(MapGrowth, ANestedBodyThatFillsTheMapRerunsTheWholeTransaction) {
  TempDir dir;
  Environment env(dir.path(), tiny());
  auto t = env.table("t");
  int runs = 0;
  env.write([&](WriteTxn& txn) {
    runs++;
    txn.put(t, b("outer"), b("1"));
    auto failed = txn.nested([&](WriteTxn& child) {
      for (uint32_t i = 0; i < 32; i++) child.put(t, numberKey('n', i), pattern(32 << 10, i));
    });
    EXPECT_TRUE(failed == nullptr);
  });
  EXPECT_GT(runs, 1);
  EXPECT_EQ(get(env, t, "outer"), "1");
  EXPECT_EQ(env.read().count(t), 33u);
}

TEST(MapGrowth, StopsAtTheMaximumSizeWithoutCommittingAnything) {
  TempDir dir;
  Options o = tiny();
  o.maxMapSize = 1 << 20;
  Environment env(dir.path(), o);
  auto t = env.table("t");
  put(env, t, "small", "ok");
  auto message = failureOf([&]() {
    env.write([&](WriteTxn& txn) {
      for (uint32_t i = 0; i < 64; i++) txn.put(t, numberKey('v', i), pattern(64 << 10, i));
    });
  });
  EXPECT_TRUE(has(message, "maximum size")) << message;
  EXPECT_EQ(env.read().count(t), 1u);
  put(env, t, "still", "usable");
  EXPECT_EQ(get(env, t, "still"), "usable");
}

// ---------------------------------------------------------------------------------------

TEST(Schema, ANewEnvironmentStoresTheVersionAndReportsZero) {
  TempDir dir;
  {
    Environment env(dir.path());
    EXPECT_EQ(env.checkSchema(3), 0u);
    EXPECT_EQ(env.checkSchema(3), 3u);
  }
  Environment env(dir.path());
  EXPECT_EQ(env.checkSchema(3), 3u);
}

TEST(Schema, AcceptsAnOlderDatabaseAndRecordsTheUpgrade) {
  TempDir dir;
  {
    Environment env(dir.path());
    env.checkSchema(2);
  }
  {
    Environment env(dir.path());
    EXPECT_EQ(env.checkSchema(5), 2u);  // the caller learns which version it migrates from
  }
  Environment env(dir.path());
  EXPECT_EQ(env.checkSchema(5), 5u);
}

TEST(Schema, RefusesADatabaseFromANewerVersionWithAClearMessage) {
  TempDir dir;
  {
    Environment env(dir.path());
    env.checkSchema(7);
  }
  {
    Environment env(dir.path());
    auto message = failureOf([&]() { env.checkSchema(6); });
    EXPECT_TRUE(has(message, "newer credvault")) << message;
    EXPECT_TRUE(has(message, "7")) << message;
  }
  // Refusing did not downgrade the record.
  Environment env(dir.path());
  EXPECT_EQ(env.checkSchema(7), 7u);
}

TEST(Schema, RefusesADamagedVersionRecord) {
  TempDir dir;
  Environment env(dir.path());
  auto meta = env.table("meta");
  put(env, meta, "schema-version", "xx");
  auto message = failureOf([&]() { env.checkSchema(1); });
  EXPECT_TRUE(has(message, "damaged")) << message;
}

// ---------------------------------------------------------------------------------------

TEST(Backup, ProducesAFileThatOpensAsAnEnvironmentWithTheSameData) {
  TempDir dir;
  auto live = dir.subdir("live");
  auto copy = dir.subdir("copy");
  {
    Environment env(live);
    env.checkSchema(4);
    auto t = env.table("things");
    env.write([&](WriteTxn& txn) {
      for (uint32_t i = 0; i < 200; i++) txn.put(t, numberKey('k', i), pattern(1000, i));
      txn.del(t, numberKey('k', 7));
    });
    env.backup(kj::str(copy, "/data.mdb"));

    struct stat st;
    ASSERT_EQ(stat(kj::str(copy, "/data.mdb").cStr(), &st), 0);
    EXPECT_EQ(st.st_mode & 077, 0u) << "the backup is readable by others";
    put(env, t, "after-backup", "x");
  }
  Environment restored(copy);
  EXPECT_EQ(restored.checkSchema(4), 4u);
  auto t = restored.table("things");
  auto txn = restored.read();
  EXPECT_EQ(txn.count(t), 199u);
  EXPECT_TRUE(txn.get(t, numberKey('k', 7)) == nullptr);
  EXPECT_EQ(get(txn, t, b("after-backup")), "<absent>");
  KJ_IF_MAYBE(v, txn.get(t, numberKey('k', 123))) {
    EXPECT_TRUE(samePattern(*v, 1000, 123));
  } else {
    ADD_FAILURE() << "value missing from the backup";
  }
}

TEST(Backup, ToADescriptorWritesTheSameSnapshotSequentially) {
  TempDir dir;
  auto live = dir.subdir("live");
  auto copy = dir.subdir("copy");
  Environment env(live);
  auto t = env.table("things");
  env.write([&](WriteTxn& txn) {
    for (uint32_t i = 0; i < 300; i++) txn.put(t, numberKey('k', i), pattern(700, i));
  });
  // A pipe cannot seek: the copy must be one sequential stream (what the daemon spools).
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  auto reader = std::async(std::launch::async, [&]() {
    kj::Vector<kj::byte> all;
    kj::byte buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) all.addAll(buf, buf + n);
    ::close(fds[0]);
    return all.releaseAsArray();
  });
  env.backup(fds[1]);
  ::close(fds[1]);
  auto bytes = reader.get();
  ASSERT_GT(bytes.size(), 0u);

  int out =
      ::open(kj::str(copy, "/data.mdb").cStr(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  ASSERT_GE(out, 0);
  ASSERT_EQ(::write(out, bytes.begin(), bytes.size()), ssize_t(bytes.size()));
  ::close(out);
  Environment restored(copy);
  auto rt = restored.table("things");
  auto txn = restored.read();
  EXPECT_EQ(txn.count(rt), 300u);
  KJ_IF_MAYBE(v, txn.get(rt, numberKey('k', 299))) {
    EXPECT_TRUE(samePattern(*v, 700, 299));
  } else {
    ADD_FAILURE() << "value missing from the backup";
  }
}

TEST(Backup, RefusesToOverwriteAnExistingFile) {
  TempDir dir;
  Environment env(dir.subdir("live"));
  put(env, env.table("t"), "k", "v");
  auto target = dir / "existing.mdb";
  int fd = ::open(target.cStr(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "keep", 4), 4);
  ::close(fd);

  EXPECT_THROW(env.backup(target), kj::Exception);
  struct stat st;
  ASSERT_EQ(stat(target.cStr(), &st), 0) << "the existing file was removed";
  EXPECT_EQ(st.st_size, 4);
}

TEST(Backup, IsAConsistentSnapshotWhileAWriterContinues) {
  TempDir dir;
  auto live = dir.subdir("live");
  auto copy = dir.subdir("copy");
  Options o;
  o.durable = false;
  Environment env(live, o);
  auto t = env.table("t");
  std::atomic<bool> stop(false);
  std::atomic<uint32_t> commits(0);
  // Each transaction writes the same counter under two keys; a torn snapshot would differ.
  auto writer = std::async(std::launch::async, [&]() {
    for (uint32_t i = 1; !stop; i++) {
      env.write([&](WriteTxn& txn) {
        kj::byte v[4];
        putBe32(v, i);
        txn.put(t, b("a"), kj::arrayPtr(v, 4));
        txn.put(t, numberKey('x', i), pattern(512, i));
        txn.put(t, b("b"), kj::arrayPtr(v, 4));
      });
      commits = i;
    }
  });
  while (commits < 20) std::this_thread::yield();
  env.backup(kj::str(copy, "/data.mdb"));
  stop = true;
  writer.get();

  Environment restored(copy);
  auto rt = restored.table("t");
  auto txn = restored.read();
  KJ_IF_MAYBE(a, txn.get(rt, b("a"))) {
    KJ_IF_MAYBE(bv, txn.get(rt, b("b"))) {
      uint32_t n = getBe32(a->begin());
      EXPECT_EQ(n, getBe32(bv->begin()));
      EXPECT_GE(n, 20u);
      EXPECT_EQ(txn.count(rt), n + 2);
    } else {
      ADD_FAILURE() << "b missing";
    }
  } else {
    ADD_FAILURE() << "a missing";
  }
}

// ---------------------------------------------------------------------------------------

TEST(Concurrency, AReaderOnAnotherThreadIsNotBlockedByAnOpenWrite) {
  TempDir dir;
  Environment env(dir.path());
  auto t = env.table("t");
  put(env, t, "k", "old");
  env.write([&](WriteTxn& txn) {
    txn.put(t, b("k"), b("new"));
    auto reader = std::async(std::launch::async, [&]() { return get(env, t, "k"); });
    ASSERT_EQ(reader.wait_for(std::chrono::seconds(10)), std::future_status::ready)
        << "a read waited for the open write transaction";
    EXPECT_EQ(reader.get(), "old");  // uncommitted data is invisible to other threads
  });
  auto reader = std::async(std::launch::async, [&]() { return get(env, t, "k"); });
  EXPECT_EQ(reader.get(), "new");
}

TEST(Concurrency, ReadersOnOtherThreadsSeeWholeTransactionsWhileTheMapGrows) {
  TempDir dir;
  Options o = tiny();
  o.durable = false;
  Environment env(dir.path(), o);
  auto t = env.table("t");
  put(env, t, "a", "0");
  put(env, t, "b", "0");
  std::atomic<bool> done(false);
  auto readerLoop = [&]() {
    uint64_t reads = 0, torn = 0;
    while (!done || reads == 0) {
      auto txn = env.read();
      auto a = get(txn, t, b("a"));
      auto bv = get(txn, t, b("b"));
      if (a != bv) torn++;
      reads++;
    }
    return torn;
  };
  auto r1 = std::async(std::launch::async, readerLoop);
  auto r2 = std::async(std::launch::async, readerLoop);
  for (uint32_t i = 1; i <= 300; i++) {
    auto n = std::to_string(i);
    env.write([&](WriteTxn& txn) {
      txn.put(t, b("a"), b(n.c_str()));
      txn.put(t, numberKey('x', i), pattern(16 << 10, i));  // ~5 MiB: several growths
      txn.put(t, b("b"), b(n.c_str()));
    });
  }
  done = true;
  EXPECT_EQ(r1.get(), 0u) << "a reader saw half a transaction";
  EXPECT_EQ(r2.get(), 0u) << "a reader saw half a transaction";
  EXPECT_GT(env.stats().mapSize, TINY_MAP);
  EXPECT_EQ(get(env, t, "a"), "300");
  EXPECT_EQ(env.read().count(t), 302u);
}

// ---- what a data.mdb looks like before LMDB maps it (issue 15) ------------------------------

void writeBytes(kj::StringPtr path, kj::ArrayPtr<const char> bytes) {
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), path);
  KJ_DEFER(close(fd));
  if (bytes.size() > 0) KJ_SYSCALL(write(fd, bytes.begin(), bytes.size()));
}

kj::Array<char> readBytes(kj::StringPtr path) {
  int fd;
  KJ_SYSCALL(fd = open(path.cStr(), O_RDONLY | O_CLOEXEC), path);
  KJ_DEFER(close(fd));
  struct stat st;
  KJ_SYSCALL(fstat(fd, &st));
  auto out = kj::heapArray<char>(st.st_size);
  KJ_SYSCALL(pread(fd, out.begin(), out.size(), 0));
  return out;
}

TEST(DataFile, AbsentEmptyTruncatedAndSoundAreToldApart) {
  TempDir dir;
  EXPECT_FALSE(inspectDataFile(dir.path()).exists);
  {
    Environment env(dir.path());
    auto t = env.table("t");
    env.write([&](WriteTxn& txn) {
      for (int i = 0; i < 500; ++i) {
        kj::byte k[4];
        putBe32(k, i);
        txn.put(t, k, kj::heapArray<kj::byte>(200));
      }
    });
  }
  auto sound = inspectDataFile(dir.path());
  EXPECT_TRUE(sound.exists);
  EXPECT_EQ(sound.problem, nullptr);
  EXPECT_GT(sound.lastPage, 2u);
  auto good = readBytes(dir / "data.mdb");

  writeBytes(dir / "data.mdb", nullptr);
  auto empty = inspectDataFile(dir.path());
  EXPECT_TRUE(empty.exists);
  EXPECT_TRUE(KJ_ASSERT_NONNULL(empty.problem).startsWith("database empty or truncated"));

  writeBytes(dir / "data.mdb", good.slice(0, good.size() / 2));
  auto half = inspectDataFile(dir.path());
  EXPECT_TRUE(KJ_ASSERT_NONNULL(half.problem).startsWith("database empty or truncated"));

  // Both header pages destroyed.
  auto broken = kj::heapArray<char>(good.asPtr());
  memset(broken.begin(), 0, 2 * sound.pageSize);
  writeBytes(dir / "data.mdb", broken);
  EXPECT_TRUE(
      KJ_ASSERT_NONNULL(inspectDataFile(dir.path()).problem).startsWith("database damaged"));

  // One header page destroyed: LMDB uses the other, and so may we.
  broken = kj::heapArray<char>(good.asPtr());
  memset(broken.begin(), 0, sound.pageSize);
  writeBytes(dir / "data.mdb", broken);
  EXPECT_EQ(inspectDataFile(dir.path()).problem, nullptr);
}

TEST(Environment, WalkVisitsEveryTableAndCountsMatchTheHeaders) {
  TempDir dir;
  Environment env(dir.path());
  auto a = env.table("a");
  auto b = env.table("b");
  env.write([&](WriteTxn& txn) {
    for (int i = 0; i < 300; ++i) {
      kj::byte k[4];
      putBe32(k, i);
      txn.put(a, k, kj::heapArray<kj::byte>(i % 2 ? 10 : 5000));  // overflow pages too
      if (i % 3 == 0) txn.put(b, k, k);
    }
  });
  kj::Vector<kj::String> seen;
  auto walked = env.walk([&](kj::StringPtr t) { seen.add(kj::heapString(t)); });
  ASSERT_EQ(walked.size(), 4u);  // free pages, the directory, a, b
  EXPECT_EQ(walked[2].name, "a");
  EXPECT_EQ(walked[2].entries, 300u);
  EXPECT_EQ(walked[2].stated, 300u);
  EXPECT_EQ(walked[3].entries, 100u);
  EXPECT_EQ(seen.size(), 4u);
}

TEST(Environment, ReadOnlyOpensExistingTablesAndCreatesNothing) {
  TempDir dir;
  {
    Environment env(dir.path());
    env.table("a");
  }
  Options options;
  options.readOnly = true;
  Environment env(dir.path(), options);
  EXPECT_NE(env.existingTable("a"), nullptr);
  EXPECT_EQ(env.existingTable("missing"), nullptr);
  EXPECT_NE(kj::runCatchingExceptions([&]() { env.table("missing"); }), nullptr);
}

}  // namespace
}  // namespace credvault::store
