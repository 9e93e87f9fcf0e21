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

package controllers

import (
	"context"
	"errors"
	"fmt"
	"math"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/rules"
)

// ApplicationReconciler admits Applications against their group's
// maxApplications, follows their revocation and counts their keys.
type ApplicationReconciler struct {
	client.Client
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock

	locks *keyedMutex
	book  *index.Book
}

// +kubebuilder:rbac:groups=keyward.dev,resources=applications,verbs=get;list;watch
// +kubebuilder:rbac:groups=keyward.dev,resources=applications/status,verbs=get;patch;update

// Condition reasons of an Application's Ready condition.
const (
	// ReasonWaitingForOlderApplications says the group is full unless an
	// older application that is still being admitted turns out not to need
	// its slot.
	ReasonWaitingForOlderApplications = "WaitingForOlderApplications"
	// ReasonDuplicateExternalID says an older application of the group
	// holds the same externalID.
	ReasonDuplicateExternalID = "DuplicateExternalID"
)

// Reconcile decides an Application's phase and counts its keys. A failure
// is reported in the Synced condition and retried with backoff.
func (r *ApplicationReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	app := &keywardv1alpha1.Application{}
	if err := r.Get(ctx, req.NamespacedName, app); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !app.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	orig := app.DeepCopy()
	res, err := r.reconcile(ctx, app, orig)
	if err == nil {
		return res, nil
	}
	synced, ok := syncedCondition(err, app.Generation)
	if !ok {
		return ctrl.Result{}, err
	}
	failed := orig.DeepCopy()
	meta.SetStatusCondition(&failed.Status.Conditions, synced)
	if !equality.Semantic.DeepEqual(orig.Status, failed.Status) {
		if perr := r.Status().Patch(ctx, failed, client.MergeFrom(orig)); perr != nil {
			err = errors.Join(err, fmt.Errorf("writing the status of Application %s/%s: %w", app.Namespace, app.Name, perr))
		}
	}
	return ctrl.Result{}, err
}

func (r *ApplicationReconciler) reconcile(ctx context.Context, app, orig *keywardv1alpha1.Application) (ctrl.Result, error) {
	group := &keywardv1alpha1.KeyGroup{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: string(app.Spec.KeyGroup)}, group); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		group = nil
	}
	if r.needsAdmission(app, group) {
		// The decision and the status write that records it happen under
		// the group's lock: the next decision reads this one back.
		unlock := r.locks.Lock("keygroup/" + app.Namespace + "/" + group.Name)
		defer unlock()
	}
	phase, reason, message, err := r.decide(ctx, app, group)
	if err != nil {
		return ctrl.Result{}, err
	}
	activeKeys, err := r.countKeys(ctx, app)
	if err != nil {
		return ctrl.Result{}, err
	}

	app.Status.Phase = phase
	if phase == keywardv1alpha1.ApplicationActive {
		app.Status.KeyGroupUID = group.UID
	}
	app.Status.ActiveKeys = activeKeys
	app.Status.CreatedBy = app.Annotations[keywardv1alpha1.AnnotationCreatedBy]
	app.Status.ObservedGeneration = app.Generation
	status := metav1.ConditionFalse
	if phase == keywardv1alpha1.ApplicationActive {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&app.Status.Conditions, metav1.Condition{
		Type: keywardv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message, ObservedGeneration: app.Generation,
	})
	synced, _ := syncedCondition(nil, app.Generation)
	meta.SetStatusCondition(&app.Status.Conditions, synced)
	var res ctrl.Result
	if reason == ReasonWaitingForOlderApplications {
		res.RequeueAfter = waitRequeue(r.Clock.Now().Sub(app.CreationTimestamp.Time))
	}
	if equality.Semantic.DeepEqual(orig.Status, app.Status) {
		return res, nil
	}
	if err := r.Status().Patch(ctx, app, client.MergeFrom(orig)); err != nil {
		return ctrl.Result{}, fmt.Errorf("writing the status of Application %s/%s: %w", app.Namespace, app.Name, err)
	}
	if orig.Status.Phase != phase {
		switch phase {
		case keywardv1alpha1.ApplicationRevoked:
			r.Recorder.Eventf(app, nil, corev1.EventTypeNormal, EventRevoked, "Reconcile", "%s", message)
		case keywardv1alpha1.ApplicationRejected:
			r.Recorder.Eventf(app, nil, corev1.EventTypeWarning, EventRejected, "Reconcile", "%s", message)
		}
	}
	return res, waitForCache(ctx, r.Client, app, orig.ResourceVersion)
}

