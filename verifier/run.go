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
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/match"
	"github.com/keyward/keyward/internal/record"
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
	// Addr and ProbeAddr are the bound addresses.
	Addr, ProbeAddr string
	Store           *Store
	Handler         *Handler

	stopping atomic.Bool
	done     chan error
}

// Start starts a verifier and returns once it listens; it becomes ready when
// its caches have synced, and stops when ctx ends. Wait returns then.
func Start(ctx context.Context, cfg *rest.Config, o Options) (*Server, error) {
	if o.Namespace == "" {
		return nil, errors.New("verifier: the operator namespace is required")
	}
	if o.LastUsedInterval == 0 {
		o.LastUsedInterval = time.Minute
	}
	trusted, err := match.ParseTrustedProxies(o.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	store := NewStore(newMetrics(reg))
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_verifier_keys", Help: "Keys held in memory."}, func() float64 { return float64(store.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_verifier_ready", Help: "1 once the caches have synced."}, func() float64 {
			if store.Synced() {
				return 1
			}
			return 0
		}),
	)

	// Secrets come as protobuf: cheaper to decode by the hundred thousand.
	pcfg := rest.CopyConfig(cfg)
	pcfg.ContentType = "application/vnd.kubernetes.protobuf"
	pcfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cs, err := kubernetes.NewForConfig(pcfg)
	if err != nil {
		return nil, err
	}
	kc, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, err
	}

	var usage *usageReporter
	if o.LastUsedInterval > 0 {
		usage = newUsageReporter(kc, o.LastUsedInterval, o.Log.WithName("usage"))
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

	expired := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_verifier_watch_expired_total",
		Help: "Times a watch, or the list resuming it, was refused because its resource version was compacted away (410 Gone); a full relist follows.",
	}, []string{"resource"})
	lists := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyward_verifier_lists_total",
		Help: "Lists of hashed Secrets or KeyGroups made (started, for streaming lists): one at start, then one each time a watch could not be resumed.",
	}, []string{"resource"})
	reg.MustRegister(expired, lists)
	keysReflector, groupsReflector := reflectors(cs, kc, o.Namespace, store, watchCounters{expired: expired, lists: lists})

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

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go keysReflector.RunWithContext(runCtx)
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

// watchCounters count, by resource, the reflectors' lists and the watches
// (or lists) refused as expired.
type watchCounters struct{ expired, lists *prometheus.CounterVec }

// list counts one list that succeeded (its first page: the reflector pages
// through large lists), or one refused as expired.
func (c watchCounters) list(resource string, opts metav1.ListOptions, err error) {
	switch {
	case err == nil && opts.Continue == "":
		c.lists.WithLabelValues(resource).Inc()
	case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
		c.expired.WithLabelValues(resource).Inc()
	}
}

// watch counts a watch that lists (a streaming list: sendInitialEvents,
// which client-go uses where the API server supports it) as a list, and
// wraps it to count 410s and pass each object through slim (nil: none).
func (c watchCounters) watch(resource string, opts metav1.ListOptions, w watch.Interface, err error, slim func(runtime.Object) runtime.Object) (watch.Interface, error) {
	if err == nil && opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		c.lists.WithLabelValues(resource).Inc()
	}
	return countExpired(c.expired.WithLabelValues(resource), slim)(w, err)
}

// slimSecret keeps of a hashed Secret what the store reads: its data, its
// name and namespace, for updates and deletes, and its resource version,
// for the reflector. The API server's copy also carries labels and
// managedFields, several times the size, and a streamed initial list holds
// every object it has received until the list ends: with 100,000 keys, the
// difference between starting in 512 MiB or not.
func slimSecret(obj runtime.Object) runtime.Object {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj
	}
	slim := slim(s)
	return &slim
}

// slim is s with only what the verifier reads: its name, namespace,
// resource version and data.
func slim(s *corev1.Secret) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, ResourceVersion: s.ResourceVersion},
		Data:       s.Data,
	}
}

