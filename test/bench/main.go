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

// Command bench measures keyward against its floors (issue 8) and writes
// the results as Markdown: the verifier (V1-V5, V7), its gRPC Check (G1), the
// verifier behind a real Traefik (T1) and the controllers (C1-C3), on
// loopback, against the same real control plane the tests use.
//
//	go run ./test/bench -out BENCHMARKS.md       # everything (make bench)
//	go run ./test/bench -only V1,V2              # some rows, to stdout
//
// Figures are reported beside their targets; a missed target is reported
// as missed, never as a failure: the command exits 0 unless a benchmark
// could not run at all. Where a target is missed, a CPU profile of the
// component at fault is saved under bin/bench/ and its top functions are
// quoted in the report.
//
// "bench floor" and "bench verifier" are the server processes the run
// starts: V1's floor and upstream, and a verifier.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/keyward/keyward/test/testenv"
)

// The subcommands that run the benchmark's servers as child processes, and
// the names of those servers in the report.
const (
	cmdFloor    = "floor"
	cmdVerifier = "verifier"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case cmdFloor:
			os.Exit(floorMain(os.Args[2:]))
		case cmdVerifier:
			os.Exit(verifierMain(os.Args[2:]))
		case cmdGRPCFloor:
			os.Exit(grpcFloorMain(os.Args[2:]))
		case cmdGRPCVerifier:
			os.Exit(grpcVerifierMain(os.Args[2:]))
		}
	}
	os.Exit(run(os.Args[1:]))
}

// options are the command's flags.
type options struct {
	out      string
	only     map[string]bool
	keys     int
	viaAPI   int
	conns    int
	duration time.Duration
	warmup   time.Duration
	rounds   int
	c1Keys   int
	c3Keys   int
	single   bool
	c1Wait   time.Duration
	v6Keys   int
}

func (o *options) want(ids ...string) bool {
	if len(o.only) == 0 {
		return true
	}
	for _, id := range ids {
		if o.only[id] {
			return true
		}
	}
	return false
}

// bench is one run: its options, where it keeps files, and its rows.
type bench struct {
	opts    options
	root    string
	dir     string // bin/bench: profiles, kubeconfig, nginx directories
	rows    []*row
	cluster *cluster
	mgr     *runningManager
	started time.Time
	loadavg string // /proc/loadavg when the run started

	// interrupted stops what outlives this process (the control plane's
	// kube-apiserver and etcd) should it be interrupted; set once the
	// control plane runs.
	interrupted atomic.Pointer[func()]
}

// stopOnSignal makes an interrupt or SIGTERM stop the control plane before
// the process exits: otherwise kube-apiserver and etcd would run on,
// loading the machine that the next run measures.
func (b *bench) stopOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-ch
		logf("%s: stopping the control plane", s)
		if stop := b.interrupted.Load(); stop != nil {
			(*stop)()
		}
		code := 130 // 128 + SIGINT
		if s == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()
}

