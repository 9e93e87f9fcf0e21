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

// The scale rows (issue 19): V6, the verifier over a million keys in a
// control plane of its own, and E1, what an issued key takes in etcd.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

// Names and sizes of V6.
const (
	v6Tenant = "bench-v6-tenant"
	v6Group  = "keys"
	// v6More is the KeyGroup of the keys V6 loads beyond its first
	// v6Base: a verifier sharded to v6Group holds only those.
	v6More   = "more-keys"
	v6Verify = "/v1/verify/" + v6Tenant + "/" + v6Group
	v6Ops    = "bench-v6-keys"
	v6Empty  = "bench-v6-empty"
	// v6Quota is etcd's --quota-backend-bytes in V6's control plane: 8 GiB,
	// etcd's documented maximum (the default, 2 GiB, holds about a million
	// hashed Secrets before compaction).
	v6Quota = "8589934592"
	// v6MemLimit is GOMEMLIMIT as the Deployment sets it: from its 512Mi
	// memory limit (config/verifier, resourceFieldRef limits.memory).
	v6MemLimit = "512MiB"
	// v6Compare is the key count the request time at V6's full count is
	// compared with.
	v6Compare = 100_000
	// v6Requests are the requests of one round, v6Rounds the rounds against
	// each of the two verifiers, taken in turn: short rounds, many pairs,
	// so that what disturbs the machine for longer than a round falls on
	// both rounds of a pair (a round's mean moved by ±25% from one round to
	// the next, with 100,000 requests a round).
	v6Requests = 20_000
	v6Rounds   = 25
	// v6ReadyWait is how long a verifier over the keys may take to get
	// ready before that is reported instead of its figures.
	v6ReadyWait = 10 * time.Minute
)

// Names and sizes of E1.
const (
	managedBy = "keyward" // the managed-by label's value on keyward's Secrets
	e1NS      = "bench-e1"
	e1FloorNS = "bench-e1-floor"
	e1Keys    = 10_000
	e1App     = "solo"
	e1Group   = "things"
	// etcd's default quota and the largest it supports.
	etcdDefaultQuota = 2 << 30
	etcdMaxQuota     = 8 << 30
)

// v6Base is the key count V6 compares its full count with: 100,000, or a
// tenth of a smaller run's.
func v6Base(n int) int {
	if n > v6Compare {
		return v6Compare
	}
	return max(n/10, 1)
}

// keywardRun is the keyward binary's verifier, started by runKeyward.
type keywardRun struct {
	ch            *child
	listen, probe string
	start         keywardStart
	// later is its VmRSS when stopped, after the request rounds.
	later float64
	// progress is the last sample taken while waiting for it to be ready.
	progress string
}

// readyAt is when a verifier first answered /readyz with 200, or why not.
type readyAt struct {
	at  time.Time
	err error
}

// errLowMemory stops the wait for a verifier when the machine's available
// memory runs low: at a million Secrets the API server grows by gigabytes
// while it serves the verifier's list, and the machine is shared.
var errLowMemory = errors.New("stopped waiting: the machine's available memory ran low")

// waitReady waits for done, logging a sample every 30 s, and gives up with
// errLowMemory when less than lowMemory() is available.
func (r *keywardRun) waitReady(start time.Time, done <-chan readyAt) (readyAt, error) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case got := <-done:
			return got, nil
		case <-tick.C:
		}
		total, avail := memInfo()
		if total > 0 && avail < lowMemory(total) {
			r.progress = r.sample(start)
			return readyAt{}, fmt.Errorf("%w (%s available of %s): %s", errLowMemory, mib(avail), mib(total), r.progress)
		}
		if n%6 == 0 {
			r.progress = r.sample(start)
			logf("V6: %s", r.progress)
		}
	}
}

// lowMemory is the available memory under which V6 stops waiting: a tenth
// of the machine's, and at least 2 GiB. Over a million keys kube-apiserver
// holds every Secret twice (its watch cache, and the informer of its
// service-account token lookup), past 16 GiB: a fifth of a 24 GiB machine
// stopped a verifier that was 10 s from ready.
func lowMemory(total float64) float64 { return max(total/10, 2<<30) }

// memInfo is the machine's MemTotal and MemAvailable, in bytes (0 when
// unknown).
func memInfo() (total, avail float64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	return parseMemInfo(string(b))
}

func parseMemInfo(s string) (total, avail float64) {
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = v * 1024
		case "MemAvailable:":
			avail = v * 1024
		}
	}
	return total, avail
}

// sample says, while the verifier starts, how many keys it holds and the
// resident memory of it and of the API server.
func (r *keywardRun) sample(start time.Time) string {
	held := "?"
	if v, err := metricValue("http://"+r.probe+"/metrics", "keyward_verifier_keys"); err == nil {
		held = thousands(int(v))
	}
	api := childPID("kube-apiserver")
	return fmt.Sprintf("%s after start: the verifier holds %s keys, VmRSS %s; kube-apiserver VmRSS %s, CPU so far %s",
		fmtDur(time.Since(start)), held, mib(procStatus(r.ch.cmd.Process.Pid, "VmRSS:")), mib(procStatus(api, "VmRSS:")), fmtDur(pidCPU(api)))
}

