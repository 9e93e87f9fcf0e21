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
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/grants"
	"github.com/keyward/keyward/internal/index"
	"github.com/keyward/keyward/internal/record"
)

// APIKeyReconciler makes an APIKey a usable credential. In order:
//
//  1. load: the key's Application, KeyGroup and hashed Secret;
//  2. decide: the phase that the spec, the application, the group and the
//     clock call for (apikey_phases.go), and Revoked when the ServiceAccount
//     that created the key is gone (checkCreator, apikey_creator.go);
//  3. issue: once, admit the key against maxKeysPerApplication, mint it,
//     deliver the plaintext to the delivery Secret and write the digest to
//     the hashed Secret (apikey_secret.go);
//  4. rotate: on schedule or on request, stage a successor, make it live
//     and promote it (apikey_rotation.go);
//  5. publish: keep the hashed Secret's verification record in step with
//     the phase, so the verifier refuses a key the moment it stops working;
//
// and, deferred, one status write when anything changed (apikey_status.go).
// Deleting an APIKey deletes its hashed Secret through the finalizer.
type APIKeyReconciler struct {
	client.Client
	// APIReader reads from the API server, bypassing the cache: for limit
	// decisions, which must see every key, and for delivery Secrets, which
	// are never cached.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.PassiveClock
	// Namespace is the operator's namespace, where hashed Secrets live.
	Namespace string

	// PromoteAfter is how long a rotation's successor is live before it
	// is promoted in the delivery Secret; DefaultPromoteAfter when zero.
	PromoteAfter time.Duration

	// grants asks whether a key's creator may grant its scopes.
	grants *grants.Reviewer

	locks    *keyedMutex
	reserved *reservations
	// book holds each application's keys and hashed Secrets' states, as
	// the cache shows them, for the limit decision.
	book *index.Book
}

// apiKeyScope carries one reconcile's inputs and decisions between phases.
type apiKeyScope struct {
	key  *keywardv1alpha1.APIKey
	orig *keywardv1alpha1.APIKey
	now  time.Time

	app    *keywardv1alpha1.Application
	group  *keywardv1alpha1.KeyGroup
	hashed *corev1.Secret // nil until the key is minted
	bound  binding        // the parents the key is bound to

	phase   keywardv1alpha1.APIKeyPhase
	reason  string
	message string
	requeue time.Duration

	rotation *metav1.Condition // the Rotated condition a rotation step set

	// rec is s.hashed's record, decoded once for the phases that read it;
	// recOf is the hashed Secret it was decoded from.
	rec   *record.Record
	recOf *corev1.Secret
}

func (s *apiKeyScope) minted() bool { return s.hashed != nil }

// hashedRecord is the record s.hashed holds, decoded once per version of
// it this reconcile holds (rotate, publish and the status all read it).
// Callers must not change it.
func (s *apiKeyScope) hashedRecord() (*record.Record, error) {
	if s.rec == nil || s.recOf != s.hashed {
		rec, err := record.Decode(s.hashed.Data)
		if err != nil {
			return nil, fmt.Errorf("hashed Secret %s/%s: %w", s.hashed.Namespace, s.hashed.Name, err)
		}
		s.rec, s.recOf = rec, s.hashed
	}
	return s.rec, nil
}

// +kubebuilder:rbac:groups=keyward.dev,resources=apikeys,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=keyward.dev,resources=apikeys/status,verbs=get;patch;update
// +kubebuilder:rbac:groups=keyward.dev,resources=apikeys/finalizers,verbs=update
// +kubebuilder:rbac:groups=keyward.dev,resources=applications;keygroups,verbs=get;list;watch
// Delivery Secrets, in any namespace, are created, read back, rewritten in
// place by a rotation (update) and, when they cannot be rewritten (an
// immutable one of an earlier release), replaced (delete); nothing lists or
// watches them. Hashed Secrets live in the operator's namespace only.
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;delete
// +kubebuilder:rbac:groups="",namespace=keyward-system,resources=secrets,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// The grant of a key's scopes, asked again just before it is minted.
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Reconcile brings one APIKey to the phase its spec and its surroundings
// call for.
func (r *APIKeyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, retErr error) {
	// This reconcile reads and writes delivery Secrets: no body dumps.
	ctx = withoutBodies(ctx)
	key := &keywardv1alpha1.APIKey{}
	if err := r.Get(ctx, req.NamespacedName, key); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, r.deleteOrphans(ctx, req.NamespacedName, "")
		}
		return ctrl.Result{}, err
	}
	if err := r.deleteOrphans(ctx, req.NamespacedName, key.UID); err != nil {
		return ctrl.Result{}, err
	}
	if !key.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, key)
	}
	if err := r.ensureFinalizer(ctx, key); err != nil {
		return ctrl.Result{}, err
	}

	s := &apiKeyScope{key: key, orig: key.DeepCopy(), now: r.Clock.Now()}
	defer func() {
		retErr = errors.Join(retErr, r.writeStatus(ctx, s, retErr))
	}()
	for _, phase := range []func(context.Context, *apiKeyScope) error{
		r.load,
		r.decide,
		r.checkCreator,
		r.issue,
		r.rotate,
		r.publish,
	} {
		if err := phase(ctx, s); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{RequeueAfter: s.requeue}, nil
}

