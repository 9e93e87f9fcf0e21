/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

// The report's rows, rendered here and only here from what each measurement
// returned: measuring code fills a *Data value, these functions word it.

import (
	"fmt"
	"maps"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"
)

// v3Data is what V3 measured: the verifier's Go benchmarks.
type v3Data struct{ verify, floor, serve, par *goBenchmark }

func (d v3Data) row() *row {
	verify, floor, serve, par := d.verify, d.floor, d.serve, d.par
	ns, fns := median(verify.nsPerOp), median(floor.nsPerOp)
	allocs := median(verify.allocsPerOp)
	return &row{
		ID: "V3", What: "one verification (the handler's verify, valid key, 100,000 keys held): ns/op, allocs/op",
		Figure: fmt.Sprintf("%.0f ns/op, %.0f allocs/op", ns, allocs),
		Floor:  fmt.Sprintf("%.0f ns/op (SHA-256 of the key)", fns),
		Ratio:  fmt.Sprintf("%.1f×", ns/fns),
		Target: "≤ 1.5 µs/op and ≤ 4 allocs/op", Met: met(ns <= 1500 && allocs <= 4),
		Command: "go " + quoteArgs(v3Args),
		Details: []string{
			fmt.Sprintf("`BenchmarkVerify` (verifier/handler_test.go): %s ns/op, %s allocs/op, %s B/op over %d runs; `BenchmarkDigestFloor`: %s ns/op. Medians reported.",
				floatList(verify.nsPerOp, "%.1f"), floatList(verify.allocsPerOp, "%.0f"), floatList(verify.bytesPerOp, "%.0f"), len(verify.nsPerOp), floatList(floor.nsPerOp, "%.1f")),
			"The ratio is what verifying costs beyond hashing the key: parsing the credential, checking its checksum, the map lookup, the state, path normalisation and the scope match.",
			fmt.Sprintf("The whole handler, from the routed request to the written answer headers (reading the headers, the verification, the answer, the metrics), without the network: `BenchmarkServeHTTP` %.0f ns/op (median of %s), %.0f allocs/op. The same on all %d cores at once for one key (`BenchmarkServeHTTPParallel`): %.0f ns per answer, so %.0f ns of CPU each, where cores that shared nothing would each spend what one core does alone. V1 compares these with a floor made busier by 1 and 2 µs per answer.",
				median(serve.nsPerOp), floatList(serve.nsPerOp, "%.0f"), median(serve.allocsPerOp), runtime.NumCPU(), median(par.nsPerOp), median(par.nsPerOp)*float64(runtime.NumCPU())),
		},
	}
}

// c3Data is what C3 measured: per key, create → accepted and delete →
// refused.
type c3Data struct {
	n              int
	accept, refuse []time.Duration
}

func (d c3Data) row(command string) *row {
	n, accept, refuse := d.n, d.accept, d.refuse
	a99, r99 := pct(accept, 0.99), pct(refuse, 0.99)
	return &row{
		ID: "C3", What: fmt.Sprintf("APIKey created → accepted by the verifier; deleted → refused (%d keys): p50 / p99", n),
		Figure: fmt.Sprintf("accepted %s / %s; refused %s / %s", fmtDur(pct(accept, 0.5)), fmtDur(a99), fmtDur(pct(refuse, 0.5)), fmtDur(r99)),
		Floor:  "—", Ratio: "—", Target: "p99 ≤ 200 ms each", Met: met(a99 <= 200*time.Millisecond && r99 <= 200*time.Millisecond),
		Command: command,
		Details: []string{
			"The manager (admission webhooks on) runs in the benchmark's process and a verifier (`verifier.Start`) beside it, both against the control plane. For each key in turn: create the APIKey; read its plaintext from the delivery Secret as soon as a watch shows it; ask the verifier every 1 ms until it answers 200 — accepted is the time from the create call. Then (untimed) set the `keyward.dev/confirm-delete` annotation that deletion protection asks for once a key has been used, delete the APIKey and ask every 1 ms until 401 — refused is the time from the delete call.",
			fmt.Sprintf("Accepted: max %s. Refused: max %s.", fmtDur(pct(accept, 1)), fmtDur(pct(refuse, 1))),
		},
	}
}

// v45Data is what V5 and V4 measured: verifier starts with and without the
// keys, in the benchmark's child and as the keyward binary.
type v45Data struct {
	hk                 hashedKeys
	readies            []time.Duration
	heaps              []float64
	gcs                []time.Duration
	empty              verifierInfo
	realBig, realEmpty keywardStart
}