// childPID is the pid of this process's child named name, or 0.
func childPID(name string) int {
	for pid, n := range children() {
		if n == name {
			return pid
		}
	}
	return 0
}

// buildKeyward builds the keyward binary under bin/bench.
func (b *bench) buildKeyward() (string, error) {
	bin := filepath.Join(b.dir, "keyward")
	build := exec.Command("go", "build", "-o", bin, ".") // #nosec G204 -- bin is under bin/bench
	build.Dir = b.root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building keyward: %w\n%s", err, out)
	}
	return bin, nil
}

// runKeyward starts "keyward verifier" over the hashed Secrets of ns as the
// Deployment runs it (GOMEMLIMIT 512MiB) and waits until it is ready, then
// 3 s more, and reads its memory: as V7's startKeyward, but left running.
// A verifier that is not ready in time is returned running, with ready 0,
// and the error.
func runKeyward(bin, kubeconfig, ns string, flags ...string) (*keywardRun, error) {
	r := &keywardRun{listen: freeAddr(), probe: freeAddr()}
	start := time.Now()
	// The child inherits the environment when it starts; this process's
	// runtime read its own at start and is not affected.
	if err := os.Setenv("GOMEMLIMIT", v6MemLimit); err != nil {
		return nil, err
	}
	args := append([]string{cmdVerifier, "--kubeconfig", kubeconfig, "--namespace", ns,
		"--listen", r.listen, "--health-probe-bind-address", r.probe, "--grpc-listen", freeAddr(),
		"--shutdown-delay", "0s", "--zap-log-level", "error"}, flags...)
	ch, err := startProcess("keyward verifier", nil, bin, args...)
	_ = os.Unsetenv("GOMEMLIMIT")
	if err != nil {
		return nil, err
	}
	r.ch = ch
	pid := ch.cmd.Process.Pid
	api := childPID("kube-apiserver")
	apiCPU := pidCPU(api)
	done := make(chan readyAt, 1)
	go func() {
		at, err := waitHTTP("http://"+r.probe+"/readyz", time.Millisecond, v6ReadyWait)
		done <- readyAt{at, err}
	}()
	got, err := r.waitReady(start, done)
	if err != nil {
		r.start.peak, r.start.settled = procStatus(pid, "VmHWM:"), procStatus(pid, "VmRSS:")
		return r, err
	}
	readyAt, err := got.at, got.err
	if err != nil {
		r.start.peak, r.start.settled = procStatus(pid, "VmHWM:"), procStatus(pid, "VmRSS:")
		return r, fmt.Errorf("keyward verifier over %s: not ready after %s: %w", ns, v6ReadyWait, err)
	}
	r.start.ready = readyAt.Sub(start)
	r.start.cpu, r.start.apiCPU = pidCPU(pid), pidCPU(api)-apiCPU
	time.Sleep(3 * time.Second)
	r.start.peak = procStatus(pid, "VmHWM:")
	r.start.settled = procStatus(pid, "VmRSS:")
	r.start.heap, err = metricValue("http://"+r.probe+"/metrics", "go_memstats_heap_alloc_bytes")
	return r, err
}

func (r *keywardRun) stop() {
	r.later = procStatus(r.ch.cmd.Process.Pid, "VmRSS:")
	r.ch.terminate()
}

// histogramSum is the verifier's request duration histogram's sum and
// count, from its /metrics.
type histogramSum struct{ sum, count float64 }

// requestDuration is the verifier's request duration histogram.
const requestDuration = "keyward_verifier_request_duration_seconds"

// parseHistogramSum reads requestDuration's _sum and _count (unlabelled)
// from a Prometheus text exposition.
func parseHistogramSum(body string) (histogramSum, error) {
	const name = requestDuration
	sum, okSum := firstSample(body, name+"_sum")
	count, okCount := firstSample(body, name+"_count")
	if !okSum || !okCount {
		return histogramSum{}, fmt.Errorf("no %s_sum and _count", name)
	}
	return histogramSum{sum: sum, count: count}, nil
}

func readHistogramSum(probe string) (histogramSum, error) {
	text, err := metricsText("http://" + probe + "/metrics")
	if err != nil {
		return histogramSum{}, err
	}
	return parseHistogramSum(text)
}

// fmtMean formats a mean time per request to the nanosecond.
func fmtMean(d time.Duration) string {
	return fmt.Sprintf("%.3f µs", float64(d)/float64(time.Microsecond))
}

// meanBetween is the mean of the observations made between two reads.
func meanBetween(before, after histogramSum) time.Duration {
	n := after.count - before.count
	if n <= 0 {
		return 0
	}
	return time.Duration((after.sum - before.sum) / n * float64(time.Second))
}

// requestRounds are V6's request rounds against one verifier: the
// verifier's own mean time per request in each (its histogram), and the
// load generator's view of each.
type requestRounds struct {
	means []time.Duration
	loads []loadResult
}

func (r requestRounds) median() time.Duration { return median(r.means) }

