# A trivial interface for the benchmark: the Cap'n Proto transport's ceiling on this
# machine, measured the same way as the daemon's calls (see echo.c++).

@0xa997b0ea3c0b38c8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("credvault::bench");

interface Echo {
  echo @0 (value :Data) -> (value :Data);
}