func (d v45Data) v5Row(command string) *row {
	hk, readies, realBig := d.hk, d.readies, d.realBig
	ready := median(readies)
	return &row{
		ID: "V5", What: fmt.Sprintf("verifier start → ready, %s keys", thousands(hk.Created)),
		Figure: fmtDur(ready), Floor: "—", Ratio: "—", Target: "≤ 5 s", Met: met(ready <= 5*time.Second),
		Command: command,
		Details: []string{
			loadedHow(hk),
			fmt.Sprintf("From `verifier.Start` to the first 200 of `/readyz` (polled every 1 ms), in a fresh process each time: %s; median %s.", durList(readies), fmtDur(ready)),
			fmt.Sprintf("`keyward verifier` (the binary, built with `go build`), from exec to the first 200 of `/readyz`: %s.", fmtDur(realBig.ready)),
		},
	}
}

func (d v45Data) v4Row(command string) *row {
	hk, heaps, gcs, empty, realBig, realEmpty := d.hk, d.heaps, d.gcs, d.empty, d.realBig, d.realEmpty
	n := float64(hk.Created)
	perKey := (median(heaps) - float64(empty.HeapAlloc)) / n
	return &row{
		ID: "V4", What: fmt.Sprintf("verifier heap per key, %s keys vs 0, after GC", thousands(hk.Created)),
		Figure: fmt.Sprintf("%.0f B/key", perKey), Floor: fmt.Sprintf("%.1f MiB at 0 keys", float64(empty.HeapAlloc)/(1<<20)), Ratio: "—",
		Target: "≤ 1 KiB/key", Met: met(perKey <= 1024), Command: command,
		Details: []string{
			fmt.Sprintf("`runtime.MemStats.HeapAlloc` after two `runtime.GC()` once ready, in the verifier process fed by its reflector from the control plane: %s at 0 keys; %s with %s keys (median of 3 starts: %s).",
				mib(float64(empty.HeapAlloc)), mib(median(heaps)), thousands(hk.Created), mibList(heaps)),
			fmt.Sprintf("`keyward verifier` (the binary), `go_memstats_heap_alloc_bytes` from its /metrics once ready, no forced GC (so garbage of the initial list is included): %s at 0 keys, %s with %s keys: %.0f B/key, an upper bound.",
				mib(realEmpty.heap), mib(realBig.heap), thousands(hk.Created), (realBig.heap-realEmpty.heap)/n),
			fmt.Sprintf("The memory a pod needs to start: `keyward verifier`'s resident high-water mark (VmHWM) once ready is %s with %s keys, %s at 0 keys. It is reached during the initial list, which holds the API server's Secrets before they are compacted into the store.",
				mib(realBig.peak), thousands(hk.Created), mib(realEmpty.peak)),
			fmt.Sprintf("What the garbage collector spends on that heap, which it marks while requests are answered: one full collection takes %s of CPU with %s keys (median of the 3 starts: %s), %s at 0 keys (runtime/metrics `/cpu/classes/gc/total`, over 5 `runtime.GC()`). The store keeps its keys in large chunks with three pointers each, their strings cut from shared arenas, and maps that hold positions rather than pointers, so that this stays small (verifier/store.go).",
				fmtDur(median(gcs)), thousands(hk.Created), durList(gcs), fmtDur(empty.GCCPU)),
		},
	}
}

// v7Data is V7: the keyward binary's resident memory at its peak (the
// initial list) and settled, with the keys and without.
type v7Data struct {
	keys       int
	big, empty keywardStart
}

func (d v7Data) row(command string) *row {
	ratio := d.big.peak / d.big.settled
	return &row{
		ID: "V7", What: fmt.Sprintf("`keyward verifier`'s resident memory at its peak vs settled, %s keys", thousands(d.keys)),
		Figure: fmt.Sprintf("peak %s", mib(d.big.peak)), Floor: fmt.Sprintf("settled %s", mib(d.big.settled)),
		Ratio: fmt.Sprintf("%.2f×", ratio), Target: "≤ 1.5×", Met: met(ratio <= 1.5), Command: command,
		Details: []string{
			fmt.Sprintf("The binary as shipped (GOMEMLIMIT from the Deployment's 512Mi limit), started over %s hashed Secrets: peak is its VmHWM, settled its VmRSS, both read 3 s after `/readyz` first answered 200; the verifier gives the first list's garbage back to the OS (`debug.FreeOSMemory`) once synced. At 0 keys: peak %s, settled %s.",
				thousands(d.keys), mib(d.empty.peak), mib(d.empty.settled)),
			fmt.Sprintf("Per key settled: %.0f B (VmRSS with the keys minus without, over the keys).", (d.big.settled-d.empty.settled)/float64(max(d.keys, 1))),
			"The hashed Secrets are listed in one request read as a stream, each Secret put into the store as it is decoded (verifier/feed.go, verifier/secretpage.go): no whole list is held, which client-go's reflector would (it gathers the list, or a streamed list's initial events, before handing it over).",
		},
	}
}