// pairedRatio is the median, over the rounds taken in turn, of a's mean
// over b's in the same pair; NaN without a pair.
func pairedRatio(a, b requestRounds) float64 {
	var ratios []float64
	for i := range min(len(a.means), len(b.means)) {
		if b.means[i] > 0 {
			ratios = append(ratios, float64(a.means[i])/float64(b.means[i]))
		}
	}
	if len(ratios) == 0 {
		return math.NaN() // no pair to compare: no target can be met
	}
	return median(ratios)
}

// means lists the rounds' means, in µs.
func (r requestRounds) meansText() string {
	parts := make([]string, len(r.means))
	for i, m := range r.means {
		parts[i] = fmt.Sprintf("%.3f", float64(m)/float64(time.Microsecond))
	}
	return strings.Join(parts, ", ") + " µs"
}

func (r requestRounds) text() string {
	parts := make([]string, len(r.means))
	for i, m := range r.means {
		parts[i] = fmt.Sprintf("%s (%s)", fmtMean(m), r.loads[i].String())
	}
	return strings.Join(parts, "; ")
}

// measureRounds sends v6Rounds rounds of v6Requests valid requests to
// each verifier, taking them in turn round by round (the order reversed
// every other round) so that the machine's drift falls on all alike, on lightConns connections (the server not
// saturated, so that its handler's time is not its wait for a core), and
// reads each one's request duration histogram before and after each round.
func measureRounds(runs []*keywardRun, valid string) ([]requestRounds, error) {
	out := make([]requestRounds, len(runs))
	req := httpRequest("keyward-verifier", v6Verify,
		"Authorization", "Bearer "+valid,
		"X-Original-Method", "GET",
		"X-Original-URL", "https://api.example.com/v1/things/42?page=2",
		"X-Request-ID", "0123456789abcdef0123456789abcdef")
	for round := range v6Rounds {
		for k := range runs {
			// Every other round in the opposite order, so that going
			// first (or second) favours neither.
			i := k
			if round%2 == 1 {
				i = len(runs) - 1 - k
			}
			r := runs[i]
			before, err := readHistogramSum(r.probe)
			if err != nil {
				return out, err
			}
			res, err := runLoad(loadSpec{Addr: r.listen, Request: req, Conns: lightConns, Warmup: 200 * time.Millisecond,
				Duration: 2 * time.Minute, MaxRequests: v6Requests, PID: r.ch.cmd.Process.Pid})
			if err != nil {
				return out, err
			}
			if res.Non200 > 0 || res.Errors > 0 {
				return out, fmt.Errorf("V6: the verifier answered %d non-200 %v, %d errors", res.Non200, res.Status, res.Errors)
			}
			after, err := readHistogramSum(r.probe)
			if err != nil {
				return out, err
			}
			out[i].means, out[i].loads = append(out[i].means, meanBetween(before, after)), append(out[i].loads, res)
		}
	}
	return out, nil
}

// v6Data is what V6 measured.
type v6Data struct {
	keys, base       int
	hk               hashedKeys
	loadBase, loadUp time.Duration // loading the first base keys, then the rest
	listed           time.Duration // waiting for the API server to list them all, after the puts
	cached           time.Duration // then, waiting for its watch cache to catch up
	quiet            time.Duration // then, waiting for kube-apiserver to be idle
	fallbacks        float64       // consistent lists of Secrets served from etcd while the verifier started
	empty, big       keywardStart
	small, shard     keywardStart // over the first base keys alone: before the rest were loaded, and sharded to their group after
	bigLater         float64      // VmRSS at n keys after the request rounds
	atBase, atN      requestRounds
	notReady         string        // the verifier over n keys did not get ready
	progress         string        // then, what it held
	list             time.Duration // the verifier's list alone, after it stopped
	listBytes        int64
	listErr          string
	etcd             etcdStatus
}

// runV6 starts a control plane of its own with etcd's quota raised, loads
// base keys, measures the verifier's request time, loads the rest, and
// measures the verifier's start, memory and request time over all of them.
func (b *bench) runV6(ctx context.Context) error {
	n := b.opts.v6Keys
	d := v6Data{keys: n, base: v6Base(n)}
	logf("V6: starting a control plane of its own (etcd --quota-backend-bytes=%s)", v6Quota)
	c, err := startClusterWith(testenv.Options{NoControllerManager: true, EtcdFlags: map[string]string{"quota-backend-bytes": v6Quota}},
		filepath.Join(b.dir, "kubeconfig-v6"))
	if err != nil {
		return err
	}
	stop := sync.OnceFunc(c.stop)
	b.interrupted.Store(&stop)
	defer func() {
		stop()
		b.interrupted.Store(nil)
	}()
	for _, ns := range []string{v6Ops, v6Empty, v6Tenant} {
		if err := c.namespace(ctx, ns); err != nil {
			return err
		}
	}
	// The verifier answers for the keys of KeyGroups that exist (no
	// admission webhooks are registered here: no manager runs).
	for _, g := range []string{v6Group, v6More} {
		if err := c.client.Create(ctx, testgen.KeyGroup(v6Tenant, g)); err != nil {
			return err
		}
	}
	bin, err := b.buildKeyward()
	if err != nil {
		return err
	}
	empty, err := runKeyward(bin, c.kubeconfig, v6Empty)
	if err != nil {
		return err
	}
	empty.stop()
	d.empty = empty.start
	if err := b.v6AtBase(ctx, c, bin, &d); err != nil {
		return err
	}
	if err := b.v6AtN(ctx, c, bin, &d); err != nil {
		return err
	}
	b.add(d.row(b.command("V6")))
	return nil
}

