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
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyward/keyward/verifier"
)

// The answer headers of the benchmark's valid key, as the verifier sends
// them (the floor sends the same).
const (
	benchApplication = "app-000"
	benchScopes      = "read"
	benchExternalID  = "ext-app-000"
)

// floorInfo is what the floor child reports.
type floorInfo struct {
	Auth     string `json:"auth"`
	Upstream string `json:"upstream"`
	Pprof    string `json:"pprof"`
	pid      int
}

// floorMain is "bench floor": V1's floor, a minimal net/http server that
// answers every request 200 with the verifier's answer headers, and the
// upstream behind nginx for V2, answering 200 "ok". Both listen on
// 127.0.0.1 until stdin closes. With -busy, the floor's answer costs that
// much more CPU: V1's yardstick for how the saturated tail grows with the
// work a handler does.
func floorMain(args []string) int {
	fs := flag.NewFlagSet("bench floor", flag.ContinueOnError)
	keyID := fs.String("key-id", "kt_00000000", "X-Auth-Key to answer with")
	namespace := fs.String("namespace", "bench", "X-Auth-Namespace to answer with")
	timeouts := fs.Bool("verifier-timeouts", false, "serve with the verifier's http.Server timeouts (read, write, idle) instead of net/http's defaults")
	busy := fs.Duration("busy", 0, "stay on the CPU this long in each answer (a busy loop), as a handler doing that much work would")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var (
		hKey   = []string{*keyID}
		hApp   = []string{benchApplication}
		hScope = []string{benchScopes}
		hNS    = []string{*namespace}
		hExt   = []string{benchExternalID}
		zero   = []string{"0"}
	)
	auth := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["X-Auth-Key"] = hKey
		h["X-Auth-Application"] = hApp
		h["X-Auth-Scopes"] = hScope
		h["X-Auth-Namespace"] = hNS
		h["X-Auth-External-Id"] = hExt
		h["Content-Length"] = zero
		if *busy > 0 {
			for start := time.Now(); time.Since(start) < *busy; {
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	ok := []byte("ok\n")
	okLen, text := []string{strconv.Itoa(len(ok))}, []string{"text/plain"}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = text
		h["Content-Length"] = okLen
		_, _ = w.Write(ok)
	})
	la, err := net.Listen("tcp", anyLoopback)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lu, err := net.Listen("tcp", anyLoopback)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	authServer := &http.Server{Handler: auth, ReadHeaderTimeout: 5 * time.Second}
	if *timeouts {
		// As verifier.Start configures its server.
		authServer.ReadTimeout, authServer.WriteTimeout, authServer.IdleTimeout = 10*time.Second, 10*time.Second, 2*time.Minute
		authServer.MaxHeaderBytes = 32 << 10
	}
	go func() { _ = authServer.Serve(la) }()
	go func() { _ = (&http.Server{Handler: upstream, ReadHeaderTimeout: 5 * time.Second}).Serve(lu) }()
	lp, err := net.Listen("tcp", anyLoopback)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go func() { _ = (&http.Server{Handler: profileMux(), ReadHeaderTimeout: 5 * time.Second}).Serve(lp) }()
	if err := printJSON(floorInfo{Auth: la.Addr().String(), Upstream: lu.Addr().String(), Pprof: lp.Addr().String()}); err != nil {
		return 1
	}
	waitStdin()
	return 0
}

// verifierInfo is what the verifier child reports once ready.
type verifierInfo struct {
	Addr  string `json:"addr"`
	Probe string `json:"probe"`
	Pprof string `json:"pprof"`
	// Ready is the time from verifier.Start to the first 200 of /readyz.
	Ready time.Duration `json:"ready"`
	// HeapAlloc is runtime.MemStats.HeapAlloc after two runtime.GC calls,
	// once ready.
	HeapAlloc uint64 `json:"heapAlloc"`
	// GCCPU is the CPU time of one full garbage collection once ready
	// (runtime/metrics /cpu/classes/gc/total, over 5 runtime.GC calls).
	GCCPU time.Duration `json:"gcCPU"`
	Keys  int           `json:"keys"`
	pid   int
}

// verifierMain is "bench verifier": verifier.Start with the options
// "keyward verifier" uses, against the benchmark's control plane. It reports
// its start-to-ready time and its heap, then serves until stdin closes, with
// CPU and heap profiles on a third loopback port.
func verifierMain(args []string) int {
	fs := flag.NewFlagSet("bench verifier", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the control plane")
	namespace := fs.String("namespace", "", "operator namespace holding the hashed Secrets")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg.QPS = -1 // as ctrl.GetConfig, which "keyward verifier" uses in a cluster
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	start := time.Now()
	s, err := verifier.Start(ctx, cfg, verifier.Options{
		Namespace: *namespace, Listen: anyLoopback, ProbeAddr: anyLoopback,
		LastUsedInterval: time.Minute, Log: logr.Discard(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	readyAt, err := waitHTTP("http://"+s.ProbeAddr+"/readyz", time.Millisecond, 2*time.Minute)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	info := verifierInfo{Addr: s.Addr, Probe: s.ProbeAddr, Ready: readyAt.Sub(start), Keys: s.Store.Len()}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	info.HeapAlloc = ms.HeapAlloc
	info.GCCPU = gcCPU(5)

	pl, err := net.Listen("tcp", anyLoopback)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	info.Pprof = pl.Addr().String()
	go func() { _ = (&http.Server{Handler: profileMux(), ReadHeaderTimeout: 5 * time.Second}).Serve(pl) }()
	if err := printJSON(info); err != nil {
		return 1
	}
	waitStdin()
	cancel()
	_ = s.Wait()
	return 0
}

// gcCPU returns the CPU time of one full garbage collection, the mean of n.
func gcCPU(n int) time.Duration {
	sample := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(sample)
	before := sample[0].Value.Float64()
	for range n {
		runtime.GC()
	}
	metrics.Read(sample)
	return time.Duration((sample[0].Value.Float64() - before) / float64(n) * float64(time.Second))
}

// recording serves what start writes for ?seconds=N (5 by default, at
// most 60), then stops it.
func recording(start func(io.Writer) error, stop func()) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sec, err := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err != nil || sec <= 0 || sec > 60 {
			sec = 5
		}
		if err := start(w); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		time.Sleep(time.Duration(sec) * time.Second)
		stop()
	}
}

// profileMux serves /cpu?seconds=N (a CPU profile), /trace?seconds=N (an
// execution trace) and /heap (a heap profile after a GC), without
// net/http/pprof's global registration.
func profileMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/cpu", recording(pprof.StartCPUProfile, pprof.StopCPUProfile))
	mux.HandleFunc("/trace", recording(trace.Start, trace.Stop))
	mux.HandleFunc("/heap", func(w http.ResponseWriter, _ *http.Request) {
		runtime.GC()
		_ = pprof.Lookup("heap").WriteTo(w, 0)
	})
	return mux
}
