"""The fixed prose of docs/benchmarks.md: what each figure measures and how, and its history."""

from __future__ import annotations

INTRO = """
Alibaba bills InitFaceVerify and allows 50 QPS per API per main account, shared by every host of
the account, so the scarce resources are upstream calls and the quota; after that, the time our
code adds to each request. Every figure is a ratio, a rate or a count measured in one run on one
machine: absolute times vary between runs and machines, the ratios much less. `make bench`
(`.venv/bin/python -m bench`) runs everything in about four minutes and exits non-zero when a
target is missed; `python -m bench p2 p4` runs a subset, `--tiny` checks that the suite runs (no
figure means anything at that size). It needs PostgreSQL and Redis on loopback for P3 and P6
(`BENCH_POSTGRES_URL`, default `postgresql://postgres@127.0.0.1:5432/test`, where it creates and
drops its own databases; `BENCH_REDIS_URL`, default `redis://127.0.0.1:6379/13`). Machine-readable
results: `bench/results.json`. Run it on a quiet machine: every figure shares the CPUs with
whatever else runs.
"""

METHOD = """
## How each figure is measured

Common rules: everything runs on loopback, nothing reaches Alibaba. Timed variants alternate
(A B C, then C B A, …) so that noise from other processes on the machine hits all of them, and
medians are compared. The fake Alibaba Cloud (`flask_alicertify.sandbox.fake.FakeCloud`) checks
the V3 signature of every request. Where it is served over HTTP it runs in its own process
(`bench/fake_server.py`, a threaded server, one thread per connection), so its work is never
charged to the code measured; the bench asks it afterwards how many calls it saw.

**P1 (upstream calls).** A Flask app with `AliCertify` on the in-process fake (memory storage,
anonymous callers). The fake counts every call it receives. A fake clock is shared by the
service (`init_app(clock=...)`) and the fake, and advanced by hand, so
`ALICERTIFY_DESCRIBE_MIN_INTERVAL` (2 s) and `ALICERTIFY_UNCLAIMED_DESCRIBE_AFTER` (60 s) are
exercised without sleeping. P1a: init, the verdict is ready, one `POST /result` (50 sessions).
P1b: init, then 100 `GET /result/<id>` polls spread evenly over the face scan (the pending
period, S = 5, 10, 15, 20 and 30 s in turn), then the user finishes and the mini-program posts
`/result`. Beside the default figure: the same run with `ALICERTIFY_UNCLAIMED_DESCRIBE_AFTER = 0`
(the throttle alone) and the naive count (one describe per poll). Also reported: 100 polls spread
over the minute after the confirming result post (what the example mini-program's 刷新结果 button
does).

**P2 and P2peer (time per request).** Three Flask apps in one process, describing over HTTP
against one fake served from another process; SQLite files in one temporary folder, all with the
extension's settings (WAL, `synchronous=NORMAL`, the busy timeout, read from the extension's
connections). *extension*: `AliCertify` as documented (SQLAlchemy storage, a user loader, the
gateway built from `ALICERTIFY_ENDPOINTS`, the quota guard on at a rate the run never reaches, so
its cost per call is counted, and `ALICERTIFY_DESCRIBE_MIN_INTERVAL` 0, so every post takes the
path of a session's first result post: with the default 2 s, repeated posts for one session within
2 s answer the stored state without describing). *peer*: the view a team writes from Alibaba's
samples: the official
`alibabacloud_cloudauth20190307` client built once, a Flask-SQLAlchemy model loaded by certify id
and user (the ownership check), updated and committed, `jsonify`; its answer is built before the
commit, so it does not pay the ORM's reload of expired attributes (a conservative peer).
*minimal*: parse the JSON, `gateway.describe` through our transport (guard off), one raw
`sqlite3` `UPDATE` + commit, `jsonify`: no validation, no ownership read, no state machine. All
post `/result` for sessions that never finish (each request describes once and writes the row: the
peer loads and commits it, the others make one `UPDATE`); the
fake's call count proves every timed request described. No app has a `SECRET_KEY` (the
extension's `ALICERTIFY_PII_KEY` is set instead), so none of them opens a Flask session. Each
request is a fresh WSGI environ
passed to `app.wsgi_app` (building it is not timed); 2,000 requests each after 200 warm-up
requests, interleaved. The parts of the requests are then timed alone (`bench/p2_parts.py`, 300
calls each) for the reading above; `python -m bench.profile` prints them with a cProfile.

**P3, P3quota, P3sqlite (served throughput).** The example backend (`examples/backend/app.py`,
through `bench/p3_wsgi.py`, which adds its demo login and one minimal view) under gunicorn with
threaded workers (`gthread`, 2 processes × 16 threads), configured from the environment as in
production, `ALICERTIFY_ENDPOINTS` pointing at the fake, which adds 60 ms to every answer (a round
trip to cn-shanghai plus Alibaba's work), and `ALICERTIFY_DESCRIBE_MIN_INTERVAL` 0 as in P2. The
load generator (`bench/loadgen.py`, its own process, a small asyncio HTTP/1.1 client that costs
far less CPU per request than httpx's, 48 keep-alive clients, more than the server's threads)
posts `/alicertify/result` with a signed-in
user's bearer token over 100 sessions that never finish, alternating phases of 4 s (3 each, after
a warm-up) with the minimal view served the same way: the app's own login lookup (the call the
extension's user loader makes), describe through our transport, one raw `UPDATE`, `jsonify`.
Figures: the median requests per second ÷ the minimal view's (`P3`), and the extension's absolute
rate (`P3quota`: 50/s means one 2-CPU host can use the whole Describe quota), on PostgreSQL (both
tables in one fresh database); `P3sqlite` is the same ratio on the example's default SQLite file.
The quota guard is off here (`ALICERTIFY_UPSTREAM_QPS=off`): the minimal view has none, and P6
measures the guard. The fake's CPU time is read per phase; above 80 % of one CPU it could be what
limits the rate, and the figure is not counted as met. Errors are non-200 answers, transport
errors and calls the fake rejected.

**P4 (transport vs SDK).** The fake served over real HTTP in a separate process (one server per
client, so connections are counted per client); the `cloudauth` gateway (our signed httpx
transport) and the `sdk` gateway (Alibaba's `alibabacloud_cloudauth20190307` client) each make
500 sequential `describe` calls, alternating, after 20 warm-up calls. Client CPU time per call
(`time.thread_time`) is reported beside the wall time. Then a fresh server counts the TCP
connections a fresh gateway opens for 100 sequential calls.

**P5 (kit speed).** Generated test files run by pytest in subprocesses
(`-p no:cacheprovider`). A `conftest.py` hook sums each test's setup + call + teardown
durations (what `--durations` reports), which leaves out interpreter start-up and collection.
P5a: one test using `alicertify_case` (every row of `CASES`), each building the example
backend with `create_app` wired to `alicertify_cloud` and driving `run_flow`; the figure is the
sum over the matrix (median of 3 runs). P5b: three files of 200 tests: empty, bare pytest-httpx
(`httpx_mock.add_response` with Alibaba's documented Init answer + one signed InitFaceVerify
through a `cloudauth` gateway) and kit (`alicertify_cloud` + the same InitFaceVerify through the
same gateway, which the fake verifies and answers). Per run, the per-test cost is the median test
duration minus the empty test's, and the run's ratio is kit ÷ bare; the figure is the median of 5
alternating runs, with the lowest and highest run beside it.

**P6 (quota guard).** The fake enforces Alibaba's limit, 50 calls per API in any sliding second
(the strictest reading of "per second"), answering the rest HTTP 429 `Throttling.User` as Alibaba
does, and adds the 60 ms of P3. Three servers (gunicorn, one `gthread` worker of 64 threads each:
three hosts, in effect) run the example backend on one PostgreSQL database with the guard at its
defaults (`ALICERTIFY_UPSTREAM_QPS` 50, `ALICERTIFY_UPSTREAM_WAIT` 1 s) and one limiter shared
through Redis (`ALICERTIFY_RATE_LIMIT_URL`); `ALICERTIFY_DESCRIBE_MIN_INTERVAL` is 0, so every
result post asks for a describe (with the default 2 s the burst would not reach the quota).
60 sessions are started well under the quota, then an
open-loop load generator sends `POST /alicertify/init` and `POST /alicertify/result` at 200/s
each (4× the quota), spread evenly over the servers, for 5 s, whatever the answers. The fake logs
every call's arrival time (`time.time()`, one clock for the processes of the host). Figures: the
calls the fake throttled (`P6`), the busiest sliding second per API (`P6window`), the share of
the quota used while the burst was sent, for the API that used less (`P6usage`), and the client
answers that were neither a 200 nor a 429/503 with `Retry-After`, transport errors included
(`P6answers`).
"""