// v6AtBase loads the first base keys and measures a verifier's start over
// them.
func (b *bench) v6AtBase(ctx context.Context, c *cluster, bin string, d *v6Data) error {
	logf("V6: loading %d hashed Secrets", d.base)
	start := time.Now()
	hk, err := c.loadHashedSecrets(ctx, v6Ops, v6Tenant, v6Group, d.base, min(b.opts.viaAPI, d.base))
	if err != nil {
		return err
	}
	d.hk, d.loadBase = hk, time.Since(start)
	logf("V6: %d keys loaded in %s", d.base, fmtDur(d.loadBase))
	if _, err := waitQuiet(childPID("kube-apiserver"), 10*time.Minute); err != nil {
		return err
	}
	v, err := runKeyward(bin, c.kubeconfig, v6Ops)
	if v != nil {
		v.stop()
	}
	if err != nil {
		return err
	}
	d.small = v.start
	logf("V6: verifier over %d keys: ready in %s, peak %s, settled %s", d.base, fmtDur(v.start.ready), mib(v.start.peak), mib(v.start.settled))
	return nil
}

// v6AtN loads the rest of the keys and measures the verifier over all.
func (b *bench) v6AtN(ctx context.Context, c *cluster, bin string, d *v6Data) error {
	n := d.keys
	logf("V6: loading %d more hashed Secrets", n-d.base)
	start := time.Now()
	model := hashedSecret(v6Ops, v6Tenant, v6More, 0, keys.Key{})
	if err := c.putHashedSecrets(ctx, model, v6Ops, v6Tenant, v6More, d.base, n, -1, &d.hk); err != nil {
		return err
	}
	put := time.Since(start)
	if err := c.waitListed(ctx, v6Ops, n, 10*time.Minute); err != nil {
		return err
	}
	d.loadUp = time.Since(start)
	d.listed = d.loadUp - put
	d.hk.Created, d.hk.EtcdTook = n, d.hk.EtcdTook+put
	if store, err := findEtcd(); err == nil {
		d.etcd, _ = store.status(ctx)
	}
	logf("V6: %d more put into etcd in %s, listed by the API server %s later (all %d loaded in %s); etcd db %s (in use %s)",
		n-d.base, fmtDur(put), fmtDur(d.listed), n, fmtDur(d.loadBase+d.loadUp), mib(float64(d.etcd.DBSize)), mib(float64(d.etcd.DBSizeInUse)))
	cacheStart := time.Now()
	if err := c.waitWatchCache(ctx, d.etcd.Header.Revision, 10*time.Minute); err != nil {
		return err
	}
	d.cached = time.Since(cacheStart)
	logf("V6: the API server's watch cache of Secrets reached etcd's revision %d %s later", d.etcd.Header.Revision, fmtDur(d.cached))
	quiet, err := waitQuiet(childPID("kube-apiserver"), 10*time.Minute)
	if err != nil {
		return err
	}
	d.quiet = quiet
	logf("V6: kube-apiserver quiet %s later", fmtDur(d.quiet))
	fallbacks := c.cacheFallbacks(ctx)
	defer func() { d.fallbacks = c.cacheFallbacks(ctx) - fallbacks }()
	vstart := time.Now()
	v, err := runKeyward(bin, c.kubeconfig, v6Ops)
	if err != nil {
		if v == nil {
			return err
		}
		d.notReady, d.progress = err.Error(), v.sample(vstart)
		d.big = v.start
		logf("V6: %v (VmHWM %s, VmRSS %s); %s", err, mib(v.start.peak), mib(v.start.settled), d.progress)
		v.stop()
		if errors.Is(err, errLowMemory) {
			d.listErr = "not tried: the API server would grow as it did for the verifier"
			return nil
		}
		d.v6List(ctx, c)
		return nil
	}
	logf("V6: verifier over %d keys: ready in %s, peak %s, settled %s, heap %s; CPU until ready: verifier %s, kube-apiserver %s", n, fmtDur(v.start.ready), mib(v.start.peak), mib(v.start.settled), mib(v.start.heap), fmtDur(v.start.cpu), fmtDur(v.start.apiCPU))
	d.big = v.start
	err = d.v6Requests(bin, c, v)
	v.stop()
	d.bigLater = v.later
	if err != nil {
		return err
	}
	d.v6List(ctx, c)
	return nil
}

