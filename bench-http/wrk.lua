-- wrk script for scripts/bench.sh http.
--
-- BENCH_TOKENS_FILE set: every request carries the next token of that file
-- (one per line), each wrk thread starting at its own offset, so a token
-- comes back only after the whole file went by. Unset: the request is
-- static (the script passes the token with -H).
--
-- done() prints one machine-readable line:
--   RESULT requests=N duration_us=N p50_us=N p99_us=N errors=N
-- errors counts connect, read, write and timeout errors and non-2xx
-- answers: a run with errors is not a measurement.

local file = os.getenv("BENCH_TOKENS_FILE")
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

if file then
  local requests = {}
  local n = 0
  local i = 0

  function init(args)
    for token in io.lines(file) do
      n = n + 1
      requests[n] = wrk.format(nil, nil, {
        ["Host"] = wrk.headers["Host"],
        ["Authorization"] = "Bearer " .. token,
      })
    end
    -- Threads start far apart in the file.
    i = math.floor(n * (offset or 0) / 8) % n
  end

  function request()
    i = i % n + 1
    return requests[i]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout + e.status))
end
