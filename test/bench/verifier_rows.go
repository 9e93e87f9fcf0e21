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

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/test/e2e"
	"github.com/keyward/keyward/test/testgen"
)

// Names used by the verifier rows.
const (
	benchTenant   = "bench-tenant"
	benchGroup    = "things"
	benchOps      = "bench-ops-keys"
	benchOpsEmpty = "bench-ops-empty"
	benchOpsOne   = "bench-ops-one" // only the valid key: V1's heap-size control
	verifyPath    = "/v1/verify/" + benchTenant + "/" + benchGroup
)

// authResponseHeaders are ingress-nginx's auth-response-headers for keyward.
var authResponseHeaders = []string{"X-Auth-Application", "X-Auth-Key", "X-Auth-Scopes", "X-Auth-Namespace", "X-Auth-External-ID"}

// runVerifier loads the hashed Secrets into the control plane and measures
// V5 and V4 (verifier starts), then V1 and V2 (load) against the last one.
func (b *bench) runVerifier(ctx context.Context) error {
	c := b.cluster
	if err := c.client.Create(ctx, testgen.KeyGroup(benchTenant, benchGroup)); err != nil {
		return err
	}
	logf("loading %d hashed Secrets", b.opts.keys)
	hk, err := c.loadHashedSecrets(ctx, benchOps, benchTenant, benchGroup, b.opts.keys, b.opts.viaAPI)
	if err != nil {
		return err
	}

	ver, err := b.startsAndHeap(hk)
	if err != nil {
		return err
	}
	defer ver.stop()
	if !b.opts.want("V1", "V2") {
		return nil
	}
	floor := floorInfo{}
	fl, err := startChild(cmdFloor, &floor, cmdFloor, "-key-id", hk.ValidID, "-namespace", benchTenant)
	if err != nil {
		return err
	}
	defer fl.stop()
	floor.pid, ver.info.pid = fl.cmd.Process.Pid, ver.cmd.Process.Pid
	if b.opts.want("V1") {
		var timed floorInfo
		ft, err := startChild(cmdFloor, &timed, cmdFloor, "-key-id", hk.ValidID, "-namespace", benchTenant, "-verifier-timeouts")
		if err != nil {
			return err
		}
		defer ft.stop()
		timed.pid = ft.cmd.Process.Pid
		one, stopOne, err := b.verifierWithOneKey(ctx, hk)
		if err != nil {
			return err
		}
		defer stopOne()
		v1 := v1Servers{floor: floor, timed: timed, ver: ver.info, one: one}
		for _, d := range busyFloors {
			var bf floorInfo
			c, err := startChild(cmdFloor, &bf, cmdFloor, "-key-id", hk.ValidID, "-namespace", benchTenant, "-busy", d.String())
			if err != nil {
				return err
			}
			defer c.stop()
			bf.pid = c.cmd.Process.Pid
			v1.busy = append(v1.busy, bf)
		}
		if err := b.runV1(v1, hk); err != nil {
			return err
		}
	}
	if b.opts.want("V2") {
		// The upstream runs in a process of its own, so that the Go floor
		// server's CPU time per request is its own.
		var up floorInfo
		uc, err := startChild("upstream", &up, cmdFloor)
		if err != nil {
			return err
		}
		defer uc.stop()
		if err := b.runV2(floor, up.Upstream, ver.info, hk); err != nil {
			return err
		}
	}
	return nil
}