HISTORY = """
## Earlier rounds

Changes measured before the figures above took their present form (the numbers are those runs',
on the same 2-CPU development machine).

**P2 and P3, one statement per result post (P2 1.82× → 1.43–1.51×, P2peer 0.94× → 0.72×,
P3 0.48 → 0.67, P3sqlite 0.67 → 0.81).** A result post used to read the record (to check its
owner before spending an upstream call), claim the describe, then write the client's claim:
three statements. The describe claim now finds the record by its certify id, checks the owner
(user, instance, sandbox mode) in its `WHERE` and stores the client's claim in the same
`UPDATE … RETURNING`; the record is read only when the claim misses (another user's, unknown,
terminal, or within the interval). The P2 apps also stopped differing in `SECRET_KEY`: only the
extension's app had one, so only it paid Flask's session cookie handling (about 0.1 ms).

**P6 (4-6 → 0 calls throttled, busiest second 52-55 → 49-50).** A thread that wakes more than
three intervals after its quota slot gives the slot up and takes the next free one, once (four
runs; 80-92 % of the quota used while sending, from 78-94 %; at one or two intervals more slots
were given up, at four calls were throttled again).

**P1b (10.20 → 2.00 calls).** `GET /result/<id>` no longer describes a record nobody has reported
back on (no client claim) until it is `ALICERTIFY_UNCLAIMED_DESCRIBE_AFTER` (60 s) old: during
the face scan Alibaba can only answer "not finished", and the result post (or the callback)
describes the moment the user is done. An app whose client polls without posting its result sets
the key to 0 and gets the throttle alone.

**P2, in-process fake (3.04× → 2.04×).** One storage write per result post (the claim travels in
the same compare-and-set as what describe said), `UPDATE … RETURNING` where the dialect has it,
statements built once per storage, WAL with `synchronous=NORMAL` for file SQLite: from three
transactions and five statements to two statements, 6.9 ms to 0.9 ms. That figure used the fake
in process, so both sides paid its signature check on their own CPU; P2 now describes over HTTP.

**P3, sync workers ÷ a bare `jsonify` view (0.13 → 0.34).** WAL and one write per request
removed the SQLite lock waits. That figure compared a request that calls upstream with one that
does nothing, on a fake without latency; P3 now compares like with like, at a realistic latency.

**P4a (0.93× → 0.88×).** The transport parses the endpoint's host once, formats `x-acs-date`
with `time.strftime`, hands httpx a ready `ByteStream` and reads `x-acs-retry-after` only on
errors: building and signing a request went from about 80 µs to 35 µs.

**P5b (3.02× → 1.24–1.66×).** Both variants now send the same signed Init (the first version
compared a signed call with an unsigned GET); the fake reads a request's headers once. The
figure moved by ±0.2 between single runs, hence the median of 5 runs now.
"""