// reflectors list and watch the hashed Secrets of the operator's namespace
// (label-selected) and every KeyGroup, writing straight into store.
func reflectors(cs kubernetes.Interface, kc client.WithWatch, namespace string, store *Store, counters watchCounters) (keys, groups *cache.Reflector) {
	selector := record.LabelHashedKey + "=true"
	keysLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.LabelSelector = selector
			list, err := cs.CoreV1().Secrets(namespace).List(ctx, opts)
			counters.list("secrets", opts, err)
			if err == nil {
				for i := range list.Items {
					list.Items[i] = slim(&list.Items[i])
				}
			}
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector = selector
			w, err := cs.CoreV1().Secrets(namespace).Watch(ctx, opts)
			return counters.watch("secrets", opts, w, err, slimSecret)
		},
	}
	groupsLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := &keywardv1alpha1.KeyGroupList{}
			err := kc.List(ctx, list, &client.ListOptions{Raw: &opts})
			counters.list("keygroups", opts, err)
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := kc.Watch(ctx, &keywardv1alpha1.KeyGroupList{}, &client.ListOptions{Raw: &opts})
			return counters.watch("keygroups", opts, w, err, nil)
		},
	}
	return cache.NewReflectorWithOptions(keysLW, &corev1.Secret{}, keyStore{store}, cache.ReflectorOptions{Name: "hashed-keys", Backoff: reconnectBackoff()}),
		cache.NewReflectorWithOptions(groupsLW, &keywardv1alpha1.KeyGroup{}, groupStore{store}, cache.ReflectorOptions{Name: "keygroups", Backoff: reconnectBackoff()})
}

// countExpired counts a watch refused, or ended, because the resource
// version it resumed from is gone: etcd compacted it while the verifier was
// away. The reflector then relists; the count tells operators how often.
// Each event's object goes through slim, when not nil.
func countExpired(c prometheus.Counter, slim func(runtime.Object) runtime.Object) func(watch.Interface, error) (watch.Interface, error) {
	return func(w watch.Interface, err error) (watch.Interface, error) {
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				c.Inc()
			}
			return w, err
		}
		ew := &expiryWatch{Interface: w, out: make(chan watch.Event), stop: make(chan struct{}), expired: c, slim: slim}
		go ew.loop()
		return ew, nil
	}
}

// expiryWatch passes a watch's events through, counting 410 errors and
// trimming objects with slim (bookmarks and errors pass as they are). Unlike
// watch.Filter, it never blocks on a consumer that has stopped reading.
type expiryWatch struct {
	watch.Interface
	out     chan watch.Event
	stop    chan struct{}
	once    sync.Once
	expired prometheus.Counter
	slim    func(runtime.Object) runtime.Object // nil: objects as they come
}

func (w *expiryWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *expiryWatch) Stop() {
	w.once.Do(func() { close(w.stop) })
	w.Interface.Stop()
}

func (w *expiryWatch) loop() {
	defer close(w.out)
	for e := range w.Interface.ResultChan() {
		switch e.Type {
		case watch.Error:
			if err := apierrors.FromObject(e.Object); apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				w.expired.Inc()
			}
		case watch.Added, watch.Modified, watch.Deleted:
			if w.slim != nil {
				e.Object = w.slim(e.Object)
			}
		}
		select {
		case w.out <- e:
		case <-w.stop:
			return
		}
	}
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
	time.Sleep(delay)
	// ctx is done by now: draining needs a context of its own.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, srv := range servers {
		if srv != nil {
			_ = srv.Shutdown(sctx)
		}
	}
	stop()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	s.done <- err
}

// reconnectBackoff is how the reflectors retry when the API server is away.
// client-go's default backs off to 30 s, and keeps the longest delay for
// two minutes after the API server is back, so a revocation made during
// an outage could wait a minute to be seen: a watch that expired waits one
// delay to be retried and another before the relist. The verifier holds
// two small watches per replica, so it can afford to retry every 2 s at
// most (3 s with jitter).
func reconnectBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.5, Cap: 2 * time.Second, Steps: 1 << 30}
}