// v6Requests measures the request time of the verifier over all the keys
// against that of a verifier sharded to the first base keys' KeyGroup
// (--key-groups), which holds only those, started beside it: their rounds
// taken in turn.
func (d *v6Data) v6Requests(bin string, c *cluster, big *keywardRun) error {
	small, err := runKeyward(bin, c.kubeconfig, v6Ops, "--key-groups", v6Tenant+"/"+v6Group)
	if err != nil {
		if small != nil {
			small.stop()
		}
		return err
	}
	defer small.stop()
	d.shard = small.start
	logf("V6: a verifier sharded to %s/%s over %d keys: ready in %s, settled %s", v6Tenant, v6Group, d.base, fmtDur(small.start.ready), mib(small.start.settled))
	rounds, err := measureRounds([]*keywardRun{big, small}, d.hk.Valid)
	if err != nil {
		return err
	}
	d.atN, d.atBase = rounds[0], rounds[1]
	logf("V6: request time at %d keys: %s", d.keys, d.atN.text())
	logf("V6: request time at %d keys: %s", d.base, d.atBase.text())
	return nil
}

// v6List times the API server's answer to the verifier's own list of all
// the keys (one request, protobuf, read as a stream and thrown away): what
// the verifier's start cannot go below. It is stopped when the machine's
// available memory runs low (the API server grows by gigabytes serving a
// million Secrets).
func (d *v6Data) v6List(ctx context.Context, c *cluster) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var low atomic.Bool
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if total, avail := memInfo(); total > 0 && avail < lowMemory(total) {
				low.Store(true)
				cancel()
				return
			}
		}
	}()
	var err error
	d.list, d.listBytes, err = c.listOnce(ctx, v6Ops)
	if low.Load() {
		err = fmt.Errorf("%w, kube-apiserver VmRSS %s", errLowMemory, mib(procStatus(childPID("kube-apiserver"), "VmRSS:")))
	}
	if err != nil {
		d.listErr = err.Error()
		logf("V6: listing the %d Secrets in one request: %v after %s", d.keys, err, fmtDur(d.list))
		return
	}
	logf("V6: the API server lists the %d Secrets in one request in %s (%s)", d.keys, fmtDur(d.list), mib(float64(d.listBytes)))
}

// listOnce makes the list a verifier over every key of ns makes at start
// (verifier.OpenKeyList) and reads the answer to the end without decoding
// it: how long that took and how many bytes it was.
func (c *cluster) listOnce(ctx context.Context, ns string) (time.Duration, int64, error) {
	start := time.Now()
	body, err := verifier.OpenKeyList(ctx, c.cfg, ns, nil)
	if err != nil {
		return time.Since(start), 0, err
	}
	defer body.Close()
	n, err := io.Copy(io.Discard, body)
	return time.Since(start), n, err
}

func (d v6Data) perKey() float64 {
	return (d.big.settled - d.empty.settled) / float64(max(d.keys, 1))
}

func (d v6Data) row(command string) *row {
	r := &row{
		ID: "V6", What: fmt.Sprintf("`keyward verifier` over %s keys: ready, memory per key settled, peak vs settled, request time vs %s keys", thousands(d.keys), thousands(d.base)),
		Floor: "—", Ratio: "—", Target: "ready ≤ 20 s; ≤ 300 B/key; peak ≤ 1.5×; ≤ 1.1×", Command: command,
	}
	if d.notReady != "" {
		r.Figure, r.Met = "not ready: "+d.notReady, met(false)
		r.Details = append(r.Details, d.details()...)
		return r
	}
	peakRatio := d.big.peak / d.big.settled
	reqRatio := pairedRatio(d.atN, d.atBase)
	r.Figure = fmt.Sprintf("ready %.1f s; %.0f B/key settled; peak %s vs settled %s (%.2f×); request time at %s / at %s = %.2f×",
		d.big.ready.Seconds(), d.perKey(), mib(d.big.peak), mib(d.big.settled), peakRatio, thousands(d.keys), thousands(d.base), reqRatio)
	if d.list > 0 && d.listErr == "" {
		r.Floor = fmt.Sprintf("the verifier's list alone: %.1f s", d.list.Seconds())
		r.Ratio = fmt.Sprintf("%.2f× (ready)", d.big.ready.Seconds()/d.list.Seconds())
	}
	r.Met = met(d.big.ready <= 20*time.Second && d.perKey() <= 300 && peakRatio <= 1.5 && reqRatio <= 1.1)
	r.Details = d.details()
	return r
}