// handlerHistogram reads the verifier's request duration histogram from
// its /metrics: how many requests took at most 5 µs, at most 25 µs, and
// more than 1 ms, of how many.
func handlerHistogram(probe string) handlerTimes {
	resp, err := http.Get("http://" + probe + "/metrics") // #nosec G107 -- the child's loopback probe port
	if err != nil {
		return handlerTimes{err: err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return handlerTimes{err: err.Error()}
	}
	buckets := map[string]float64{}
	var h handlerTimes
	for _, l := range strings.Split(string(body), "\n") {
		const name = "keyward_verifier_request_duration_seconds"
		if rest, ok := strings.CutPrefix(l, name+`_bucket{le="`); ok {
			le, v, _ := strings.Cut(rest, `"} `)
			buckets[le], _ = strconv.ParseFloat(v, 64)
		} else if v, ok := strings.CutPrefix(l, name+"_count "); ok {
			h.count, _ = strconv.ParseFloat(v, 64)
		}
	}
	h.within5us, h.within25us, h.over1ms = buckets["5e-06"], buckets["2.5e-05"], h.count-buckets["0.001"]
	return h
}

// verifierWithOneKey starts a verifier child holding only the valid key:
// the same code with a heap of about 3 MiB instead of 60.
func (b *bench) verifierWithOneKey(ctx context.Context, hk hashedKeys) (verifierInfo, func(), error) {
	var info verifierInfo
	k, err := keys.Parse(hk.Valid)
	if err != nil {
		return info, nil, err
	}
	if err := b.cluster.namespace(ctx, benchOpsOne); err != nil {
		return info, nil, err
	}
	if err := b.cluster.client.Create(ctx, hashedSecret(benchOpsOne, benchTenant, benchGroup, 0, k)); err != nil {
		return info, nil, err
	}
	ch, err := startChild("verifier-one", &info, cmdVerifier, "-kubeconfig", b.cluster.kubeconfig, "-namespace", benchOpsOne)
	if err != nil {
		return info, nil, err
	}
	info.pid = ch.cmd.Process.Pid
	return info, ch.stop, nil
}

// bothAnswers asks the floor and the verifier once, for the report to say
// whether they answer alike: 200, the same headers but Date, no body.
func bothAnswers(floorAddr, verAddr, key string) answerPair {
	get := func(addr string) (*http.Response, error) {
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+verifyPath, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Original-Method", "GET")
		req.Header.Set("X-Original-URL", "https://api.example.com/v1/things/42")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		_ = resp.Body.Close()
		resp.Header.Del("Date")
		return resp, nil
	}
	f, err := get(floorAddr)
	if err != nil {
		return answerPair{err: "Checking the floor's answer: " + err.Error()}
	}
	v, err := get(verAddr)
	if err != nil {
		return answerPair{err: "Checking the verifier's answer: " + err.Error()}
	}
	return answerPair{floorStatus: f.StatusCode, floorHeader: f.Header, status: v.StatusCode, header: v.Header}
}

// runningVerifier is the verifier child kept for the load rows.
type runningVerifier struct {
	*child
	info verifierInfo
}

// startsAndHeap starts the verifier child three times with the keys and once
// without (V5, V4), and the keyward binary once each way (its /metrics
// heap), and returns the last child with the keys, still serving.
func (b *bench) startsAndHeap(hk hashedKeys) (*runningVerifier, error) {
	kc := b.cluster.kubeconfig
	var empty verifierInfo
	ch, err := startChild(cmdVerifier, &empty, cmdVerifier, "-kubeconfig", kc, "-namespace", benchOpsEmpty)
	if err != nil {
		return nil, err
	}
	ch.stop()
	var (
		readies []time.Duration
		heaps   []float64
		gcs     []time.Duration
		last    *runningVerifier
	)
	for i := range 3 {
		var info verifierInfo
		ch, err := startChild(cmdVerifier, &info, cmdVerifier, "-kubeconfig", kc, "-namespace", benchOps)
		if err != nil {
			return nil, err
		}
		if info.Keys != hk.Created {
			ch.stop()
			return nil, fmt.Errorf("the verifier holds %d keys, want %d", info.Keys, hk.Created)
		}
		logf("verifier start %d: ready in %s, heap %.1f MiB", i+1, info.Ready.Round(time.Millisecond), float64(info.HeapAlloc)/(1<<20))
		readies = append(readies, info.Ready)
		heaps = append(heaps, float64(info.HeapAlloc))
		gcs = append(gcs, info.GCCPU)
		if i < 2 {
			ch.stop()
			continue
		}
		last = &runningVerifier{child: ch, info: info}
	}

	realBig, realEmpty, err := b.keywardBinary()
	if err != nil {
		last.stop()
		return nil, err
	}

	d := v45Data{hk: hk, readies: readies, heaps: heaps, gcs: gcs, empty: empty, realBig: realBig, realEmpty: realEmpty}
	if b.opts.want("V5") {
		b.add(d.v5Row(b.command("V5")))
	}
	if b.opts.want("V4") {
		b.add(d.v4Row(b.command("V4")))
	}
	if b.opts.want("V7") {
		b.add(v7Data{keys: hk.Created, big: realBig, empty: realEmpty}.row(b.command("V7")))
	}
	return last, nil
}

// keywardStart is one start of the keyward binary.
type keywardStart struct {
	ready time.Duration
	heap  float64
	peak  float64 // resident memory's high-water mark once ready (VmHWM)
	// settled is its resident memory (VmRSS) 3 s after ready: the verifier
	// gives the first list's garbage back to the OS once it has synced.
	settled float64
	// cpu is the verifier's CPU time from its start until ready, and
	// apiCPU kube-apiserver's over the same time (V6).
	cpu, apiCPU time.Duration
}

// keywardBinary builds keyward and starts "keyward verifier" with the keys
// and without, reading its heap from /metrics.
func (b *bench) keywardBinary() (big, empty keywardStart, err error) {
	bin := filepath.Join(b.dir, "keyward")
	build := exec.Command("go", "build", "-o", bin, ".") // #nosec G204 -- bin is under bin/bench
	build.Dir = b.root
	if out, err := build.CombinedOutput(); err != nil {
		return big, empty, fmt.Errorf("building keyward: %w\n%s", err, out)
	}
	if empty, err = b.startKeyward(bin, benchOpsEmpty); err != nil {
		return big, empty, err
	}
	big, err = b.startKeyward(bin, benchOps)
	return big, empty, err
}

func (b *bench) startKeyward(bin, ns string) (keywardStart, error) {
	var ks keywardStart
	listen, probe := freeAddr(), freeAddr()
	start := time.Now()
	// As the Deployment runs it: GOMEMLIMIT from its 512Mi memory limit.
	// The child inherits the environment when it starts; the runtime of
	// this process read its own at start and is not affected.
	if err := os.Setenv("GOMEMLIMIT", "512MiB"); err != nil {
		return ks, err
	}
	defer os.Unsetenv("GOMEMLIMIT")
	ch, err := startProcess("keyward verifier", nil, bin, cmdVerifier, "--kubeconfig", b.cluster.kubeconfig, "--namespace", ns,
		"--listen", listen, "--health-probe-bind-address", probe, "--shutdown-delay", "0s", "--zap-log-level", "error")
	if err != nil {
		return ks, err
	}
	defer ch.terminate()
	readyAt, err := waitHTTP("http://"+probe+"/readyz", time.Millisecond, 2*time.Minute)
	if err != nil {
		return ks, err
	}
	ks.ready = readyAt.Sub(start)
	time.Sleep(3 * time.Second)
	ks.peak = procStatus(ch.cmd.Process.Pid, "VmHWM:")
	ks.settled = procStatus(ch.cmd.Process.Pid, "VmRSS:")
	ks.heap, err = metricValue("http://"+probe+"/metrics", "go_memstats_heap_alloc_bytes")
	return ks, err
}

// procStatus returns a memory figure of a process in bytes, from the line
// of /proc/<pid>/status that starts with field (VmHWM:, VmRSS:), or 0.
func procStatus(pid int, field string) float64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status")) // #nosec G304 -- /proc
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// terminate sends SIGTERM to the child (its own pid), then stops it.
func (c *child) terminate() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	c.stop()
}

