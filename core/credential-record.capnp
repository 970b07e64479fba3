# credvault — the stored form of a credential (storage only; never on the wire).
#
# core/credential-record.c++ serialises this struct into sodium memory and core/vault.c++
# seals it under the record's key (owner, type hash, public value hash), as before. New
# fields take the next ordinal: a record written before the field existed reads it as its
# default, and a record written by a later release with fields this one does not know still
# opens (they are skipped). Never renumber or retype a field: records on disk carry them.
#
# A field core does not reason about is carried (core/carried-fields.h): give it the name and
# type it has in ipc/credvault.capnp's Credential, and a Text field its limit with $maxChars,
# and the daemon stores and returns it with no other change (docs/design.md, "Adding a field
# to the credential").

@0xf120aac45db1e40b;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("credvault::core::stored");

# The most characters (code points of valid UTF-8, one line) a carried Text field may hold;
# core refuses a longer value with limit-exceeded naming the field. The id is written out
# because core/carried-fields.c++ looks the annotation up by it.
annotation maxChars @0xd1f0c4a7e1c2b3a9 (field) :UInt32;

struct Credential {
  type @0 :Text;          # the record's own type, checked against the one it is filed under
  publicValue @1 :Text;
  validFrom @2 :Int64;    # .NET ticks; 0 = open
  validTo @3 :Int64;
  isActive @4 :Bool;
  comment @5 :Text;
  secretValue @6 :Data;   # empty when none was ever given
}
