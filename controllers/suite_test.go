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

package controllers_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// The manager's logs go to stderr with KEYWARD_TEST_LOGS=1.
	w := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
	testenv.Main(m, &env)
}

// writeCounter counts the API writes a manager's client makes.
type writeCounter struct {
	n     atomic.Int64
	mu    sync.Mutex
	log   []string
	times []time.Time // when each entry of log was written
}

func (w *writeCounter) add(verb string, obj any) {
	w.n.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.times = append(w.times, time.Now())
	if o, ok := obj.(client.Object); ok {
		w.log = append(w.log, fmt.Sprintf("%s %T %s/%s", verb, obj, o.GetNamespace(), o.GetName()))
	} else {
		w.log = append(w.log, fmt.Sprintf("%s %T", verb, obj))
	}
}

func (w *writeCounter) Load() int64 { return w.n.Load() }

// When returns the times of the writes logged as entry.
func (w *writeCounter) When(entry string) []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []time.Time
	for i, l := range w.log {
		if l == entry {
			out = append(out, w.times[i])
		}
	}
	return out
}

func (w *writeCounter) Log() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.log...)
}

func (w *writeCounter) newClient(cfg *rest.Config, opts client.Options) (client.Client, error) {
	return testenv.ObservingClient(w.add)(cfg, opts)
}

// running is a manager started by a test.
type running struct {
	writes    *writeCounter
	namespace string // the operator's namespace
	instance  string // its controllers are named apikey-<instance>...
	stop      func()
}

type managerOption func(*manager.Options)

func withClock(c clock.Clock) managerOption { return func(o *manager.Options) { o.Clock = c } }

// startManager runs keyward's manager against the test control plane,
// watching the given namespaces, with hashed Secrets in opNS. It stops when
// the test ends, or earlier through stop.
func startManager(t *testing.T, opNS string, watch []string, opts ...managerOption) *running {
	t.Helper()
	return startManagerWith(t, env.Config, opNS, watch, opts...)
}

// startManagerWith is startManager reaching the API server through cfg (an
// Outage proxy, say).
func startManagerWith(t *testing.T, cfg *rest.Config, opNS string, watch []string, opts ...managerOption) *running {
	t.Helper()
	w := &writeCounter{}
	o := manager.Options{
		Namespace:       opNS,
		WatchNamespaces: append([]string{opNS}, watch...),
		MetricsAddr:     "0",
		ProbeAddr:       "0",
		NewClient:       w.newClient,
		Instance:        testenv.NewInstance(),
	}
	for _, f := range opts {
		f(&o)
	}
	stop := testenv.StartManager(t, cfg, o)
	return &running{writes: w, namespace: opNS, instance: o.Instance, stop: stop}
}

func getKey(t *testing.T, ns, name string) *keywardv1alpha1.APIKey {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		t.Fatal(err)
	}
	return k
}

// waitPhase waits until the key reports phase with an up-to-date status.
func waitPhase(t *testing.T, ns, name string, phase keywardv1alpha1.APIKeyPhase) *keywardv1alpha1.APIKey {
	t.Helper()
	var k *keywardv1alpha1.APIKey
	testenv.Eventually(t, 20*time.Second, func() error {
		k = getKey(t, ns, name)
		if k.Status.Phase != phase || k.Status.ObservedGeneration != k.Generation {
			c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady)
			return fmt.Errorf("APIKey %s/%s: phase %q (want %q), condition %+v", ns, name, k.Status.Phase, phase, c)
		}
		return nil
	})
	return k
}

func waitAppPhase(t *testing.T, ns, name string, phase keywardv1alpha1.ApplicationPhase) *keywardv1alpha1.Application {
	t.Helper()
	a := &keywardv1alpha1.Application{}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
			return err
		}
		if a.Status.Phase != phase {
			return fmt.Errorf("Application %s/%s: phase %q, want %q", ns, name, a.Status.Phase, phase)
		}
		return nil
	})
	return a
}

// hashedSecret returns the key's hashed Secret, or nil when there is none.
func hashedSecret(t *testing.T, opNS string, k *keywardv1alpha1.APIKey) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: opNS, Name: record.SecretName(string(k.UID))}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func deliverySecret(t *testing.T, k *keywardv1alpha1.APIKey) *corev1.Secret {
	t.Helper()
	s := &corev1.Secret{}
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: k.Namespace, Name: k.DeliverySecretName()}, s)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// update applies change to the latest version of obj, retrying conflicts.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return env.Client.Update(context.Background(), obj)
	})
}

// reconciles counts this manager's reconciles by controller
// (controller_runtime_reconcile_total, across results).
func (m *running) reconciles(t *testing.T, controller string) float64 {
	t.Helper()
	return metricSum(t, "controller_runtime_reconcile_total", controller+"-"+m.instance)
}

// metricSum sums a counter's or gauge's series whose "controller" or
// "name" label is controller, in this process.
func metricSum(t *testing.T, name, controller string) float64 {
	t.Helper()
	return metricWhere(t, name, func(l map[string]string) bool { return l["controller"] == controller || l["name"] == controller })
}

// metricWhere sums a counter's or gauge's series whose labels match, in
// this process.
func metricWhere(t *testing.T, name string, match func(labels map[string]string) bool) float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if match(labels) {
				n += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return n
}

// requestErrors counts the requests this process's clients sent to host
// that got no answer (client-go's rest_client_requests_total, code
// "<error>"): evidence that the API server at host is out of reach.
func requestErrors(t *testing.T, host string) float64 {
	t.Helper()
	return metricWhere(t, "rest_client_requests_total", func(l map[string]string) bool { return l["code"] == "<error>" && l["host"] == host })
}

// idle waits for evidence that this manager's controller has done all it
// was given since a reconcile count taken before a change: at least one
// reconcile more, then an empty work queue and no reconcile running. What
// the controller would do about the change, it has done; a test may then
// assert that nothing happened. Each manager's controllers carry its
// instance in their name, so the metrics read are this manager's alone.
func (m *running) idle(t *testing.T, controller string, before float64) {
	t.Helper()
	name := controller + "-" + m.instance
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := metricSum(t, "controller_runtime_reconcile_total", name); n <= before {
			return fmt.Errorf("no %s reconcile since the change (%v)", name, n)
		}
		return queued(t, name)
	})
}

// quiet waits until this manager's controller has nothing queued and
// nothing running, whether or not it reconciled anything.
func (m *running) quiet(t *testing.T, controller string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error { return queued(t, controller+"-"+m.instance) })
}

// queued says what the named controller still has queued or running.
func queued(t *testing.T, name string) error {
	t.Helper()
	if d := metricSum(t, "workqueue_depth", name); d != 0 {
		return fmt.Errorf("%v requests in the %s queue", d, name)
	}
	if a := metricSum(t, "controller_runtime_active_workers", name); a != 0 {
		return fmt.Errorf("%v %s reconciles running", a, name)
	}
	return nil
}

// counts are the reconcile counts of the three controllers, to wait with
// idle after a change.
type counts struct{ apikey, application, keygroup float64 }

func (m *running) counts(t *testing.T) counts {
	t.Helper()
	return counts{m.reconciles(t, "apikey"), m.reconciles(t, "application"), m.reconciles(t, "keygroup")}
}

// allIdle waits until each controller has reconciled since c and is idle.
func (m *running) allIdle(t *testing.T, c counts) {
	t.Helper()
	m.idle(t, "apikey", c.apikey)
	m.idle(t, "application", c.application)
	m.idle(t, "keygroup", c.keygroup)
}
