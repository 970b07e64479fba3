# Reads wrk --latency output and prints one line comparing it with a target:
#   awk -v min_rps=10000 -v max_p99_ms=20 -f frontends/bench/target.awk
# Used by frontends/bench/soap-bench.sh and tests/frontends/rest-bench.sh. Prints only; a
# benchmark on a shared machine reports, it does not fail the build.
function ms(v) {
  if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
  if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
  if (v ~ /m$/) return substr(v, 1, length(v) - 1) * 60000
  if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
  return v + 0
}
$1 == "99%" { p99 = ms($2) }
$1 == "Requests/sec:" { rps = $2 + 0 }
END {
  if (rps == 0 || p99 == "") { print "   target: no figures (wrk failed?)"; exit }
  ok = (rps >= min_rps && p99 <= max_p99_ms)
  printf "   target >= %d req/s, p99 <= %d ms: %s (%.0f req/s, p99 %.2f ms)\n", \
         min_rps, max_p99_ms, ok ? "met" : "MISSED", rps, p99
}