func (d v6Data) details() []string {
	out := []string{
		fmt.Sprintf("A control plane of its own (kube-apiserver and etcd, no kube-controller-manager, etcd `--quota-backend-bytes=%s`), started before the other rows' and stopped after V6. The first %s hashed Secrets (KeyGroup %s/%s) were created through the API server and put into etcd as V4's are, in %s; a verifier was started over them (ready in %s, peak %s, settled %s); then the other %s (KeyGroup %s/%s) were put into etcd in %s (of which %s waiting for the API server to list them all). etcd's database after loading: %s, %s in use. Then %s until the API server's watch cache of Secrets reached etcd's revision (its `apiserver_watch_cache_resource_version`), and %s more until kube-apiserver used less than a tenth of a core over 2 s, before the verifier was started. Both waits undo what writing into etcd behind the API server's back does, which a cluster that grows through its API server never sees: a list without a resourceVersion is served from the watch cache only when it has caught up, and otherwise from etcd in one range the API server decodes whole before answering (started at once over 1,000,000 keys, the verifier held none after 65 s while kube-apiserver grew to 14.8 GiB); and once the cache has caught up, kube-apiserver still decodes the new Secrets for its own informers (its service-account token lookup watches every Secret) for tens of seconds (over 400,000 keys, a verifier started in that time was ready in 17.8 s, with 24.9 s of kube-apiserver CPU; after it, in 7.5 s with 6.1 s). Consistent lists of Secrets served from etcd instead of the cache while the verifier started and answered: %.0f (`apiserver_watch_cache_consistent_read_total{fallback=\"true\"}`).",
			v6Quota, thousands(d.base), v6Tenant, v6Group, fmtDur(d.loadBase), fmtDur(d.small.ready), mib(d.small.peak), mib(d.small.settled), thousands(d.keys-d.base), v6Tenant, v6More, fmtDur(d.loadUp), fmtDur(d.listed), mib(float64(d.etcd.DBSize)), mib(float64(d.etcd.DBSizeInUse)), fmtDur(d.cached), fmtDur(d.quiet), d.fallbacks),
		loadedHow(d.hk),
		fmt.Sprintf("The binary as shipped (GOMEMLIMIT=%s, as the Deployment sets it from its 512Mi limit), started over the keys: ready is from its start to `/readyz` first answering 200; peak is its VmHWM and settled its VmRSS, both 3 s after ready (it calls `debug.FreeOSMemory` once synced); heap %s. At 0 keys: ready %s, peak %s, settled %s. Per key settled = (settled at %s keys − settled at 0) / %s.",
			v6MemLimit, mib(d.big.heap), fmtDur(d.empty.ready), mib(d.empty.peak), mib(d.empty.settled), thousands(d.keys), thousands(d.keys)),
	}
	if d.notReady != "" {
		out = append(out, fmt.Sprintf("Over %s keys the verifier was not ready after %s: %s. Its VmHWM then: %s, VmRSS %s; %s.", thousands(d.keys), v6ReadyWait, d.notReady, mib(d.big.peak), mib(d.big.settled), d.progress))
		return append(out, d.listText())
	}
	out = append(out,
		fmt.Sprintf("CPU from the verifier's start until ready over %s keys: the verifier %s, kube-apiserver %s (user + system, from /proc), in %s of wall time on %d cores.",
			thousands(d.keys), fmtDur(d.big.cpu), fmtDur(d.big.apiCPU), fmtDur(d.big.ready), runtime.NumCPU()),
		fmt.Sprintf("Request time is the verifier's own (its `keyward_verifier_request_duration_seconds` histogram: the sum's growth over the count's, read before and after each round) for a valid key of %s/%s, at %s keys (the verifier started over all) and at %s (a second verifier started beside it with `--key-groups %s/%s`, ready in %s, settled %s: it holds only that group's keys, in the same one-map store). %d rounds of %s requests on %d keep-alive connections against each, the two taken in turn round by round, which one goes first swapped every round, so that the machine's drift falls on both. The ratio is the median over the %d pairs of the round at %s keys over the round at %s beside it; for reference, the medians of the rounds: %s at %s, %s at %s.",
			v6Tenant, v6Group, thousands(d.keys), thousands(d.base), v6Tenant, v6Group, fmtDur(d.shard.ready), mib(d.shard.settled),
			v6Rounds, thousands(v6Requests), lightConns, v6Rounds, thousands(d.keys), thousands(d.base), fmtMean(d.atBase.median()), thousands(d.base), fmtMean(d.atN.median()), thousands(d.keys)),
		fmt.Sprintf("The verifier's mean per round at %s keys: %s; at %s keys: %s. The load generator's view of the first round of each: at %s keys %s; at %s keys %s.",
			thousands(d.keys), d.atN.meansText(), thousands(d.base), d.atBase.meansText(),
			thousands(d.keys), d.atN.loads[0].String(), thousands(d.base), d.atBase.loads[0].String()),
		fmt.Sprintf("VmRSS over %s keys after the request rounds: %s.", thousands(d.keys), mib(d.bigLater)),
	)
	return append(out, d.listText())
}

func (d v6Data) listText() string {
	if d.listErr != "" {
		return fmt.Sprintf("The floor, the verifier's list alone (the same request, `verifier.OpenKeyList`: one list with its label selector, protobuf over HTTP/1.1, read to the end and thrown away, from this process after the verifier stopped): %s after %s.", d.listErr, fmtDur(d.list))
	}
	return fmt.Sprintf("The floor, the verifier's list alone (the same request, `verifier.OpenKeyList`: one list with its label selector, protobuf over HTTP/1.1, read to the end and thrown away, from this process after the verifier stopped): %s for %s of answer. Ready minus this is what the verifier's own start costs beyond the API server's answer.", fmtDur(d.list), mib(float64(d.listBytes)))
}

// etcdUsage is etcd's size after compaction and defragmentation, and the
// stored bytes under some key prefixes.
type etcdUsage struct {
	status   etcdStatus
	prefixes map[string]prefixSize
}