// v2Data is what V2 or V2b measured: nginx auth_request to the verifier and
// to a Go server that does nothing, against nginx's own `return 200;`.
type v2Data struct {
	id, what, how            string
	floor, verifier, goFloor stat
	nginx                    string
	workers, keys            int
	opts                     options
	rounds                   []string // the per-round figures, on V2's row
}

func (d v2Data) row(command string) *row {
	f, k, g := d.floor, d.verifier, d.goFloor
	common := []string{
		fmt.Sprintf("nginx %s from test/e2e (ingress-nginx's nginx.tmpl for one auth-url rule, auth-response-headers X-Auth-*), %d worker processes, in front of the same Go upstream answering `ok`. Floor: the auth location says `return 200;` (AuthReturn200). Keyward: the auth location proxies to the verifier of V1 (%s keys).",
			d.nginx, d.workers, thousands(d.keys)),
		fmt.Sprintf("Same load generator: %d keep-alive connections to nginx, %s per run, %d rounds alternating five nginx: the floor, and auth to the verifier or to V1's Go floor server (which answers 200 with the same headers and does nothing else), each without and with auth-keepalive; medians.", d.opts.conns, d.opts.duration, d.opts.rounds),
	}
	ratio := k.rps / f.rps
	r := &row{
		ID: d.id, What: d.what, Figure: figure(k), Floor: figure(f),
		Ratio: fmt.Sprintf("%.2f× req/s; %.2f× p99 (auth to a Go server that does nothing: %.2f×)",
			ratio, float64(k.p99)/float64(f.p99), g.rps/f.rps),
		Target: "≥ 0.90× req/s", Met: met(ratio >= 0.90), Command: command,
		Details: append(append([]string{d.how}, common...),
			fmt.Sprintf("nginx → Go floor server, the same way: %s, %.2f× the floor; the verifier reaches %.2f× of it.", figure(g), g.rps/f.rps, k.rps/g.rps),
			fmt.Sprintf("Auth server CPU time per request: verifier %s, Go floor server %s.", usPerReq(k.cpu), usPerReq(g.cpu))),
	}
	if g.rps/f.rps < 0.90 {
		r.Details = append(r.Details, fmt.Sprintf("The target is out of reach of any auth service behind `auth_request` here: one that does nothing at all gets %.2f× of `return 200;`, because nginx makes a second proxied HTTP exchange for every request (and, without auth-keepalive, a new TCP connection), on the same cores. The verifier's share is its ratio to that server: %.2f×.", g.rps/f.rps, k.rps/g.rps))
	}
	r.Details = append(r.Details, d.rounds...)
	return r
}

// v1Data is what V1 measured: the verifier, the floor and their controls
// under saturating load, and the floor and verifier under light load.
type v1Data struct {
	floor, verifier, timed, one stat
	busy                        []stat // the floors busier by busyFloors
	lightFloor, lightVerifier   stat
	keys                        int
	handler                     handlerTimes // the verifier's own time per request
	answers                     answerPair   // one answer of each, compared
	hz                          int          // the kernel's scheduler tick rate
	opts                        options
	rounds                      []string
}