// needsAdmission says whether the application waits for a slot of its
// group: it is neither decided (rejected, revoked) nor Active in this very
// group. One Active in a group of the same name that was deleted since is
// admitted again.
func (r *ApplicationReconciler) needsAdmission(app *keywardv1alpha1.Application, group *keywardv1alpha1.KeyGroup) bool {
	if group == nil || app.Spec.Revoked {
		return false
	}
	switch app.Status.Phase {
	case keywardv1alpha1.ApplicationRejected, keywardv1alpha1.ApplicationRevoked:
		return false
	}
	return !rules.ApplicationAdmittedTo(app, group)
}

func (r *ApplicationReconciler) decide(ctx context.Context, app *keywardv1alpha1.Application, group *keywardv1alpha1.KeyGroup) (keywardv1alpha1.ApplicationPhase, string, string, error) {
	switch {
	case rules.ApplicationRevoked(app):
		return keywardv1alpha1.ApplicationRevoked, ReasonRevoked, "spec.revoked is true; none of the application's keys work", nil
	case app.Status.Phase == keywardv1alpha1.ApplicationRejected:
		c := meta.FindStatusCondition(app.Status.Conditions, keywardv1alpha1.ConditionReady)
		if c != nil {
			return keywardv1alpha1.ApplicationRejected, c.Reason, c.Message, nil
		}
		return keywardv1alpha1.ApplicationRejected, ReasonLimitExceeded, "", nil
	}
	if older, err := r.olderHolderOfExternalID(ctx, app); err != nil {
		return "", "", "", err
	} else if older != "" {
		return keywardv1alpha1.ApplicationRejected, ReasonDuplicateExternalID, fmt.Sprintf(
			"Application %s of KeyGroup %s, created before this one, has the same externalID %q; none of this application's keys work: "+
				"create a new Application with another externalID", older, app.Spec.KeyGroup, app.Spec.ExternalID), nil
	}
	switch {
	case group == nil:
		return keywardv1alpha1.ApplicationPending, ReasonKeyGroupNotFound,
			fmt.Sprintf("KeyGroup %q does not exist in namespace %s; waiting for it", app.Spec.KeyGroup, app.Namespace), nil
	case rules.ApplicationAdmittedTo(app, group):
		return keywardv1alpha1.ApplicationActive, ReasonActive, "the application may hold keys", nil
	}
	active, waiting, err := r.occupiedSlots(ctx, app, group)
	if err != nil {
		return "", "", "", err
	}
	limit := group.MaxApplications()
	switch {
	case active >= limit:
		return keywardv1alpha1.ApplicationRejected, ReasonLimitExceeded, fmt.Sprintf(
			"KeyGroup %s already has %d/%d active applications (maxApplications; revoked applications do not count); "+
				"revoke or delete an application, or raise the limit, then create a new Application", group.Name, active, limit), nil
	case active+waiting >= limit:
		return keywardv1alpha1.ApplicationPending, ReasonWaitingForOlderApplications, fmt.Sprintf(
			"KeyGroup %s has %d/%d active applications and %d older applications admitted first", group.Name, active, limit, waiting), nil
	}
	return keywardv1alpha1.ApplicationActive, ReasonActive, "the application may hold keys", nil
}

// olderHolderOfExternalID names an application of app's group, created
// before it, that holds the same externalID: admission refuses a duplicate,
// and of two that raced past it the newer is rejected. It reads the cache,
// which runs on every resync: an older application the cache does not show
// yet re-enqueues the holders of its externalID when it appears
// (holdersOfExternalID).
func (r *ApplicationReconciler) olderHolderOfExternalID(ctx context.Context, app *keywardv1alpha1.Application) (string, error) {
	if app.Spec.ExternalID == "" {
		return "", nil
	}
	var list keywardv1alpha1.ApplicationList
	if err := r.List(ctx, &list, client.InNamespace(app.Namespace), client.MatchingFields{index.ApplicationKeyGroup: string(app.Spec.KeyGroup)}); err != nil {
		return "", fmt.Errorf("listing the Applications of KeyGroup %s/%s: %w", app.Namespace, app.Spec.KeyGroup, err)
	}
	for _, o := range rules.ExternalIDHolders(app, list.Items) {
		if rules.ApplicationCreatedBefore(o, app) {
			return o.Name, nil
		}
	}
	return "", nil
}

