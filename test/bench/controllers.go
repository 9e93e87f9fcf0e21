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
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// Namespaces of the controller rows.
const (
	ctrlOps     = "bench-ctrl-ops"
	c1NS        = "bench-c1"
	c1FloorNS   = "bench-c1-floor"
	c1SingleNS  = "bench-c1-single"
	c1AdmitNS   = "bench-c1-admission"
	c3NS        = "bench-c3"
	c1Apps      = 10
	createConns = 32 // concurrent creates, for APIKeys and for the floor's Secrets alike
	// apiserverProfileTime is how long kube-apiserver is profiled from the
	// start of a C1 run (it serves /debug/pprof to its admin).
	apiserverProfileTime = 8 * time.Second
)

// runningManager is the manager, in this process, with its write counter.
type runningManager struct {
	writes *writeCounter
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startManager starts a manager in this process. With leaderElection, its
// controllers wait for a lease that admissionOnly holds for someone else:
// only its webhooks and caches run.
func (b *bench) startManager(ctx context.Context, writes *writeCounter, leaderElection bool) (*runningManager, error) {
	cfg, err := b.managerConfig(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	wo := b.cluster.env.WebhookOptions()
	mgr, err := manager.New(ctx, cfg, manager.Options{
		Namespace: ctrlOps, WatchNamespaces: []string{ctrlOps, c1NS, c1SingleNS, c1AdmitNS, c3NS, benchTenant, e1NS},
		LeaderElection: leaderElection, LeaseDuration: time.Hour, RenewDeadline: 50 * time.Minute, RetryPeriod: time.Minute,
		MetricsAddr: "0", ProbeAddr: "0", NewClient: writes.newClient, Instance: testenv.NewInstance(),
		Webhooks: &manager.WebhookOptions{
			Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir,
			CertMode: manager.CertModeExternal,
		},
	})
	if err != nil {
		cancel()
		return nil, err
	}
	m := &runningManager{writes: writes, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(ctx) }()
	return m, nil
}

func (m *runningManager) stop() error {
	m.once.Do(func() {
		m.cancel()
		m.err = <-m.done
	})
	return m.err
}

// runControllers measures C1 (issuance rate), C2 (writes) and C3 (latency
// to the verifier) with the manager running in this process.
func (b *bench) runControllers(ctx context.Context) error {
	n := b.opts.c1Keys
	if err := b.waitApplications(ctx, c1Apps+3); err != nil {
		return err
	}
	b.mgr.writes.quiet(time.Second, 10*time.Second)
	if b.opts.want("C1", "C2", "C4") {
		if err := b.runC1C2(ctx); err != nil {
			return err
		}
	}
	if b.opts.want("C3") {
		if err := b.runC3(ctx); err != nil {
			return err
		}
	}
	if b.opts.want("C1") && b.opts.single {
		single, err := b.runC1(ctx, b.mgr.writes, c1SingleNS, func(int) string { return "solo" })
		if err != nil {
			return err
		}
		b.reportC1(single, "C1b", fmt.Sprintf("1 application × %d keys", n))
	}
	if b.opts.want("C1") {
		if err := b.admissionOnly(ctx); err != nil {
			return err
		}
	}
	return nil
}

// runC1C2 runs C1 and C2; C2 replaces b.mgr with a new manager.
func (b *bench) runC1C2(ctx context.Context) error {
	n := b.opts.c1Keys
	c1, err := b.runC1(ctx, b.mgr.writes, c1NS, func(i int) string { return fmt.Sprintf("app-%d", i%c1Apps) })
	if err != nil {
		return err
	}
	b.reportC1(c1, "C1", fmt.Sprintf("%d applications × %d keys", c1Apps, n/c1Apps))
	b.reportC2(c1)
	if b.opts.want("C4") {
		costs, err := b.hashedWriteCosts(ctx, n)
		if err != nil {
			return err
		}
		b.add(c1.c4Row(b.command("C4"), writeCostNote(costs, n)))
	}
	if b.opts.want("C2") {
		// Resync: a new manager finds the keys idle and must write nothing.
		if err := b.mgr.stop(); err != nil {
			return fmt.Errorf("manager: %w", err)
		}
		mgr, err := b.resync(ctx, c1)
		if err != nil {
			return err
		}
		b.mgr = mgr
	}
	return nil
}

// namespaces creates the run's namespaces.
func (b *bench) namespaces(ctx context.Context) error {
	for _, ns := range []string{ctrlOps, c1NS, c1FloorNS, c1SingleNS, c1AdmitNS, c3NS, benchTenant, benchOps, benchOpsEmpty, e1NS} {
		if err := b.cluster.namespace(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

// controllerObjects creates the KeyGroups and Applications of the
// controller rows.
func (b *bench) controllerObjects(ctx context.Context) error {
	c := b.cluster
	n := b.opts.c1Keys
	objs := []client.Object{
		testgen.KeyGroup(c1NS, "things", testgen.WithLimits(c1Apps, int32(n/c1Apps))), // #nosec G115 -- small
		testgen.KeyGroup(c1SingleNS, "things", testgen.WithLimits(1, int32(n))),       // #nosec G115 -- small
		testgen.Application(c1SingleNS, "solo", "things"),
		testgen.KeyGroup(c1AdmitNS, "things", testgen.WithLimits(1, int32(n))), // #nosec G115 -- small
		testgen.Application(c1AdmitNS, "solo", "things"),
		testgen.KeyGroup(c3NS, "things", testgen.WithLimits(1, 1000)),
		testgen.Application(c3NS, "acme", "things"),
	}
	for i := range c1Apps {
		objs = append(objs, testgen.Application(c1NS, fmt.Sprintf("app-%d", i), "things"))
	}
	for _, o := range objs {
		if err := c.client.Create(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// waitWebhooks waits until the manager's admission webhooks answer.
func (b *bench) waitWebhooks(ctx context.Context) error {
	probe := testgen.KeyGroup(c3NS, "probe")
	deadline := time.Now().Add(time.Minute)
	for {
		err := b.cluster.client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the admission webhooks do not answer: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitApplications waits until want Applications are Active.
func (b *bench) waitApplications(ctx context.Context, want int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		var list keywardv1alpha1.ApplicationList
		if err := b.cluster.client.List(ctx, &list); err != nil {
			return err
		}
		active := 0
		for _, a := range list.Items {
			if a.Status.Phase == keywardv1alpha1.ApplicationActive {
				active++
			}
		}
		if active >= want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d/%d Applications Active after a minute", active, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// c1Result is one "apply N keys at once" run and its floor.
type c1Result struct {
	keys        int
	ready       int
	took        time.Duration
	latencies   []time.Duration // create → Ready, per key
	floor       []time.Duration // the floor's runs: N Secrets created
	floorCPU    []map[string]time.Duration
	cpu         map[string]time.Duration
	writes      []string
	writesTotal int64
	profile     string
	apiserver   string // kube-apiserver's CPU profile over part of the run
	timedOut    bool
	stuck       string // the phases of the keys not Ready, on a timeout
	// requests are kube-apiserver's requests per key during the run, by
	// verb and resource (apiserver_request_total).
	requests string
	// finalizerPatches are the controller's patches of APIKeys (adding
	// the finalizer).
	finalizerPatches int64
}

// phases counts the APIKeys of ns by phase and Ready reason.
func (b *bench) phases(ctx context.Context, ns string) string {
	var list keywardv1alpha1.APIKeyList
	if err := b.cluster.client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err.Error()
	}
	count := map[string]int{}
	for _, k := range list.Items {
		reason := "no condition"
		if c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady); c != nil {
			reason = c.Reason
		}
		count[fmt.Sprintf("%s/%s", k.Status.Phase, reason)]++
	}
	var parts []string
	for k, v := range count {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// runC1 creates N APIKeys at once in ns and waits until all are Ready, with
// a floor run (the same client creating N Secrets) before and after.
func (b *bench) runC1(ctx context.Context, writes *writeCounter, ns string, app func(int) string) (*c1Result, error) {
	n := b.opts.c1Keys
	res := &c1Result{keys: n}
	floor, floorCPU, err := b.c1Floor(ctx, ns+"-a")
	if err != nil {
		return nil, err
	}
	res.floor, res.floorCPU = append(res.floor, floor), append(res.floorCPU, floorCPU)

	logf("%s: applying %d APIKeys at once", ns, n)
	w, err := watchReady(ctx, b.cluster.client, ns, n)
	if err != nil {
		return nil, err
	}
	defer w.stop()
	writes.reset()
	reqBefore, reqErr := b.apiserverRequests(ctx)
	cpuBefore := processCPU()
	res.profile = filepath.Join(b.dir, ns+"-manager.cpu.pprof")
	stopProfile, err := cpuProfile(res.profile)
	if err != nil {
		return nil, err
	}
	res.apiserver = filepath.Join(b.dir, ns+"-apiserver.cpu.pprof")
	apiserverDone := make(chan error, 1)
	go func() { apiserverDone <- b.fetchAPIServerProfile(ctx, apiserverProfileTime, res.apiserver) }()
	start := time.Now()
	created := make([]time.Time, n)
	err = createAll(ctx, n, func(ctx context.Context, i int) error {
		created[i] = time.Now()
		return b.cluster.client.Create(ctx, testgen.APIKey(ns, fmt.Sprintf("key-%04d", i), app(i)))
	})
	if err != nil {
		_ = stopProfile()
		return nil, err
	}
	end, ready := w.wait(b.opts.c1Wait)
	if n := w.watches.Load(); n > 1 {
		logf("%s: the API server closed the APIKey watch; it was resumed %d times", ns, n-1)
	}
	_ = stopProfile()
	res.cpu = cpuDelta(cpuBefore, processCPU())
	if err := <-apiserverDone; err != nil {
		logf("%s: kube-apiserver profile: %v", ns, err)
		res.apiserver = ""
	}
	res.ready, res.took, res.timedOut = len(ready), end.Sub(start), len(ready) < n
	for i := range n {
		if t, ok := ready[fmt.Sprintf("key-%04d", i)]; ok {
			res.latencies = append(res.latencies, t.Sub(created[i]))
		}
	}
	if res.timedOut {
		res.stuck = b.phases(ctx, ns)
		logf("%s: not Ready: %s", ns, res.stuck)
	}
	writes.quiet(2*time.Second, 30*time.Second)
	if reqErr == nil {
		if after, err := b.apiserverRequests(ctx); err == nil {
			res.requests = requestsPerKey(reqBefore, after, n)
		}
	}
	res.writesTotal, res.writes, res.finalizerPatches = writes.n.Load(), writes.breakdown(n), writes.count("patch APIKey")
	logf("%s: %d/%d Ready in %s; %d writes", ns, res.ready, n, res.took.Round(time.Millisecond), res.writesTotal)

	floor, floorCPU, err = b.c1Floor(ctx, ns+"-b")
	if err != nil {
		return nil, err
	}
	res.floor, res.floorCPU = append(res.floor, floor), append(res.floorCPU, floorCPU)
	return res, nil
}

// c1Floor creates, with the same client and the same concurrency as the
// APIKeys, the Secrets keyward writes for N keys: for each, a delivery
// Secret and a hashed Secret. It returns how long that took and the CPU
// the processes used meanwhile.
func (b *bench) c1Floor(ctx context.Context, run string) (time.Duration, map[string]time.Duration, error) {
	n := b.opts.c1Keys
	ks := make([]keys.Key, n)
	for i := range ks {
		k, err := keys.Generate("kt")
		if err != nil {
			return 0, nil, err
		}
		ks[i] = k
	}
	cpuBefore := processCPU()
	start := time.Now()
	err := createAll(ctx, n, func(ctx context.Context, i int) error {
		delivery := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: c1FloorNS, Name: fmt.Sprintf("key-%04d-key-%s", i, run),
				Labels: map[string]string{"app.kubernetes.io/managed-by": "keyward", record.LabelAPIKey: fmt.Sprintf("key-%04d", i)}},
			Type:      corev1.SecretTypeOpaque,
			Data:      map[string][]byte{record.DeliveryAPIKey: []byte(ks[i].Plaintext()), record.DeliveryKeyID: []byte(ks[i].ID())},
			Immutable: ptr.To(true),
		}
		if err := b.cluster.client.Create(ctx, delivery); err != nil {
			return err
		}
		hashed := hashedSecret(c1FloorNS, c1NS, "things", i, ks[i])
		hashed.Name += "-" + run
		return b.cluster.client.Create(ctx, hashed)
	})
	took := time.Since(start)
	cpu := cpuDelta(cpuBefore, processCPU())
	logf("C1 floor: %d keys' Secrets (%d) in %s", n, 2*n, took.Round(time.Millisecond))
	return took, cpu, err
}

// ceiling is floor ÷ (floor + extra): the best ratio a run that does the
// floor's work plus extra can reach when CPU is what limits both.
func ceiling(floor, extra time.Duration) float64 {
	return float64(floor) / float64(floor+extra)
}

// cpuPerKey is the CPU of the bench process, the API server and etcd
// together, per key.
func cpuPerKey(m map[string]time.Duration, keys int) time.Duration {
	var total time.Duration
	for _, d := range m {
		total += d
	}
	return total / time.Duration(keys)
}

// admissionOnly measures what creating the APIKeys alone costs, through
// the admission webhooks, with no controller acting on them: the manager
// is restarted with leader election while the bench holds the lease, so
// its webhooks serve and its controllers wait. Keys cannot be Ready faster
// than they can be created, so this bounds C1 from above.
func (b *bench) admissionOnly(ctx context.Context) error {
	if err := b.mgr.stop(); err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ctrlOps, Name: "keyward-manager.keyward.dev"},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity: ptr.To("bench-holds-the-lease"), LeaseDurationSeconds: ptr.To(int32(3600)),
			AcquireTime: &now, RenewTime: &now,
		},
	}
	if err := b.cluster.client.Create(ctx, lease); err != nil {
		return fmt.Errorf("holding the leader lease: %w", err)
	}
	mgr, err := b.startManager(ctx, newWriteCounter(), true)
	if err != nil {
		return err
	}
	b.mgr = mgr
	if err := b.waitWebhooks(ctx); err != nil {
		return err
	}
	n := b.opts.c1Keys
	floor, floorCPU, err := b.c1Floor(ctx, "admission-a")
	if err != nil {
		return err
	}
	cpuBefore := processCPU()
	start := time.Now()
	err = createAll(ctx, n, func(ctx context.Context, i int) error {
		return b.cluster.client.Create(ctx, testgen.APIKey(c1AdmitNS, fmt.Sprintf("key-%04d", i), "solo"))
	})
	took := time.Since(start)
	cpu := cpuDelta(cpuBefore, processCPU())
	if err != nil {
		return err
	}
	var phases []string
	if p := b.phases(ctx, c1AdmitNS); p != "" {
		phases = append(phases, p)
	}
	statusCPU, eventCPU, err := b.issuanceWrites(ctx)
	if err != nil {
		return err
	}
	floor2, floorCPU2, err := b.c1Floor(ctx, "admission-b")
	if err != nil {
		return err
	}
	d := c1aData{keys: n, took: took, floors: []time.Duration{floor, floor2}, cpu: cpu, floorCPU: []map[string]time.Duration{floorCPU, floorCPU2},
		statusCPU: statusCPU, eventCPU: eventCPU, phases: phases}
	logf("C1a: %d APIKeys created through admission, no controller, in %s (floor %s)", n, fmtDur(took), durList(d.floors))
	// The bound belongs beside the figures it bounds.
	for _, id := range []string{"C1", "C1b"} {
		if r := b.row(id); r != nil {
			r.Ratio += boundNote(d.bound())
		}
	}
	if r := b.row("C4"); r != nil {
		r.Details = append(r.Details, fmt.Sprintf("The writes the design asks of every issued key, timed apart from the controller in C1a (the APIKey through admission, its two Secrets, its status, its Issued event): %s per key together.", fmtDur(d.least())))
	}
	b.add(d.row(b.command("C1")))
	return nil
}

// issuanceWrites measures the two writes of an issuance besides its
// Secrets, on C1a's keys, which no controller issued: each key's status,
// copied from a key C1 issued, written as the controller writes it (a
// merge patch of the status subresource), and an Issued event like the
// one C1's key got, through a protobuf client. With admission and the two
// Secrets, they are the writes the design asks of every key.
func (b *bench) issuanceWrites(ctx context.Context) (status, event map[string]time.Duration, err error) {
	var issued keywardv1alpha1.APIKeyList
	if err := b.cluster.client.List(ctx, &issued, client.InNamespace(c1NS)); err != nil {
		return nil, nil, err
	}
	var template *keywardv1alpha1.APIKey
	for i := range issued.Items {
		if meta.IsStatusConditionTrue(issued.Items[i].Status.Conditions, keywardv1alpha1.ConditionReady) {
			template = &issued.Items[i]
			break
		}
	}
	evs, err := b.cluster.clientset.EventsV1().Events(c1NS).List(ctx, metav1.ListOptions{FieldSelector: "reason=Issued"})
	if err != nil {
		return nil, nil, err
	}
	if template == nil || len(evs.Items) == 0 {
		return nil, nil, errors.New("C1a: C1 left no Ready key and Issued event to copy")
	}
	var keys keywardv1alpha1.APIKeyList
	if err := b.cluster.client.List(ctx, &keys, client.InNamespace(c1AdmitNS)); err != nil {
		return nil, nil, err
	}
	n := len(keys.Items)
	before := processCPU()
	err = createAll(ctx, n, func(ctx context.Context, i int) error {
		k := &keys.Items[i]
		orig := k.DeepCopy()
		k.Status = *template.Status.DeepCopy()
		return b.cluster.client.Status().Patch(ctx, k, client.MergeFrom(orig))
	})
	status = cpuDelta(before, processCPU())
	if err != nil {
		return nil, nil, fmt.Errorf("C1a: writing status: %w", err)
	}
	before = processCPU()
	err = createAll(ctx, n, func(ctx context.Context, i int) error {
		ev := evs.Items[0].DeepCopy()
		k := &keys.Items[i]
		ev.ObjectMeta = metav1.ObjectMeta{Namespace: k.Namespace, Name: fmt.Sprintf("%s.%x", k.Name, time.Now().UnixNano())}
		ev.Regarding = corev1.ObjectReference{APIVersion: keywardv1alpha1.GroupVersion.String(), Kind: "APIKey", Namespace: k.Namespace, Name: k.Name, UID: k.UID, ResourceVersion: k.ResourceVersion}
		ev.EventTime = metav1.NewMicroTime(time.Now())
		_, err := b.cluster.clientset.EventsV1().Events(k.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		return err
	})
	event = cpuDelta(before, processCPU())
	if err != nil {
		return nil, nil, fmt.Errorf("C1a: writing events: %w", err)
	}
	logf("C1a: %d status writes (%s), %d Issued events (%s)", n, fmtCPU(status), n, fmtCPU(event))
	// Keys whose status the bench wrote are deleted, untimed: the next
	// manager to run (E1's) only lets their finalizers go, and issues
	// nothing from a status it did not write.
	err = createAll(ctx, n, func(ctx context.Context, i int) error {
		return client.IgnoreNotFound(b.cluster.client.Delete(ctx, &keys.Items[i]))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("C1a: deleting the keys: %w", err)
	}
	return status, event, nil
}

// createAll runs create(i) for i in [0, n) on createConns goroutines.
func createAll(ctx context.Context, n int, create func(context.Context, int) error) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range createConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := create(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// readyWatch records when each APIKey of a namespace is first seen Ready,
// through an informer (which lists again and resumes when the API server
// closes its watch).
type readyWatch struct {
	want    int
	mu      sync.Mutex
	ready   map[string]time.Time
	last    time.Time
	all     chan struct{}
	watches atomic.Int32 // watch requests made: more than 1 means resumed
	cancel  context.CancelFunc
}

func watchReady(ctx context.Context, c client.WithWatch, ns string, want int) (*readyWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	r := &readyWatch{want: want, ready: map[string]time.Time{}, all: make(chan struct{}), cancel: cancel}
	lw := &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := &keywardv1alpha1.APIKeyList{}
			return list, c.List(ctx, list, client.InNamespace(ns), &client.ListOptions{Raw: &opts})
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			r.watches.Add(1)
			return c.Watch(ctx, &keywardv1alpha1.APIKeyList{}, client.InNamespace(ns), &client.ListOptions{Raw: &opts})
		},
	}
	_, informer := toolscache.NewInformerWithOptions(toolscache.InformerOptions{
		ListerWatcher: lw, ObjectType: &keywardv1alpha1.APIKey{},
		Handler: toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { r.seen(o) },
			UpdateFunc: func(_, o any) { r.seen(o) },
		},
	})
	go informer.RunWithContext(ctx)
	if !toolscache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		cancel()
		return nil, errors.New("the APIKey informer did not sync")
	}
	return r, nil
}

func (r *readyWatch) seen(o any) {
	k, ok := o.(*keywardv1alpha1.APIKey)
	if !ok || !meta.IsStatusConditionTrue(k.Status.Conditions, keywardv1alpha1.ConditionReady) {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.ready[k.Name]; !seen {
		r.ready[k.Name], r.last = now, now
		if len(r.ready) == r.want {
			close(r.all)
		}
	}
}

// wait returns when the last key became Ready and the keys Ready so far,
// after all are or after timeout.
func (r *readyWatch) wait(timeout time.Duration) (time.Time, map[string]time.Time) {
	select {
	case <-r.all:
	case <-time.After(timeout):
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]time.Time, len(r.ready))
	for k, v := range r.ready {
		out[k] = v
	}
	last := r.last
	if len(out) < r.want {
		last = time.Now()
	}
	return last, out
}

func (r *readyWatch) stop() { r.cancel() }

func (b *bench) reportC1(res *c1Result, id, shape string) {
	if !b.opts.want("C1") {
		return
	}
	var apiserver profileShares
	if res.apiserver != "" {
		apiserver.path, _ = filepath.Rel(b.root, res.apiserver)
		apiserver.shares = shares(res.apiserver)
	}
	r := b.add(res.c1Row(id, shape, b.command("C1"), apiserver))
	if r.Met == met(true) {
		return
	}
	b.attachProfile(r, res.profile)
}

// pct is the q-quantile of ds (nearest rank).
func pct(ds []time.Duration, q float64) time.Duration {
	s := make([]int64, len(ds))
	for i, d := range ds {
		s[i] = int64(d)
	}
	slices.Sort(s)
	return quantile(s, q)
}

func (b *bench) reportC2(res *c1Result) {
	if !b.opts.want("C2") {
		return
	}
	b.add(res.c2Row(b.command("C2")))
}

func indent(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = "\t" + l
	}
	return out
}

// resync starts a new manager over C1's idle keys and counts its writes
// until every key has been reconciled and the queues are quiet.
func (b *bench) resync(ctx context.Context, c1 *c1Result) (*runningManager, error) {
	before := reconciles("apikey")
	writes := newWriteCounter()
	start := time.Now()
	mgr, err := b.startManager(ctx, writes, false)
	if err != nil {
		return nil, err
	}
	// Every key reconciled once, then nothing for 3 s.
	deadline := time.Now().Add(2 * time.Minute)
	var settled time.Duration
	for time.Now().Before(deadline) {
		if reconciles("apikey")-before >= float64(c1.keys) {
			settled = time.Since(start)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	quietFor(3*time.Second, time.Minute)
	total := writes.n.Load()
	n := reconciles("apikey") - before
	logf("resync: %0.f APIKey reconciles, %d writes", n, total)
	b.add(resyncData{keys: c1.keys, reconciles: n, writes: total, settled: settled, breakdown: writes.breakdown(c1.keys)}.row(b.command("C2")))
	return mgr, nil
}

// reconciles sums controller_runtime_reconcile_total for a controller, in
// this process, over every manager instance (apikey-t1, apikey-t2...).
func reconciles(controller string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return 0
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && (controller == "" || strings.HasPrefix(l.GetValue(), controller+"-")) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// quietFor waits until no controller reconciled anything for d, at most
// limit.
func quietFor(d, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, since := reconciles(""), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if n := reconciles(""); n != last {
			last, since = n, time.Now()
		}
		if time.Since(since) >= d {
			return
		}
	}
}
