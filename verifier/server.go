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

package verifier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/match"
)

// Options configure a verifier.
type Options struct {
	// Namespace is the operator's namespace; only its hashed Secrets are
	// read.
	Namespace string
	// Listen is the address of the verification endpoints.
	Listen string
	// ProbeAddr serves /healthz, /readyz and /metrics.
	ProbeAddr string
	// MetricsAddr, when set and different from ProbeAddr, serves /metrics
	// on its own as well.
	MetricsAddr string
	// TrustedProxies are the CIDRs whose X-Real-IP and X-Forwarded-For are
	// believed.
	TrustedProxies []string
	// LastUsedInterval is the least time between two writes of one key's
	// lastUsedTime. Zero: one minute. Negative: last use is not recorded.
	LastUsedInterval time.Duration
	// KeyGroups, when set, are the only KeyGroups ("<namespace>/<name>")
	// whose keys this verifier holds, selected at the API server: one of
	// several verifier Deployments, each for some groups. Keys of other
	// groups are unknown to it.
	KeyGroups []string
	// GRPCTLSCertFile and GRPCTLSKeyFile, when set, serve gRPC over TLS
	// with this certificate, read again when the file changes; unset: h2c.
	GRPCTLSCertFile, GRPCTLSKeyFile string
	// GRPCListen, when set, serves Envoy's gRPC ext_authz Check there
	// (h2c), with the gRPC health and reflection services.
	GRPCListen string
	// ShutdownDelay is how long the verifier reports not-ready before it
	// stops serving, so load balancers take it out first.
	ShutdownDelay time.Duration
	// Registry receives the metrics; nil: a fresh one.
	Registry *prometheus.Registry
	// Log receives the verifier's logs.
	Log logr.Logger
}

// Server is a running verifier.
type Server struct {
	// Addr, ProbeAddr and GRPCAddr (when served) are the bound addresses.
	Addr, ProbeAddr, GRPCAddr string
	Store                     *Store
	Handler                   *Handler

	stopping atomic.Bool
	done     chan error
	grpc     *grpcServer // nil: no gRPC
}

// parse checks the options and returns what they say: the trusted proxies
// and the label selector of the hashed Secrets held.
func (o Options) parse() (*match.TrustedProxies, string, error) {
	if o.Namespace == "" {
		return nil, "", errors.New("verifier: the operator namespace is required")
	}
	trusted, err := match.ParseTrustedProxies(o.TrustedProxies)
	if err != nil {
		return nil, "", fmt.Errorf("--trusted-proxies: %w", err)
	}
	selector, err := keySelector(o.KeyGroups)
	return trusted, selector, err
}

