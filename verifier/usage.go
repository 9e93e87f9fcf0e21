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
	"encoding/json"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// usageReporter writes APIKey.status.lastUsedTime (or, for the key a
// rotation replaced, status.rotation.previousKeyLastUsedTime) off the
// request path, at
// most once per interval per key. A request only stores a timestamp and,
// when the key is due, hands it to a buffered queue without blocking.
type usageReporter struct {
	client   client.Client
	interval time.Duration
	queue    chan *entry
	log      logr.Logger
}

func newUsageReporter(c client.Client, interval time.Duration, log logr.Logger) *usageReporter {
	return &usageReporter{client: c, interval: interval, queue: make(chan *entry, 4096), log: log}
}

// usageResolution is how far behind a key's recorded last use may be. The
// status field is written to the second, and a store on every request
// would pass the entry's cache line back and forth between the cores that
// answer for the same key: with a second's slack, a busy key's entry is
// written once a second and only read otherwise.
const usageResolution = time.Second

// used records a use of e at now. It is on the request path: an atomic
// load, then at most once per usageResolution a store and a load, a
// compare-and-swap once per interval, and rarely a non-blocking send.
func (u *usageReporter) used(e *entry, now time.Time) {
	ns := now.UnixNano()
	if ns-e.lastUsed.Load() < int64(usageResolution) {
		return
	}
	e.lastUsed.Store(ns)
	if ns-e.reported.Load() < int64(u.interval) || !e.queued.CompareAndSwap(false, true) {
		return
	}
	select {
	case u.queue <- e:
	default:
		e.queued.Store(false) // full: the next use tries again
	}
}

// Run writes queued uses until ctx ends.
func (u *usageReporter) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-u.queue:
			u.write(ctx, e)
		}
	}
}

func (u *usageReporter) write(ctx context.Context, e *entry) {
	defer e.queued.Store(false)
	last := e.lastUsed.Load()
	t := metav1.NewTime(time.Unix(0, last).UTC().Truncate(time.Second))
	status := map[string]any{"lastUsedTime": t}
	if e.previous {
		// The key a rotation replaced, during its overlap: its use is
		// the previous generation's, which tells whether consumers have
		// moved to the new key.
		status = map[string]any{"rotation": map[string]any{"previousKeyLastUsedTime": t}}
	}
	patch, _ := json.Marshal(map[string]any{"status": status})
	key := &keywardv1alpha1.APIKey{}
	key.Namespace, key.Name = e.profile.namespace, e.apiKey()
	err := u.client.Status().Patch(ctx, key, client.RawPatch("application/merge-patch+json", patch))
	switch {
	case err == nil || apierrors.IsNotFound(err):
		e.reported.Store(last)
	default:
		// Retried at the next use after the interval: never a tight loop.
		e.reported.Store(last)
		u.log.V(1).Info("Unable to record last use", "apikey", e.profile.namespace+"/"+e.apiKey(), "error", err.Error())
	}
}