func (d v1Data) row(command string) *row {
	f, k, t, o := d.floor, d.verifier, d.timed, d.one
	lf, lk := d.lightFloor, d.lightVerifier
	var busyText []string
	var busiest stat
	for i, bs := range d.busy {
		busiest = bs
		busyText = append(busyText, fmt.Sprintf("%s more: %s, server CPU %s — %.2f× the floor's req/s, **%.2f× its p99**",
			busyFloors[i], figure(bs), usPerReq(bs.cpu), bs.rps/f.rps, float64(bs.p99)/float64(f.p99)))
	}
	same, handlerTime := d.answers.text(), d.handler.text()
	handlerNote := "The handler's own tail reaches the requests' p99: the time is spent in it."
	if d.handler.slowShare() < 0.01 {
		handlerNote = "Fewer than 1% of requests spend over 1 ms in the handler, so the milliseconds at the requests' p99 are spent outside it: waiting for a core, which the load generator and the servers share on this machine."
	}
	rpsRatio, p99Ratio := k.rps/f.rps, float64(k.p99)/float64(f.p99)
	busyRatio := ""
	if n := len(d.busy); n > 0 {
		busyRatio = fmt.Sprintf("; a floor busy %s more per answer: %.2f× p99", busyFloors[n-1], float64(busiest.p99)/float64(f.p99))
	}
	return &row{
		ID: "V1", What: fmt.Sprintf("verifier, keep-alive, %s keys, a valid key: req/s; p50 / p99", thousands(d.keys)),
		Figure: figure(k), Floor: figure(f),
		Ratio:  fmt.Sprintf("%.2f× req/s; %.2f× p99 (light load: %.2f× p99%s)", rpsRatio, p99Ratio, float64(lk.p99)/float64(lf.p99), busyRatio),
		Target: "≥ 0.85× req/s; p99 ≤ 1.2×", Met: met(rpsRatio >= 0.85 && p99Ratio <= 1.2),
		Command: command,
		Details: append([]string{
			fmt.Sprintf("Load generator: test/bench, %d keep-alive connections, closed loop, %s measured after %s warm-up, %d rounds alternating floor and verifier; medians reported. Both servers are separate processes on 127.0.0.1 and share the machine's %d cores with the load generator (and with whatever else runs on the machine, which is what makes rounds differ).",
				d.opts.conns, d.opts.duration, d.opts.warmup, d.opts.rounds, runtime.NumCPU()),
			"Floor: a net/http server (`bench floor`) answering 200 with the same X-Auth-* headers and `Content-Length: 0`. Verifier: `verifier.Start` as `keyward verifier` runs it (`bench verifier`).",
			"Request: `GET " + verifyPath + "` with `Authorization: Bearer <key>`, `X-Original-Method`, `X-Original-URL`, as ingress-nginx sends it. " + same,
			fmt.Sprintf("Server CPU time per request (user + system, from /proc; less sensitive to the machine's other load than req/s): floor %s, verifier %s (%.2f×).",
				usPerReq(f.cpu), usPerReq(k.cpu), float64(k.cpu)/float64(f.cpu)),
			fmt.Sprintf("A third server, alternated with the two: the floor's handler in an http.Server with the verifier's settings (ReadTimeout and WriteTimeout 10 s, IdleTimeout 2 min, MaxHeaderBytes 32 KiB): %s, server CPU %s — %.2f× the floor's req/s, %.2f× its p99. What remains between it and the verifier is the verifier's handler.",
				figure(t), usPerReq(t.cpu), t.rps/f.rps, float64(t.p99)/float64(f.p99)),
			fmt.Sprintf("A fourth: the verifier, the same binary and settings, holding only the key asked about instead of %s (its heap a few MiB): %s, server CPU %s — %.2f× the floor's req/s, %.2f× its p99, where the verifier with every key has %.2f×. Between these two, only the heap the garbage collector marks differs; between this one and the third server, the handler and what runs beside it in the process (reflectors, probes, metrics).",
				thousands(d.keys), figure(o), usPerReq(o.cpu), o.rps/f.rps, float64(o.p99)/float64(f.p99), p99Ratio),
			"The verifier's own time per request, from routing to the written answer (`keyward_verifier_request_duration_seconds`, every request of the rounds above): " + handlerTime + ". " + handlerNote,
			fmt.Sprintf("The tail: share of requests slower than %s (medians over rounds): floor %s; verifier %s; floor with the verifier's timeouts %s; verifier holding one key %s.%s",
				overMarksText(), f.tail(), k.tail(), t.tail(), o.tail(), tickText(d.hz, d.opts.conns)),
			fmt.Sprintf("Stalls: of the requests slower than %s, %.0f%% (floor) and %.0f%% (verifier) were slow while at least half of the %d connections were waiting over %s too: moments when the server process, or the load generator, was off the CPU for all of them, rather than one answer being slow (medians over rounds; the verifier holding one key %.0f%%).",
				fmtDur(stallMark), 100*f.stalled, 100*k.stalled, d.opts.conns, fmtDur(stallMark), 100*o.stalled),
			busyNote(busyText),
			fmt.Sprintf("Light load, %d keep-alive connections (the same servers, %d rounds alternating): floor %s; verifier %s — %.2f× req/s, %.2f× p50, %.2f× p99. Server CPU per request: floor %s, verifier %s.",
				lightConns, d.opts.rounds, figure(lf), figure(lk), lk.rps/lf.rps, float64(lk.p50)/float64(lf.p50), float64(lk.p99)/float64(lf.p99), usPerReq(lf.cpu), usPerReq(lk.cpu)),
		}, d.rounds...),
	}
}