// Start starts a verifier and returns once it listens; it becomes ready when
// its caches have synced, and stops when ctx ends. Wait returns then.
func Start(ctx context.Context, cfg *rest.Config, o Options) (*Server, error) {
	if o.LastUsedInterval == 0 {
		o.LastUsedInterval = time.Minute
	}
	trusted, selector, err := o.parse()
	if err != nil {
		return nil, err
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	store := NewStore(newMetrics(reg))
	registerStoreGauges(reg, store)
	api, err := clients(cfg)
	if err != nil {
		return nil, err
	}

	var usage *usageReporter
	if o.LastUsedInterval > 0 {
		usage = newUsageReporter(api.kc, o.LastUsedInterval, o.Log.WithName("usage"))
	}
	s := &Server{Store: store, Handler: NewHandler(store, trusted, usage), done: make(chan error, 1)}

	addrs := []string{o.Listen, o.ProbeAddr}
	separateMetrics := o.MetricsAddr != "" && o.MetricsAddr != o.ProbeAddr && o.MetricsAddr != "0"
	if separateMetrics {
		addrs = append(addrs, o.MetricsAddr)
	}
	listeners, err := listen(addrs...)
	if err != nil {
		return nil, err
	}
	listener, probeListener := listeners[0], listeners[1]
	s.Addr, s.ProbeAddr = listener.Addr().String(), probeListener.Addr().String()

	keysFeed, groupsReflector := feeds(api, o.Namespace, selector, store, newWatchCounters(reg), o.Log)

	main := &http.Server{
		Handler:           s.readyGate(s.Handler),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          nil,
	}
	probes := &http.Server{Handler: s.probeMux(reg), ReadHeaderTimeout: 5 * time.Second}
	var extra *http.Server
	if separateMetrics {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		extra = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = extra.Serve(listeners[2]) }()
	}

	if err := s.listenGRPC(o.GRPCListen, o.GRPCTLSCertFile, o.GRPCTLSKeyFile); err != nil {
		for _, l := range listeners {
			_ = l.Close()
		}
		return nil, err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go s.grpc.serve(runCtx)
	go keysFeed.Run(runCtx)
	go groupsReflector.RunWithContext(runCtx)
	if usage != nil {
		go usage.Run(runCtx)
	}
	go func() { _ = probes.Serve(probeListener) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- main.Serve(listener) }()

	go s.drain(ctx, serveErr, o.ShutdownDelay, cancel, main, probes, extra) //nolint:gosec // G118: draining starts once ctx is done, so it needs a context of its own
	o.Log.Info("Verifier listening", "address", s.Addr, "probes", s.ProbeAddr, "namespace", o.Namespace)
	return s, nil
}

// listenGRPC opens the gRPC listener when addr is set.
func (s *Server) listenGRPC(addr, certFile, keyFile string) error {
	if addr == "" {
		return nil
	}
	var certs *certFiles
	if certFile != "" || keyFile != "" {
		c, err := newCertFiles(certFile, keyFile)
		if err != nil {
			return err
		}
		certs = c
	}
	g, err := newGRPCServer(addr, s, certs)
	if err != nil {
		return err
	}
	s.grpc, s.GRPCAddr = g, g.addr()
	return nil
}

// apiClients are the verifier's API clients: a clientset that asks for
// protobuf, cheaper to decode by the hundred thousand Secrets, which
// watches them; the REST client that lists them (listConfig); and a
// controller-runtime client for KeyGroups and status writes.
type apiClients struct {
	cs   kubernetes.Interface
	list rest.Interface
	kc   client.WithWatch
}

func clients(cfg *rest.Config) (apiClients, error) {
	var c apiClients
	var err error
	if c.cs, err = kubernetes.NewForConfig(protobufConfig(cfg)); err != nil {
		return c, err
	}
	lcs, err := kubernetes.NewForConfig(listConfig(cfg))
	if err != nil {
		return c, err
	}
	c.list = lcs.CoreV1().RESTClient()
	if c.kc, err = client.NewWithWatch(cfg, client.Options{Scheme: kube.NewScheme()}); err != nil {
		return c, err
	}
	return c, nil
}

func protobufConfig(cfg *rest.Config) *rest.Config {
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = runtime.ContentTypeProtobuf
	pcfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return pcfg
}

// listConfig is the configuration of the verifier's list of its hashed
// Secrets: protobuf, over HTTP/1.1. The list is the API server's largest
// answer by far (about 1.3 KiB per key), and HTTP/2 moves it through
// 16 KiB frames, flow-control windows and a hand-off between goroutines on
// both sides: over 400,000 keys the API server answered in 4.9–5.1 s over
// HTTP/1.1 against 6.0–8.8 s over HTTP/2, and the verifier was ready in
// 6.0 s against 8.0–8.4 s (test/bench V6). The watch that follows stays on
// HTTP/2, whose pings find a dead connection in seconds.
func listConfig(cfg *rest.Config) *rest.Config {
	lcfg := protobufConfig(cfg)
	lcfg.NextProtos = []string{"http/1.1"}
	return lcfg
}

// Wait blocks until the verifier has stopped.
func (s *Server) Wait() error { return <-s.done }

// Ready reports whether the verifier answers: caches synced, not stopping.
func (s *Server) Ready() bool { return s.Store.Synced() && !s.stopping.Load() }

// readyGate answers 503 until the caches have synced: before that, a valid
// key would be refused as unknown.
func (s *Server) readyGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Store.Synced() {
			w.Header()["Retry-After"] = []string{"1"}
			http.Error(w, `{"reason":"unavailable","message":"the verifier is starting"}`, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) probeMux(reg *prometheus.Registry) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			http.Error(w, "not ready: caches not synced or shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// listen opens every address, or none.
func listen(addrs ...string) ([]net.Listener, error) {
	var out []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, o := range out {
				_ = o.Close()
			}
			return nil, fmt.Errorf("verifier: listening on %s: %w", a, err)
		}
		out = append(out, l)
	}
	return out, nil
}

// drain stops the verifier when ctx ends or the server fails: not ready
// first, so load balancers stop sending, then the servers drain, then the
// reflectors and the usage writer stop.
func (s *Server) drain(ctx context.Context, serveErr <-chan error, delay time.Duration, stop context.CancelFunc, servers ...*http.Server) {
	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	s.stopping.Store(true)
	s.grpc.notServing()
	time.Sleep(delay)
	// ctx is done by now: draining needs a context of its own.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if srv != nil {
			_ = srv.Shutdown(sctx)
		}
	}
	s.grpc.stop(sctx)
	stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.done <- err
}