// metricValue reads one unlabelled sample from a Prometheus text endpoint.
func metricValue(url, name string) (float64, error) {
	text, err := metricsText(url)
	if err != nil {
		return 0, err
	}
	if v, ok := firstSample(text, name); ok {
		return v, nil
	}
	return 0, fmt.Errorf("%s: no %s", url, name)
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr() string {
	l, err := net.Listen("tcp", anyLoopback)
	if err != nil {
		return anyLoopback
	}
	defer l.Close()
	return l.Addr().String()
}

// series is the per-round results of the configurations a row alternates:
// the floor first, then keyward's.
type series struct {
	names []string
	runs  [][]loadResult // [configuration][round]
}

// stat is the medians of one configuration's rounds.
type stat struct {
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // server CPU per request; 0 if not measured
	over     [len(overMarks)]float64
	stalled  float64
}

func (s *series) median(i int) stat {
	var rps, stalled []float64
	var p50, p99, cpu []time.Duration
	for _, r := range s.runs[i] {
		rps, p50, p99, cpu = append(rps, r.RPS), append(p50, r.P50), append(p99, r.P99), append(cpu, r.CPUPerRequest)
		stalled = append(stalled, r.Stalled)
	}
	st := stat{rps: median(rps), p50: median(p50), p99: median(p99), cpu: median(cpu), stalled: median(stalled)}
	for m := range overMarks {
		var shares []float64
		for _, r := range s.runs[i] {
			shares = append(shares, r.Over[m])
		}
		st.over[m] = median(shares)
	}
	return st
}

// tail is a stat's share of requests over each of overMarks, "a / b / …".
func (st stat) tail() string {
	parts := make([]string, len(st.over))
	for i, v := range st.over {
		parts[i] = fmt.Sprintf("%.2f%%", 100*v)
	}
	return strings.Join(parts, " / ")
}

func overMarksText() string {
	parts := make([]string, len(overMarks))
	for i, m := range overMarks {
		parts[i] = fmt.Sprint(m.Milliseconds())
	}
	return strings.Join(parts, " / ") + " ms"
}

func (s *series) details() []string {
	var out []string
	for round := range s.runs[0] {
		parts := make([]string, len(s.names))
		for i, name := range s.names {
			parts[i] = name + ": " + s.runs[i][round].String()
		}
		out = append(out, fmt.Sprintf("round %d: %s", round+1, strings.Join(parts, "; ")))
	}
	return out
}

// alternate runs each configuration in turn, rounds times, so that the
// machine's other load falls on all of them alike.
func (b *bench) alternate(id string, names []string, specs ...loadSpec) (*series, error) {
	s := &series{names: names, runs: make([][]loadResult, len(specs))}
	for round := range b.opts.rounds {
		line := make([]string, len(specs))
		for i, spec := range specs {
			r, err := runLoad(spec)
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", id, names[i], err)
			}
			s.runs[i] = append(s.runs[i], r)
			line[i] = names[i] + " " + r.String()
		}
		logf("%s round %d: %s", id, round+1, strings.Join(line, " | "))
	}
	return s, nil
}