// measureEtcd compacts etcd at its current revision, defragments it, and
// reads its status and the sizes under prefixes.
func measureEtcd(ctx context.Context, store *etcdStore, prefixes []string) (etcdUsage, error) {
	u := etcdUsage{prefixes: map[string]prefixSize{}}
	rev, err := store.revision(ctx)
	if err != nil {
		return u, err
	}
	if err := store.compact(ctx, rev); err != nil {
		return u, err
	}
	if err := store.defragment(ctx); err != nil {
		return u, err
	}
	if u.status, err = store.status(ctx); err != nil {
		return u, err
	}
	for _, p := range prefixes {
		if u.prefixes[p], err = store.prefixSize(ctx, p); err != nil {
			return u, err
		}
	}
	return u, nil
}

// e1Data is what E1 measured.
type e1Data struct {
	keys                 int
	before, after, floor etcdUsage
	prefixes             []e1Prefix
	took                 time.Duration
	ready                int
	floorErr             string
	floorTook            time.Duration
	floorCreated         bool
}

// e1Prefix names an etcd key prefix of E1's breakdown.
type e1Prefix struct{ name, prefix string }

func e1Prefixes(store *etcdStore) []e1Prefix {
	return []e1Prefix{
		{"APIKeys", store.prefix + "/keyward.dev/apikeys/" + e1NS + "/"},
		{"delivery Secrets", store.prefix + "/secrets/" + e1NS + "/"},
		{"hashed Secrets (operator namespace)", store.prefix + "/secrets/" + ctrlOps + "/"},
		{"events in the key's namespace", store.prefix + "/events/" + e1NS + "/"},
		{"events in the operator namespace", store.prefix + "/events/" + ctrlOps + "/"},
		{"the floor's Secrets", store.prefix + "/secrets/" + e1FloorNS + "/"},
	}
}

// runE1 issues e1Keys keys in a namespace of their own and measures etcd's
// in-use size before and after, compacted and defragmented.
func (b *bench) runE1(ctx context.Context) error {
	store, err := findEtcd()
	if err != nil {
		return err
	}
	// C1a leaves a manager whose controllers wait for a lease the bench
	// holds: E1 needs them running.
	if err := b.mgr.stop(); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if b.mgr, err = b.startManager(ctx, newWriteCounter(), false); err != nil {
		return err
	}
	if err := b.waitWebhooks(ctx); err != nil {
		return err
	}
	if err := b.e1Objects(ctx); err != nil {
		return err
	}
	b.mgr.writes.quiet(2*time.Second, time.Minute)
	d := e1Data{keys: e1Keys, prefixes: e1Prefixes(store)}
	var paths []string
	for _, p := range d.prefixes {
		paths = append(paths, p.prefix)
	}
	if d.before, err = measureEtcd(ctx, store, paths); err != nil {
		return err
	}
	logf("E1: etcd before: %s", d.before.status.text())
	if err := b.e1Issue(ctx, &d); err != nil {
		return err
	}
	if d.after, err = measureEtcd(ctx, store, paths); err != nil {
		return err
	}
	logf("E1: etcd after %d keys: %s", d.ready, d.after.status.text())
	if err := b.e1Floor(ctx, &d, store, paths); err != nil {
		d.floorErr = err.Error()
	}
	r := b.add(d.row(b.command("E1")))
	for _, l := range r.Details {
		logf("E1: %s", l)
	}
	return nil
}

// e1Objects creates E1's KeyGroup and Application and waits until the
// Application is Active.
func (b *bench) e1Objects(ctx context.Context) error {
	c := b.cluster.client
	if err := c.Create(ctx, testgen.KeyGroup(e1NS, e1Group, testgen.WithLimits(1, e1Keys))); err != nil {
		return err
	}
	if err := c.Create(ctx, testgen.Application(e1NS, e1App, e1Group)); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var app keywardv1alpha1.Application
		if err := c.Get(ctx, client.ObjectKey{Namespace: e1NS, Name: e1App}, &app); err != nil {
			return err
		}
		if app.Status.Phase == keywardv1alpha1.ApplicationActive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("E1: Application %s/%s not Active after a minute (%q)", e1NS, e1App, app.Status.Phase)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// e1Issue creates the APIKeys and waits until all are Ready and the
// manager has stopped writing.
func (b *bench) e1Issue(ctx context.Context, d *e1Data) error {
	logf("E1: applying %d APIKeys", e1Keys)
	w, err := watchReady(ctx, b.cluster.client, e1NS, e1Keys)
	if err != nil {
		return err
	}
	defer w.stop()
	start := time.Now()
	err = createAll(ctx, e1Keys, func(ctx context.Context, i int) error {
		return b.cluster.client.Create(ctx, testgen.APIKey(e1NS, fmt.Sprintf("key-%05d", i), e1App))
	})
	if err != nil {
		return err
	}
	end, ready := w.wait(20 * time.Minute)
	d.took, d.ready = end.Sub(start), len(ready)
	logf("E1: %d/%d Ready in %s", d.ready, e1Keys, fmtDur(d.took))
	if d.ready < e1Keys {
		return fmt.Errorf("E1: %d/%d keys Ready after 20 minutes: %s", d.ready, e1Keys, b.phases(ctx, e1NS))
	}
	b.mgr.writes.quiet(3*time.Second, 2*time.Minute)
	return nil
}

// e1Floor creates, for e1Keys keys, the two Secrets keyward writes (the
// delivery Secret and the hashed one) directly, and measures etcd again.
func (b *bench) e1Floor(ctx context.Context, d *e1Data, store *etcdStore, paths []string) error {
	if err := b.cluster.namespace(ctx, e1FloorNS); err != nil {
		return err
	}
	start := time.Now()
	err := createAll(ctx, e1Keys, func(ctx context.Context, i int) error {
		k, err := keys.Generate("kt")
		if err != nil {
			return err
		}
		delivery := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: e1FloorNS, Name: fmt.Sprintf("key-%05d-key", i),
				Labels: map[string]string{"app.kubernetes.io/managed-by": managedBy, record.LabelAPIKey: fmt.Sprintf("key-%05d", i)}},
			Type:      corev1.SecretTypeOpaque,
			Data:      map[string][]byte{record.DeliveryAPIKey: []byte(k.Plaintext()), record.DeliveryKeyID: []byte(k.ID())},
			Immutable: ptr.To(true),
		}
		if err := b.cluster.client.Create(ctx, delivery); err != nil {
			return err
		}
		return b.cluster.client.Create(ctx, hashedSecret(e1FloorNS, e1NS, e1Group, i, k))
	})
	if err != nil {
		return err
	}
	d.floorTook, d.floorCreated = time.Since(start), true
	d.floor, err = measureEtcd(ctx, store, paths)
	logf("E1: etcd after the floor's %d Secrets: %s", 2*e1Keys, d.floor.status.text())
	return err
}

