# credvault — the stored form of a credential (storage only; never on the wire).
#
# core/credential-record.c++ serialises this struct into sodium memory and core/vault.c++
# seals it under the record's key (owner, type hash, public value hash), as before. New
# fields take the next ordinal: a record written before the field existed reads it as its
# default, and a record written by a later release with fields this one does not know still
# opens (they are skipped). Never renumber or retype a field: records on disk carry them.

@0xf120aac45db1e40b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("credvault::core::stored");

struct Credential {
  type @0 :Text;          # the record's own type, checked against the one it is filed under
  publicValue @1 :Text;
  validFrom @2 :Int64;    # .NET ticks; 0 = open
  validTo @3 :Int64;
  isActive @4 :Bool;
  comment @5 :Text;
  secretValue @6 :Data;   # empty when none was ever given
}