func (b *bench) spec(addr string, req []byte, pid int) loadSpec {
	return loadSpec{Addr: addr, Request: req, Conns: b.opts.conns, Warmup: b.opts.warmup, Duration: b.opts.duration, PID: pid}
}

func figure(s stat) string {
	return fmt.Sprintf("%.0f req/s; %s / %s", s.rps, fmtDur(s.p50), fmtDur(s.p99))
}

func usPerReq(d time.Duration) string {
	return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond))
}

// lightConns is the connections of V1's light-load runs.
const lightConns = 2

// kernelHZ is this kernel's scheduler tick rate (CONFIG_HZ), 0 when it
// cannot tell.
func kernelHZ() int {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return 0
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		if hz, ok := strings.CutPrefix(sc.Text(), "CONFIG_HZ="); ok {
			if n, err := strconv.Atoi(hz); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// busyFloors are the extra CPU per answer of V1's busy floors.
var busyFloors = []time.Duration{time.Microsecond, 2 * time.Microsecond}

// v1Servers are the servers V1 loads in turn: the floor, the verifier, and
// the controls that tell their difference apart.
type v1Servers struct {
	floor floorInfo
	// timed is the floor with the verifier's http.Server settings.
	timed floorInfo
	ver   verifierInfo
	// one is the verifier holding only the key asked about.
	one verifierInfo
	// busy are the floor spending each of busyFloors more on the CPU.
	busy []floorInfo
}

// runV1 loads the verifier and the floor directly.
func (b *bench) runV1(v v1Servers, hk hashedKeys) error {
	floor, timed, ver, one := v.floor, v.timed, v.ver, v.one
	req := httpRequest("keyward-verifier", verifyPath,
		"Authorization", "Bearer "+hk.Valid,
		"X-Original-Method", "GET",
		"X-Original-URL", "https://api.example.com/v1/things/42?page=2",
		"X-Request-ID", "0123456789abcdef0123456789abcdef")
	names := []string{cmdFloor, cmdVerifier, "floor with the verifier's server timeouts", "verifier holding only this key"}
	specs := []loadSpec{b.spec(floor.Auth, req, floor.pid), b.spec(ver.Addr, req, ver.pid), b.spec(timed.Auth, req, timed.pid), b.spec(one.Addr, req, one.pid)}
	firstBusy := len(specs)
	for i, bf := range v.busy {
		names = append(names, fmt.Sprintf("floor busy %s", busyFloors[i]))
		specs = append(specs, b.spec(bf.Auth, req, bf.pid))
	}
	s, err := b.alternate("V1", names, specs...)
	if err != nil {
		return err
	}
	// The same two servers with few connections: neither process then
	// saturates the cores, so latency is the path's, not the queue's.
	light := func(spec loadSpec) loadSpec { spec.Conns = lightConns; return spec }
	ls, err := b.alternate("V1 (light load)", []string{cmdFloor, cmdVerifier}, light(b.spec(floor.Auth, req, floor.pid)), light(b.spec(ver.Addr, req, ver.pid)))
	if err != nil {
		return err
	}
	d := v1Data{
		floor: s.median(0), verifier: s.median(1), timed: s.median(2), one: s.median(3),
		lightFloor: ls.median(0), lightVerifier: ls.median(1),
		keys: hk.Created, answers: bothAnswers(floor.Auth, ver.Addr, hk.Valid), hz: kernelHZ(),
		opts: b.opts, rounds: append(s.details(), ls.details()...),
	}
	for i := range v.busy {
		d.busy = append(d.busy, s.median(firstBusy+i))
	}
	d.handler = handlerHistogram(ver.Probe)
	r := b.add(d.row(b.command("V1")))
	if !strings.HasPrefix(r.Met, "met") {
		b.profileMissed(r, ver, b.spec(ver.Addr, req, 0), "v1", &floor, b.spec(floor.Auth, req, 0))
	}
	return nil
}

// busyNote says how the floor's saturated p99 grew with CPU spent in each
// answer.
func busyNote(runs []string) string {
	if len(runs) == 0 {
		return ""
	}
	return "How the saturated p99 grows with the CPU a handler spends: the floor, alternated with the others, staying on the CPU (a busy loop) for " + strings.Join(runs, "; ") +
		". The verifier's handler parses the call, checks, hashes and looks up the key, normalises the path and matches the scopes: `BenchmarkServeHTTP` (verifier/handler_test.go) times it without the network."
}

// runV2 loads nginx whose auth location answers 200 itself (the floor),
// and nginx with auth_request to the verifier and, for comparison, to the
// Go floor server of V1, each without and with auth-keepalive; all in front
// of the same upstream.
func (b *bench) runV2(floor floorInfo, upstream string, ver verifierInfo, hk hashedKeys) error {
	const workers = 2
	base := filepath.Join(b.dir, "nginx")
	_ = os.RemoveAll(base)
	toVerifier, toFloor := "http://"+ver.Addr+verifyPath, "http://"+floor.Auth+verifyPath
	configs := []struct {
		name string
		opts e2e.NginxOptions
		pid  int
	}{
		{"nginx return 200", e2e.NginxOptions{AuthReturn200: true}, 0},
		{"nginx → verifier", e2e.NginxOptions{AuthURL: toVerifier}, ver.pid},
		{"nginx → Go floor", e2e.NginxOptions{AuthURL: toFloor}, floor.pid},
		{"nginx → verifier, keepalive", e2e.NginxOptions{AuthURL: toVerifier, AuthKeepalive: 32}, ver.pid},
		{"nginx → Go floor, keepalive", e2e.NginxOptions{AuthURL: toFloor, AuthKeepalive: 32}, floor.pid},
	}
	req := httpRequest("api.example.com", "/v1/things/42?page=2", "Authorization", "Bearer "+hk.Valid)
	names := make([]string, len(configs))
	specs := make([]loadSpec, len(configs))
	for i, c := range configs {
		o := c.opts
		o.Upstream, o.ResponseHeaders, o.WorkerProcesses = "http://"+upstream, authResponseHeaders, workers
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		n, err := e2e.StartNginxProcess(dir, o)
		if err != nil {
			return err
		}
		defer n.Stop()
		names[i], specs[i] = c.name, b.spec(strings.TrimPrefix(n.URL, "http://"), req, c.pid)
	}
	s, err := b.alternate("V2", names, specs...)
	if err != nil {
		return err
	}
	f := s.median(0)
	for i, v := range []struct{ id, what, how string }{
		{"V2", "through nginx `auth_request`, ingress-nginx's defaults (no auth-keepalive): req/s; p50 / p99",
			"ingress-nginx's default: no auth-keepalive, so nginx opens a new connection to the verifier for every request."},
		{"V2b", "the same with the `auth-keepalive: 32` annotation: req/s; p50 / p99",
			"auth-keepalive 32: nginx keeps up to 32 idle connections to the verifier (an upstream block) and reuses them, the verifier's 200 having no body."},
	} {
		d := v2Data{
			id: v.id, what: v.what, how: v.how,
			floor: f, verifier: s.median(1 + 2*i), goFloor: s.median(2 + 2*i),
			nginx: nginxVersion(), workers: workers, keys: hk.Created, opts: b.opts,
		}
		if i == 0 {
			d.rounds = s.details()
		}
		r := b.add(d.row(b.command("V2")))
		if !strings.HasPrefix(r.Met, "met") {
			b.profileMissed(r, ver, specs[1+2*i], strings.ToLower(v.id), nil, loadSpec{})
		}
	}
	return nil
}

func nginxVersion() string {
	bin, err := e2e.NginxBinary()
	if err != nil {
		return "?"
	}
	out, _ := exec.Command(bin, "-v").CombinedOutput() // #nosec G204 -- the harness's nginx
	s := strings.TrimSpace(string(out))
	if _, v, ok := strings.Cut(s, "nginx/"); ok {
		return v
	}
	return s
}

// profileUnderLoad runs the load once more while a child (its profile port
// is pprofAddr) takes a CPU profile, and saves it as bin/bench/<name>.cpu.pprof.
func (b *bench) profileUnderLoad(pprofAddr string, spec loadSpec, name string) (string, error) {
	path := filepath.Join(b.dir, name+".cpu.pprof")
	secs := max(int(spec.Duration.Seconds()), 1)
	done := make(chan error, 1)
	go func() { done <- fetchProfile("http://"+pprofAddr+"/cpu?seconds="+strconv.Itoa(secs), path) }()
	spec.Warmup, spec.PID = 0, 0
	spec.Duration = time.Duration(secs)*time.Second + 200*time.Millisecond
	if _, err := runLoad(spec); err != nil {
		return "", err
	}
	return path, <-done
}

// profileMissed profiles keyward's server, and the floor's when there is
// one, under the row's load, and quotes keyward's profile in the row.
func (b *bench) profileMissed(r *row, ver verifierInfo, spec loadSpec, name string, floor *floorInfo, floorSpec loadSpec) {
	path, err := b.profileUnderLoad(ver.Pprof, spec, name+"-verifier")
	if err != nil {
		logf("%s: profile: %v", r.ID, err)
		return
	}
	b.attachProfile(r, path)
	if floor == nil {
		return
	}
	fp, err := b.profileUnderLoad(floor.Pprof, floorSpec, name+"-floor")
	if err != nil {
		logf("%s: floor profile: %v", r.ID, err)
		return
	}
	rel, _ := filepath.Rel(b.root, fp)
	r.Details = append(r.Details, floorProfileNote(rel))
}
