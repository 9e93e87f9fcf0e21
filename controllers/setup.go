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

// Package controllers holds one reconciler per kind. The APIKey reconciler
// turns a key into a hashed Secret (the only record that makes it valid) and
// a delivery Secret (the plaintext, once); the Application and KeyGroup
// reconcilers admit applications against their group's limits and report
// counts. They talk to each other only through the objects they write.
package controllers

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/index"
)

// FieldManager is the server-side apply field manager of the manager.
const FieldManager = "keyward-manager"

// DefaultMaxConcurrentReconciles is each controller's number of workers
// unless set. An APIKey's issuance is a few API requests made in turn
// (a SubjectAccessReview, two creates, a status patch) and little CPU:
// with few workers a burst of keys waits on round trips, not on CPU.
const DefaultMaxConcurrentReconciles = 16

// Options configure the reconcilers.
type Options struct {
	// Namespace is the operator's namespace, where hashed Secrets live.
	Namespace string
	// VerifierURL is the base URL of the verifier Service, such as
	// http://keyward-verifier.keyward-system.svc; KeyGroups report
	// <VerifierURL>/v1/verify/<namespace>/<name>.
	VerifierURL string
	// Clock tells the time; tests move it.
	Clock clock.Clock
	// MaxConcurrentReconciles per controller;
	// DefaultMaxConcurrentReconciles when zero.
	MaxConcurrentReconciles int
	// PromoteAfter is how long a rotation's successor is live before it is
	// promoted in the delivery Secret; DefaultPromoteAfter when zero.
	PromoteAfter time.Duration
	// Grants asks whether a key's creator may grant its scopes; the manager
	// shares it with the admission webhook, so that their identical
	// reviews are sent once. Default: a Reviewer of its own.
	Grants *grants.Reviewer
	// Book holds each application's keys for the limit decisions; the
	// manager shares it with the admission webhook. Default: a book of
	// its own, fed by mgr's cache.
	Book *index.Book
	// Instance, when set, is appended to each controller's name (apikey-x),
	// so that several managers run in one process and their metrics stay
	// apart.
	Instance string
}

// name is the controller's name for this instance.
func (o Options) name(controller string) string {
	if o.Instance == "" {
		return controller
	}
	return controller + "-" + o.Instance
}

// Setup registers the three reconcilers with mgr. The field indexes they
// list through (internal/index) must be registered first.
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Namespace == "" {
		return errors.New("controllers: the operator namespace is required")
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.MaxConcurrentReconciles == 0 {
		o.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if o.Grants == nil {
		o.Grants = grants.NewReviewer(mgr.GetClient())
	}
	if o.Book == nil {
		var err error
		if o.Book, err = index.RegisterBook(context.Background(), mgr.GetCache(), o.Namespace); err != nil {
			return err
		}
	}
	recorder := mgr.GetEventRecorder(FieldManager)
	locks := newKeyedMutex()
	if err := (&APIKeyReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
		Clock: o.Clock, Namespace: o.Namespace, PromoteAfter: o.PromoteAfter, locks: locks, reserved: newReservations(),
		grants: o.Grants, book: o.Book,
	}).SetupWithManager(mgr, o); err != nil {
		return err
	}
	if err := (&ApplicationReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder,
		Clock: o.Clock, locks: locks, book: o.Book,
	}).SetupWithManager(mgr, o); err != nil {
		return err
	}
	if err := (&KeyGroupReconciler{
		Client: mgr.GetClient(), VerifierURL: o.VerifierURL,
	}).SetupWithManager(mgr, o); err != nil {
		return err
	}
	return RegisterMetrics(mgr.GetCache())
}

// cacheSyncTimeout bounds how long a reconciler waits for its own write to
// reach the cache.
const cacheSyncTimeout = 5 * time.Second

// waitForCache waits until the cached copy of obj has moved past oldVersion,
// so that the next reconcile of obj reads what this one wrote instead of
// deciding again from a stale copy (and writing the same thing twice).
func waitForCache(ctx context.Context, c client.Reader, obj client.Object, oldVersion string) error {
	key := client.ObjectKeyFromObject(obj)
	fresh := obj.DeepCopyObject().(client.Object)
	return wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, cacheSyncTimeout, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, key, fresh); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return fresh.GetResourceVersion() != oldVersion, nil
	})
}
