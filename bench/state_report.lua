-- wrk script for bench_state.py: state reports exactly as the AgentKit SDK sends them, or the bare endpoint.
--
-- Arguments (after `--`): mode ("state" | "bare"), API key, number of agents, agent id prefix,
-- first timestamp in Unix microseconds. Every request gets a timestamp no other request of the run has
-- (thread id + counter * threads), so no report is an exact duplicate, and agents rotate over all 1,000.
-- Each thread counts requests sent, 2xx and non-2xx answers; done() adds them up and prints one JSON line.

local threads = {}
local thread_count = 0

function setup(thread)
   thread:set("tid", thread_count)
   thread_count = thread_count + 1
   table.insert(threads, thread)
end

function init(args)
   mode = args[1] or "state"
   api_key = args[2] or ""
   agents = tonumber(args[3] or "1000")
   prefix = args[4] or "bench-agent-"
   base_us = tonumber(args[5] or "0")
   nthreads = tonumber(args[6] or "1")
   sent, ok, non2xx, n = 0, 0, 0, 0
   states = { "active", "idle" }
   headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. api_key }
   if mode == "bare" then
      bare_request = wrk.format("POST", "/v1/opscore/bench/bare", headers, '{"ping":true}')
   end
end

local function iso(us)
   local sec = math.floor(us / 1000000)
   local frac = us - sec * 1000000
   return os.date("!%Y-%m-%dT%H:%M:%S", sec) .. string.format(".%06d+00:00", frac)
end

function request()
   sent = sent + 1
   if mode == "bare" then
      return bare_request
   end
   local seq = n * nthreads + tid
   n = n + 1
   local agent = string.format("%s%04d", prefix, seq % agents)
   -- Compact JSON, keys in the SDK's order: {"agentId", "timestamp", "state", "details"}.
   local body = '{"agentId":"' .. agent .. '","timestamp":"' .. iso(base_us + seq)
      .. '","state":"' .. states[(math.floor(seq / agents) % 2) + 1] .. '","details":{}}'
   return wrk.format("POST", "/v1/opscore/agent/" .. agent .. "/state", headers, body)
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      ok = ok + 1
   else
      non2xx = non2xx + 1
      if non2xx <= 3 then
         io.stderr:write("non-2xx answer " .. status .. ": " .. tostring(body) .. "\n")
      end
   end
end

function done(summary, latency, requests)
   local t_sent, t_ok, t_non2xx = 0, 0, 0
   for _, thread in ipairs(threads) do
      t_sent = t_sent + thread:get("sent")
      t_ok = t_ok + thread:get("ok")
      t_non2xx = t_non2xx + thread:get("non2xx")
   end
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us":%d,"requests":%d,"sent":%d,"ok":%d,"non2xx":%d,'
         .. '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"status_errors":%d,'
         .. '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.duration, summary.requests, t_sent, t_ok, t_non2xx,
      e.connect, e.read, e.write, e.timeout, e.status,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
