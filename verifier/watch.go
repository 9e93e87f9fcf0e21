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
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
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
	// Every series exists from the start, at 0: a series that appears at 1
	// hides its first increase from rate() and increase().
	for _, r := range []string{"secrets", "keygroups"} {
		c.expired.WithLabelValues(r)
		c.lists.WithLabelValues(r)
	}
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
// wraps it to count 410s.
func (c watchCounters) watch(resource string, opts metav1.ListOptions, w watch.Interface, err error) (watch.Interface, error) {
	if err == nil && opts.SendInitialEvents != nil && *opts.SendInitialEvents {
		c.lists.WithLabelValues(resource).Inc()
	}
	return countExpired(c.expired.WithLabelValues(resource))(w, err)
}

// slim is s with only what the verifier reads: its name, namespace,
// resource version and data. The API server's copy also carries labels and
// managedFields, several times the size.
func slim(s *corev1.Secret) corev1.Secret {
	return corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, ResourceVersion: s.ResourceVersion},
		Data:       s.Data,
	}
}

// keySelector is the label selector of the hashed Secrets a verifier
// holds: all of them, or those of the listed KeyGroups ("<namespace>/<name>")
// by their LabelKeyGroupRef.
func keySelector(groups []string) (string, error) {
	selector := record.LabelHashedKey + "=true"
	if len(groups) == 0 {
		return selector, nil
	}
	refs := make([]string, 0, len(groups))
	for _, g := range groups {
		ns, name, ok := strings.Cut(g, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return "", fmt.Errorf("--key-groups: %q is not <namespace>/<name>", g)
		}
		refs = append(refs, record.GroupRef(ns, name))
	}
	slices.Sort(refs)
	return selector + "," + record.LabelKeyGroupRef + " in (" + strings.Join(slices.Compact(refs), ",") + ")", nil
}

// feeds keep the store in step with the API server: the hashed Secrets of
// the operator's namespace that selector selects through a keyFeed (one list
// read as a stream), every KeyGroup through a reflector.
func feeds(api apiClients, namespace, selector string, store *Store, counters watchCounters, log logr.Logger) (keys *keyFeed, groups *cache.Reflector) {
	kc := api.kc
	keys = &keyFeed{rest: api.list, namespace: namespace, secrets: api.cs.CoreV1().Secrets(namespace), selector: selector, store: store, counters: counters, log: log}
	groupsLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			list := &keywardv1alpha1.KeyGroupList{}
			err := kc.List(ctx, list, &client.ListOptions{Raw: &opts})
			counters.list("keygroups", opts, err)
			return list, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			w, err := kc.Watch(ctx, &keywardv1alpha1.KeyGroupList{}, &client.ListOptions{Raw: &opts})
			return counters.watch("keygroups", opts, w, err)
		},
	}
	return keys, cache.NewReflectorWithOptions(groupsLW, &keywardv1alpha1.KeyGroup{}, groupStore{store}, cache.ReflectorOptions{Name: "keygroups", Backoff: reconnectBackoff()})
}

// countExpired counts a watch refused, or ended, because the resource
// version it resumed from is gone: etcd compacted it while the verifier was
// away. The reflector then relists; the count tells operators how often.
func countExpired(c prometheus.Counter) func(watch.Interface, error) (watch.Interface, error) {
	return func(w watch.Interface, err error) (watch.Interface, error) {
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				c.Inc()
			}
			return w, err
		}
		ew := &expiryWatch{Interface: w, out: make(chan watch.Event), stop: make(chan struct{}), expired: c}
		go ew.loop()
		return ew, nil
	}
}

// expiryWatch passes a watch's events through, counting 410 errors. Unlike
// watch.Filter, it never blocks on a consumer that has stopped reading.
type expiryWatch struct {
	watch.Interface
	out     chan watch.Event
	stop    chan struct{}
	once    sync.Once
	expired prometheus.Counter
}

func (w *expiryWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *expiryWatch) Stop() {
	w.once.Do(func() { close(w.stop) })
	w.Interface.Stop()
}

func (w *expiryWatch) loop() {
	defer close(w.out)
	for e := range w.Interface.ResultChan() {
		if e.Type == watch.Error && expired(apierrors.FromObject(e.Object)) {
			w.expired.Inc()
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