func run(args []string) int {
	var o options
	var only string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", "", "write the Markdown report to this file (default: stdout)")
	fs.StringVar(&only, "only", "", "comma-separated rows to run (V1..V7, G1, T1, C1..C3, E1); default all")
	fs.IntVar(&o.keys, "keys", 100_000, "hashed Secrets loaded into the verifier (V1, V2, V4, V5)")
	fs.IntVar(&o.viaAPI, "keys-via-api", 5000, "of those, how many are created through the API server; the rest are put into etcd directly")
	fs.IntVar(&o.conns, "conns", 16, "keep-alive connections of the load generator (V1, V2), callers of the gRPC one (G1)")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measured time of one load run (V1, V2)")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured time before each load run")
	fs.IntVar(&o.rounds, "rounds", 6, "alternating floor/keyward rounds per load row; medians are reported")
	fs.IntVar(&o.c1Keys, "c1-keys", 1000, "APIKeys applied at once (C1, C2)")
	fs.IntVar(&o.c3Keys, "c3-keys", 200, "APIKeys created then deleted one at a time (C3)")
	fs.DurationVar(&o.c1Wait, "c1-timeout", 3*time.Minute, "how long C1 waits for all keys to be Ready")
	fs.IntVar(&o.v6Keys, "v6-keys", 1_000_000, "hashed Secrets the verifier holds in V6 (a control plane of its own)")
	fs.BoolVar(&o.single, "c1-single-application", true, "also run C1 with all keys in one application")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, id := range strings.Split(only, ",") {
			o.only[strings.ToUpper(strings.TrimSpace(id))] = true
		}
	}
	// The manager and client-go log through these; the figures are the output.
	ctrl.SetLogger(logr.Discard())
	klog.SetOutput(io.Discard)
	klog.LogToStderr(false)

	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := os.Chdir(root); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b := &bench{opts: o, root: root, dir: filepath.Join(root, "bin", "bench"), started: time.Now()}
	b.loadavg = loadavg()
	if err := os.MkdirAll(b.dir, 0o750); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	b.stopOnSignal()
	if err := b.runAll(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := b.writeReport(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	logf("done in %s", time.Since(b.started).Round(time.Second))
	return 0
}

// clusterStep measures the rows ids against the control plane.
type clusterStep struct {
	ids []string
	run func(context.Context) error
}

// planes are the rows measured against a shared control plane, in the
// order they run, grouped by control plane: each group starts a new one.
// The controller rows have one of their own, because what the verifier
// rows leave behind (100,000 hashed Secrets in the API server's watch
// cache and etcd) would be measured as the cost of issuing keys: C1 ran at
// 46 keys/s after them and at 70 keys/s on a new control plane, in the
// same hour.
func (b *bench) planes() [][]clusterStep {
	return [][]clusterStep{
		{
			{[]string{"V1", "V2", "V4", "V5", "V7"}, b.runVerifier},
			{[]string{"T1"}, b.runTraefik},
			{[]string{"G1"}, b.runGRPC},
		},
		{
			{[]string{"C1", "C2", "C3", "C4"}, b.runControllers},
			{[]string{"E1"}, b.runE1},
		},
	}
}

func (b *bench) runAll(ctx context.Context) error {
	o := &b.opts
	// V3 first: its go test starts a control plane of its own.
	if o.want("V3") {
		if err := b.runV3(ctx); err != nil {
			return err
		}
	}
	// V6 next: a control plane of its own, stopped before the others'
	// starts (the etcd this process writes to directly is the one it finds).
	if o.want("V6") {
		if err := b.runV6(ctx); err != nil {
			return err
		}
	}
	for _, steps := range b.planes() {
		if err := b.onPlane(ctx, steps); err != nil {
			return err
		}
	}
	return nil
}

// onPlane runs the wanted steps on a control plane started for them, with
// the manager running, and stops it after them. It starts nothing when no
// step is wanted.
func (b *bench) onPlane(ctx context.Context, steps []clusterStep) error {
	o := &b.opts
	var ids []string
	for _, s := range steps {
		ids = append(ids, s.ids...)
	}
	if !o.want(ids...) {
		return nil
	}
	logf("starting a control plane for %s", strings.Join(ids, ", "))
	c, err := startCluster(b.root, b.dir)
	if err != nil {
		return err
	}
	b.cluster = c
	stop := sync.OnceFunc(c.stop)
	b.interrupted.Store(&stop)
	defer func() {
		stop()
		b.interrupted.Store(nil)
		b.cluster = nil
	}()
	// The manager serves the admission webhooks, which every keyward object
	// goes through: it runs from here on.
	if err := b.namespaces(ctx); err != nil {
		return err
	}
	if b.mgr, err = b.startManager(ctx, newWriteCounter(), false); err != nil {
		return err
	}
	defer func() {
		_ = b.mgr.stop()
		b.mgr = nil
	}()
	if err := b.waitWebhooks(ctx); err != nil {
		return err
	}
	if err := b.controllerObjects(ctx); err != nil {
		return err
	}
	for _, s := range steps {
		if !o.want(s.ids...) {
			continue
		}
		if err := s.run(ctx); err != nil {
			return err
		}
	}
	return nil
}

// row is one line of the report.
type row struct {
	ID, What, Figure, Floor, Ratio, Target, Met string
	Command                                     string
	// Details are lines for the row's section: per-round figures, how it
	// was measured, breakdowns.
	Details []string
	// Profile is the saved profile's path and its top functions, for a
	// missed target.
	Profile, ProfileTop string
}

func (b *bench) add(r *row) *row {
	b.rows = append(b.rows, r)
	logf("%s: %s (floor %s, ratio %s, target %s): %s", r.ID, r.Figure, r.Floor, r.Ratio, r.Target, r.Met)
	return r
}

// row returns the row with this id, or nil if it has not been added.
func (b *bench) row(id string) *row {
	for _, r := range b.rows {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func (b *bench) command(ids string) string {
	return "go run ./test/bench -only " + ids
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// median returns the median of xs (the mean of the middle two for an even
// count).
func median[T int64 | float64 | time.Duration](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