// c1aData is what C1a measured: APIKeys created through the admission
// webhooks with no controller acting, around two runs of C1's floor.
type c1aData struct {
	keys     int
	took     time.Duration
	floors   []time.Duration
	cpu      map[string]time.Duration
	floorCPU []map[string]time.Duration // of each floor run
	// statusCPU and eventCPU are the issuance's other writes, on the
	// same keys: their status and an Issued event each.
	statusCPU, eventCPU map[string]time.Duration
	phases              []string
}

// floorPerKey is the floor's CPU per key, the mean of its two runs.
func (d c1aData) floorPerKey() time.Duration {
	return (cpuPerKey(d.floorCPU[0], d.keys) + cpuPerKey(d.floorCPU[1], d.keys)) / 2
}

// least is the CPU per key of the writes the design asks of every issued
// key: the APIKey through admission, its two Secrets (the floor's), its
// status and its Issued event. C4 cannot be lower.
func (d c1aData) least() time.Duration {
	return cpuPerKey(d.cpu, d.keys) + d.floorPerKey() + cpuPerKey(d.statusCPU, d.keys) + cpuPerKey(d.eventCPU, d.keys)
}

// bound is the highest ratio C1 can reach: floor CPU ÷ the least CPU an
// issued key takes, when CPU is what limits both.
func (d c1aData) bound() float64 {
	return ceiling(d.floorPerKey(), d.least()-d.floorPerKey())
}

func (d c1aData) row(command string) *row {
	n, took, floors, cpu := d.keys, d.took, d.floors, d.cpu
	floorRate := float64(n) / median(floors).Seconds()
	rate := float64(n) / took.Seconds()
	return &row{
		ID: "C1a", What: fmt.Sprintf("%s APIKeys created at once through the admission webhooks, no controller acting (C1's ceiling)", thousands(n)),
		Figure: fmt.Sprintf("%.0f keys/s (%s for %s)", rate, fmtDur(took), thousands(n)),
		Floor:  fmt.Sprintf("%.0f keys/s (%.0f Secrets/s)", floorRate, 2*floorRate),
		Ratio:  fmt.Sprintf("%.2f×", rate/floorRate), Target: "—", Met: "—", Command: command,
		Details: []string{
			fmt.Sprintf("The manager restarted with leader election while the bench holds its lease: the webhooks (mutating, validating with a SubjectAccessReview per scope) answer, no controller runs. The same client as C1, %d at a time, creates the APIKeys; nothing issues them (phases after: %s).", createConns, strings.Join(d.phases, "; ")),
			fmt.Sprintf("Floor as in C1, measured around it: %s.", durList(floors)),
			fmt.Sprintf("CPU per key, bench process + kube-apiserver + etcd: APIKeys through admission %s; the floor's two Secrets %s, %s; then, on the same keys, their status written as the controller writes it (a merge patch of the status subresource, copied from a key C1 issued) %s, and an Issued event each like C1's %s.",
				fmtDur(cpuPerKey(cpu, n)), fmtDur(cpuPerKey(d.floorCPU[0], n)), fmtDur(cpuPerKey(d.floorCPU[1], n)), fmtDur(cpuPerKey(d.statusCPU, n)), fmtDur(cpuPerKey(d.eventCPU, n))),
			fmt.Sprintf("These are the writes the design asks of every issued key (DESIGN §2, §3: the APIKey through both webhooks, its hashed and delivery Secrets, its Ready status, its Issued event), timed apart from any controller: **%s per key** together, before the controller's reconcile, its watches and its grant re-check. So C4 is at least that, and on a machine whose cores are all busy (this one, in C1) C1's ratio is at most floor CPU ÷ that = **%.2f×**.",
				fmtDur(d.least()), d.bound()),
			fmt.Sprintf("CPU used while creating the APIKeys: %s; writing their status: %s; their events: %s.", fmtCPU(cpu), fmtCPU(d.statusCPU), fmtCPU(d.eventCPU)),
		},
	}
}

// c1Row renders C1 or C1b from res.
// profileShares is a saved CPU profile and its cumulative shares.
type profileShares struct{ path, shares string }

// boundNote is what C1a's ceiling adds to C1's and C1b's ratios.
func boundNote(bound float64) string {
	return fmt.Sprintf("; at most %.2f× for the writes every key takes (C1a)", bound)
}

// floorProfileNote points to the floor's profile beside a missed row's.
func floorProfileNote(path string) string {
	return fmt.Sprintf("The floor's CPU profile under the same load, for comparison: `%s`.", path)
}