OBSTACLES = """
## What stands in the way of the missed targets

Measured in this round on the same 2-CPU machine (`python -m bench.profile` for P2, the P6
runs with the sends logged inside the servers); the figures above are the last run's.

**P2 and P2peer pull against each other.** Both divide by views that share the extension's
upstream round trip, and the round trip (about 1.2-1.5 ms to the fake over loopback) is most of
every request. P2peer ≤ 0.5× asks the extension to take at most half the peer's time: about what
the minimal view itself takes (0.48-0.50× the peer), so no change to the extension alone meets
it; it would take a faster round trip, which in turn makes P2 harder, since P2 is a ratio to a
view that is almost nothing but the round trip. For P2 ≤ 1.3× the extension
may add about 0.36-0.55 ms to the minimal view and adds 0.5-0.9 ms: its one SQLAlchemy
`UPDATE … RETURNING` costs about 0.45 ms against 0.06 ms for the minimal view's raw `sqlite3`
`UPDATE` (SQLAlchemy's connection checkout, parameter and 25-column row processing, and the
record it returns), then the body's validation (marshmallow, about 0.06 ms), the blueprint's hooks,
the user loader and the state machine (about 0.3 ms together). Meeting it would take a raw-DBAPI
statement path beside SQLAlchemy for the hot claim: a second SQL layer to own for about 0.4 ms,
next to Alibaba's own 30-60 ms round trip.

**P3 (≥ 0.9).** With the upstream's 60 ms the server threads wait most of each request, and the
two CPUs (shared by gunicorn, the fake, PostgreSQL and the load generator) are saturated; the ratio
is then close to the ratio of CPU time per request, and the extension's request does more than the
minimal view's (the same parts as in P2; both look up the signed-in user). The absolute rate,
over 4× Alibaba's 50 QPS per account (`P3quota`), is what binds a deployment.

**P6usage (≥ 90 %).** The 4× burst overloads the 2-CPU host: three servers of 64 threads, the
load generator at 400 requests per second, PostgreSQL, Redis and the fake. Logging each call as it
leaves a server shows the crowding inside the servers, after the guard has decided: a thread
whose process had no CPU for a while starts together with those scheduled after it. A sliding
window checked at that very point still let 51-56 calls into one second. The guard now gives up
the slot of a thread that wakes more than three intervals late (see the *Earlier rounds* below),
so nothing is throttled and no second holds more than 50 calls, at the price of the slots given
up while the host is starved: 80-92 % of the quota used. Holding both would take a host that the
burst does not starve of CPU (the slots are then kept), not a different schedule.

**P5b (≤ 1.5×) and P4a (≤ 0.9×) sit at their targets.** Across this round's full runs P5b's
median of five came out 1.25×, 1.50× and 1.75× (single runs 0.98-2.49×), P4a 0.88-0.92×. The
kit's test costs about 0.3 ms more than the bare pytest-httpx one: the fake checks the V3
signature, keeps the session and decides the answer, where pytest-httpx returns a canned
response; the difference between the two is as large as the noise between runs on this machine.
A stable figure needs a quieter machine (or instruction counts), not a cheaper fake: the
signature check is what makes the kit worth using.
"""