// perKey is the growth of etcd's in-use size from a to b, per key.
func perKey(a, b etcdUsage, n int) float64 {
	return float64(b.status.DBSizeInUse-a.status.DBSizeInUse) / float64(n)
}

func (d e1Data) row(command string) *row {
	bpk := perKey(d.before, d.after, d.keys)
	r := &row{
		ID: "E1", What: fmt.Sprintf("etcd bytes per issued key (the APIKey, its delivery and hashed Secrets, their events), %s keys", thousands(d.keys)),
		Figure: fmt.Sprintf("%.0f bytes per issued key (after compaction and defragmentation)", bpk),
		Floor:  "—", Ratio: "—", Target: "—", Met: "—", Command: command,
	}
	if d.floorCreated && d.floorErr == "" {
		fpk := perKey(d.after, d.floor, d.keys)
		r.Floor = fmt.Sprintf("%.0f bytes per key (its two Secrets written directly)", fpk)
		r.Ratio = fmt.Sprintf("%.2f×", bpk/fpk)
	}
	r.Details = append(r.Details,
		fmt.Sprintf("In the control plane of the other rows, with the manager (admission webhooks on) running: a namespace with one KeyGroup and one Application; %s APIKeys created %d at a time, all Ready in %s, then the manager's writes quiet for 3 s. Before and after: etcd compacted at its current revision (`/v3/kv/compaction`, physical), defragmented (`/v3/maintenance/defragment`), and its `/v3/maintenance/status` read. Before: %s. After: %s.",
			thousands(d.keys), createConns, fmtDur(d.took), d.before.status.text(), d.after.status.text()),
		"What the keys' objects store, after − before, per key (values as stored, the API server's protobuf or JSON; etcd's own overhead per key — its index, the key itself, the page layout — comes on top and is in the figure): "+d.breakdown(d.before, d.after, d.keys)+".",
		fmt.Sprintf("At this size, etcd's default quota (2 GiB) holds about %s issued keys and its largest (8 GiB) about %s, before the other objects of the cluster and with none of the space that revisions awaiting compaction take (the API server compacts every 5 minutes; a mass rotation rewrites every key's objects).",
			thousands(int(etcdDefaultQuota/max(bpk, 1))), thousands(int(etcdMaxQuota/max(bpk, 1)))),
	)
	switch {
	case d.floorErr != "":
		r.Details = append(r.Details, "The floor (the same Secrets written directly) could not be measured: "+d.floorErr)
	case d.floorCreated:
		r.Details = append(r.Details, fmt.Sprintf("The floor: afterwards, %s pairs of Secrets as keyward writes them (a delivery Secret and a hashed one, as C1's floor does) created directly in a namespace of their own in %s, and etcd measured the same way: %s; the Secrets' values: %s.",
			thousands(d.keys), fmtDur(d.floorTook), d.floor.status.text(), d.breakdown(d.after, d.floor, d.keys)))
	}
	return r
}

// breakdown is the growth under each prefix between a and b, per key.
func (d e1Data) breakdown(a, b etcdUsage, n int) string {
	var parts []string
	for _, p := range d.prefixes {
		x, y := a.prefixes[p.prefix], b.prefixes[p.prefix]
		if y.count == x.count && y.bytes == x.bytes {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.2f objects, %.0f B (`%s`)", p.name,
			float64(y.count-x.count)/float64(n), float64(y.bytes-x.bytes)/float64(n), p.prefix))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}