func (res *c1Result) c1Row(id, shape, command string, apiserver profileShares) *row {
	rate := float64(res.ready) / res.took.Seconds()
	floorTook := median(res.floor)
	floorRate := float64(res.keys) / floorTook.Seconds()
	ratio := rate / floorRate
	p99 := pct(res.latencies, 0.99)
	figure := fmt.Sprintf("%.0f keys/s (%s for %s); create → Ready p99 %s", rate, fmtDur(res.took), thousands(res.keys), fmtDur(p99))
	if res.timedOut {
		figure = fmt.Sprintf("%.0f keys/s (only %d/%d Ready after %s)", rate, res.ready, res.keys, fmtDur(res.took))
	}
	r := &row{
		ID: id, What: fmt.Sprintf("%s APIKeys applied at once until all Ready (%s)", thousands(res.keys), shape),
		Figure: figure, Floor: fmt.Sprintf("%.0f keys/s (%.0f Secrets/s)", floorRate, 2*floorRate),
		Ratio:  fmt.Sprintf("%.2f× (%.2f× of the Secrets/s)", ratio, ratio/2),
		Target: "≥ 0.30×; p99 ≤ 3 s", Met: met(ratio >= 0.30 && p99 <= 3*time.Second && !res.timedOut), Command: command,
		Details: []string{
			fmt.Sprintf("The manager (`manager.New`, its default workers per controller, client-side rate limit off as `ctrl.GetConfig` has it in a cluster; a token of the ServiceAccount keyward-manager, authorised by its shipped roles, config/rbac/role.yaml) runs in the benchmark's process against a control plane the controller rows have to themselves (the verifier rows' 100,000 Secrets are on another, stopped before it starts). The APIKeys are created by one controller-runtime client, %d at a time; the figure runs from the first create to the last key seen Ready by an informer.", createConns),
			fmt.Sprintf("Floor: the same client, %d keys at a time, creating the Secrets keyward writes for each key directly (its delivery Secret and its hashed Secret, %s Secrets in all): %s (once before and once after the keys); median %s. Counted in Secrets instead of keys (the reading where the floor is one Secret per key), the ratio is the one in brackets.",
				createConns, thousands(2*res.keys), durList(res.floor), fmtDur(floorTook)),
			fmt.Sprintf("Per key, create → Ready: p50 %s, p99 %s, max %s.", fmtDur(pct(res.latencies, 0.5)), fmtDur(pct(res.latencies, 0.99)), fmtDur(pct(res.latencies, 1))),
			fmt.Sprintf("CPU used during the run: %s; per key %s, against the floor's %s.", fmtCPU(res.cpu), fmtDur(cpuPerKey(res.cpu, res.keys)), fmtDur(cpuPerKey(res.floorCPU[0], res.keys))),
			webhookNote(res),
		},
	}
	if res.requests != "" {
		r.Details = append(r.Details, "Requests kube-apiserver served per key, from the first create until the writes settled (apiserver_request_total, every client: the bench's creates and watches, the manager, its webhooks' SubjectAccessReviews, events): "+res.requests+".")
	}
	if apiserver.path != "" {
		r.Details = append(r.Details, fmt.Sprintf("kube-apiserver's CPU profile over the run's first %s (`go tool pprof -top -cum %s`), cumulative shares: %s.", fmtDur(apiserverProfileTime), apiserver.path, apiserver.shares))
	}
	if res.stuck != "" {
		r.Details = append(r.Details, "Not Ready when the wait ended, by phase/reason: "+res.stuck+".")
	}
	return r
}

// c4Row renders C4 from C1's run: CPU per issued key.
func (res *c1Result) c4Row(command, writeCosts string) *row {
	per := cpuPerKey(res.cpu, res.keys)
	floor := cpuPerKey(res.floorCPU[0], res.keys)
	r := &row{
		ID: "C4", What: "CPU per issued key: bench process (manager, webhooks, the creating client), kube-apiserver and etcd (C1's run)",
		Figure: fmt.Sprintf("%s per key", fmtDur(per)), Floor: fmt.Sprintf("%s per key (its two Secrets written directly)", fmtDur(floor)),
		Ratio: fmt.Sprintf("%.1f×", float64(per)/float64(floor)), Target: "≤ 15 ms per key", Met: met(per <= 15*time.Millisecond && !res.timedOut), Command: command,
		Details: []string{
			fmt.Sprintf("CPU from the first create until the last key was Ready (user + system, from /proc): %s, for %s keys. The bench process holds the manager and its webhooks, and also the client that creates the APIKeys and the informer that watches them become Ready: their share is in the figure.", fmtCPU(res.cpu), thousands(res.keys)),
		},
	}
	if res.requests != "" {
		r.Details = append(r.Details, "Requests kube-apiserver served per key: "+res.requests+".")
	}
	if writeCosts != "" {
		r.Details = append(r.Details, writeCosts)
	}
	return r
}