func (r *APIKeyReconciler) ensureFinalizer(ctx context.Context, key *keywardv1alpha1.APIKey) error {
	if controllerutil.ContainsFinalizer(key, keywardv1alpha1.Finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(key.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.AddFinalizer(key, keywardv1alpha1.Finalizer)
	return r.Patch(ctx, key, patch)
}

// finalize deletes the hashed Secret, so the key stops working, then lets
// the APIKey go. The delivery Secret is owned by the APIKey and goes with it.
//
// The hashed Secret goes whether or not the finalizer is still there: a key
// held in deletion by someone else's finalizer, its own removed, must not
// keep working while no reconcile can reach its record.
func (r *APIKeyReconciler) finalize(ctx context.Context, key *keywardv1alpha1.APIKey) error {
	if err := r.deleteHashedSecret(ctx, key); err != nil {
		return err
	}
	// A key deleted before the cache showed its hashed Secret would
	// otherwise hold its reservation for as long as this manager runs.
	r.reserved.remove(index.ApplicationKey(key.Namespace, string(key.Spec.Application)), key.UID)
	if err := r.markDeleting(ctx, key); err != nil {
		return err
	}
	if !controllerutil.ContainsFinalizer(key, keywardv1alpha1.Finalizer) {
		return nil
	}
	patch := client.MergeFromWithOptions(key.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(key, keywardv1alpha1.Finalizer)
	return client.IgnoreNotFound(r.Patch(ctx, key, patch))
}

// markDeleting says, on an APIKey that someone else's finalizer holds in
// deletion, that its key no longer works: its phase is what it was, and
// kubectl does not show custom resources as Terminating, so Ready would
// otherwise still say "the key works".
func (r *APIKeyReconciler) markDeleting(ctx context.Context, key *keywardv1alpha1.APIKey) error {
	var others []string
	for _, f := range key.Finalizers {
		if f != keywardv1alpha1.Finalizer {
			others = append(others, f)
		}
	}
	if len(others) == 0 {
		return nil // gone once keyward's finalizer is
	}
	c := meta.FindStatusCondition(key.Status.Conditions, keywardv1alpha1.ConditionReady)
	if c != nil && c.Status == metav1.ConditionFalse && c.Reason == ReasonDeleting {
		return nil
	}
	patch := client.MergeFromWithOptions(key.DeepCopy(), client.MergeFromWithOptimisticLock{})
	meta.SetStatusCondition(&key.Status.Conditions, metav1.Condition{
		Type: keywardv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonDeleting, ObservedGeneration: key.Generation,
		Message: fmt.Sprintf("the APIKey is being deleted: its key no longer works; the object waits for the finalizers %s", strings.Join(others, ", ")),
	})
	return client.IgnoreNotFound(r.Status().Patch(ctx, key, patch))
}

// deleteOrphans deletes the hashed Secrets of the APIKey name that belong
// to no existing APIKey: one deleted without its finalizer (whoever could
// strip it), or deleted and created again under the same name (uid, the
// current one's UID; "" when there is none). A hashed Secret left behind
// would keep a key working that no APIKey shows. The API server, not the
// cache, says whether its APIKey is gone: deleting one is for good.
func (r *APIKeyReconciler) deleteOrphans(ctx context.Context, name types.NamespacedName, uid types.UID) error {
	var list corev1.SecretList
	if err := r.List(ctx, &list, client.InNamespace(r.Namespace),
		client.MatchingFields{index.HashedSecretAPIKey: name.String()}, client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing the hashed Secrets of APIKey %s: %w", name, err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		owner := types.UID(s.Labels[record.LabelAPIKeyUID])
		if owner == uid {
			continue
		}
		live := &metav1.PartialObjectMetadata{}
		live.SetGroupVersionKind(keywardv1alpha1.GroupVersion.WithKind("APIKey"))
		switch err := r.APIReader.Get(ctx, name, live); {
		case err == nil && live.UID == owner:
			continue // the cache is behind: its APIKey exists
		case err != nil && !apierrors.IsNotFound(err):
			return fmt.Errorf("getting APIKey %s: %w", name, err)
		}
		logf.FromContext(ctx).Info("Deleting the hashed Secret of an APIKey that no longer exists", "secret", s.Name, "apikeyUID", owner)
		if err := r.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name}}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting orphaned hashed Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
	}
	return nil
}

// SetupWithManager watches APIKeys, and the Applications, KeyGroups and
// hashed Secrets whose changes decide a key's phase.
func (r *APIKeyReconciler) SetupWithManager(mgr ctrl.Manager, o Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named(o.name("apikey")).
		For(&keywardv1alpha1.APIKey{}, builder.WithPredicates(specOrMetadataChanged())).
		// A key depends on its parents' spec, phase and existence, not on
		// their counts: without these predicates every count update would
		// re-enqueue every key of the application or group.
		Watches(&keywardv1alpha1.Application{}, handler.EnqueueRequestsFromMapFunc(r.keysOfApplication),
			builder.WithPredicates(predicate.Or(specOrMetadataChanged(), applicationPhaseChanged()))).
		Watches(&keywardv1alpha1.KeyGroup{}, handler.EnqueueRequestsFromMapFunc(r.keysOfGroup),
			builder.WithPredicates(specOrMetadataChanged())).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(keyOfHashedSecret),
			builder.WithPredicates(predicate.NewPredicateFuncs(isHashedSecret))).
		Watches(&corev1.ServiceAccount{}, handler.EnqueueRequestsFromMapFunc(r.keysOfCreator),
			builder.OnlyMetadata, builder.WithPredicates(predicate.Funcs{
				CreateFunc: func(event.CreateEvent) bool { return false },
				UpdateFunc: func(event.UpdateEvent) bool { return false },
			})).
		WithOptions(controller.Options{MaxConcurrentReconciles: o.MaxConcurrentReconciles, RateLimiter: rateLimiter()}).
		Complete(r)
}