// holdersOfExternalID maps an Application to the other Applications of its
// group that hold its externalID.
func (r *ApplicationReconciler) holdersOfExternalID(ctx context.Context, o client.Object) []ctrl.Request {
	a, ok := o.(*keywardv1alpha1.Application)
	if !ok || a.Spec.ExternalID == "" {
		return nil
	}
	var list keywardv1alpha1.ApplicationList
	if err := r.List(ctx, &list, client.InNamespace(a.Namespace), client.MatchingFields{index.ApplicationKeyGroup: string(a.Spec.KeyGroup)}); err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, h := range rules.ExternalIDHolders(a, list.Items) {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(h)})
	}
	return reqs
}

// occupiedSlots counts the group's applications that hold a slot against
// maxApplications, the application itself aside: those Active in this very
// group (rules.ApplicationAdmittedTo), and ones created before it that still
// wait their turn. It reads the API server, not the cache, so that it sees
// the decisions made just before it.
func (r *ApplicationReconciler) occupiedSlots(ctx context.Context, app *keywardv1alpha1.Application, group *keywardv1alpha1.KeyGroup) (active, waiting int, err error) {
	var list keywardv1alpha1.ApplicationList
	if err := r.APIReader.List(ctx, &list, client.InNamespace(app.Namespace), client.MatchingFields{index.ApplicationKeyGroup: group.Name}); err != nil {
		return 0, 0, fmt.Errorf("listing the Applications of KeyGroup %s/%s: %w", app.Namespace, group.Name, err)
	}
	for i := range list.Items {
		o := &list.Items[i]
		switch {
		case o.UID == app.UID || !rules.ApplicationOccupiesSlot(o):
		case rules.ApplicationAdmittedTo(o, group):
			active++
		case rules.ApplicationCreatedBefore(o, app):
			waiting++
		}
	}
	return active, waiting, nil
}

// countKeys counts the application's keys that count against its limit.
func (r *ApplicationReconciler) countKeys(ctx context.Context, app *keywardv1alpha1.Application) (int32, error) {
	if err := r.book.WaitForSynced(ctx, index.SyncWait); err != nil {
		return 0, err
	}
	var n int
	r.book.Read(app.Namespace, app.Name, func(sib index.Siblings) { n = sib.ActiveOrDisabled })
	return int32(min(n, math.MaxInt32)), nil // #nosec G115 -- bounded
}

// apiKeyPhaseChanged lets through the key events that can change a count:
// creation, deletion and a new phase.
func apiKeyPhaseChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*keywardv1alpha1.APIKey)
		n, ok2 := e.ObjectNew.(*keywardv1alpha1.APIKey)
		return !ok1 || !ok2 || o.Status.Phase != n.Status.Phase || o.Spec.Application != n.Spec.Application
	}}
}

// SetupWithManager watches Applications, their keys (for the counts) and
// their groups.
func (r *ApplicationReconciler) SetupWithManager(mgr ctrl.Manager, o Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(o.name("application")).
		For(&keywardv1alpha1.Application{}, builder.WithPredicates(specOrMetadataChanged())).
		// Keys change only the counts: refreshed once their phases settle.
		Watches(&keywardv1alpha1.APIKey{}, enqueueAfter(countDelay, func(_ context.Context, o client.Object) []ctrl.Request {
			return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: string(o.(*keywardv1alpha1.APIKey).Spec.Application)}}}
		}), builder.WithPredicates(apiKeyPhaseChanged())).
		// Of two Applications that raced to one externalID, the newer is
		// rejected: each one's change looks at the others holding it.
		Watches(&keywardv1alpha1.Application{}, handler.EnqueueRequestsFromMapFunc(r.holdersOfExternalID),
			builder.WithPredicates(specOrMetadataChanged())).
		Watches(&keywardv1alpha1.KeyGroup{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []ctrl.Request {
			var apps keywardv1alpha1.ApplicationList
			if err := r.List(ctx, &apps, client.InNamespace(o.GetNamespace()), client.MatchingFields{index.ApplicationKeyGroup: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
				return nil
			}
			reqs := make([]ctrl.Request, 0, len(apps.Items))
			for i := range apps.Items {
				reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&apps.Items[i])})
			}
			return reqs
		}), builder.WithPredicates(specOrMetadataChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles, RateLimiter: rateLimiter()}).
		Complete(r)
}
