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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
)

// watchCounters count, by resource, the reflectors' lists and the watches
// (or lists) refused as expired.
type watchCounters struct{ expired, lists *prometheus.CounterVec }

// newWatchCounters registers the reflectors' counters with reg.
func newWatchCounters(reg prometheus.Registerer) watchCounters {
	c := watchCounters{
		expired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_verifier_watch_expired_total",
			Help: "Times a watch, or the list resuming it, was refused because its resource version was compacted away (410 Gone); a full relist follows.",
		}, []string{"resource"}),
		lists: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_verifier_lists_total",
			Help: "Lists of hashed Secrets or KeyGroups made (started, for streaming lists): one at start, then one each time a watch could not be resumed.",
		}, []string{"resource"}),
	}
	reg.MustRegister(c.expired, c.lists)
	return c
}

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