// webhookNote says who added the finalizers during a C1 run.
func webhookNote(res *c1Result) string {
	return fmt.Sprintf("Admission webhooks on (config/webhook/manifests.yaml, served by the manager over envtest's TLS): every APIKey goes through the mutating webhook, which adds the finalizer at creation, and the validating one (limits, scopes, a SubjectAccessReview per scope granted). Finalizer patches left to the controller: %d for %d keys.", res.finalizerPatches, res.keys)
}

// c2Row renders C2 from C1's run.
func (res *c1Result) c2Row(command string) *row {
	per := float64(res.writesTotal) / float64(res.keys)
	return &row{
		ID: "C2", What: "API writes per issued key (C1's run)", Figure: fmt.Sprintf("%.2f writes/key", per),
		Floor: "—", Ratio: "—", Target: "≤ 4", Met: met(per <= 4), Command: command,
		Details: append([]string{
			fmt.Sprintf("Every write of the manager's client (create, update, patch, apply, delete, status) counted with an interceptor (controllers/suite_test.go's), from the first APIKey created until 2 s without a write: %d writes for %s keys. Events are written by the event recorder's own client and not counted.", res.writesTotal, thousands(res.keys)),
			"Breakdown:",
		}, indent(res.writes)...),
	}
}

// resyncData is what C2-resync measured: a new manager over C1's idle keys.
type resyncData struct {
	keys       int
	reconciles float64
	writes     int64
	settled    time.Duration
	breakdown  []string
}

func (d resyncData) row(command string) *row {
	return &row{
		ID: "C2-resync", What: fmt.Sprintf("API writes during a resync of %s idle keys (manager restarted)", thousands(d.keys)),
		Figure: fmt.Sprintf("%d writes", d.writes), Floor: "—", Ratio: "—", Target: "0", Met: met(d.writes == 0), Command: command,
		Details: append([]string{
			fmt.Sprintf("The manager stopped and a new one started over the %s Ready keys of C1; it reconciled every key (%0.f APIKey reconciles, all keys done %s after start), then 3 s passed without a reconcile.", thousands(d.keys), d.reconciles, fmtDur(d.settled)),
		}, indent(d.breakdown)...),
	}
}

// loadedHow says how the hashed Secrets came to be in the control plane.
func loadedHow(hk hashedKeys) string {
	s := fmt.Sprintf("%s hashed Secrets in the record format the manager writes (100 applications, one scope) exist in the operator namespace beforehand. The first %s were created through the API server with a protobuf clientset, 48 at a time: %s, %.0f Secrets/s (CPU: %s).",
		thousands(hk.Created), thousands(hk.ThroughAPI), fmtDur(hk.APITook), float64(hk.ThroughAPI)/hk.APITook.Seconds(), fmtCPU(hk.APICPU))
	if hk.Created > hk.ThroughAPI {
		s += fmt.Sprintf(" At that rate all %s would take %s of the run's budget, so the other %s were put straight into the control plane's etcd in the API server's storage encoding, each a copy of one the API server stored (managedFields included) with its own name, UID, labels and record: %s. The API server's watch cache takes them from etcd like any other write; the verifier lists them through the API server.",
			thousands(hk.Created), fmtDur(time.Duration(float64(hk.Created)/float64(hk.ThroughAPI)*float64(hk.APITook))), thousands(hk.Created-hk.ThroughAPI), fmtDur(hk.EtcdTook))
	}
	return s
}

// handlerTimes is the verifier's request duration histogram, read once.
type handlerTimes struct {
	count, within5us, within25us, over1ms float64
	err                                   string
}

func (h handlerTimes) text() string {
	switch {
	case h.err != "":
		return "not read: " + h.err
	case h.count == 0:
		return "no requests counted"
	}
	pct := func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v/h.count) }
	return fmt.Sprintf("%s within 5 µs, %s within 25 µs, %s over 1 ms, of %.0f requests",
		pct(h.within5us), pct(h.within25us), pct(h.over1ms), h.count)
}

// slowShare is the share of requests over 1 ms in the handler; 1 when
// unknown.
func (h handlerTimes) slowShare() float64 {
	if h.err != "" || h.count == 0 {
		return 1
	}
	return h.over1ms / h.count
}