// specOrMetadataChanged lets through every event but status-only updates:
// the controller's own status writes and the verifier's lastUsedTime.
func specOrMetadataChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, n := e.ObjectOld, e.ObjectNew
		return o.GetGeneration() != n.GetGeneration() ||
			!o.GetDeletionTimestamp().Equal(n.GetDeletionTimestamp()) ||
			!slices.Equal(o.GetFinalizers(), n.GetFinalizers()) ||
			o.GetAnnotations()[keywardv1alpha1.AnnotationCreatedBy] != n.GetAnnotations()[keywardv1alpha1.AnnotationCreatedBy] ||
			o.GetAnnotations()[keywardv1alpha1.AnnotationRotate] != n.GetAnnotations()[keywardv1alpha1.AnnotationRotate]
	}}
}

// applicationPhaseChanged lets through updates that change an
// Application's phase, which its keys wait on.
func applicationPhaseChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*keywardv1alpha1.Application)
		n, ok2 := e.ObjectNew.(*keywardv1alpha1.Application)
		return !ok1 || !ok2 || o.Status.Phase != n.Status.Phase
	}}
}

func (r *APIKeyReconciler) keysOfApplication(ctx context.Context, o client.Object) []ctrl.Request {
	return r.keysOfApplications(ctx, o.GetNamespace(), o.GetName())
}

func (r *APIKeyReconciler) keysOfApplications(ctx context.Context, namespace string, apps ...string) []ctrl.Request {
	var reqs []ctrl.Request
	for _, app := range apps {
		var list keywardv1alpha1.APIKeyList
		if err := r.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{index.APIKeyApplication: app}, client.UnsafeDisableDeepCopy); err != nil {
			continue
		}
		for i := range list.Items {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

func (r *APIKeyReconciler) keysOfGroup(ctx context.Context, o client.Object) []ctrl.Request {
	var apps keywardv1alpha1.ApplicationList
	if err := r.List(ctx, &apps, client.InNamespace(o.GetNamespace()), client.MatchingFields{index.ApplicationKeyGroup: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	names := make([]string, 0, len(apps.Items))
	for i := range apps.Items {
		names = append(names, apps.Items[i].Name)
	}
	return r.keysOfApplications(ctx, o.GetNamespace(), names...)
}

func isHashedSecret(o client.Object) bool {
	return record.IsHashed(o.GetLabels())
}

// keyOfHashedSecret maps a hashed Secret back to its APIKey, so a hashed
// Secret changed or deleted by hand is put right.
func keyOfHashedSecret(_ context.Context, o client.Object) []ctrl.Request {
	l := o.GetLabels()
	if l[record.LabelNamespace] == "" || l[record.LabelAPIKey] == "" {
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: l[record.LabelNamespace], Name: l[record.LabelAPIKey]}}}
}
