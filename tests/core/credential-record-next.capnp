# A later release's stored.Credential, as far as the tests need one: the same fields and two
# more. Records it writes must still open in this release (tests/core/credential-record-test).

@0x8e04b0a4a689a524;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("credvault::core::next");

struct Credential {
  type @0 :Text;
  publicValue @1 :Text;
  validFrom @2 :Int64;
  validTo @3 :Int64;
  isActive @4 :Bool;
  comment @5 :Text;
  secretValue @6 :Data;
  label @7 :Text;
  rotatedAt @8 :Int64;
}