// answerPair is one answer of the floor and one of the verifier.
type answerPair struct {
	floorStatus, status int
	floorHeader, header http.Header
	err                 string
}

func (a answerPair) text() string {
	if a.err != "" {
		return a.err
	}
	names := slices.Sorted(maps.Keys(a.header))
	if a.floorStatus != a.status || !maps.EqualFunc(a.floorHeader, a.header, slices.Equal[[]string]) {
		return fmt.Sprintf("**The two answers differ**: floor %d %v, verifier %d %v.", a.floorStatus, a.floorHeader, a.status, a.header)
	}
	return fmt.Sprintf("Both answer %d with the same headers (%s) and no body.", a.status, strings.Join(names, ", "))
}

// tickText says how often this kernel's scheduler ticks, when it could
// tell: a thread that loses its core waits for about a tick, which is
// where a saturated run's tail gathers.
func tickText(hz, conns int) string {
	if hz == 0 {
		return ""
	}
	return fmt.Sprintf(" This kernel's scheduler ticks every %s (CONFIG_HZ=%d); with %d connections the load generator and the server contend for the %d cores. Where the tail is nearly flat, around one tick, a few tenths of a percentage point more or fewer requests move the p99 by about a millisecond.", time.Second/time.Duration(hz), hz, conns, runtime.NumCPU())
}

// t1Data is what T1 measured: Traefik's forwardAuth to the verifier and to
// a server that does nothing (also with the verifier's server timeouts),
// and Traefik with no middleware.
type t1Data struct {
	floor, verifier, timed, alone stat
	traefik                       string
	keys                          int
	opts                          options
	rounds                        []string
}

func (d t1Data) row(command string) *row {
	f, k, t, a := d.floor, d.verifier, d.timed, d.alone
	ratio := k.rps / f.rps
	return &row{
		ID: "T1", What: fmt.Sprintf("through a real Traefik's forwardAuth (docs/traefik.md's middleware), %s keys: req/s; p50 / p99", thousands(d.keys)),
		Figure: figure(k), Floor: figure(f),
		Ratio:  fmt.Sprintf("%.2f× req/s; %.2f× p99", ratio, float64(k.p99)/float64(f.p99)),
		Target: "≥ 0.90× req/s", Met: met(ratio >= 0.90), Command: command,
		Details: append([]string{
			fmt.Sprintf("Traefik %s, built from the Go module proxy by hack/traefik.sh, started by test/e2e's harness: one entryPoint on 127.0.0.1, the file provider, a router for every path through the forwardAuth middleware of docs/traefik.md (authRequestHeaders, the five X-Auth-* in authResponseHeaders, trustForwardHeader false, maxResponseBodySize) to one Go upstream answering `ok`, a process of its own.", d.traefik),
			fmt.Sprintf("Floor: the same Traefik and middleware asking `bench floor`, a net/http server that answers 200 with the same X-Auth-* headers and does nothing else. Keyward: asking `bench verifier` (`verifier.Start` as `keyward verifier` runs it) holding %s keys.", thousands(d.keys)),
			fmt.Sprintf("Same load generator: %d keep-alive connections to Traefik, %s measured after %s warm-up, %d rounds alternating four Traefik: the floor, the verifier, the floor with the verifier's server timeouts, and Traefik with no middleware; medians.", d.opts.conns, d.opts.duration, d.opts.warmup, d.opts.rounds),
			"Traefik's forwardAuth calls the auth server with Go's `http.DefaultTransport` (v3.6.12, pkg/middlewares/auth/forward.go), which keeps at most 2 idle connections per host: with more requests in flight, many calls open a new TCP connection (over half, with 16 clients), so the auth servers' CPU per request below includes accepting and closing connections.",
			fmt.Sprintf("Auth server CPU time per request: verifier %s, floor %s, floor with the verifier's timeouts %s.", usPerReq(k.cpu), usPerReq(f.cpu), usPerReq(t.cpu)),
			fmt.Sprintf("The floor run with the verifier's http.Server settings (ReadTimeout and WriteTimeout 10 s, IdleTimeout 2 min, MaxHeaderBytes 32 KiB): %s, %.2f× the floor's req/s; the verifier reaches %.2f× of it.", figure(t), t.rps/f.rps, k.rps/t.rps),
			fmt.Sprintf("Traefik with no middleware: %s. Asking an auth server costs Traefik a second HTTP exchange per request: with the do-nothing server it reaches %.2f× of that, with the verifier %.2f×.", figure(a), f.rps/a.rps, k.rps/a.rps),
		}, d.rounds...),
	}
}
